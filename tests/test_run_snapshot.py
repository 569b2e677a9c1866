"""Validate once per report run: the runner's validated snapshot (crmlab.report.snapshot), and crmlab's
own DuckDB connection. No test here depends on speed; scans are counted, not timed."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from crmlab.io.trust import LOG_ENV, trusted
from crmlab.report import snapshot as S
from crmlab.datasets import load_source
from crmlab.io.engine import zoned_time
from crmlab.report import analyses as A
from crmlab.report import text as T

TZ = "Asia/Seoul"
WEEK_START = pd.Timestamp("2026-11-16")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small synthetic shop as a Parquet folder, generated like the bench data (two chunks)."""
    from bench.generate import write
    return write(tmp_path_factory.mktemp("snap") / "shop", n_users=3000, chunk_users=1500)


@pytest.fixture
def scans(tmp_path, monkeypatch):
    """Every full validation of a table (crmlab.io.validate's row rules) appended to a log: read()."""
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))

    def read():
        return [json.loads(line)["table"] for line in log.read_text().splitlines()] if log.exists() else []
    return read


def _week():
    start = zoned_time(WEEK_START, TZ)
    return start, start + pd.Timedelta(weeks=1)


def _findings(data):
    start, end = _week()
    up = A.weekly_uplift(data, start - pd.Timedelta(weeks=3), end, window_days=3, tz=TZ)
    msg = A.message_report(data, start, end, tz=TZ)
    return up, msg


def test_snapshot_validates_each_table_once_and_notebooks_never(source, tmp_path, scans):
    tables = ["assignments", "orders", "messages", "customers"]
    snap = S.write_snapshot(str(source), tables, tmp_path / "run" / "snapshot.duckdb", tz=TZ)
    assert sorted(scans()) == sorted(tables)  # one validation per table
    rows = {t: len(pd.read_parquet(source / f"{t}.parquet")) for t in tables}
    assert {t: v["rows"] for t, v in snap.tables.items()} == rows
    assert all(len(v["fingerprint"]) == 16 for v in snap.tables.values()) and not any(snap.invalid.values())
    data = S.open_snapshot(snap.path, str(source))
    assert data.events is not None and not trusted(data.events, "events")  # not copied: read from the source
    assert trusted(data.orders, "orders") and not trusted(data.orders, "messages")
    # two notebooks' worth of sections: no further validation of a snapshot table
    before = len(scans())
    _findings(data)
    _findings(data)
    assert scans()[before:] == []


def test_snapshot_gives_the_same_findings_as_pandas(source, tmp_path):
    snap = S.write_snapshot(str(source), ["assignments", "orders", "messages", "customers"],
                            tmp_path / "snapshot.duckdb", tz=TZ)
    lazy_up, lazy_msg = _findings(S.open_snapshot(snap.path, str(source)))
    up, msg = _findings(load_source(str(source), tz=TZ))  # the notebooks' data before: pandas
    assert lazy_up.experiments == up.experiments and lazy_up.incomplete == up.incomplete
    for a, b in [(lazy_up.campaigns, up.campaigns), (lazy_up.by_segment, up.by_segment),
                 (lazy_up.segment_sizes, up.segment_sizes), (lazy_up.holdout, up.holdout),
                 (lazy_msg.week, msg.week), (lazy_msg.trend, msg.trend), (lazy_msg.totals, msg.totals),
                 (lazy_msg.fatigue, msg.fatigue), (lazy_msg.heatmap, msg.heatmap),
                 (lazy_msg.compliance, msg.compliance)]:
        assert (a is None) == (b is None)
        if a is not None:
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    assert not lazy_up.campaigns.empty and not lazy_msg.week.empty
    for lang in ("en", "ko"):
        assert (T.summary_uplift(lazy_up, 0.05, lang, week="2026-W47", weeks=4, window_days=3)
                == T.summary_uplift(up, 0.05, lang, week="2026-W47", weeks=4, window_days=3))
        assert (T.summary_messages(lazy_msg, lang, week="2026-W47")
                == T.summary_messages(msg, lang, week="2026-W47"))


def test_invalid_table_is_reported_not_trusted(tmp_path, scans):
    from bench.generate import write
    src = write(tmp_path / "bad", n_users=400, chunk_users=400)
    o = pd.read_parquet(src / "orders.parquet")
    o.loc[0, "revenue"] = -5.0
    o.to_parquet(src / "orders.parquet", index=False)
    snap = S.write_snapshot(str(src), ["orders", "assignments"], tmp_path / "s.duckdb", tz=TZ)
    assert "negative value" in snap.invalid["orders"] and snap.invalid["assignments"] is None
    data = S.open_snapshot(snap.path, str(src))
    assert not trusted(data.orders, "orders") and trusted(data.assignments, "assignments")


