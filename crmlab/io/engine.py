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

import contextlib
import weakref

import logging
from collections.abc import Mapping
from functools import lru_cache
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


#: Prefixes of Ibis connection URLs accepted as a data source (``ibis.connect``): the same
#: Ibis code runs on each (see docs/data-model.md, "Live sources").
URL_SCHEMES = ("postgres://", "postgresql://", "duckdb://", "bigquery://", "snowflake://", "mysql://",
               "trino://", "clickhouse://", "pyspark://")


def is_url(obj: Any) -> bool:
    return isinstance(obj, str) and obj.lower().startswith(URL_SCHEMES)


def _is_connection(obj: Any) -> bool:
    """An Ibis backend (connection) or a PySpark session."""
    from ibis.backends import BaseBackend
    if isinstance(obj, BaseBackend):
        return True
    return type(obj).__name__ == "SparkSession"


def connect(source: Any):
    """An Ibis connection for a URL (``postgres://user@host/db``, ``duckdb:///path.duckdb``,
    ``bigquery://project/dataset``, ``snowflake://user@account/db/schema``), an Ibis backend
    (returned as it is) or a PySpark session."""
    from ibis.backends import BaseBackend
    if isinstance(source, BaseBackend):
        return source
    if type(source).__name__ == "SparkSession":
        return ibis.pyspark.connect(source)
    if isinstance(source, str) and source.lower().startswith("pyspark://"):  # crmlab's spelling: crmlab.io.spark
        from . import spark
        return spark.connection(source)
    if is_url(source):
        try:
            return ibis.connect(source)
        except Exception as exc:  # noqa: BLE001 - a driver's error, said in one line
            raise ValueError(f"cannot connect to data source {_redact(source)}: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
    raise TypeError(f"expected a connection URL, an Ibis connection or a Spark session, got {type(source).__name__}")


#: Query parameters of a connection URL whose values are secrets.
SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "key",
                     "private_key", "credentials")


def redact(url: str) -> str:
    """A URL without its secrets (the password of ``user:password@``, and the values of query
    parameters such as ``?password=`` or ``?token=``), for messages and published files."""
    import re
    text = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(url))
    keys = "|".join(SECRET_QUERY_KEYS)
    return re.sub(rf"([?&](?:{keys})=)[^&#]*", r"\1***", text, flags=re.IGNORECASE)


_redact = redact


def list_tables(con) -> list[str]:
    """The tables of a connection (on DuckDB from its catalogue: ibis 12's ``list_tables``
    calls an Arrow method DuckDB 2 no longer has)."""
    if con.name == "duckdb":
        return [r[0] for r in con.con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    return list(con.list_tables())


def _table_of(con, name: str, where: str) -> ir.Table:
    try:
        present = list_tables(con)
    except Exception:  # noqa: BLE001 - some backends cannot list: try the table itself
        present = None
    if present is not None and name not in present:
        raise FileNotFoundError(f"{where} has no table '{name}'; tables present: {sorted(present)[:20]}")
    return con.table(name)


def _duckdb_file(db: str) -> Any:
    if not Path(db).exists():
        raise FileNotFoundError(f"DuckDB file not found: {db}")
    try:
        return default_connection(db, read_only=True)
    except Exception as exc:  # noqa: BLE001 - not a DuckDB file, or locked by a writer
        raise ValueError(f"cannot open {db} as a DuckDB database: {str(exc).splitlines()[0]}") from None


#: Encodings tried, in order, for CSV files: UTF-8 (a byte-order mark is dropped), then CP949
#: (the Korean Windows code page, a superset of EUC-KR, in which Korean tools export CSV).
CSV_ENCODINGS = ("utf-8", "cp949")


def csv_encoding(path: str | Path, sample_bytes: int = 1 << 20) -> str:
    """The encoding of a CSV file: ``utf-8``, ``utf-8-sig`` (with a byte-order mark) or ``cp949``;
    a file that is none of them raises ValueError naming the file."""
    with open(path, "rb") as f:
        head = f.read(sample_bytes)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"{path}: the CSV is UTF-16; save it as UTF-8 (or CP949)")
    for enc in CSV_ENCODINGS:
        try:
            head.decode(enc)
            return enc
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # a character cut by the sample's end
                return enc
    raise ValueError(f"{path}: the CSV is neither UTF-8 nor CP949 (EUC-KR); re-save it as UTF-8")


