"""PySpark sources: the ``pyspark:`` URL, the session it builds, and what a Spark table's content is.

A scheduled run cannot hand the command line a live ``SparkSession``, so a Spark source is
spelled as a URL (what :func:`crmlab.io.engine.connect` and ``--source`` take)::

    pyspark:///data/shop            <table>.parquet under /data/shop (a file, or a folder of part
                                    files as Spark writes them), read by Spark
    pyspark://crm                   tables orders, messages, ... of the catalog database ``crm``
                                    (Hive metastore, Glue, Unity: whatever the session's catalog is)
    pyspark://                      the same, in the catalog's current database
    pyspark:///data/shop?master=local[4]&spark.driver.memory=4g
                                    query parameters are Spark settings; ``master`` is the master URL

The session is ``SparkSession.builder.getOrCreate()``: an active session of the process is
reused (its settings stand, see ``getOrCreate``); otherwise PySpark launches one through
``spark-submit``, which reads ``$SPARK_CONF_DIR/spark-defaults.conf`` (or
``$SPARK_HOME/conf``). The master is, in this order: the URL's ``master``, the environment's
``CRMLAB_SPARK_MASTER``, ``spark.master`` of ``spark-defaults.conf``, Spark's default
``local[*]``. Every process of a report run (the command line and each notebook kernel) builds
its own session from the same URL: a Spark session cannot be shared between processes.

Content, not identity, decides whether a table is still the one a run validated:
:func:`fingerprint` hashes the files Spark reads for it (``DataFrame.inputFiles()``) with each
file's size and modification time from Hadoop's ``FileSystem`` (so HDFS, S3 and local files
alike). A table Spark reads from no file (a view over in-memory rows, a JDBC table) has no
fingerprint and is never trusted: it is validated where it is used.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

import ibis.expr.types as ir

SCHEME = "pyspark://"
#: Environment variable naming the Spark master when the URL does not (``local[2]``, ``yarn``,
#: ``spark://host:7077``, ``k8s://...``).
MASTER_ENV = "CRMLAB_SPARK_MASTER"
#: Settings crmlab gives a session it launches, unless the URL or spark-defaults.conf say otherwise
#: (a report run's stderr is a log, not a console: no progress bars).
DEFAULTS = {"spark.ui.showConsoleProgress": "false", "spark.app.name": "crmlab"}

_CONNECTIONS: dict[str, Any] = {}  # URL -> Ibis pyspark backend of this process
_LAUNCHED: set[int] = set()  # ids of the sessions crmlab launched (not the user's)


def is_spark_url(obj: Any) -> bool:
    return isinstance(obj, str) and obj.lower().startswith(SCHEME)


class SparkSource:
    """A parsed ``pyspark:`` URL: a Parquet ``folder`` or a catalog ``database`` (or neither: the
    current database), and the Spark ``conf`` its query names (``master`` among them)."""

    def __init__(self, url: str):
        if not is_spark_url(url):
            raise ValueError(f"{url!r} is not a pyspark:// URL")
        parts = urlsplit(url)
        self.url = url
        self.database = unquote(parts.netloc) or None
        self.folder = Path(unquote(parts.path)) if parts.path not in ("", "/") else None
        if self.database and self.folder:
            raise ValueError(f"{url}: name a catalog database (pyspark://crm) or a Parquet folder "
                             "(pyspark:///data/shop), not both")
        self.conf = dict(parse_qsl(parts.query, keep_blank_values=False))
        if self.folder is not None and not self.folder.is_dir():
            raise FileNotFoundError(f"data source not found: {url} names the folder {self.folder}, which does not exist")

    def where(self) -> str:
        if self.folder is not None:
            return f"folder {self.folder} (read by Spark)"
        return f"Spark catalog database {self.database!r}" if self.database else "the Spark catalog's current database"


def session(conf: dict[str, str] | None = None):
    """The process's Spark session, launched with ``conf`` (see the module docstring for the master)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ValueError("a pyspark:// source needs PySpark: pip install 'crmlab[spark]' (and a Java runtime)") from None
    conf = dict(conf or {})
    master = conf.pop("master", None) or os.environ.get(MASTER_ENV)
    active = SparkSession.getActiveSession()
    builder = SparkSession.builder
    if active is None:  # defaults only for a session crmlab launches; a running one keeps its own
        for k, v in DEFAULTS.items():
            builder = builder.config(k, v)
        if master:
            builder = builder.master(master)
    for k, v in conf.items():
        builder = builder.config(k, v)
    s = builder.getOrCreate()
    if active is None:
        _LAUNCHED.add(id(s))
    return s


