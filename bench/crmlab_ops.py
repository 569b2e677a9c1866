"""The crmlab side of each benchmarked operation: the public call an analyst would make, on the
Parquet files of a benchmark scale (DuckDB through Ibis), or on PySpark in local mode."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .reference import AS_OF, ATTR_WINDOW_DAYS, FUNNEL, FUNNEL_WINDOW_HOURS

_SPARK = None


def _tables(data: Path, con=None) -> dict:
    """Each table as an Ibis table: DuckDB reads the Parquet path itself; Spark gets its own."""
    names = ("events", "orders", "messages", "assignments")
    if con is None:
        return {n: Path(data) / f"{n}.parquet" for n in names}
    return {n: con.read_parquet(str(Path(data) / f"{n}.parquet")) for n in names}


def sessionize(data, con=None):
    from crmlab.sessions import sessionize as f
    return f(_tables(data, con)["events"], force=True)


def sessionize_parquet(data, con=None):
    """Sessionisation of every event, written to Parquet by the engine (100M rows do not fit
    pandas in the memory goal)."""
    from crmlab.sessions import sessionize as f
    target = Path(tempfile.mkdtemp(prefix="crmlab-bench-sess-")) / "sessions.parquet"
    try:
        return f(_tables(data, con)["events"], force=True, out=target)
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)


def funnel(data, con=None):
    from crmlab.funnel import funnel as f
    return f(_tables(data, con)["events"], list(FUNNEL), window=f"{FUNNEL_WINDOW_HOURS}h", mode="ordered", count="first")


def funnel_best(data, con=None):
    from crmlab.funnel import funnel as f
    return f(_tables(data, con)["events"], list(FUNNEL), window=f"{FUNNEL_WINDOW_HOURS}h", mode="ordered", count="best")


def retention(data, con=None):
    from crmlab.cohort import retention as f
    return f(_tables(data, con)["orders"], period="M", metric="users", mode="on", as_of=AS_OF)


def rfm(data, con=None):
    from crmlab.rfm import rfm_table
    return rfm_table(_tables(data, con)["orders"], as_of=AS_OF)


def rfm_lifetimes(data, con=None):
    from crmlab.rfm import rfm_table
    return rfm_table(_tables(data, con)["orders"], as_of=AS_OF, definition="lifetimes")


def attribution(data, con=None):
    from crmlab.messages import attribute
    t = _tables(data, con)
    return attribute(t["messages"], t["orders"], windows=f"{ATTR_WINDOW_DAYS}D", share="last_touch")


def abstats(data, con=None):
    from crmlab.uplift import campaign_uplift
    t = _tables(data, con)
    return campaign_uplift(t["assignments"], t["orders"], window="7D")


def spark_connection():
    global _SPARK
    if _SPARK is None:
        import ibis
        from pyspark.sql import SparkSession
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        spark = (SparkSession.builder.master("local[2]").appName("crmlab-bench")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.driver.memory", "8g")
                 .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="crmlab-bench-spark-"))
                 .config("spark.ui.enabled", "false").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        _SPARK = ibis.pyspark.connect(spark)
    return _SPARK


def on_spark(op: str, data):
    return globals()[op](data, spark_connection())


def weekly_report(data):
    """The whole weekly report (every weekly notebook through Papermill) on this Parquet folder."""
    out = Path(tempfile.mkdtemp(prefix="crmlab-bench-report-"))
    try:
        cmd = [sys.executable, "-m", "crmlab", "report", "weekly", "--source", str(data), "--out", str(out),
               "--week", "2026-W47"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return sorted(p.name for p in out.rglob("*.html"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
