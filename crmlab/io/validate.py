"""Validation of the canonical tables: one strict boundary.

Every rule raises :class:`crmlab.DataError` naming the table, the column, the rule, how many
rows break it and up to five example rows. What the boundary does, on every input (a pandas
frame, a file, a DuckDB, PostgreSQL or Spark table):

- **Times.** Text times must be ISO 8601 (``2026-01-05``, ``2026-01-05 10:00``,
  ``2026-01-05T10:00:00+09:00``) or match a declared ``date_format`` (``shop.yaml``'s
  ``date_format``, ``canonical(..., date_format="%d/%m/%Y")``); day/month text such as
  ``05/01/2026`` without one is *ambiguous* and raises. Times with a UTC offset are converted
  to the shop's zone (mixed ``+09:00`` / ``Z`` offsets in one column are fine), naive times are
  read in it. ``tz`` and ``as_of`` are checked first, with a ValueError naming the parameter.
- **Ids** are text: integer ids become their decimal text, and text ids are put in Unicode NFC
  with zero-width characters removed, so ``1`` matches ``"1"``, NFD Hangul matches NFC Hangul
  and ``"u1\\u200b"`` matches ``"u1"`` (on Spark only the zero-width characters: it has no NFC).
- **Values.** NaN is null (a NaN in a required column is a missing value, in an optional one a
  null); amounts must be finite and their sum too (no ``inf``, no overflow); amounts, costs,
  prices and item counts are not negative; on channels that report delivery a click implies a
  delivery (where the table reports deliveries at all).
- **Uniqueness** of ``order_id``, ``message_id``, ``user_id`` of customers and
  ``(experiment, user_id)``.

The row rules run as Ibis expressions inside the engine, one aggregate query per table: every
rule's count, the row count and the exact number of distinct keys (on DuckDB, of their 64-bit
hashes) in one scan, so a Spark or warehouse table is checked where it lives and only counts
travel back. Only when a rule fails does a second query fetch five example rows; only when
there are fewer distinct key hashes than rows does a group-by count the duplicate rows (a hash
collision then passes). An approximate distinct count cannot replace the exact one: it is
about 2 % off, so it never proves a table of millions of rows free of duplicates.

A call checks the columns it reads (``canonical(..., columns=[...])``): their rules, the
table's key and, with ``as_of``, its time column; the funnel reads 3 of the events' 11 columns,
and validating all of them cost it 0.6x its own query at 100M events (issue 16). The columns it
did not have checked are not handed back, so no call reads an unchecked column, and the cache
remembers which columns passed: a later call checks only the ones not checked before.

Validated inputs are remembered (see ``_VALIDATED``) by a version read without scanning any
row where one exists (a file's size and time; a DuckDB file's table by the database file and
its write-ahead log, which every committed write changes); otherwise by a hash of every row.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import OrderedDict
from typing import NamedTuple
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .trust import log_validation, trusted
from .engine import DataLike, as_table, check_tz, is_url, local_time, localize_frame, zoned
from .errors import DataError
from .schema import DEFAULT_TZ, TableSpec, spec

# Inputs that passed the row rules, so that a notebook calling ten functions on the same
# table scans it for validation once. Keys fingerprint the *content* without reading rows
# where the engine allows: a file's path, size and modification time (a ``.duckdb`` file's
# write-ahead log too); an Ibis expression over in-memory Arrow tables (immutable) and
# tables of DuckDB database files (the file and its WAL, which every committed write
# changes, and the table's catalog id, which a re-created table changes). Anything else (a
# memtable of a pandas frame, which can be edited in place, an in-memory DuckDB table, a view,
# another backend) has no such version: its key holds the row
# count and a hash of every row, computed within the validation's own scan on the first call
# and by a hashing scan on later ones (so rows inserted or updated after the first call are
# checked). Values are the fixes the check found (NaN cells to null, ids to normalise). Only
# successes are kept.
_VALIDATED: OrderedDict = OrderedDict()
_CACHE_SIZE = 128
# expression key -> the last content hash it validated with (those keyed by a hash of rows)
_HASHED: OrderedDict = OrderedDict()

#: Zero-width characters removed from ids (ZWSP, ZWNJ, ZWJ, word joiner, BOM).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_ZW_RE = "[" + ZERO_WIDTH + "]"

# ISO 8601 text: date, optional time (T or space), optional fraction, optional offset.
_ISO = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
_OFFSET = r"\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?\s*(Z|[+-]\d{2}(:?\d{2})?)\s*$"
# Day and month in some order before the year: 05/01/2026, 5.1.2026, 05-01-26.
_DAY_MONTH = r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}"


def clear_cache() -> None:
    """Forget which inputs have been validated (the next call checks every rule again)."""
    _VALIDATED.clear()
    _HASHED.clear()


def _stat(path: str):
    try:
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _path_key(data) -> tuple | None:
    text = str(data)
    path = text.split("::", 1)[0]
    st = _stat(path)
    if st is None:
        return None
    if os.path.isdir(path):  # a folder: its files' sizes and times
        parts = tuple(sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns)
                             for f in Path(path).rglob("*") if f.suffix.lower() in (".parquet", ".csv")))
        return (text, parts)
    return (text, st, _stat(path + ".wal"))  # a DuckDB file's pending writes sit in its WAL


def _fingerprint_aggs(t: ir.Table, s: TableSpec) -> dict | None:
    """Aggregates of the row count and an order-free hash of every row's canonical columns (a
    hash per row, XOR-ed): any inserted, deleted or changed row changes them. ``None`` where
    the backend cannot hash (then the input is validated every time)."""
    backend = _backend_name(t)
    if backend is None:
        return None
    cols = [c.name for c in s.columns if c.name in t.columns]
    try:
        hashes = []
        for c in cols:
            col = t[c]
            if backend == "duckdb":
                hashes.append(_duckdb_hash(col))
                continue
            hashes.append(col.cast("string").hash().fill_null(0))  # PostgreSQL hashes text only
        row = hashes[0]
        for h in hashes[1:]:
            row = row ^ h
        return {"_fp_n": t.count(), "_fp_h": row.bit_xor()}
    except Exception:  # noqa: BLE001 - no hash or bit_xor on this backend
        return None


def _fingerprint_of(res) -> tuple:
    return (int(res["_fp_n"]), None if pd.isna(res["_fp_h"]) else int(res["_fp_h"]))


def _content_fingerprint(t: ir.Table, s: TableSpec):
    """Row count and hash of every row (:func:`_fingerprint_aggs`) in one hashing scan, or None."""
    aggs = _fingerprint_aggs(t, s)
    if aggs is None:
        return None
    try:
        return _fingerprint_of(t.aggregate(**aggs).execute().iloc[0])
    except Exception:  # noqa: BLE001 - no hash or bit_xor on this backend
        return None


def _base_versions(t: ir.Table) -> tuple | None:
    """A version of every table the expression ``t`` reads, found without reading a row, or
    None when one of them has none (then the rows are hashed).

    - An in-memory table (``ibis.memtable``) of an Arrow table: Arrow data cannot change, so
      its name is its version. One of a pandas (or polars) frame has none: DuckDB reads the
      frame's own buffers, so an in-place edit of the frame shows in the next query.
    - A table of a DuckDB database file: the file's and its WAL's size and modification time
      (a committed write appends to the WAL, a checkpoint rewrites the file; DuckDB lets only
      one process write a file) and the table's catalog id (``CREATE OR REPLACE`` changes it).
    An in-memory DuckDB table has neither: DuckDB (2.0) exposes no version or commit counter
    that changes with its data (``duckdb_tables().estimated_size`` ignores deletes and
    updates; ``pragma_storage_info`` misses deletes), so its rows are hashed."""
    op = t.op()
    if op.find((ops.SQLQueryResult, ops.SQLStringView, ops.UnboundTable)):
        return None
    out = []
    for b in op.find(ops.PhysicalTable):
        if isinstance(b, ops.InMemoryTable):
            if not _immutable(b):
                return None
            out.append(("memtable", b.name))
        elif isinstance(b, ops.DatabaseTable):
            v = _duckdb_file_version(b)
            if v is None:
                return None
            out.append(v)
        else:
            return None
    return tuple(sorted(out, key=repr)) if out else None


def _immutable(b: ops.InMemoryTable) -> bool:
    from ibis.formats.pyarrow import PyArrowTableProxy
    return isinstance(b.data, PyArrowTableProxy)


def _duckdb_file_version(b: ops.DatabaseTable) -> tuple | None:
    """(path, catalog id, file stat, WAL stat) of a base table stored in a DuckDB file, else None."""
    con = b.source
    if getattr(con, "name", None) != "duckdb":
        return None
    ns = b.namespace
    try:
        rows = con.con.execute(
            "SELECT t.table_oid, d.path FROM duckdb_tables() t JOIN duckdb_databases() d USING (database_name) "
            "WHERE t.table_name = ? AND t.schema_name = coalesce(?, current_schema()) "
            "AND t.database_name = coalesce(?, current_database()) AND NOT t.temporary",
            [b.name, ns.database, ns.catalog]).fetchall()  # all: DuckDB 2.0 keeps a half-read result open
    except Exception:  # noqa: BLE001 - a closed connection, an older DuckDB: hash the rows
        return None
    row = rows[0] if len(rows) == 1 else None
    if row is None or not row[1] or row[1] == ":memory:":  # a view, a temporary or in-memory table
        return None
    path = str(row[1])
    st = _stat(path)
    if st is None:
        return None
    return ("duckdb", path, b.name, int(row[0]), st, _stat(path + ".wal"))


def _hash64(x):  # DuckDB's hash(x) -> UBIGINT
    ...


def _hash64_2(x, y):  # DuckDB's hash(x, y) -> UBIGINT, one hash of both values
    ...


def _key_hash(t: ir.Table, keys: list[str]) -> ir.IntegerValue:
    """DuckDB's 64-bit hash of a row's key (one or two columns)."""
    if len(keys) == 1:
        return _duckdb_hash(t[keys[0]])
    if len(keys) == 2:
        a, b = t[keys[0]], t[keys[1]]
        fn = ibis.udf.scalar.builtin(_hash64_2, name="hash", signature=((a.type(), b.type()), dt.uint64))
        return fn(a, b)
    raise NotImplementedError("keys of more than two columns")


def _duckdb_hash(col: ir.Value) -> ir.IntegerValue:
    """DuckDB's 64-bit ``hash`` as it is: Ibis' ``.hash()`` casts it through BIT to BIGINT,
    which triples the cost of hashing 10M rows."""
    fn = ibis.udf.scalar.builtin(_hash64, name="hash", signature=((col.type(),), dt.uint64))
    return fn(col)


_KIND_OK = {
    "time": lambda t: t.is_timestamp() or t.is_date() or t.is_string(),
    "number": lambda t: t.is_numeric(),
    "integer": lambda t: t.is_integer() or t.is_floating(),
    "bool": lambda t: t.is_boolean(),
    "string": lambda t: t.is_string(),
    "id": lambda t: t.is_string() or t.is_integer(),
}


def _examples(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    return df.loc[mask].head(5)


# --------------------------------------------------------------------------- pandas input
def _parse_times_pandas(df: pd.DataFrame, s: TableSpec, col: str, tz: str, date_format: str | None) -> pd.Series:
    """A text (or object) time column as zone-aware times of ``tz``, by the boundary's rule."""
    ser = df[col]
    present = ser.notna()
    is_text = ser.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=ser.index, dtype=f"datetime64[us, {tz}]")
    other = present & ~is_text  # datetime objects in an object column
    if other.any():
        parsed = pd.to_datetime(ser[other], errors="coerce", utc=True) if any(
            getattr(v, "tzinfo", None) is not None for v in ser[other]) else zoned(
            pd.to_datetime(ser[other], errors="coerce"), tz).dt.tz_convert("UTC")
        out[other] = parsed.dt.tz_convert(tz).dt.as_unit("us")
    if not is_text.any():
        bad = present & out.isna()
        if bad.any():
            raise DataError(s.name, col, "unparseable time", int(bad.sum()), _examples(df, bad))
        return out
    text = ser[is_text].astype(str)
    if date_format is not None:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        bad = pd.Series(False, index=ser.index)
        bad[is_text] = parsed.isna().to_numpy()
        if bad.any():
            raise DataError(s.name, col, f"time does not match date_format {date_format!r}", int(bad.sum()),
                            _examples(df, bad), hint="fix the rows, or declare the format the column uses")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert(tz)
        else:
            parsed = zoned(parsed, tz)
        out[is_text] = parsed.dt.as_unit("us")
        return out
    iso = text.str.match(_ISO)
    ambiguous = pd.Series(False, index=ser.index)
    ambiguous[is_text] = (~iso & text.str.match(_DAY_MONTH)).to_numpy()
    if ambiguous.any():
        raise DataError(s.name, col, "ambiguous time format: day and month order unknown", int(ambiguous.sum()),
                        _examples(df, ambiguous),
                        hint="declare the format: date_format='%d/%m/%Y' (day first) or '%m/%d/%Y' "
                             "(month first), in shop.yaml or as a parameter; ISO times (2026-01-05) need none")
    offset = text.str.contains(_OFFSET, regex=True) & iso
    naive = iso & ~offset
    norm = text.str.strip().str.replace(",", ".", regex=False)
    if naive.any():
        p = pd.to_datetime(norm[naive], format="ISO8601", errors="coerce")
        out[naive[naive].index] = zoned(p.dt.as_unit("us"), tz)
    if offset.any():
        p = pd.to_datetime(norm[offset], format="ISO8601", errors="coerce", utc=True)
        out[offset[offset].index] = p.dt.tz_convert(tz).dt.as_unit("us")
    bad = present & out.isna()
    if bad.any():
        raise DataError(s.name, col, "unparseable time", int(bad.sum()), _examples(df, bad),
                        hint="text times must be ISO 8601 (2026-01-05 10:00:00, with or without an offset) "
                             "or match a declared date_format")
    return out


