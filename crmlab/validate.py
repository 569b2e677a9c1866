"""Validation of the five canonical tables.

Every rule raises :class:`crmlab.DataError` naming the table, the column, the rule, how many
rows break it and up to five example rows. Type coercion (parsing text times, reading naive
times in the shop's zone) happens on pandas input; the row rules (nulls, negative amounts,
unknown channels, duplicate ids, times after ``as_of``) run as Ibis expressions inside the
engine, so a Spark table or a warehouse table is checked where it lives and only the counts
and five example rows travel back.
"""
from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

import os
from collections import OrderedDict
from pathlib import Path

from .engine import DataLike, as_table, local_time, localize_frame, zoned
from .errors import DataError
from .schema import DEFAULT_TZ, TableSpec, spec

# Inputs that passed the row rules, so that a notebook calling ten functions on the same
# Parquet file or Ibis table scans it for validation once. Keys fingerprint the input (a
# file's path, size and modification time; an Ibis expression, which is immutable), so a
# changed file is checked again. Only successes are kept; results never depend on it.
_VALIDATED: OrderedDict = OrderedDict()
_CACHE_SIZE = 128


def clear_cache() -> None:
    """Forget which inputs have been validated (the next call checks every rule again)."""
    _VALIDATED.clear()


def _fingerprint(data, table: str, as_of, tz: str):
    if isinstance(data, (str, Path)):
        text = str(data)
        path = text.split("::", 1)[0]
        try:
            st = os.stat(path)
        except OSError:
            return None
        if os.path.isdir(path):  # a Parquet folder: its files' sizes and times
            parts = tuple(sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns)
                                 for f in Path(path).rglob("*.parquet")))
            return (table, text, parts, str(as_of), tz)
        return (table, text, st.st_size, st.st_mtime_ns, str(as_of), tz)
    if isinstance(data, ir.Table):
        try:
            return (table, data, str(as_of), tz)
        except TypeError:
            return None
    return None  # pandas frames can change in place: always checked

_KIND_OK = {
    "time": lambda t: t.is_timestamp() or t.is_date(),
    "number": lambda t: t.is_numeric(),
    "integer": lambda t: t.is_integer() or t.is_floating(),
    "bool": lambda t: t.is_boolean(),
    "string": lambda t: t.is_string(),
    "id": lambda t: t.is_string() or t.is_integer(),
}


