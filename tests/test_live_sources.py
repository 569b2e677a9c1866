"""Live sources: a real PostgreSQL server (started in a temp folder for the session) gives the
same canonical tables, validation, analyses and weekly report as DuckDB.

The server is a throwaway one: ``initdb`` in a temp folder, ``pg_ctl start`` on a free port of
the loopback, trust authentication, stopped and removed at the end. As root (CI), the server
runs as the ``postgres`` (or ``nobody``) user through ``runuser``, since ``initdb`` refuses root.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import assert_same_frame
from crmlab import DataError, canonical
from crmlab.io.engine import to_pandas

END = "2026-11-30"  # Monday: the shop's data end before the week after WEEK
WEEK = "2026-W48"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    return cmd if user is None else ["runuser", "-u", user, "--", *cmd]


@pytest.fixture(scope="session")
def pg_url():
    """URL of a throwaway PostgreSQL server for the test session (skips only without binaries)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: .ci/run installs them (apt-get postgresql)")
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver of ibis) not installed: pip install -e .[test]")
    user = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
        import pwd
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                user = name
                break
            except KeyError:
                continue
        if user is None:
            pytest.fail("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")
    root = tempfile.mkdtemp(prefix="crmlab-pg-")
    data = os.path.join(root, "data")
    if user is not None:
        shutil.chown(root, user=user)
        os.chmod(root, 0o700)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    run = lambda cmd: subprocess.run(_as_user(cmd, user), check=True, capture_output=True, text=True, env=env,
                                     cwd=root)
    try:
        run([initdb, "-D", data, "-U", "crmlab", "--auth=trust", "-E", "UTF8", "--no-locale"])
        run([pg_ctl, "-D", data, "-l", os.path.join(root, "server.log"), "-w", "-t", "60", "-o",
             f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=32MB", "start"])
    except subprocess.CalledProcessError as exc:
        log = Path(root, "server.log")
        pytest.fail(f"PostgreSQL did not start: {exc.stderr or exc.stdout}\n"
                    f"{log.read_text() if log.exists() else ''}")
    try:
        yield f"postgres://crmlab@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_user([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"], user), capture_output=True, env=env,
                       cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=600, weeks=12, seed=3, end=END)