_TRANSCODED: dict[tuple, str] = {}


def read_csv(path: str | Path) -> ir.Table:
    """A CSV file as an Ibis table on DuckDB, its encoding detected (:func:`csv_encoding`); a
    CP949 file is transcoded to a UTF-8 copy beside the system's temp files first."""
    enc = csv_encoding(path)
    if enc == "cp949":
        import os
        import tempfile
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        tmp = _TRANSCODED.get(key)
        if tmp is None or not os.path.exists(tmp):  # one UTF-8 copy per version of the file
            fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="crmlab-utf8-")
            with open(path, encoding="cp949", newline="") as src, open(fd, "w", encoding="utf-8", newline="") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            _TRANSCODED[key] = tmp
        path = tmp
    t = default_connection().read_csv(str(path))
    bom = [c for c in t.columns if c.startswith("\ufeff")]
    if bom:
        t = t.rename({c.lstrip("\ufeff"): c for c in bom})
    return t


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
      ``partitioned_execution``), default none, for every query on crmlab's connection. The
      funnel turns ``partitioned_execution`` off around its own queries only
      (:func:`optimizers_off`; docs/scaling.md has the measurements). Only crmlab's own
      connection is ever changed; a connection passed in is
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


#: id -> every DuckDB connection crmlab created, held weakly: a closed file connection must go
#: away (DuckDB refuses a second connection to a file still open with other settings), and its
#: entry with it, so a reused id never names a dead connection
_OWN: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()


@contextlib.contextmanager
def optimizers_off(expr: Any, *optimizers: str):
    """Execute ``expr`` inside this block with DuckDB ``optimizers`` disabled, when it runs on a
    connection crmlab created (:func:`default_connection`); a user's own connection, and other
    backends, are left exactly as they are. The previous ``disabled_optimizers`` setting
    (``CRMLAB_DUCKDB_DISABLED_OPTIMIZERS``, or none) is restored on leaving.

    Why it exists: DuckDB 2.0's ``partitioned_execution`` rewrites the funnel's step joins so
    that the 100M-event plan reads the events 11 times instead of 4; with it off the 100M funnel
    takes 11.4 s instead of 24.6 s warm (SQL 10.4 s), and 10M is unchanged (docs/scaling.md)."""
    try:
        con = expr._find_backend() if isinstance(expr, ir.Expr) else None
    except Exception:  # noqa: BLE001 - an expression without one backend: nothing to switch
        con = None
    if con is None or _OWN.get(id(con)) is not con:
        yield
        return
    raw = con.con
    before = raw.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0] or ""
    names = [n for n in before.split(",") if n.strip()] + [o for o in optimizers if o not in before]
    raw.execute("SET disabled_optimizers = ?", [",".join(names)]).fetchall()
    try:
        yield
    finally:
        raw.execute("SET disabled_optimizers = ?", [before]).fetchall()


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
    _OWN[id(con)] = con
    if shared:
        _DEFAULT_CON = con
        if ibis.options.default_backend is None:
            ibis.options.default_backend = con
    return con


def read_path(path: str | Path, table: str | None = None) -> ir.Table:
    """Open a Parquet file or folder, a CSV file or folder of CSVs, or ``file.duckdb::table``
    (``file.duckdb`` alone when ``table`` names the table) as an Ibis table."""
    text = str(path)
    if "::" in text:
        db, tbl = text.split("::", 1)
        return _table_of(_duckdb_file(db), tbl, db)
    p = Path(text)
    if not p.exists():
        raise FileNotFoundError(f"data source not found: {p}")
    con = default_connection()
    if p.is_dir():
        if table is not None:
            for suffix in (".parquet", ".csv"):
                if (p / f"{table}{suffix}").exists():
                    return read_path(p / f"{table}{suffix}")
            from .schema import TABLES
            others = [n for n in TABLES if n != table and any((p / f"{n}{x}").exists() for x in (".parquet", ".csv"))]
            if others:
                raise FileNotFoundError(f"folder {p} holds no {table}.parquet or {table}.csv "
                                        f"(it holds the tables {others})")
        if next(p.rglob("*.parquet"), None) is not None:
            return con.read_parquet(str(p / "**" / "*.parquet"))
        csvs = sorted(p.glob("*.csv"))
        if csvs:
            if len(csvs) == 1:
                return read_csv(csvs[0])
            return ibis.union(*[read_csv(f) for f in csvs])
        raise FileNotFoundError(f"folder {p} holds no Parquet or CSV files"
                                + (f" (expected {table}.parquet or {table}.csv)" if table else ""))
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return con.read_parquet(str(p))
    if suffix in (".csv", ".tsv", ".txt") or p.name.endswith(".csv.gz"):
        return read_csv(p) if suffix == ".csv" else con.read_csv(str(p))
    if suffix in (".duckdb", ".db", ".ddb"):
        if table is None:
            raise ValueError(f"{p} is a DuckDB file: name the table, {p}::orders")
        return _table_of(_duckdb_file(text), table, text)
    raise ValueError(f"cannot read {p}: expected .parquet, a Parquet or CSV folder, .csv, .duckdb or file.duckdb::table")


