"""A report run's validated snapshot: each source table validated once, in one DuckDB file per source.

The report runner (:func:`crmlab.report.runner.run_reports`) calls :func:`write_snapshot` once
per data source of a run, before any kernel starts. It puts the tables the run's notebooks
read into ``<run temp folder>/snapshot-<i>.duckdb`` (in the data model's canonical form: times as
the shop's naive local times, optional columns present; views over a Parquet folder's files,
copies of other sources), validates each table once with
:func:`crmlab.io.validate.canonical`, and writes the marker table :data:`MARKER` (one row per
validated table: its canonical name, row count, and the fingerprint of the source it came
from). The notebooks' kernels find the snapshot through the environment variable
:data:`ENV` (a JSON manifest file) and open it read-only with :func:`open_snapshot`: their
tables are lazy Ibis tables, so nothing row-level is loaded into pandas by opening them.

Trust rule: an Ibis expression whose every base table is a table of an opened snapshot listed
in its marker as validated for the canonical table asked for (:func:`crmlab.io.trust.trusted`) needs no second
validation: :func:`crmlab.io.validate.canonical` asks :func:`trusted` before any scan. The row
rules that depend on the call (``as_of``) still run.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import ibis
import ibis.expr.types as ir

from ..io import trust

log = logging.getLogger("crmlab")

#: The marker table the runner writes into a snapshot after validating its tables.
MARKER = "_crmlab_validated"
#: Environment variable naming the run's snapshot manifest (JSON), inherited by the kernels.
ENV = "CRMLAB_RUN_SNAPSHOT"
#: Re-exported: the file that counts full validations (:data:`crmlab.io.trust.LOG_ENV`).
LOG_ENV = trust.LOG_ENV


def source_fingerprint(source: str, table: str) -> str:
    """What identifies a source table's content cheaply: file path, size and modification time
    (Parquet folder or DuckDB file); the name alone for the built-in sources."""
    p = Path(str(source))
    if p.is_dir():
        f = p / f"{table}.parquet"
        parts = [str(f), f.stat().st_size, f.stat().st_mtime_ns] if f.exists() else [str(f), "absent"]
    elif p.exists():
        parts = [str(p), p.stat().st_size, p.stat().st_mtime_ns, table]
    else:
        parts = [str(source), table]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _source_tables(source: str, tz: str, con) -> dict[str, ir.Table | Any]:
    """The source's tables as something ``con.create_table`` takes (Ibis views of the Parquet
    files or of the attached DuckDB file; pandas frames for the built-in sources)."""
    from ..datasets.core import TABLE_NAMES
    p = Path(str(source))
    names = TABLE_NAMES + ("outcomes",)
    out: dict[str, Any] = {}
    if str(source) in ("sample", "hillstrom", "cdnow") or not p.exists():
        from ..datasets import load_source
        data = load_source(str(source), tz=tz)
        for n in names:
            df = getattr(data, n, None)
            if df is not None:
                out[n] = df
        return out
    if p.is_dir():
        for n in names:
            f = p / f"{n}.parquet"
            if f.exists():  # a persistent view, by absolute path: the kernels run elsewhere
                lit = str(f.resolve()).replace("'", "''")
                scan = f"read_parquet('{lit}')"
                con.raw_sql(f"CREATE OR REPLACE VIEW \"_src_{n}\" AS SELECT {_select_list(con, scan)} FROM {scan}")
                out[n] = con.table(f"_src_{n}")
        return out
    con.raw_sql(f"ATTACH '{p}' AS _src (READ_ONLY)")
    present = {r[0] for r in con.raw_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = '_src'").fetchall()}
    for n in names:
        if n in present:
            out[n] = con.table(n, database="_src")
    return out


def _select_list(con, scan: str) -> str:
    """Columns of a Parquet scan, nanosecond times cast to microseconds (what pandas writes for
    zone-aware times is read by DuckDB 2 as ``TIMESTAMPTZ_NS``, a type Ibis does not
    know; crmlab's engine holds microseconds anyway)."""
    cols = []
    for name, typ, *_ in con.con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall():
        q = '"' + name.replace('"', '""') + '"'
        t = typ.upper()
        if t.startswith("TIMESTAMP") and ("_NS" in t or " NS" in t):
            cast = "TIMESTAMPTZ" if ("TZ" in t or "TIME ZONE" in t) else "TIMESTAMP"
            cols.append(f"CAST({q} AS {cast}) AS {q}")
        else:
            cols.append(q)
    return ", ".join(cols)


@dataclass
class Snapshot:
    """One validated snapshot of a source (what the runner records in the manifest)."""
    path: Path
    source: str
    tz: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> rows, fingerprint, seconds
    invalid: dict[str, str | None] = field(default_factory=dict)  # name -> first line of its DataError

    def record(self) -> dict[str, Any]:
        return {"path": str(self.path), "source": self.source, "tz": self.tz, "tables": self.tables,
                "invalid": {k: v for k, v in self.invalid.items() if v}}


def write_snapshot(source: str, tables: Iterable[str], path: str | Path, *, tz: str,
                   mode: str = "auto") -> Snapshot:
    """Put ``tables`` of ``source`` (those present) into the DuckDB file ``path`` in canonical
    form, validate each once, and mark the valid ones in :data:`MARKER`.

    ``mode``: ``"copy"`` copies the rows into the snapshot (a frozen copy: every notebook of
    the run reads the same rows whatever happens to the source); ``"view"`` stores a view over
    the source's Parquet file (no copy: at 100M events copying the weekly tables cost 25 s,
    four times their validation) and the file's fingerprint, which :func:`from_environment`
    checks before trusting it. ``"auto"``: views for a Parquet folder, copies otherwise (the
    built-in sources live in memory, a DuckDB file may be written to while the run reads it).

    A table that breaks a row rule is kept out of the marker and its error's first line is in
    ``invalid`` (the preflight turns it into an *invalid* problem; such a run never publishes).
    """
    import time

    from ..io.checks import choice
    from ..io.engine import default_connection
    from ..io.errors import DataError
    from ..io.validate import canonical
    choice(mode, "mode", ("auto", "copy", "view"))
    from ..io.spark import is_spark_url
    if is_spark_url(str(source)):  # validated in Spark, nothing copied (see write_spark_snapshot)
        return write_spark_snapshot(str(source), tables, path, tz=tz)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snap = Snapshot(path=path, source=str(source), tz=tz)
    con = default_connection(str(path))
    try:
        src = _source_tables(str(source), tz, con)
        wanted = [t for t in dict.fromkeys(tables) if t in src]
        marker = []
        for name in wanted:
            t0 = time.perf_counter()
            if name == "outcomes":  # per-user outcomes (Hillstrom) are not a canonical table
                con.create_table(name, src[name] if isinstance(src[name], ir.Table) else ibis.memtable(src[name]))
                snap.tables[name] = {"rows": int(con.table(name).count().execute()),
                                     "fingerprint": source_fingerprint(source, name)}
                continue
            try:
                expr = canonical(src[name], name, tz=tz, validate=False)
                as_view = mode == "view" or (mode == "auto" and Path(str(source)).is_dir())
                (con.create_view if as_view else con.create_table)(name, expr)
                copied = con.table(name)
                canonical(copied, name, tz=tz)  # the run's one validation of this table
                snap.invalid[name] = None
            except DataError as e:
                # kept, unmarked (untrusted): the preflight reports it, no notebook runs on it
                snap.invalid[name] = str(e).splitlines()[0]
                continue
            rows = int(copied.count().execute())
            fp = source_fingerprint(source, name)
            snap.tables[name] = {"rows": rows, "fingerprint": fp, "kind": "view" if as_view else "copy",
                                 "seconds": round(time.perf_counter() - t0, 2)}
            marker.append((name, name, rows, fp))
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        con.raw_sql(f"CREATE OR REPLACE TABLE {MARKER} (table_name VARCHAR, canonical VARCHAR, rows BIGINT, "
                    "fingerprint VARCHAR, validated_at VARCHAR, source VARCHAR, tz VARCHAR)")
        for row in marker:
            con.con.execute(f"INSERT INTO {MARKER} VALUES (?, ?, ?, ?, ?, ?, ?)", [*row, now, str(source), tz])
        for n in list(src):  # source views nothing in the snapshot refers to
            if isinstance(src[n], ir.Table) and src[n].get_name().startswith("_src_") \
                    and (n not in wanted or snap.tables.get(n, {}).get("kind") == "copy"):
                con.raw_sql(f'DROP VIEW IF EXISTS "{src[n].get_name()}"')
    finally:
        con.disconnect()
    return snap


def open_snapshot(path: str | Path, source: str | None = None, untrusted: Iterable[str] = ()):
    """The snapshot's tables as a :class:`~crmlab.datasets.ShopData` of lazy Ibis tables.

    Tables of the snapshot listed in its marker are trusted (:func:`crmlab.io.trust.trusted`). A canonical
    table the snapshot does not hold but ``source`` (a Parquet folder or DuckDB file) does is
    opened lazily from the source, untrusted (validated where it is used, as before)."""
    from ..datasets.core import TABLE_NAMES, ShopData
    from ..io.engine import default_connection, read_path
    if str(path).endswith(SPARK_SUFFIX):
        return open_spark_snapshot(path, untrusted=untrusted)
    con = default_connection(str(path), read_only=True)
    marks = {k: v for k, v in con.con.execute(f"SELECT table_name, canonical FROM {MARKER}").fetchall()
             if k not in set(untrusted)}
    trust.register(con, marks)
    present = {r[0] for r in con.con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    name = Path(str(source)).stem if source else "snapshot"

    class SnapshotData(ShopData):
        """A ShopData of lazy Ibis tables (rows are counted in the engine, not held)."""

        def __repr__(self) -> str:
            return f"SnapshotData({self.name}: {', '.join(self.tables())} from {path})"

    data = SnapshotData(name=name)
    for n in TABLE_NAMES + ("outcomes",):
        if n in present:
            setattr(data, n, con.table(n))
        elif source and n != "outcomes":
            p = Path(str(source))
            if p.is_dir() and (p / f"{n}.parquet").exists():
                setattr(data, n, read_path(p / f"{n}.parquet"))
            elif p.is_file() and p.suffix == ".duckdb":
                import duckdb
                with duckdb.connect(str(p), read_only=True) as c:
                    has = {r[0] for r in c.execute("SELECT table_name FROM information_schema.tables").fetchall()}
                if n in has:
                    setattr(data, n, read_path(f"{p}::{n}"))
    data.truth = {"snapshot": str(path)}
    return data


def from_environment(source: str, tz: str):
    """The run's snapshot of ``(source, tz)`` named by :data:`ENV`, opened, or None.

    Every notebook of a run reads the same copy, even if the source files change during the
    run (the manifest's fingerprints say which version of the source was copied)."""
    manifest = os.environ.get(ENV)
    if not manifest or not Path(manifest).exists():
        return None
    for rec in json.loads(Path(manifest).read_text()).get("snapshots", []):
        if rec["source"] == str(source) and rec["tz"] == tz and Path(rec["path"]).exists():
            changed = [n for n, v in rec["tables"].items()  # (a Spark snapshot checks its own, when opened)
                       if v.get("kind") == "view" and source_fingerprint(source, n) != v["fingerprint"]]
            if changed:  # a view reads the file as it is now: not what was validated
                log.warning("%s changed since the run validated it: %s validated again", source, changed)
            return open_snapshot(rec["path"], source, untrusted=changed)
    return None


# ----------------------------------------------------------------------------- a Spark source's snapshot
#: A Spark source's snapshot is a JSON record, not a DuckDB file: its tables stay in Spark.
SPARK_SUFFIX = ".spark.json"


def _spark_view_name(source: str, table: str, tz: str) -> str:
    """Temporary views live in the Spark session, which every ``pyspark://`` URL of a process
    shares: the name carries the source (hashed) and the zone, so two sources never swap views."""
    import re

    from ..io.spark import url_key
    key = url_key(source)
    return f"crmlab_run_{table}_{re.sub(r'[^0-9A-Za-z]+', '_', tz)}_{key}"


def _spark_view(con, raw: ir.Table, table: str, tz: str, source: str) -> ir.Table:
    """The canonical form of ``raw`` (times naive local, optional columns present) as a temporary
    view of this process's Spark session: the table a run validates and its kernels trust."""
    from ..io.validate import canonical
    name = _spark_view_name(source, table, tz)
    # a view (re)created here is untrusted until a validation or a matching fingerprint marks it:
    # an earlier run in this process may have trusted the view of the same name
    trust.register(con, {}, merge=True, drop=[name])
    return con.create_view(name, canonical(raw, table, tz=tz, validate=False), overwrite=True)


def write_spark_snapshot(source: str, tables: Iterable[str], path: str | Path, *, tz: str) -> Snapshot:
    """The run's validation of a ``pyspark://`` source (:mod:`crmlab.io.spark`), in Spark.

    Copying a Spark source into a local DuckDB file would move the data Spark is there to keep
    distributed. Instead each table's canonical form is a temporary Spark view, validated once
    here (the rule counts run as Spark jobs), and ``path`` (``snapshot-<i>.spark.json``) records
    what was validated: rows and :func:`crmlab.io.spark.fingerprint` (the files Spark read, with
    sizes and modification times). Each kernel rebuilds the views in its own session and trusts
    a table whose fingerprint is unchanged (:func:`open_spark_snapshot`); a table with no
    fingerprint (not read from files) is validated again where it is used."""
    import time

    from ..io import spark
    from ..io.errors import DataError
    from ..io.validate import canonical
    path = Path(str(path).removesuffix(".duckdb") + SPARK_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    snap = Snapshot(path=path, source=source, tz=tz)
    wanted = list(dict.fromkeys(tables))
    raw = spark.open_tables(source, wanted)
    con = spark.connection(source)
    for name in [t for t in wanted if t in raw]:
        t0 = time.perf_counter()
        if name == "outcomes":  # per-user outcomes (Hillstrom) are not a canonical table: counted, not trusted
            snap.tables[name] = {"rows": int(raw[name].count().execute()), "fingerprint": None, "kind": "spark"}
            continue
        try:
            view = _spark_view(con, raw[name], name, tz, source)
            canonical(view, name, tz=tz)  # the run's one validation of this table, in Spark
            snap.invalid[name] = None
        except DataError as e:
            snap.invalid[name] = str(e).splitlines()[0]
            continue
        snap.tables[name] = {"rows": int(view.count().execute()), "fingerprint": spark.fingerprint(raw[name]),
                             "kind": "spark", "seconds": round(time.perf_counter() - t0, 2)}
    path.write_text(json.dumps(snap.record(), indent=1))
    return snap


def open_spark_snapshot(path: str | Path, untrusted: Iterable[str] = ()):
    """A Spark snapshot's tables (lazy Ibis tables on this process's session) as a ShopData.

    The canonical views are rebuilt here; a view is trusted when its table was validated by the
    run and the files Spark reads for it still have the recorded fingerprint. Tables the run did
    not validate are the source's own (validated where they are used, as before)."""
    from ..datasets.core import TABLE_NAMES, ShopData
    from ..io import spark
    rec = json.loads(Path(path).read_text())
    source, tz = rec["source"], rec["tz"]
    raw = spark.open_tables(source, TABLE_NAMES + ("outcomes",))
    con = spark.connection(source)
    data = ShopData(name=source.rstrip("/").rsplit("/", 1)[-1] or "spark")
    marks, changed, views = {}, [], []
    for n, t in raw.items():
        v = rec["tables"].get(n)
        if v is None or n == "outcomes":
            setattr(data, n, t)
            continue
        view = _spark_view(con, t, n, tz, source)
        setattr(data, n, view)
        views.append(view.get_name())
        if v.get("fingerprint") and n not in set(untrusted) and spark.fingerprint(t) == v["fingerprint"]:
            marks[view.get_name()] = n
        elif v.get("fingerprint"):
            changed.append(n)
    if changed:  # the files changed since the run validated them: validated again where used
        log.warning("%s changed since the run validated it: %s validated again", source, changed)
    trust.register(con, marks, merge=True, drop=views)  # a view replaced here is trusted only if marked again
    data.truth = {"snapshot": str(path)}
    return data