def _naive(df: pd.DataFrame, tz: str = "Asia/Seoul") -> pd.DataFrame:
    """A shop table as a database holds it: local wall-clock times (``timestamp without time zone``)."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_convert(tz).dt.tz_localize(None)
    return out


@pytest.fixture(scope="session")
def sources(pg_url, shop, tmp_path_factory):
    """The same shop in PostgreSQL (``pg_url``) and in a DuckDB file; returns (pg_url, duckdb path)."""
    import ibis
    con = ibis.connect(pg_url)
    items = dict(shop.tables())
    if shop.outcomes is not None:
        items["outcomes"] = shop.outcomes
    for name, df in items.items():
        con.create_table(name, _naive(df), overwrite=True)
    con.disconnect()
    db = tmp_path_factory.mktemp("duck") / "shop.duckdb"
    import duckdb
    with duckdb.connect(str(db)) as d:
        for name, df in items.items():
            frame = _naive(df)
            d.register("_df", frame)
            d.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _df')
            d.unregister("_df")
    return pg_url, db


@pytest.mark.postgres
def test_canonical_tables_and_validation_agree_with_duckdb(sources):
    pg, db = sources
    for table in ("customers", "events", "orders", "messages", "assignments"):
        got = to_pandas(canonical(pg, table))
        want = to_pandas(canonical(f"{db}::{table}", table))
        key = {"customers": ["user_id"], "events": ["user_id", "time", "event"], "orders": ["order_id"],
               "messages": ["message_id"], "assignments": ["experiment", "user_id"]}[table]
        assert len(got) == len(want) > 0, table
        cols = [c for c in want.columns]
        assert_same_frame(got[cols], want[cols], sort_by=key + ([c for c in cols if c not in key][:3] if table == "events" else []))


@pytest.mark.postgres
def test_validation_errors_are_the_same_on_postgres(pg_url, shop):
    import ibis
    con = ibis.connect(pg_url)
    bad = _naive(shop.orders.head(20)).copy()
    bad.loc[bad.index[3], "revenue"] = -1.0
    bad.loc[bad.index[5], "revenue"] = float("nan")
    con.create_table("bad_orders", bad, overwrite=True)
    con.raw_sql("UPDATE bad_orders SET revenue = 'NaN'::float8 WHERE revenue IS NULL")
    with pytest.raises(DataError) as e:
        canonical(con.table("bad_orders"), "orders")
    assert (e.value.column, e.value.n_rows) == ("revenue", 1) and "NaN" in e.value.rule  # NaN is null here too
    con.raw_sql("UPDATE bad_orders SET revenue = 1 WHERE revenue = 'NaN'::float8")
    with pytest.raises(DataError, match="negative value"):
        canonical(con.table("bad_orders"), "orders")
    con.drop_table("bad_orders")
    con.disconnect()


@pytest.mark.postgres
def test_analyses_agree_with_duckdb(sources):
    from crmlab.cohort import retention
    from crmlab.messages import message_performance
    from crmlab.sessions import traffic
    pg, db = sources
    duck = lambda t: f"{db}::{t}"
    assert_same_frame(retention(pg, metric="revenue", period="W"), retention(duck("orders"), metric="revenue", period="W"),
                      sort_by=["cohort", "period_index"])
    assert_same_frame(traffic(pg, period="W", by="device"), traffic(duck("events"), period="W", by="device"),
                      sort_by=["period", "device"])
    got = message_performance(pg, pg, by="channel")
    want = message_performance(duck("messages"), duck("orders"), by="channel")
    assert_same_frame(got, want, sort_by=["channel", "period"])


def _outputs(ipynb: Path) -> list[str]:
    """A notebook's text outputs (tables, summaries, findings), images and timings left out."""
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code" or "parameters" in cell.get("metadata", {}).get("tags", []) \
                or "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            text = "".join(data.get("text/html", data.get("text/plain", ""))) if data else "".join(o.get("text", ""))
            text = re.sub(r"data:image/[^\"']+", "IMG", text)
            text = re.sub(r"<p class='crm-meta'>.*?</p>", "META", text)  # the data's name, the run's time
            out.append(text)
    return out


@pytest.mark.postgres
def test_weekly_report_on_postgres_has_the_duckdb_findings(sources, tmp_path):
    from crmlab.__main__ import main
    pg, db = sources
    # a URL with a password (the trust-auth server ignores it): the kernels need it, the
    # published manifest, notebooks, pages and index must never hold it
    pg = pg.replace("crmlab@", "crmlab:s3cret-pw@")
    runs = {}
    for name, src in (("postgres", pg), ("duckdb", str(db))):
        out = tmp_path / name
        t0 = time.perf_counter()
        code = main(["report", "weekly", "--week", WEEK, "--source", src, "--out", str(out), "--no-progress"])
        assert code == 0, name
        runs[name] = (out / WEEK, time.perf_counter() - t0)
    pg_dir, duck_dir = runs["postgres"][0], runs["duckdb"][0]
    m_pg = json.loads((pg_dir / "manifest.json").read_text())
    m_duck = json.loads((duck_dir / "manifest.json").read_text())
    assert sorted(m_pg) == sorted(m_duck) == ["message_performance", "weekly_uplift"]
    published = [f for f in (tmp_path / "postgres").rglob("*") if f.is_file()]
    assert published and not [f.name for f in published if "s3cret-pw" in f.read_text(errors="ignore")]
    safe = pg.replace("s3cret-pw", "***")
    for name in m_pg:
        assert m_pg[name]["parameters"]["source"] == safe
        assert m_pg[name].get("partial") == m_duck[name].get("partial")
        a, b = _outputs(pg_dir / f"{name}.ipynb"), _outputs(duck_dir / f"{name}.ipynb")
        a = [x.replace(safe, "SOURCE") for x in a]
        b = [x.replace(str(db), "SOURCE") for x in b]
        assert len(a) == len(b) > 3, name
        assert a == b, name


