"""Where the heavy aggregation runs: Ibis expressions on in-process DuckDB by default.

Every public crmlab function accepts a pandas DataFrame, a path (Parquet file, folder of
Parquet files, CSV file, or ``path/to/db.duckdb::table``) or an Ibis table of any backend,
and returns pandas. Aggregations are written once in Ibis, so the same code runs on DuckDB,
PySpark or a warehouse.

Times in the engine are *local wall-clock times of the shop's zone* (naive timestamps):
a tz-aware pandas column is converted to ``tz`` and its zone dropped before it reaches the
engine, so that day, week and month boundaries are the shop's on every backend, whatever the
backend's session time zone is. :func:`to_pandas` puts the zone back on the way out.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import ibis
import ibis.expr.types as ir
import pandas as pd

from .schema import DEFAULT_TZ

log = logging.getLogger("crmlab")

DataLike = Union[pd.DataFrame, str, Path, ir.Table]


def is_table(obj: Any) -> bool:
    return isinstance(obj, ir.Table)


def read_path(path: str | Path) -> ir.Table:
    """Open a Parquet file or folder, a CSV file, or ``file.duckdb::table`` as an Ibis table."""
    text = str(path)
    if "::" in text:
        db, tbl = text.split("::", 1)
        return ibis.duckdb.connect(db, read_only=True).table(tbl)
    p = Path(text)
    if not p.exists():
        raise FileNotFoundError(f"data source not found: {p}")
    if p.is_dir():
        return ibis.read_parquet(str(p / "**" / "*.parquet"))
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return ibis.read_parquet(str(p))
    if suffix in (".csv", ".tsv", ".txt") or p.name.endswith(".csv.gz"):
        return ibis.read_csv(str(p))
    raise ValueError(f"cannot read {p}: expected .parquet, a Parquet folder, .csv or file.duckdb::table")


def zoned(times: pd.Series, tz: str = DEFAULT_TZ) -> pd.Series:
    """Naive local times of ``tz`` as zone-aware times; no time is lost.

    Where a zone has daylight saving, a local time in the fall-back hour names two instants:
    the later one (standard time) is taken, so such a time may be an hour late; a local time in
    the spring-forward gap names none and moves forward to the first instant after the gap.
    Asia/Seoul has had no daylight saving since 1988, so neither case arises there.
    """
    return times.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")


def localize_frame(df: pd.DataFrame, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Engine form of a frame's times: tz-aware columns become naive local times of ``tz``
    (see module docstring), and every time column is floored to microseconds, the finest unit
    DuckDB and Spark timestamps hold (nanoseconds would make the engine refuse the column)."""
    out = None
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert(tz).dt.tz_localize(None)
        elif not pd.api.types.is_datetime64_dtype(s):
            continue
        if s.dtype != "datetime64[us]":
            s = s.dt.floor("us").astype("datetime64[us]")
        if s is not df[col]:
            out = df.copy() if out is None else out
            out[col] = s
    return df if out is None else out


def as_table(data: DataLike, tz: str = DEFAULT_TZ) -> ir.Table:
    """Any accepted input as an Ibis table (no validation; see :func:`crmlab.validate.canonical`)."""
    if is_table(data):
        return data
    if isinstance(data, pd.DataFrame):
        return ibis.memtable(localize_frame(data, tz))
    if isinstance(data, (str, Path)):
        return read_path(data)
    raise TypeError(f"expected a pandas DataFrame, a path or an Ibis table, got {type(data).__name__}")


def to_pandas(expr: ir.Expr, tz: str | None = DEFAULT_TZ) -> pd.DataFrame:
    """Execute ``expr`` on its backend and return pandas, with times back in ``tz``."""
    df = _fetch(expr)
    if isinstance(df, pd.Series):
        df = df.to_frame()
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            # Backends differ in resolution (DuckDB: us, Spark via Arrow: ns); one unit makes
            # results comparable across backends.
            df[col] = df[col].dt.as_unit("us")
            if tz is None:
                continue
            if isinstance(df[col].dtype, pd.DatetimeTZDtype):
                df[col] = df[col].dt.tz_convert(tz)
            else:
                df[col] = zoned(df[col], tz)
    return df


def _fetch(expr: ir.Expr):
    """Execute ``expr``; on DuckDB through Arrow.

    Ibis' DuckDB ``execute`` turns every column holding a null into Python objects before
    converting it back, which costs seconds per column on millions of rows; Arrow's own
    conversion followed by Ibis' dtype conversion gives the same frame. Other backends, scalar
    expressions and tables with nested columns use ``execute``."""
    if not isinstance(expr, ir.Table):
        return expr.execute()
    try:
        backend = expr._find_backend()
    except Exception:  # noqa: BLE001 - an unbound expression has no backend
        backend = None
    schema = expr.schema()
    if getattr(backend, "name", None) != "duckdb" or any(typ.is_nested() for typ in schema.types):
        return expr.execute()
    from ibis.backends.duckdb.converter import DuckDBPandasData
    return DuckDBPandasData.convert_table(expr.to_pyarrow().to_pandas(), schema)


def zoned_time(value: Any, tz: str = DEFAULT_TZ) -> pd.Timestamp:
    """A naive local time of ``tz`` (engine convention) as a zone-aware timestamp: the inverse
    of :func:`local_time`, by the rule of :func:`zoned` (never NaT, never an error)."""
    return pd.Timestamp(value).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")


def local_time(value: Any, tz: str = DEFAULT_TZ) -> pd.Timestamp | None:
    """A scalar time as a naive local timestamp of ``tz`` (engine convention)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts


def cut_as_of(t: ir.Table, col: str, as_of, tz: str = DEFAULT_TZ) -> tuple[ir.Table, int, pd.Timestamp | None]:
    """Rows of ``t`` up to ``as_of`` (inclusive), how many were later, and ``as_of`` as a
    naive local time (``None`` when no ``as_of`` was given: nothing is cut)."""
    if as_of is None:
        return t, 0, None
    limit = local_time(as_of, tz)
    n_after = int(t.filter(t[col] > ibis.literal(limit)).count().execute())
    return t.filter(t[col] <= ibis.literal(limit)), n_after, limit


def report_exclusions(result: pd.DataFrame, excluded: Mapping[str, int], what: str) -> pd.DataFrame:
    """Record rows a function left out: ``result.attrs['excluded']`` and a log line.

    Nothing is dropped silently: each reason is counted, even when the count is zero.
    """
    counts = {k: int(v) for k, v in excluded.items()}
    result.attrs["excluded"] = counts
    if any(counts.values()):
        log.info("%s excluded %s", what, ", ".join(f"{v:,} {k}" for k, v in counts.items() if v))
    return result