def normalize_id(value):
    """An id as crmlab compares it: text in Unicode NFC without zero-width characters."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return value
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFC", re.sub(_ZW_RE, "", text))
    return text


def _ids_pandas(df: pd.DataFrame, s: TableSpec, col: str) -> pd.Series:
    ser = df[col]
    if pd.api.types.is_bool_dtype(ser):
        raise DataError(s.name, col, "wrong type: expected an id (text or integer), got true/false")
    if pd.api.types.is_float_dtype(ser):
        whole = ser.dropna()
        frac = (whole != np.floor(whole)) | np.isinf(whole)
        if frac.any():
            mask = ser.notna() & ((ser != np.floor(ser)) | np.isinf(ser))
            raise DataError(s.name, col, "wrong type: expected an id (text or integer), got fractional numbers",
                            int(mask.sum()), _examples(df, mask))
        ser = ser.astype("Int64")
    if pd.api.types.is_integer_dtype(ser):
        return ser.astype("string").astype(object).where(ser.notna(), None)
    values = ser.dropna().unique()
    mapping = {v: normalize_id(v) for v in values if not (isinstance(v, str) and v.isascii())}
    if not mapping:
        return ser
    return ser.map(lambda v: mapping.get(v, v), na_action="ignore")


def _coerce_pandas(df: pd.DataFrame, s: TableSpec, tz: str, date_format: str | None = None,
                   require: bool = True) -> pd.DataFrame:
    """Parse text times and numbers, read naive times in ``tz``, ids as text; raise on what cannot be parsed."""
    missing = [c for c in s.required if c not in df.columns]
    if missing and require:
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
                ser = _parse_times_pandas(df, s, col.name, tz, date_format)
            if not isinstance(ser.dtype, pd.DatetimeTZDtype):
                ser = zoned(ser, tz)
            out[col.name] = ser
        elif col.kind == "id":
            out[col.name] = _ids_pandas(df, s, col.name)
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


def parse_frame(df: pd.DataFrame, table: str, *, tz: str = DEFAULT_TZ, date_format: str | None = None) -> pd.DataFrame:
    """A pandas frame of ``table`` in the boundary's form, as pandas: times parsed (text by the
    ISO / ``date_format`` rule) and zone-aware in ``tz``, ids as normalised text. No row rules
    (see :func:`canonical`; required columns are not checked either)."""
    check_tz(tz)
    out = _coerce_pandas(df, spec(table), tz, date_format, require=False)
    for col in spec(table).columns:
        if col.kind == "time" and col.name in out.columns and pd.api.types.is_datetime64_dtype(out[col.name]):
            out[col.name] = zoned(out[col.name], tz)
    return out


# --------------------------------------------------------------------------- engine input
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


def _backend_name(t: ir.Table) -> str | None:
    try:
        return t._find_backend(use_default=True).name  # a memtable runs on the default (DuckDB)
    except Exception:  # noqa: BLE001 - an unbound expression has no backend
        return None


def _to_local(tz: str, value: ir.TimestampValue, typ) -> ir.TimestampValue:
    fn = ibis.udf.scalar.builtin(_duckdb_timezone, name="timezone", signature=((dt.string, typ), dt.Timestamp()))
    return fn(tz, value)


def _local_times(t: ir.Table, s: TableSpec, tz: str) -> ir.Table:
    """Time columns that carry a zone (a UTC Parquet file, a DuckDB TIMESTAMPTZ column) become
    naive local times of ``tz`` inside the engine, as pandas input does, so periods are the
    shop's whatever the backend's session zone."""
    schema = t.schema()
    aware = [c.name for c in s.columns if c.kind == "time" and c.name in schema
             and schema[c.name].is_timestamp() and schema[c.name].timezone is not None]
    if not aware:
        return t
    backend = _backend_name(t)
    if backend != "duckdb":
        col = aware[0]
        raise DataError(s.name, col, f"time column carries the zone {schema[col].timezone!r} on the "
                        f"{backend} backend; crmlab's engine works in the shop's local wall-clock time",
                        hint=f"convert it to naive local time of {tz} first (Spark: from_utc_timestamp)")
    return t.mutate(**{col: _to_local(tz, t[col], schema[col]) for col in aware})


def _try_strptime(value, fmt):  # DuckDB's try_strptime(text, format) -> timestamp
    ...


def _text_times(t: ir.Table, s: TableSpec, tz: str, date_format: str | None):
    """Text time columns parsed in the engine, by the rule of the pandas path. Returns the
    table and, per text column, the checks (rule, predicate on the *unparsed* table, hint)."""
    schema = t.schema()
    cols = [c.name for c in s.columns if c.kind == "time" and c.name in schema and schema[c.name].is_string()]
    if not cols:
        return t, []
    backend = _backend_name(t)
    parsed, checks = {}, []
    for col in cols:
        c = t[col]
        if date_format is not None:
            if backend == "duckdb":
                fn = ibis.udf.scalar.builtin(_try_strptime, name="try_strptime",
                                             signature=((dt.string, dt.string), dt.Timestamp()))
                p = fn(c, date_format)
            else:
                p = c.as_timestamp(date_format)
            parsed[col] = p
            checks.append((col, f"time does not match date_format {date_format!r}", c.notnull() & p.isnull(),
                           "fix the rows, or declare the format the column uses"))
            continue
        iso = c.re_search(_ISO)
        offset = iso & c.re_search(_OFFSET)
        checks.append((col, "ambiguous time format: day and month order unknown",
                       c.notnull() & ~iso & c.re_search(_DAY_MONTH),
                       "declare the format: date_format='%d/%m/%Y' (day first) or '%m/%d/%Y' (month first), "
                       "in shop.yaml or as a parameter; ISO times (2026-01-05) need none"))
        text = c.strip().replace(",", ".")
        if backend == "duckdb":
            naive = text.try_cast("timestamp")
            aware = _to_local(tz, text.try_cast(dt.Timestamp(timezone="UTC")), dt.Timestamp(timezone="UTC"))
            p = ibis.ifelse(offset, aware, ibis.ifelse(iso, naive, ibis.null(dt.Timestamp())))
        else:
            checks.append((col, f"time text carries a UTC offset, which the {backend} backend cannot convert",
                           offset, f"convert the column to naive local times of {tz} in the source"))
            p = ibis.ifelse(iso & ~offset, text.cast("timestamp"), ibis.null(dt.Timestamp()))
        parsed[col] = p
        checks.append((col, "unparseable time", c.notnull() & p.isnull(),
                       "text times must be ISO 8601 (2026-01-05 10:00:00, with or without an offset) "
                       "or match a declared date_format"))
    return t.mutate(**parsed), checks


def _run_checks(raw: ir.Table, checks, s: TableSpec, tz: str) -> None:
    if not checks:
        return
    counts = raw.aggregate(**{f"k{i}": p.ifelse(1, 0).sum() for i, (_, _, p, _) in enumerate(checks)}).execute()
    for i, (col, rule, pred, hint) in enumerate(checks):
        n = counts[f"k{i}"].iloc[0]
        if pd.notna(n) and n > 0:
            raise DataError(s.name, col, rule, int(n), _fetch_examples(raw, pred, tz), hint=hint)


def _nfc(x):  # DuckDB nfc_normalize / PostgreSQL normalize (NFC by default)
    ...


def _clean_id(col: ir.StringValue, backend: str | None) -> ir.StringValue:
    out = col.re_replace(_ZW_RE, "")
    if backend in ("duckdb", "postgres"):
        fn = ibis.udf.scalar.builtin(_nfc, name="nfc_normalize" if backend == "duckdb" else "normalize",
                                     signature=((dt.string,), dt.string))
        out = fn(out)
    return out


def _bytes(x):  # DuckDB strlen / PostgreSQL octet_length: length in bytes
    ...


def _needs_cleaning(col: ir.StringValue, backend: str | None) -> ir.BooleanValue:
    """Ids that NFC or zero-width removal would change. Only non-ASCII text can change (more
    bytes than characters), so the costly normalisation runs on those rows alone: on 10M
    ASCII ids 0.15 s instead of 2 s on DuckDB."""
    changed = col != _clean_id(col, backend)
    if backend in ("duckdb", "postgres"):
        fn = ibis.udf.scalar.builtin(_bytes, name="strlen" if backend == "duckdb" else "octet_length",
                                     signature=((dt.string,), dt.int64))
        return ibis.ifelse(fn(col) != col.length(), changed, False)
    return changed


def _fetch_examples(t: ir.Table, pred: ir.BooleanValue, tz: str) -> pd.DataFrame:
    from .engine import to_pandas
    return to_pandas(t.filter(pred).limit(5), tz)


def canonical(data: DataLike, table: str, *, as_of=None, tz: str = DEFAULT_TZ,
              validate: bool = True, date_format: str | None = None,
              columns: tuple[str, ...] | list[str] | None = None) -> ir.Table:
    """Return ``data`` as a validated Ibis table of the canonical ``table``.

    Parameters
    ----------
    data : DataFrame, path, connection URL, Ibis connection or table, PySpark session
        A path is a Parquet or CSV file (UTF-8, UTF-8 with BOM or CP949), a folder of Parquet
        files or of ``<table>.parquet`` / ``<table>.csv`` files, or ``file.duckdb[::table]``;
        a URL (``postgres://user@host/db``, ``duckdb:///shop.duckdb``), an Ibis connection or a
        Spark session is read at its table named ``table``.
    table : one of ``customers``, ``events``, ``orders``, ``messages``, ``assignments``
    as_of : time, optional
        When given, rows whose time column is after ``as_of`` (strictly; ``as_of`` itself is
        included) raise a DataError. Analysis
        functions that take ``as_of`` filter such rows themselves and report the count instead.
    tz : time zone in which naive times are read (default Asia/Seoul).
    validate : run the row rules (types are always checked).
    date_format : strptime format of text times that are not ISO 8601 (``"%d/%m/%Y"``).
    columns : the canonical columns the caller reads, optional
        Only their rules run, with the table's key (whose uniqueness every count of rows rests
        on) and, with ``as_of``, its time column; the other canonical columns are left out of
        the returned table, so a caller cannot read a column it did not have checked (columns
        that are not canonical pass through unchecked, as without ``columns``). A later call
        that reads more columns of the same input checks only those not checked before. The
        required columns must be present whatever ``columns`` says (a table without them is not
        the canonical table). Default: every column.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["o1", "o2"], "user_id": ["u1", "u1"],
    ...                        "time": ["2026-01-05", "2026-01-06"], "revenue": [100.0, -5.0]})
    >>> canonical(orders, "orders", columns=["user_id", "time"]).columns
    ('order_id', 'user_id', 'time')
    >>> canonical(orders, "orders")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crmlab.io.errors.DataError: table 'orders', column 'revenue': negative value (1 row)
    ...
    """
    check_tz(tz)
    limit = local_time(as_of, tz) if as_of is not None else None
    s = spec(table)
    wanted = _wanted_columns(s, columns, limit)
    key = None
    if validate and (isinstance(data, Path) or (isinstance(data, str) and not is_url(data))):
        pk = _path_key(data)
        key = None if pk is None else ("path", table, pk, str(limit), tz, date_format)
    if isinstance(data, pd.DataFrame):
        data = _coerce_pandas(data, s, tz, date_format)
    raw = as_table(data, tz, table)
    _check_types(raw, s)
    t, time_checks = _text_times(raw, s, tz, date_format)
    t = _local_times(t, s, tz)
    # ids are text (an integer id joins a text id of another table)
    schema = t.schema()
    as_text = {c.name: t[c.name].cast("string") for c in s.columns
               if c.kind == "id" and c.name in schema and not schema[c.name].is_string()}
    if as_text:
        t = t.mutate(**as_text)
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
        return _keep(t, s, wanted)
    if limit is None and trusted(t, s.name):  # a table of the run's validated snapshot: not scanned again
        return _keep(t, s, wanted)
    hashed = None  # the key of an input known only by a hash of its rows
    if key is None and isinstance(data, ir.Table):
        ver = _base_versions(raw)
        if ver is not None:
            key = ("table", table, data, ver, str(limit), tz, date_format)
        else:
            hashed = ("table", table, data, str(limit), tz, date_format)
            try:
                seen = hashed in _HASHED
            except TypeError:  # an unhashable expression: validate without caching
                hashed, seen = None, False
            if hashed is not None and (seen or _backend_name(raw) != "duckdb"):  # hash the rows to see whether they changed
                fp = _content_fingerprint(t, s)
                key = None if fp is None else hashed + (fp,)
                hashed = None
            # else: the first call hashes the rows within the validation's own scan (on DuckDB,
            # where the hash aggregates surely compile; elsewhere a failing hash costs no rules)
    done = _Checked(frozenset(), {"nan": [], "ids": []})
    if key is not None:
        try:
            done = _VALIDATED.get(key, done)
        except TypeError:  # an unhashable expression: validate without caching
            key, hashed = None, None
        if wanted <= done.columns:
            _VALIDATED.move_to_end(key)
            return _keep(_apply_fixes(t, done.fixes), s, wanted)
    todo = wanted - done.columns
    _run_checks(raw, [c for c in time_checks if c[0] in todo], s, tz)
    log_validation(s.name, sorted(todo))
    more = _fingerprint_aggs(t, s) if hashed is not None else None
    fixes = _check_rows(t, s, limit, tz, more, todo)
    got = fixes.pop("more", None)
    if hashed is not None and got is not None:
        key = hashed + (_fingerprint_of(got),)
        _HASHED[hashed] = key[-1]
        if len(_HASHED) > _CACHE_SIZE:
            _HASHED.popitem(last=False)
    done = _Checked(done.columns | todo, {k: sorted(set(done.fixes[k]) | set(fixes[k])) for k in ("nan", "ids")})
    if key is not None:
        _VALIDATED[key] = done
        if len(_VALIDATED) > _CACHE_SIZE:
            _VALIDATED.popitem(last=False)
    return _keep(_apply_fixes(t, done.fixes), s, wanted)


class _Checked(NamedTuple):
    """What the cache remembers of a validated input: the canonical columns whose rules passed
    (the key's uniqueness with its columns) and the fixes they need."""
    columns: frozenset
    fixes: dict


def _wanted_columns(s: TableSpec, columns, limit) -> frozenset:
    """The canonical columns a call has checked: ``columns`` (every one by default), the key,
    and the time column when rows after ``as_of`` are a rule."""
    names = [c.name for c in s.columns]
    if columns is None:
        return frozenset(names)
    if isinstance(columns, str):
        columns = [columns]
    wanted = {c for c in columns if c in names} | set(s.unique)
    if limit is not None and s.time_column:
        wanted.add(s.time_column)
    return frozenset(wanted)


def _keep(t: ir.Table, s: TableSpec, wanted: frozenset) -> ir.Table:
    """``t`` without the canonical columns a call did not have checked (all kept by default)."""
    drop = [c.name for c in s.columns if c.name not in wanted]
    return t.drop(*drop) if drop else t


def _allowed(col) -> tuple[str, ...] | None:
    """A column's allowed values; the channel registry's (known plus shop.yaml-declared) for an open vocabulary."""
    if col.vocabulary == "channels":
        from .sources.channels import names
        return names()
    return col.allowed


def _delivery_channels() -> tuple[str, ...]:
    """Registered channels that report delivery (a receipt): on them a click implies a delivery."""
    from .sources.channels import names, signals
    return tuple(n for n in names() if "delivery" in signals(n))


def _isnan(c: ir.FloatingValue, backend: str | None) -> ir.BooleanValue:
    """NaN test of a float column. On DuckDB through ``NULLIF``: DuckDB (2.0) folds ``isnan(x)``
    to false from Parquet statistics, which leave NaN out of min/max, so a plain ``isnan``
    misses the NaN cells of a Parquet file (issue 14)."""
    if backend == "duckdb":
        return c.nullif(ibis.literal(-1.7976931348623157e308)).isnan()
    return c.isnan()


def _apply_fixes(t: ir.Table, fixes: dict) -> ir.Table:
    """NaN cells of optional numbers become nulls; ids that need it are normalised."""
    backend = _backend_name(t)
    mut = {}
    for col in fixes.get("nan", ()):
        mut[col] = ibis.ifelse(_isnan(t[col], backend).fill_null(False), ibis.null(t[col].type()), t[col])
    for col in fixes.get("ids", ()):
        mut[col] = _clean_id(t[col], backend)
    return t.mutate(**mut) if mut else t


def _check_rows(t: ir.Table, s: TableSpec, limit, tz: str, more: dict | None = None,
                columns: frozenset | None = None) -> dict:
    """The row rules of ``columns`` (default every column), the row count and, when the key is
    among them, the distinct keys in one aggregate query; raises on the first broken rule.
    Returns the fixes the data need (optional columns holding NaN, id columns to normalise)
    and, under ``"more"``, the values of the extra aggregates ``more`` computed in the same
    scan (the content hash of :func:`_fingerprint_aggs`)."""
    rules: list[tuple[str, str, ir.BooleanValue]] = []
    schema = t.schema()
    backend = _backend_name(t)
    extra: dict[str, ir.Scalar] = {}
    columns = frozenset(c.name for c in s.columns) if columns is None else columns
    for col in s.columns:
        if col.name not in columns:
            continue
        c = t[col.name]
        typ = schema[col.name]
        floating = typ.is_floating()
        if col.required:
            missing = (c.isnull() | _isnan(c, backend).fill_null(False)) if floating else c.isnull()
            rules.append((col.name, "required value is missing (" + ("null or NaN" if floating else "null") + ")",
                          missing))
        elif floating:
            extra[f"nan:{col.name}"] = _isnan(c, backend).ifelse(1, 0).sum()
        if col.kind == "number" and floating:
            rules.append((col.name, "not a finite number (inf)", c.isinf()))
            extra[f"sum:{col.name}"] = ibis.ifelse(c.isinf() | _isnan(c, backend), 0.0, c).abs().sum()
        if col.nonnegative and typ.is_numeric():
            rules.append((col.name, "negative value", c < 0))
        allowed = _allowed(col)
        if allowed:
            rules.append((col.name, f"unknown value; allowed: {', '.join(allowed)}",
                          c.notnull() & ~c.isin(list(allowed))))
        if col.kind == "id" and typ.is_string():
            extra[f"id:{col.name}"] = _needs_cleaning(c, backend).ifelse(1, 0).sum()
    if s.name == "messages" and "clicked_time" in columns:
        delivery = list(_delivery_channels())
        extra["delivered"] = t.delivered_time.count()
        rules.append(("clicked_time", "clicked but not delivered (a click implies a delivery on channels "
                      "that report delivery)",
                      t.clicked_time.notnull() & t.delivered_time.isnull() & t.channel.isin(delivery)))
    if limit is not None and s.time_column in columns:
        rules.append((s.time_column, f"time after as_of {limit}", t[s.time_column] > ibis.literal(limit)))
    aggs = {f"r{i}": p.ifelse(1, 0).sum() for i, (_, _, p) in enumerate(rules)}
    names = {f"x{i}": k for i, k in enumerate(extra)}
    aggs.update({x: extra[k] for x, k in names.items()})
    aggs["_rows"] = t.count()
    keys = list(s.unique) if set(s.unique) <= columns else []
    distinct = _distinct_keys(t, keys, backend) if keys else None
    if distinct is not None:
        aggs["_distinct"] = distinct
    aggs.update(more or {})
    counts = t.aggregate(**aggs).execute().iloc[0]
    got = {k: counts[x] for x, k in names.items()}
    for i, (col, rule, pred) in enumerate(rules):
        n = counts[f"r{i}"]
        if col == "clicked_time" and s.name == "messages" and not got.get("delivered"):
            continue  # the table reports no delivery at all
        if pd.notna(n) and n > 0:
            raise DataError(s.name, col, rule, int(n), _fetch_examples(t, pred, tz))
    for k, v in got.items():
        if k.startswith("sum:") and pd.notna(v) and not np.isfinite(float(v)):
            col = k[4:]
            ex = t.order_by(t[col].abs().desc()).limit(5)
            from .engine import to_pandas
            raise DataError(s.name, col, "amounts overflow: their sum is not a finite number",
                            int(counts["_rows"]), to_pandas(ex, tz),
                            hint="amounts must be finite and of a plausible size (the largest rows are shown)")
    fixes = {"nan": [k[4:] for k, v in got.items() if k.startswith("nan:") and pd.notna(v) and v > 0],
             "ids": [k[3:] for k, v in got.items() if k.startswith("id:") and pd.notna(v) and v > 0]}
    if keys:
        rows = int(counts["_rows"])
        cleaned = [k for k in keys if k in fixes["ids"]]
        if cleaned:  # normalising ids can make two of them one: count the normalised ones
            _check_unique(_apply_fixes(t, {"ids": cleaned}), s, rows, backend, tz)
        elif distinct is None or int(counts["_distinct"]) != rows:
            _check_unique(t, s, rows, backend, tz, None if distinct is None else int(counts["_distinct"]))
    if more:
        fixes["more"] = {k: counts[k] for k in more}
    return fixes


def _distinct_keys(t: ir.Table, keys: list[str], backend: str | None) -> ir.Scalar | None:
    """The exact count of distinct keys as an aggregate of the rules' query, or None where the
    backend has no cheap form (a key of two columns off DuckDB: a group-by instead). On DuckDB
    of the keys' 64-bit hashes: as many as rows proves the keys distinct at a fraction of the
    cost of distinct text; fewer means duplicates or a hash collision (the group-by decides)."""
    if backend == "duckdb" and len(keys) <= 2:
        return _key_hash(t, keys).nunique()
    if len(keys) == 1:
        return t[keys[0]].nunique()
    return None


def _check_unique(t: ir.Table, s: TableSpec, rows: int, backend: str | None, tz: str,
                  distinct: int | None = None) -> None:
    """Raise on duplicate keys: their row count and five example rows (a group-by). ``distinct``
    is the distinct-key count already known (else counted here first, on DuckDB)."""
    keys = list(s.unique)
    if distinct is None and backend == "duckdb" and len(keys) <= 2:
        distinct = int(t.aggregate(_d=_key_hash(t, keys).nunique()).execute()["_d"].iloc[0])
    if distinct == rows:
        return
    dup = t.group_by(keys).agg(_n=t.count()).filter(lambda g: g._n > 1)
    n_dup = dup.aggregate(rows=dup._n.sum()).execute()["rows"].iloc[0]
    if pd.notna(n_dup) and n_dup > 0:
        ex = t.semi_join(dup.select(keys).limit(5), keys).order_by(keys).limit(5)
        from .engine import to_pandas
        raise DataError(s.name, ", ".join(keys), "duplicate id", int(n_dup), to_pandas(ex, tz),
                        hint=f"{', '.join(keys)} must identify one row")


def canonical_outcomes(outcomes: DataLike, cols, *, user: str = "user_id", tz: str = DEFAULT_TZ) -> ir.Table:
    """The per-user ``outcomes`` table of an experiment readout, checked at the boundary.

    Rules: ``user`` and the metric columns ``cols`` present; metrics are numbers or true/false
    (true/false count as 1/0; text such as ``"yes"``/``"no"`` raises, map it to 1/0 first);
    NaN is a missing value (counted as 0 like a user without a row); amounts finite; **one row
    per user** (several rows would be summed into impossible values, 11 conversions of 10
    users). ``user`` comes back as normalised text, like every id of the canonical tables.
    """
    check_tz(tz)
    if isinstance(outcomes, pd.DataFrame):
        df = outcomes
        if user in df.columns:
            df = df.assign(**{user: _ids_pandas(df, spec("orders"), user) if not pd.api.types.is_bool_dtype(df[user])
                              else df[user]})
        o = as_table(df, tz, "outcomes")
    else:
        o = as_table(outcomes, tz, "outcomes")
    schema = o.schema()
    if user not in schema:
        raise DataError("outcomes", user, "missing user column", hint=f"columns present: {list(schema.names)}")
    missing = [c for c in cols if c not in schema]
    if missing:
        raise DataError("outcomes", missing[0], f"missing metric column(s) {missing}",
                        hint=f"columns present: {list(schema.names)}")
    backend = _backend_name(o)
    for c in cols:
        typ = schema[c]
        if not (typ.is_numeric() or typ.is_boolean() or typ.is_null()):
            n = int(o[c].notnull().ifelse(1, 0).sum().execute() or 0)
            raise DataError("outcomes", c, f"wrong type: expected numbers or true/false, got {typ}", n,
                            _fetch_examples(o, o[c].notnull(), tz),
                            hint="map text outcomes to numbers first, e.g. 'yes'/'no' to 1/0")
    mut = {user: o[user].cast("string")}
    for c in cols:
        typ = schema[c]
        if typ.is_boolean():
            mut[c] = o[c].cast("int64").cast("float64")
        elif typ.is_floating():
            mut[c] = ibis.ifelse(_isnan(o[c], backend).fill_null(False), ibis.null(dt.float64), o[c])
    if schema[user].is_string():
        mut[user] = _clean_id(o[user], backend)
    o = o.mutate(**mut)
    aggs = {f"inf{i}": o[c].cast("float64").isinf().ifelse(1, 0).sum() for i, c in enumerate(cols)}
    aggs["_rows"] = o.count()
    aggs["_users"] = o[user].nunique()
    counts = o.aggregate(**aggs).execute().iloc[0]
    for i, c in enumerate(cols):
        n = counts[f"inf{i}"]
        if pd.notna(n) and n > 0:
            raise DataError("outcomes", c, "not a finite number (inf)", int(n),
                            _fetch_examples(o, o[c].cast("float64").isinf(), tz))
    if int(counts["_rows"]) > int(counts["_users"]):
        dup = o.group_by(user).agg(_n=o.count()).filter(lambda g: g._n > 1)
        n_dup = int(dup.aggregate(rows=dup._n.sum()).execute()["rows"].iloc[0])
        ex = o.semi_join(dup.select(user).limit(5), user).order_by(user).limit(5)
        from .engine import to_pandas
        raise DataError("outcomes", user, "one row per user: duplicate user rows", n_dup, to_pandas(ex, tz),
                        hint="aggregate the outcomes to one row per user first (sum, max, ...)")
    return o