@pytest.mark.spark
def test_a_spark_session_is_a_source(spark_con, shop):
    """A PySpark session holding the canonical tables (temporary views named after them) is a
    source like a URL: canonical tables and an analysis agree with DuckDB."""
    from conftest import to_spark
    from crmlab.cohort import retention
    session = spark_con._session
    for name in ("orders", "events"):
        t = to_spark(spark_con, getattr(shop, name))
        session.table(t.get_name()).createOrReplaceTempView(name)
    got = to_pandas(canonical(session, "orders"))
    want = to_pandas(canonical(shop.orders, "orders"))
    assert_same_frame(got, want, sort_by=["order_id"])
    assert_same_frame(retention(session, metric="revenue", period="W"), retention(shop.orders, metric="revenue", period="W"),
                      sort_by=["cohort", "period_index"])


# ------------------------------------------------------------------------------ pyspark:// sources
@pytest.fixture(scope="module")
def parquet_shop(tmp_path_factory):
    """A small synthetic shop as a Parquet folder, generated like the bench data."""
    from bench.generate import write
    return write(tmp_path_factory.mktemp("spark-shop") / "shop", n_users=1500, chunk_users=1500)


def test_spark_url_errors_name_the_source(tmp_path):
    """A pyspark:// URL naming a folder that does not exist, or both a database and a folder, is
    refused in one line before any Spark session starts."""
    from crmlab.io.spark import SparkSource
    with pytest.raises(FileNotFoundError, match=r"names the folder .*nope, which does not exist"):
        canonical(f"pyspark://{tmp_path}/nope", "orders")
    with pytest.raises(ValueError, match="not both"):
        SparkSource(f"pyspark://crm{tmp_path}")
    s = SparkSource(f"pyspark://{tmp_path}?master=local[3]&spark.driver.memory=2g")
    assert (s.folder, s.database, s.conf) == (tmp_path, None, {"master": "local[3]", "spark.driver.memory": "2g"})
    assert SparkSource("pyspark://crm").database == "crm" and SparkSource("pyspark://").folder is None


@pytest.mark.spark
def test_spark_snapshot_trusts_unchanged_files_only(spark_con, parquet_shop, tmp_path, monkeypatch):
    """The run's validation of a Spark source happens in Spark, once per table (counted in the
    validation log); opening the snapshot trusts a table only while the files Spark reads for it
    keep their fingerprint: a rewritten orders.parquet is validated again."""
    from crmlab.io.trust import LOG_ENV, trusted
    from crmlab.report import snapshot as S
    src = tmp_path / "shop"
    shutil.copytree(parquet_shop, src)
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    url = f"pyspark://{src}"
    tables = ["assignments", "orders", "messages", "customers"]
    snap = S.write_snapshot(url, tables, tmp_path / "run" / "snapshot-0.duckdb", tz="Asia/Seoul")
    assert snap.path.name == "snapshot-0.spark.json" and not list((tmp_path / "run").glob("*.duckdb"))  # nothing copied
    assert sorted(json.loads(x)["table"] for x in log.read_text().splitlines()) == sorted(tables)
    assert {t: v["rows"] for t, v in snap.tables.items()} == {t: len(pd.read_parquet(src / f"{t}.parquet")) for t in tables}
    data = S.open_snapshot(snap.path)
    assert all(trusted(getattr(data, t), t) for t in tables) and not trusted(data.orders, "messages")
    assert data.events is not None and not trusted(data.events, "events")  # not validated by the run
    o = pd.read_parquet(src / "orders.parquet")
    o.iloc[:-1].to_parquet(src / "orders.parquet", index=False)  # the file changes after validation
    again = S.open_snapshot(snap.path)
    assert not trusted(again.orders, "orders") and trusted(again.messages, "messages")
    assert int(again.orders.count().execute()) == len(o) - 1  # the view reads the file as it is now
    # a later validation in the same process scans again: the earlier run's trust does not carry over
    n_before = len(log.read_text().splitlines())
    S.write_snapshot(url, ["orders"], tmp_path / "run2" / "snapshot-0.duckdb", tz="Asia/Seoul")
    assert len(log.read_text().splitlines()) == n_before + 1
    # another source in the same Spark session: its views do not replace this source's
    other = S.open_snapshot(S.write_snapshot(f"pyspark://{parquet_shop}", ["orders"], tmp_path / "run3" / "s.duckdb",
                                             tz="Asia/Seoul").path)
    assert int(other.orders.count().execute()) == len(o) and int(again.orders.count().execute()) == len(o) - 1