def connection(url: str):
    """The Ibis pyspark backend of ``url`` in this process (one per URL, its session shared)."""
    con = _CONNECTIONS.get(url)
    if con is not None and not _stopped(con):
        return con
    import ibis
    src = SparkSource(url)
    try:
        con = ibis.pyspark.connect(session(src.conf))
    except ValueError:  # PySpark missing: already one line
        raise
    except Exception as exc:  # noqa: BLE001 - Java missing, master unreachable: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"cannot start a Spark session for {url}: {type(exc).__name__}: {first}") from None
    _CONNECTIONS[url] = con
    return con


def _stopped(con) -> bool:
    sc = getattr(con._session, "sparkContext", None)
    return sc is not None and getattr(sc, "_jsc", None) is None


def release() -> bool:
    """Stop the Spark sessions crmlab launched in this process and end their JVM; a session the
    user started (active before crmlab asked) is left running. True if a JVM was ended.

    The report command calls this once its validation and preflight are done: the notebooks'
    kernels run their own sessions, and the command's idle JVM held 0.6 GiB at 1M events."""
    mine = [u for u, c in _CONNECTIONS.items() if id(c._session) in _LAUNCHED]
    if not mine:
        return False
    for u in mine:
        con = _CONNECTIONS.pop(u)
        _LAUNCHED.discard(id(con._session))
        con._session.stop()
    from pyspark import SparkContext
    gateway = SparkContext._gateway
    if gateway is None or SparkContext._active_spark_context is not None:
        return False
    # PySpark has no public call for this: the JVM PySpark launched exits when its stdin closes
    # (pyspark.java_gateway.launch_gateway); the next session launches a new one.
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None
    if proc is not None and proc.stdin is not None:
        proc.stdin.close()
        proc.wait(timeout=60)
    return True


def url_key(url: str) -> str:
    """A short hash of a source URL, for the names of the session's temporary views."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def _parquet_path(folder: Path, name: str) -> Path | None:
    for cand in (folder / f"{name}.parquet", folder / name):
        if cand.is_file() or (cand.is_dir() and next(cand.rglob("*.parquet"), None) is not None):
            return cand
    return None


def open_tables(url: str, tables: Iterable[str]) -> dict[str, ir.Table]:
    """The tables ``tables`` that the source holds, as Ibis tables on Spark (nothing is read).

    A Parquet folder's table ``orders`` is ``orders.parquet`` (or ``orders/``), registered as
    the temporary view ``crmlab_src_orders_<hash of the URL>`` (temporary views belong to the
    session, which every URL of the process shares: two folders must not swap views); a
    catalog table is the database's ``orders``."""
    src = SparkSource(url)
    con = connection(url)
    out: dict[str, ir.Table] = {}
    if src.folder is not None:
        key = url_key(url)
        for n in tables:
            p = _parquet_path(src.folder, n)
            if p is not None:
                con._session.read.parquet(str(p.resolve())).createOrReplaceTempView(f"crmlab_src_{n}_{key}")
                out[n] = con.table(f"crmlab_src_{n}_{key}")
        return out
    present = set(con.list_tables(database=src.database) if src.database else con.list_tables())
    for n in tables:
        if n in present:
            out[n] = con.table(n, database=src.database) if src.database else con.table(n)
    return out


def table(url: str, name: str) -> ir.Table:
    """One table of the source, or FileNotFoundError naming what the source holds."""
    found = open_tables(url, [name])
    if name not in found:
        raise FileNotFoundError(f"{SparkSource(url).where()} has no table '{name}'; tables present: {list_tables(url)[:20]}")
    return found[name]


def list_tables(url: str) -> list[str]:
    """Names of the canonical-looking tables of the source (Parquet files, or the database's tables)."""
    src = SparkSource(url)
    if src.folder is not None:
        return sorted({p.name.removesuffix(".parquet") for p in src.folder.iterdir()
                       if _parquet_path(src.folder, p.name.removesuffix(".parquet")) is not None})
    con = connection(url)
    return list(con.list_tables(database=src.database) if src.database else con.list_tables())


def fingerprint(t: ir.Table) -> str | None:
    """What identifies the content of a Spark table: a hash of the files Spark reads for it,
    each with its size and modification time (Hadoop ``FileStatus``); None when it reads none."""
    con = t._find_backend()
    files = sorted(_dataframe(con, t).inputFiles())
    if not files:
        return None
    parts: list[Any] = []
    jvm = getattr(con._session, "_jvm", None)
    hconf = con._session.sparkContext._jsc.hadoopConfiguration() if jvm is not None else None
    for f in files:
        if hconf is None:  # Spark Connect: no JVM here, the file names alone
            parts.append(f)
            continue
        p = jvm.org.apache.hadoop.fs.Path(f)
        st = p.getFileSystem(hconf).getFileStatus(p)
        parts.append([f, int(st.getLen()), int(st.getModificationTime())])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _dataframe(con, t: ir.Table):
    """The Spark DataFrame of an Ibis table (its SQL, run by the session: nothing is computed)."""
    return con._session.sql(con.compile(t))