def test_report_run_validates_each_table_once(source, tmp_path, scans):
    """The whole weekly run (preflight and both notebook kernels): each table validated once."""
    from crmlab.report.runner import run_reports
    out = tmp_path / "reports"
    week, outcomes = run_reports(["weekly_uplift", "message_performance"], week="2026-W47",
                                 overrides={"source": str(source)}, out_dir=out, progress=False)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    seen = scans()
    assert sorted(seen) == sorted(["assignments", "orders", "messages", "customers"]), seen
    manifest = json.loads((out / week / "manifest.json").read_text())
    rec = manifest["weekly_uplift"]["snapshot"]
    assert rec["source"] == str(source) and rec["tables"]["orders"]["rows"] == len(pd.read_parquet(source / "orders.parquet"))
    assert manifest["message_performance"]["snapshot"]["tables"]["messages"]["fingerprint"]
    assert not list(tmp_path.glob("crmlab-run-*"))


# ------------------------------------------------------------------------------ crmlab's own connection
def test_own_connection_gets_limits_and_user_connection_is_left_alone(monkeypatch, tmp_path):
    import ibis

    from crmlab.io.engine import default_connection, duckdb_settings
    monkeypatch.setenv("CRMLAB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("CRMLAB_THREADS", "1")
    monkeypatch.setenv("CRMLAB_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("CRMLAB_DUCKDB_DISABLED_OPTIMIZERS", "partitioned_execution")
    assert duckdb_settings()["memory_limit"] == "1GB"
    assert duckdb_settings(memory_limit="50%")["memory_limit"].endswith("MB")
    con = default_connection(str(tmp_path / "own.duckdb"))
    row = con.con.execute("SELECT current_setting('memory_limit'), current_setting('threads'), "
                          "current_setting('temp_directory'), current_setting('disabled_optimizers')").fetchone()
    got = dict(zip(["mem", "threads", "temp", "opt"], row))
    assert got["threads"] == 1 and got["temp"] == str(tmp_path / "spill") and "partitioned_execution" in got["opt"]
    assert got["mem"].replace(" ", "") in ("953.6MiB", "1.0GB", "1GB", "953.6MB")
    # a connection the user made: crmlab's functions use it as it is
    user = ibis.duckdb.connect()
    user.con.execute("SET threads = 2")
    before = user.con.execute("SELECT current_setting('memory_limit'), current_setting('disabled_optimizers')").fetchone()
    o = user.create_table("orders", pd.DataFrame({"order_id": ["a"], "user_id": ["u"], "revenue": [1.0],
                                                  "time": [pd.Timestamp("2026-01-01")]}))
    from crmlab.rfm import rfm_table
    assert len(rfm_table(o, as_of=pd.Timestamp("2026-02-01", tz=TZ))) == 1
    assert user.con.execute("SELECT current_setting('memory_limit'), current_setting('disabled_optimizers')").fetchone() == before
    assert user.con.execute("SELECT current_setting('threads')").fetchone()[0] == 2


def test_changed_file_is_not_trusted(tmp_path, monkeypatch):
    """A view reads the file as it is now: when it changed after the run validated it, the
    kernel's copy of the snapshot does not trust that table (it is validated where used)."""
    from bench.generate import write

    from crmlab.report.runner import build_snapshots
    src = write(tmp_path / "src", n_users=300, chunk_users=300)
    manifest, snaps = build_snapshots({(str(src), TZ): ["orders", "messages"]}, tmp_path / "run")
    assert json.loads(manifest.read_text())["snapshots"][0]["tables"]["orders"]["kind"] == "view"
    monkeypatch.setenv(S.ENV, str(manifest))
    data = S.from_environment(str(src), TZ)
    assert trusted(data.orders, "orders") and trusted(data.messages, "messages")
    o = pd.read_parquet(src / "orders.parquet")
    o.iloc[:-1].to_parquet(src / "orders.parquet", index=False)  # the file changes mid-run
    data = S.from_environment(str(src), TZ)
    assert not trusted(data.orders, "orders") and trusted(data.messages, "messages")
    assert S.from_environment(str(src), "UTC") is None  # another zone: not this run's snapshot