@pytest.mark.spark
def test_weekly_report_on_spark_has_the_duckdb_findings(spark_con, parquet_shop, tmp_path, monkeypatch):
    """``report weekly --source pyspark:///folder`` (Spark reads the Parquet files; the kernels
    launch their own local-mode sessions from CRMLAB_SPARK_MASTER) publishes the same manifest
    and notebook outputs as the DuckDB run of the same folder, and validates each table once,
    in the command's process: the kernels trust the run's validation."""
    from crmlab.__main__ import main
    from crmlab.io.trust import LOG_ENV
    monkeypatch.setenv("CRMLAB_SPARK_MASTER", "local[1]")
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    url = f"pyspark://{parquet_shop}"
    dirs = {}
    for name, src in (("spark", url), ("duckdb", str(parquet_shop))):
        out = tmp_path / name
        code = main(["report", "weekly", "--week", "2026-W47", "--source", src, "--out", str(out), "--no-progress"])
        assert code == 0, name
        dirs[name] = out / "2026-W47"
        if name == "spark":
            seen = [json.loads(x) for x in log.read_text().splitlines()]
            assert sorted(s["table"] for s in seen) == ["assignments", "customers", "messages", "orders"], seen
            assert {s["pid"] for s in seen} == {os.getpid()}  # none in the kernels
    m_spark = json.loads((dirs["spark"] / "manifest.json").read_text())
    m_duck = json.loads((dirs["duckdb"] / "manifest.json").read_text())
    assert sorted(m_spark) == sorted(m_duck) == ["message_performance", "weekly_uplift"]
    for name in m_spark:
        assert m_spark[name]["parameters"]["source"] == url
        assert m_spark[name].get("partial") == m_duck[name].get("partial")
        rows = lambda m: {t: v["rows"] for t, v in m[name]["snapshot"]["tables"].items()}
        assert rows(m_spark) == rows(m_duck) and all(v["fingerprint"] for v in m_spark[name]["snapshot"]["tables"].values())
        a = [x.replace(url, "SOURCE") for x in _outputs(dirs["spark"] / f"{name}.ipynb")]
        b = [x.replace(str(parquet_shop), "SOURCE") for x in _outputs(dirs["duckdb"] / f"{name}.ipynb")]
        assert len(a) == len(b) > 3, name
        assert a == b, name


@pytest.mark.spark
def test_release_ends_the_jvm_crmlab_launched(parquet_shop):
    """crmlab.io.spark.release ends the session and the JVM crmlab launched (the report command's,
    once the kernels run), and a later call launches a new one. In a fresh process, so that no
    user session is active (one would be left alone)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime: .ci/run installs one")
    code = f"""