def open_source(source: Any, tables) -> dict[str, ir.Table]:
    """The canonical tables ``tables`` a source holds, as Ibis tables (those it lacks are left
    out): a folder of ``<table>.parquet`` / ``<table>.csv`` files, a ``.duckdb`` file, a
    connection URL, an Ibis connection or a PySpark session. Nothing is read into memory."""
    if isinstance(source, str) and source.lower().startswith("pyspark://"):
        from . import spark
        return spark.open_tables(source, tables)
    if is_url(source) or _is_connection(source):
        con = connect(source)
        present = set(list_tables(con))
        return {n: con.table(n) for n in tables if n in present}
    p = Path(str(source))
    if not p.exists():
        raise FileNotFoundError(f"data source not found: {p}")
    if p.is_dir():
        out = {}
        for n in tables:
            for suffix in (".parquet", ".csv"):
                if (p / f"{n}{suffix}").exists():
                    out[n] = read_path(p / f"{n}{suffix}")
                    break
        if not out:
            found = sorted(f.name for f in p.iterdir())[:10]
            raise FileNotFoundError(f"folder {p} holds none of the tables {list(tables)} as <table>.parquet or "
                                    f"<table>.csv; it holds {found}")
        return out
    con = _duckdb_file(str(p))
    present = set(list_tables(con))
    out = {n: con.table(n) for n in tables if n in present}
    if not out:
        raise FileNotFoundError(f"{p} holds none of the tables {list(tables)}; tables present: {sorted(present)[:20]}")
    return out


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


def as_table(data: DataLike, tz: str = DEFAULT_TZ, table: str | None = None) -> ir.Table:
    """Any accepted input as an Ibis table (no validation; see :func:`crmlab.io.validate.canonical`).

    A connection URL, an Ibis connection, a PySpark session, a ``.duckdb`` file or a folder of
    ``<table>.parquet`` / ``<table>.csv`` files are accepted when ``table`` names the table."""
    if is_table(data):
        return data
    if isinstance(data, pd.DataFrame):
        return ibis.memtable(localize_frame(data, tz))
    if is_url(data) or _is_connection(data):
        if table is None:
            raise ValueError("a connection is a data source of several tables: name the table")
        if isinstance(data, str) and data.lower().startswith("pyspark://"):
            from . import spark
            return spark.table(data, table)
        return _table_of(connect(data), table, _redact(data) if isinstance(data, str) else type(data).__name__)
    if isinstance(data, (str, Path)):
        return read_path(data, table)
    raise TypeError(f"expected a pandas DataFrame, a path, a connection URL or an Ibis table, got {type(data).__name__}")


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


def check_tz(tz: Any, name: str = "tz") -> str:
    """``tz`` if it names a time zone (IANA, such as ``Asia/Seoul``), else a ValueError naming it."""
    if not isinstance(tz, str) or not _known_zone(tz):
        import difflib
        import zoneinfo
        near = difflib.get_close_matches(str(tz), sorted(zoneinfo.available_timezones()), n=3)
        raise ValueError(f"{name}={tz!r} is not a known time zone; give an IANA name such as 'Asia/Seoul'"
                         + (f" (did you mean {', '.join(repr(z) for z in near)}?)" if near else ""))
    return tz


@lru_cache(maxsize=64)
def _known_zone(tz: str) -> bool:
    try:
        pd.Timestamp("2026-01-01").tz_localize(tz)
        return True
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, pytz's UnknownTimeZoneError, ...
        return False