def _examples(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    return df.loc[mask].head(5)


def _coerce_pandas(df: pd.DataFrame, s: TableSpec, tz: str) -> pd.DataFrame:
    """Parse text times and numbers, read naive times in ``tz``; raise on what cannot be parsed."""
    missing = [c for c in s.required if c not in df.columns]
    if missing:
        raise DataError(s.name, missing[0], f"missing required column(s) {missing}",
                        hint=f"columns present: {list(df.columns)}")
    out = df.copy()
    for col in s.columns:
        if col.name not in out.columns:
            continue
        ser = out[col.name]
        if col.kind == "time":
            if not pd.api.types.is_datetime64_any_dtype(ser):
                if pd.api.types.is_numeric_dtype(ser) and ser.notna().any():
                    raise DataError(s.name, col.name, "wrong type: expected a time, got numbers",
                                    int(ser.notna().sum()), _examples(df, ser.notna()))
                parsed = pd.to_datetime(ser, errors="coerce", format="mixed")
                bad = parsed.isna() & ser.notna()
                if bad.any():
                    raise DataError(s.name, col.name, "unparseable time", int(bad.sum()), _examples(df, bad))
                if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                    parsed = parsed.dt.tz_convert(tz)
                ser = parsed
            if not isinstance(ser.dtype, pd.DatetimeTZDtype):
                ser = zoned(ser, tz)
            out[col.name] = ser
        elif col.kind in ("number", "integer"):
            if not pd.api.types.is_numeric_dtype(ser) or pd.api.types.is_bool_dtype(ser):
                parsed = pd.to_numeric(ser, errors="coerce")
                bad = parsed.isna() & ser.notna()
                if bad.any():
                    raise DataError(s.name, col.name, f"wrong type: expected a {col.kind}",
                                    int(bad.sum()), _examples(df, bad))
                out[col.name] = parsed
        elif col.kind == "bool":
            if not pd.api.types.is_bool_dtype(ser):
                mapped = ser.map({True: True, False: False, 1: True, 0: False, "true": True,
                                  "false": False, "True": True, "False": False, "Y": True, "N": False})
                bad = mapped.isna() & ser.notna()
                if bad.any():
                    raise DataError(s.name, col.name, "wrong type: expected true/false",
                                    int(bad.sum()), _examples(df, bad))
                out[col.name] = mapped.astype("boolean") if mapped.isna().any() else mapped.astype(bool)
        elif col.kind in ("string",):
            if pd.api.types.is_numeric_dtype(ser) and ser.notna().any():
                raise DataError(s.name, col.name, "wrong type: expected text, got numbers",
                                int(ser.notna().sum()), _examples(df, ser.notna()))
    return localize_frame(out, tz)


def _check_types(t: ir.Table, s: TableSpec) -> None:
    schema = t.schema()
    missing = [c for c in s.required if c not in schema]
    if missing:
        raise DataError(s.name, missing[0], f"missing required column(s) {missing}",
                        hint=f"columns present: {list(schema.names)}")
    for col in s.columns:
        if col.name in schema and not schema[col.name].is_null():
            typ = schema[col.name]
            if not _KIND_OK[col.kind](typ):
                raise DataError(s.name, col.name, f"wrong type: expected {col.kind}, got {typ}",
                                hint="convert the column, or pass a pandas DataFrame to have text parsed")


def _duckdb_timezone(zone, ts):  # DuckDB's timezone(zone, timestamptz) -> local timestamp
    ...


def _local_times(t: ir.Table, s: TableSpec, tz: str) -> ir.Table:
    """Time columns that carry a zone (a UTC Parquet file, a DuckDB TIMESTAMPTZ column) become
    naive local times of ``tz`` inside the engine, as pandas input does, so periods are the
    shop's whatever the backend's session zone."""
    schema = t.schema()
    aware = [c.name for c in s.columns if c.kind == "time" and c.name in schema
             and schema[c.name].is_timestamp() and schema[c.name].timezone is not None]
    if not aware:
        return t
    try:
        backend = t.get_backend().name
    except Exception:  # noqa: BLE001 - an unbound expression has no backend
        backend = None
    if backend != "duckdb":
        col = aware[0]
        raise DataError(s.name, col, f"time column carries the zone {schema[col].timezone!r} on the "
                        f"{backend} backend; crmlab's engine works in the shop's local wall-clock time",
                        hint=f"convert it to naive local time of {tz} first (Spark: from_utc_timestamp)")
    conv = {}
    for col in aware:
        fn = ibis.udf.scalar.builtin(_duckdb_timezone, name="timezone",
                                     signature=((dt.string, schema[col]), dt.Timestamp()))
        conv[col] = fn(tz, t[col])
    return t.mutate(**conv)


def _fetch_examples(t: ir.Table, pred: ir.BooleanValue, tz: str) -> pd.DataFrame:
    from .engine import to_pandas
    return to_pandas(t.filter(pred).limit(5), tz)


def canonical(data: DataLike, table: str, *, as_of=None, tz: str = DEFAULT_TZ,
              validate: bool = True) -> ir.Table:
    """Return ``data`` as a validated Ibis table of the canonical ``table``.

    Parameters
    ----------
    data : DataFrame, path or Ibis table
    table : one of ``customers``, ``events``, ``orders``, ``messages``, ``assignments``
    as_of : time, optional
        When given, rows whose time column is after ``as_of`` (strictly; ``as_of`` itself is
        included) raise a DataError. Analysis
        functions that take ``as_of`` filter such rows themselves and report the count instead.
    tz : time zone in which naive times are read (default Asia/Seoul).
    validate : run the row rules (types are always checked).
    """
    s = spec(table)
    key = _fingerprint(data, table, as_of, tz) if validate else None
    if isinstance(data, pd.DataFrame):
        data = _coerce_pandas(data, s, tz)
    t = as_table(data, tz)
    _check_types(t, s)
    t = _local_times(t, s, tz)
    # Optional columns absent from the input are added as typed nulls, so downstream code
    # can rely on every canonical column existing.
    schema = t.schema()
    add = {}
    for col in s.columns:
        if col.name not in schema:
            typ = {"time": dt.Timestamp(), "number": dt.float64, "integer": dt.int64,
                   "bool": dt.boolean, "string": dt.string, "id": dt.string}[col.kind]
            add[col.name] = ibis.null(typ)
    if add:
        t = t.mutate(**add)
    if not validate:
        return t
    if key is not None:
        try:
            if key in _VALIDATED:
                _VALIDATED.move_to_end(key)
                return t
        except TypeError:  # an unhashable expression: validate without caching
            key = None
    _check_rows(t, s, as_of, tz)
    if key is not None:
        _VALIDATED[key] = True
        if len(_VALIDATED) > _CACHE_SIZE:
            _VALIDATED.popitem(last=False)
    return t


def _allowed(col) -> tuple[str, ...] | None:
    """A column's allowed values; the channel registry's (known plus shop.yaml-declared) for an open vocabulary."""
    if col.vocabulary == "channels":
        from .sources.channels import names
        return names()
    return col.allowed


def _check_rows(t: ir.Table, s: TableSpec, as_of, tz: str) -> None:
    rules: list[tuple[str, str, ir.BooleanValue]] = []
    schema = t.schema()
    for col in s.columns:
        c = t[col.name]
        if col.required:
            rules.append((col.name, "required value is missing (null)", c.isnull()))
        if col.nonnegative and col.name in schema and schema[col.name].is_numeric():
            rules.append((col.name, "negative value", c < 0))
        allowed = _allowed(col)
        if allowed:
            rules.append((col.name, f"unknown value; allowed: {', '.join(allowed)}",
                          c.notnull() & ~c.isin(list(allowed))))
    if as_of is not None and s.time_column:
        limit = ibis.literal(local_time(as_of, tz))
        rules.append((s.time_column, f"time after as_of {pd.Timestamp(as_of)}", t[s.time_column] > limit))
    aggs = {f"r{i}": p.ifelse(1, 0).sum() for i, (_, _, p) in enumerate(rules)}
    single_key = len(s.unique) == 1
    if single_key:
        # One scan answers every rule and the duplicate check: rows minus distinct ids.
        aggs["_rows"] = t.count()
        aggs["_distinct"] = t[s.unique[0]].nunique()
    counts = t.aggregate(**aggs).execute()
    for i, (col, rule, pred) in enumerate(rules):
        n = counts[f"r{i}"].iloc[0]
        if pd.notna(n) and n > 0:
            raise DataError(s.name, col, rule, int(n), _fetch_examples(t, pred, tz))
    if s.unique and (not single_key or counts["_rows"].iloc[0] > counts["_distinct"].iloc[0]):
        keys = list(s.unique)
        dup = t.group_by(keys).agg(_n=t.count()).filter(lambda g: g._n > 1)
        n_dup = dup.aggregate(rows=dup._n.sum()).execute()["rows"].iloc[0]
        if pd.notna(n_dup) and n_dup > 0:
            ex = t.semi_join(dup.select(keys).limit(5), keys).order_by(keys).limit(5)
            from .engine import to_pandas
            raise DataError(s.name, ", ".join(keys), "duplicate id", int(n_dup), to_pandas(ex, tz),
                            hint=f"{', '.join(keys)} must identify one row")