import psutil
from crmlab.io import spark
url = "pyspark://{parquet_shop}"
n = lambda: int(spark.table(url, "orders").count().execute())
first = n()
jvms = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
assert len(jvms) == 1, jvms
assert spark.release() is True
assert not jvms[0].is_running() or jvms[0].status() == psutil.STATUS_ZOMBIE
assert n() == first  # a new session, a new JVM
assert spark.release() is True
print("ok", first)
"""
    env = {**os.environ, "CRMLAB_SPARK_MASTER": "local[1]", "SPARK_LOCAL_IP": "127.0.0.1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["ok", str(len(pd.read_parquet(parquet_shop / "orders.parquet")))]


@pytest.mark.spark
def test_check_of_a_spark_source_runs_in_spark(spark_con, parquet_shop, tmp_path, monkeypatch, capsys):
    """``crmlab check pyspark:///folder`` validates each table the reports read once, in Spark
    (the validation log counts them), and finds the same problems as the DuckDB check of the
    folder: none for the weekly reports on their week."""
    from crmlab.__main__ import main
    from crmlab.io.trust import LOG_ENV
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    assert main(["check", f"pyspark://{parquet_shop}", "--report", "weekly", "--week", "2026-W47"]) == 0
    assert sorted(json.loads(x)["table"] for x in log.read_text().splitlines()) == \
        ["assignments", "customers", "messages", "orders"]
    spark_out = capsys.readouterr().out
    assert main(["check", str(parquet_shop), "--report", "weekly", "--week", "2026-W47"]) == 0
    assert spark_out == capsys.readouterr().out and spark_out.count("ok ") == 2


def test_page_names_a_url_source_without_its_secrets(monkeypatch):
    """The report's header names the data; for a URL the last part of its path (or the Spark
    database), never a password, user or query parameter. Before, the page printed
    ``os.path.basename`` of the URL: ``shop?password=hunter2`` for a PostgreSQL URL with its
    password in the query, ``ev?...`` for a Spark URL with settings."""
    from crmlab.report import nb
    shown = []
    monkeypatch.setattr(nb, "_html", shown.append)
    cases = {"postgres://crm:pw1@db.internal:5432/shop?password=hunter2&sslmode=require": "shop",
             "pyspark:///data/bench/1M?spark.eventLog.dir=/tmp/ev&master=local[2]": "1M",
             "pyspark://crm": "crm", "/data/shop/": "shop"}
    for src, label in cases.items():
        nb.Report("weekly_uplift", week="2026-W47", source=src, timezone="Asia/Seoul", currency="KRW").header()
        assert f"data: {label} ·" in shown[-1], shown[-1]
        assert not any(secret in shown[-1] for secret in ("hunter2", "pw1", "crm:", "eventLog", "master"))


def test_a_missing_spark_folder_is_a_bad_parameter(tmp_path, capsys):
    """``--source pyspark:///missing`` exits 2 (bad parameters) in one line before any Spark
    session or kernel starts, as a missing Parquet folder does."""
    from crmlab.__main__ import main
    assert main(["report", "weekly", "--source", f"pyspark://{tmp_path}/missing", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path}/missing, which does not exist" in err
    assert main(["report", "weekly", "--source", f"pyspark://crm{tmp_path}", "--out", str(tmp_path / "r")]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.spark
def test_a_spark_catalog_database_is_a_source(spark_con, parquet_shop, tmp_path):
    """``pyspark://crm`` reads the catalog database ``crm``'s tables: the same canonical orders as
    the Parquet folder, a fingerprint from the table's files, and a one-line error naming the
    database for a table it lacks."""
    from crmlab.io import spark
    s = spark_con._session
    s.sql("CREATE DATABASE IF NOT EXISTS crm")
    s.read.parquet(str(parquet_shop / "orders.parquet")).write.mode("overwrite").saveAsTable("crm.orders")
    try:
        got = to_pandas(canonical("pyspark://crm", "orders"))
        want = to_pandas(canonical(str(parquet_shop), "orders"))
        assert len(got) == len(want) > 0
        assert_same_frame(got[list(want.columns)], want, sort_by=["order_id"])
        t = spark.open_tables("pyspark://crm", ["orders", "messages"])
        assert list(t) == ["orders"] and len(spark.fingerprint(t["orders"])) == 16
        with pytest.raises(FileNotFoundError, match="Spark catalog database 'crm' has no table 'messages'"):
            canonical("pyspark://crm", "messages")
    finally:
        s.sql("DROP DATABASE crm CASCADE")