def parse_time(value: Any, name: str = "as_of") -> pd.Timestamp:
    """A user's scalar time (``as_of`` and the like) as a Timestamp, or a ValueError naming it."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a time; give an ISO time such as '2026-01-31 23:59:59' "
                         f"or a pandas Timestamp ({exc})") from None
    if ts is pd.NaT:
        raise ValueError(f"{name}={value!r} is not a time (NaT)")
    return ts


def local_time(value: Any, tz: str = DEFAULT_TZ, name: str = "as_of") -> pd.Timestamp | None:
    """A scalar time as a naive local timestamp of ``tz`` (engine convention); an unparseable
    value or an unknown ``tz`` raises ValueError naming the parameter."""
    if value is None:
        return None
    check_tz(tz, name="tz")
    ts = parse_time(value, name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts


def interval(td: pd.Timedelta):
    """``td`` as an Ibis interval literal, the one interval rule of the engine: whole seconds
    when ``td`` is a whole number of seconds, else milliseconds (rounded), units DuckDB, Spark
    and PostgreSQL all add to a timestamp."""
    us = int(pd.Timedelta(td) / pd.Timedelta(microseconds=1))
    if us % 1_000_000 == 0:
        return ibis.interval(seconds=us // 1_000_000)
    return ibis.interval(milliseconds=round(us / 1000))


def cut_as_of(t: ir.Table, col: str, as_of, tz: str = DEFAULT_TZ) -> tuple[ir.Table, int, pd.Timestamp | None]:
    """Rows of ``t`` up to ``as_of`` (inclusive), how many were later, and ``as_of`` as a
    naive local time (``None`` when no ``as_of`` was given: nothing is cut)."""
    if as_of is None:
        return t, 0, None
    limit = local_time(as_of, tz)
    n_after = int(t.filter(t[col] > ibis.literal(limit)).count().execute())
    return t.filter(t[col] <= ibis.literal(limit)), n_after, limit


#: snake_case reason codes of the exclusions ledger, beside the human phrases functions report
#: (a phrase missing here gets its code by :func:`reason_code`'s rule).
REASON_CODES: dict[str, str] = {
    "events after as_of": "after_as_of",
    "orders after as_of": "after_as_of",
    "messages sent after as_of": "after_as_of",
    "assignments after as_of": "after_as_of",
    "rows after as_of": "after_as_of",
    "assignments whose window ends after as_of": "window_incomplete",
    "customers with unfinished window": "window_incomplete",
    "outcome rows of users not assigned": "not_assigned",
    "null user": "null_user",
}


def reason_code(phrase: str) -> str:
    """The snake_case code of an exclusion phrase: :data:`REASON_CODES`, else the phrase's words
    joined by ``_`` (``"messages without anchor time (undelivered)"`` ->
    ``"messages_without_anchor_time_undelivered"``)."""
    import re
    if phrase in REASON_CODES:
        return REASON_CODES[phrase]
    return re.sub(r"[^0-9a-z]+", "_", phrase.lower()).strip("_") or "excluded"


class Exclusions(dict):
    """The exclusions ledger of one result: ``{phrase: count}`` (a plain dict to compare and
    print), and the same counts by snake_case reason code: ``.codes`` (``{code: count}``, codes
    shared by several phrases are summed), ``.ledger()`` (a frame ``code, reason, n``), and
    ``ex["after_as_of"]`` looks a code up as well as a phrase."""

    @property
    def codes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for phrase, n in self.items():
            code = reason_code(phrase)
            out[code] = out.get(code, 0) + int(n)
        return out

    def ledger(self) -> pd.DataFrame:
        return pd.DataFrame([{"code": reason_code(k), "reason": k, "n": int(v)} for k, v in self.items()],
                            columns=["code", "reason", "n"])

    def __missing__(self, key):
        codes = self.codes
        if key in codes:
            return codes[key]
        raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self.codes


def report_exclusions(result: pd.DataFrame, excluded: Mapping[str, int], what: str) -> pd.DataFrame:
    """Record rows a function left out: ``result.attrs['excluded']`` (an :class:`Exclusions`
    ledger: counts by phrase and by snake_case reason code) and a log line.

    Nothing is dropped silently: each reason is counted, even when the count is zero.
    """
    counts = Exclusions({k: int(v) for k, v in excluded.items()})
    result.attrs["excluded"] = counts
    if any(counts.values()):
        log.info("%s excluded %s", what, ", ".join(f"{v:,} {k} [{reason_code(k)}]" for k, v in counts.items() if v))
    return result
