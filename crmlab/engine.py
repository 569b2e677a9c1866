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


# ----------------------------------------------------------------------------- crmlab's own connection
_DEFAULT_CON = None


def duckdb_settings(memory_limit: str | None = None, threads: int | None = None,
                    temp_directory: str | None = None) -> dict[str, Any]:
    """The settings crmlab gives a DuckDB connection it creates itself.

    - ``memory_limit``: ``CRMLAB_MEMORY_LIMIT`` (a DuckDB size such as ``"8GB"``, or a share of
      the machine such as ``"60%"``), default 60% of physical RAM. DuckDB's own default is 80%,
      which leaves too little for pandas, the notebook kernel and the other processes of a run.
    - ``threads``: ``CRMLAB_THREADS``, default the number of cores.
    - ``temp_directory``: ``CRMLAB_TEMP_DIR``, default ``<system temp>/crmlab-duckdb-spill``, so an
      in-memory database spills big joins and sorts to disk instead of failing at the limit
      (DuckDB's default for an in-memory database is ``.tmp`` in the working directory, which may
      not be writable, e.g. a notebooks folder).
    - ``disabled_optimizers``: ``CRMLAB_DUCKDB_DISABLED_OPTIMIZERS`` (for example
      ``partitioned_execution``), default none. With ``partitioned_execution`` on, the plan of
      the ordered funnel reads the events 11 times instead of 4 (docs/scaling.md), but on
      DuckDB 2.0.1 turning it off made the 100M funnel only about 5% faster (53.6-54.7 s
      against 56.9 s) and 10M sessionisation 15% slower (32.1 s against 27.8 s), so DuckDB's
      default stays. Only crmlab's own connection is ever changed; a connection passed in is
      left as its owner configured it.
    """
    import os
    import tempfile
    limit = memory_limit or os.environ.get("CRMLAB_MEMORY_LIMIT") or "60%"
    if str(limit).strip().endswith("%"):
        try:
            import psutil
            total = psutil.virtual_memory().total
        except ImportError:  # pragma: no cover - psutil is a dependency of the report extras
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = f"{int(total * float(str(limit).strip()[:-1]) / 100 / 2**20)}MB"
    threads = int(threads or os.environ.get("CRMLAB_THREADS") or os.cpu_count() or 1)
    temp = temp_directory or os.environ.get("CRMLAB_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "crmlab-duckdb-spill")
    out: dict[str, Any] = {"memory_limit": limit, "threads": threads, "temp_directory": temp}
    disabled = os.environ.get("CRMLAB_DUCKDB_DISABLED_OPTIMIZERS", "").strip()
    if disabled:
        out["disabled_optimizers"] = disabled
    return out


def default_connection(database: str = ":memory:", *, read_only: bool = False, **settings):
    """crmlab's own DuckDB connection, with :func:`duckdb_settings` applied.

    Without arguments, one shared in-memory connection per process; it also becomes Ibis'
    default backend (what ``ibis.memtable`` runs on) unless the user has set one. Paths crmlab
    opens (:func:`read_path`) are read through it. A ``database`` path opens a new connection to
    that file with the same settings. Connections the user creates are never changed.
    """
    global _DEFAULT_CON
    shared = database == ":memory:" and not settings and not read_only
    if shared and _DEFAULT_CON is not None:
        return _DEFAULT_CON
    cfg = duckdb_settings(**settings)
    Path(cfg["temp_directory"]).mkdir(parents=True, exist_ok=True)
    con = ibis.duckdb.connect(database, read_only=read_only)
    raw = con.con
    for k, v in cfg.items():
        raw.execute(f"SET {k} = ?", [v]) if k != "threads" else raw.execute(f"SET threads = {int(v)}")
    if shared:
        _DEFAULT_CON = con
        if ibis.options.default_backend is None:
            ibis.options.default_backend = con
    return con


def read_path(path: str | Path) -> ir.Table:
    """Open a Parquet file or folder, a CSV file, or ``file.duckdb::table`` as an Ibis table
    (on crmlab's own connection, :func:`default_connection`)."""
    text = str(path)
    if "::" in text:
        db, tbl = text.split("::", 1)
        return default_connection(db, read_only=True).table(tbl)
    p = Path(text)
    if not p.exists():
        raise FileNotFoundError(f"data source not found: {p}")
    con = default_connection()
    if p.is_dir():
        return con.read_parquet(str(p / "**" / "*.parquet"))
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return con.read_parquet(str(p))
    if suffix in (".csv", ".tsv", ".txt") or p.name.endswith(".csv.gz"):
        return con.read_csv(str(p))
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
