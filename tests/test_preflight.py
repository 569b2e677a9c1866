"""Preflight: data that is not ready, and parameters naming nothing, stop a run before any kernel
starts (exit 3 / 2), publish nothing and leave the previous report byte-identical."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from crmlab.__main__ import main
from crmlab.report import preflight as PF
from crmlab.report import registry, runner
from crmlab.report.runner import default_notebooks_dir, plan_declared

from tests.test_publish import fake_execute
from tests.test_report import make_notebook

WEEK = "2026-W47"  # Monday 2026-11-16 .. Sunday 2026-11-22 (Asia/Seoul)
END = pd.Timestamp("2026-11-23", tz="Asia/Seoul")


@pytest.fixture(scope="module")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=600, weeks=12, seed=3, end=pd.Timestamp("2026-11-30", tz="Asia/Seoul"))


def write_source(shop, folder: Path, **changes) -> Path:
    """``shop`` as a Parquet folder; ``changes`` maps a table to a new frame, or None to drop it."""
    from crmlab.datasets import ShopData
    tables = {**shop.tables(), **changes}
    ShopData(**{k: v for k, v in tables.items() if v is not None}).to_parquet(folder)
    return folder


def _before(df: pd.DataFrame, col: str, t: pd.Timestamp) -> pd.DataFrame:
    return df[pd.to_datetime(df[col]) < t]


@pytest.fixture(scope="module")
def good(shop, tmp_path_factory):
    return write_source(shop, tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def stale(shop, tmp_path_factory):
    """Data that end on the Wednesday of the report week."""
    cut = pd.Timestamp("2026-11-19", tz="Asia/Seoul")
    return write_source(shop, tmp_path_factory.mktemp("stale"), orders=_before(shop.orders, "time", cut),
                        events=_before(shop.events, "time", cut), messages=_before(shop.messages, "sent_time", cut))


def problems(names, source, week=WEEK, **overrides):
    w, plans, declared = plan_declared(names, week=week, overrides={"source": str(source), **overrides},
                                       notebooks_dir=default_notebooks_dir())
    return PF.check_plans(names, plans, declared, w)


ALL = list(registry.REGISTRY)


def test_ready_data_has_no_problem(good):
    assert problems(ALL, good) == []


def test_data_ending_before_the_week_end_is_stale(stale):
    found = problems(ALL, stale)
    kinds = {(p.notebook, p.kind) for p in found}
    assert kinds == {("weekly_uplift", "stale"), ("message_performance", "stale"), ("cohort_rfm", "stale"),
                     ("funnel", "stale"), ("experiment_readout", "stale")}
    msg = next(p.message for p in found if p.notebook == "cohort_rfm")
    assert msg.startswith("table 'orders' ends at 2026-11-18") and "before 2026-W47 ends (2026-11-23 00:00)" in msg
    assert "24 h tolerance" in msg
    # the tolerance is stated and honoured: within 5 days of the end is fine with 5 days
    w, plans, declared = plan_declared(["cohort_rfm"], week=WEEK, overrides={"source": str(stale)},
                                       notebooks_dir=default_notebooks_dir())
    assert PF.check_plans(["cohort_rfm"], plans, declared, w, tolerance_hours=24 * 5) == []


def test_the_tolerance_boundary(shop, tmp_path):
    """Latest order exactly at the week's end minus 24 h passes; a second earlier does not."""
    o = _before(shop.orders, "time", END - pd.Timedelta(hours=24))
    edge = o.iloc[[-1]].assign(order_id="edge", time=END - pd.Timedelta(hours=24))
    src = write_source(shop, tmp_path / "a", orders=pd.concat([o, edge]))
    assert problems(["cohort_rfm"], src) == []
    src2 = write_source(shop, tmp_path / "b", orders=pd.concat([o, edge.assign(time=edge["time"] - pd.Timedelta(seconds=1))]))
    assert [p.kind for p in problems(["cohort_rfm"], src2)] == ["stale"]


def test_missing_table_and_column(shop, tmp_path):
    src = write_source(shop, tmp_path / "s", messages=None)
    found = problems(["weekly_uplift", "message_performance"], src)
    assert {(p.notebook, p.kind, p.message) for p in found} == {
        ("weekly_uplift", "missing", "the source has no messages table"),
        ("message_performance", "missing", "the source has no messages table")}
    src2 = write_source(shop, tmp_path / "c", events=shop.events.drop(columns=["event"]))
    assert [(p.kind, p.message) for p in problems(["funnel"], src2)] == [
        ("missing", "table 'events' lacks column(s) ['event']")]


def test_null_times_are_invalid_not_silently_dropped(shop, tmp_path):
    """The glue used to drop messages with a null sent_time (and assignments with a null
    assigned_time) by filtering on the week before anything validated them."""
    m = shop.messages.copy()
    m.loc[m.index[:300], "sent_time"] = pd.NaT
    a = shop.assignments.copy()
    a.loc[a.index[:500], "assigned_time"] = pd.NaT
    src = write_source(shop, tmp_path / "n", messages=m, assignments=a)
    found = problems(["weekly_uplift", "message_performance"], src)
    msgs = {p.message for p in found if p.kind == "invalid"}
    assert "table 'messages', column 'sent_time': required value is missing (null) (300 rows)" in msgs
    assert "table 'assignments', column 'assigned_time': required value is missing (null) (500 rows)" in msgs
    # the report's own loading path raises like the library does
    from crmlab import DataError
    from crmlab.report.nb import Report, _load
    _load.cache_clear()
    with pytest.raises(DataError, match="sent_time|assigned_time"):
        Report("message_performance", week=WEEK, source=str(src)).data


@pytest.mark.parametrize("names, setting, message", [
    (["weekly_uplift"], {"treatment": "treatmnet"}, "treatment='treatmnet': no experiment has an arm of that name"),
    (["weekly_uplift"], {"control": "ctrl"}, "control='ctrl': no experiment has an arm of that name"),
    (["weekly_uplift"], {"holdout_experiment": "global_holdot"}, "holdout_experiment='global_holdot': no such experiment"),
    (["experiment_readout"], {"experiment": "nosuch"}, "experiment='nosuch': no such experiment"),
    (["experiment_readout"], {"experiment": "global_holdout", "control": "control"},
     "control='control': not an arm of ['global_holdout']"),
    (["funnel"], {"by": "nosuchcol"}, "by='nosuchcol': not a column of the events table"),
    (["funnel"], {"steps": ["product_view", "add_to_crat"]}, "steps: event(s) ['add_to_crat'] never occur"),
    (["message_performance"], {"channel_windows": {"smss": 1}}, "channel_windows: unknown channel(s) ['smss']"),
])
def test_parameters_naming_nothing(good, names, setting, message):
    found = problems(names, good, **setting)
    assert [p.kind for p in found] == ["param"] and message in found[0].message


# ------------------------------------------------------------------------------ through the CLI
def weekly_args(source, out, *extra):
    return ["report", "weekly", "--week", WEEK, "--source", str(source), "--out", str(out), "--no-progress", *extra]


@pytest.mark.parametrize("setting, message", [
    ("treatment=treatmnet", "treatment='treatmnet'"),
    ("lookback_weeks=0", "lookback_weeks=0: must be >= 1"),
    ("lookback_weeks=-3", "lookback_weeks=-3: must be >= 1"),
    ("trend_weeks=0", "trend_weeks=0: must be >= 1"),
    ("window_days=0", "window_days=0: must be > 0"),
    ("channel_windows={sms: -1}", "channel_windows['sms']=-1: must be > 0"),
])
def test_cli_bad_parameters_exit_2_before_any_kernel(good, tmp_path, monkeypatch, capsys, setting, message):
    def no_kernel(*a, **kw):
        raise AssertionError("a kernel was started")
    monkeypatch.setattr(runner, "execute", no_kernel)
    out = tmp_path / "reports"
    assert main(weekly_args(good, out, "--set", setting, "--allow-partial")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_cli_funnel_by_nosuchcol_exits_2(good, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["report", "funnel", "--week", WEEK, "--source", str(good), "--out", str(out),
                 "--set", "by=nosuchcol"]) == 2
    assert "by='nosuchcol'" in capsys.readouterr().err and not out.exists()


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under the reports folder (also through the week symlinks), by path."""
    import os
    files = {}
    for root, _, names in os.walk(out, followlinks=True):
        for n in names:
            p = Path(root) / n
            files[str(p.relative_to(out))] = p.read_bytes()
    return files


@pytest.fixture()
def tiny_needs_orders(monkeypatch, tmp_path):
    """The tiny test notebook, registered as reading orders (covering the week)."""
    d = tmp_path / "notebooks"
    make_notebook(d)
    monkeypatch.setitem(registry.REGISTRY, "tiny", registry.Entry("weekly", registry.Needs(
        tables={"orders": ("user_id", "time", "revenue")}, covers=("orders",))))
    return d


def test_stale_and_partial_sources_exit_3_and_keep_the_previous_report(shop, good, stale, tiny_needs_orders,
                                                                        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "execute", fake_execute)
    out = tmp_path / "reports"
    args = ["report", "tiny", "--notebooks", str(tiny_needs_orders), "--week", WEEK, "--out", str(out), "--no-progress"]
    assert main(args + ["--source", str(good)]) == 0
    before = snapshot(out)
    assert f"{WEEK}/tiny.html" in before
    no_orders = write_source(shop, tmp_path / "no_orders", orders=None)
    bad_rows = write_source(shop, tmp_path / "bad", orders=shop.orders.assign(
        revenue=[-1.0] + list(shop.orders["revenue"].iloc[1:])))
    for source, message in [(stale, "data not ready: table 'orders' ends at 2026-11-18"),
                            (no_orders, "data not ready: the source has no orders table [tiny]"),
                            (bad_rows, "table 'orders', column 'revenue': negative value (1 row)")]:
        capsys.readouterr()
        assert main(args + ["--source", str(source)]) == 3
        err = capsys.readouterr().err
        assert err.startswith("error: " + message[:0]) and message in err and err.count("\n") == 1, err
        assert snapshot(out) == before  # byte-identical, nothing published, no leftovers
    # invalid rows are never published, even when partial data is allowed
    assert main(args + ["--source", str(bad_rows), "--allow-partial"]) == 3
    assert snapshot(out) == before


def test_allow_partial_publishes_with_a_banner(stale, tiny_needs_orders, tmp_path, capsys):
    out = tmp_path / "reports"
    args = ["report", "tiny", "--notebooks", str(tiny_needs_orders), "--week", WEEK, "--out", str(out), "--no-progress",
            "--source", str(stale), "--allow-partial"]
    assert main(args) == 0
    html = (out / WEEK / "tiny.html").read_text(encoding="utf-8")
    body = html[html.index("<body"):]
    banner = body[:body.index("</div>")]
    assert 'class="crm-partial"' in banner and "Partial data" in banner and "table &#x27;orders&#x27; ends at" in banner
    import json
    assert json.loads((out / WEEK / "manifest.json").read_text())["tiny"]["partial"][0].startswith("table 'orders' ends")
    assert "partial data" in (out / "index.html").read_text(encoding="utf-8")


def test_check_command(good, stale, capsys):
    assert main(["check", str(good), "--week", WEEK]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["ok", n] for n in ALL]
    assert main(["check", str(stale), "--week", WEEK, "--report", "weekly"]) == 3
    cap = capsys.readouterr()
    assert "PROBLEM  weekly_uplift" in cap.out and "[stale] table 'orders' ends at 2026-11-18" in cap.out
    assert cap.err.startswith("error: data not ready") and cap.err.count("\n") == 1
    assert main(["check", str(good), "--week", WEEK, "--set", "treatment=treatmnet", "--report", "weekly"]) == 2
    assert main(["check", "/no/such/source", "--week", WEEK]) == 2


def test_hillstrom_readout_needs_no_orders():
    """Hillstrom brings per-user outcomes; its orders table (one day in 2008) does not have to
    cover the week, so the readout is ready for any week."""
    assert problems(["experiment_readout"], "hillstrom") == []
    assert [p.kind for p in problems(["cohort_rfm"], "hillstrom")] == ["stale"]


# ------------------------------------------------------------------------------ shop settings
def test_shop_settings_order_and_checks(good, tmp_path):
    from crmlab.report.params import ParamError
    from crmlab.report.shop import Shop, resolve
    assert resolve("sample") == Shop("KRW", "Asia/Seoul", "en")
    assert resolve("sample", lang="ko") == Shop("KRW", "Asia/Seoul", "ko_KR")
    assert resolve("cdnow").currency == "USD"
    folder = tmp_path / "shop"
    shutil.copytree(good, folder)
    (folder / "shop.yaml").write_text("currency: USD\ntimezone: America/New_York\nlocale: en_US\n")
    assert resolve(str(folder)) == Shop("USD", "America/New_York", "en_US")
    assert resolve(str(folder), currency="EUR", locale="de_DE") == Shop("EUR", "America/New_York", "de_DE")
    for kw, message in [({"currency": "WON"}, "currency='WON': not an ISO 4217"),
                        ({"timezone": "Asia/Seul"}, "timezone='Asia/Seul': not an IANA time zone"),
                        ({"locale": "xx_YY"}, "locale='xx_YY': not a locale")]:
        with pytest.raises(ParamError, match=message):
            resolve("sample", **kw)
    (folder / "shop.yaml").write_text("currncy: USD\n")
    with pytest.raises(ParamError, match=r"unknown setting\(s\) \['currncy'\]"):
        resolve(str(folder))


def test_numbers_follow_the_shop(good, tmp_path):
    from crmlab.report import text as T
    from crmlab.report.nb import Report
    folder = tmp_path / "shop"
    shutil.copytree(good, folder)
    (folder / "shop.yaml").write_text("currency: USD\nlocale: en_US\n")
    try:
        rep = Report("cohort_rfm", week=WEEK, source=str(folder))
        assert (rep.shop.currency, rep.tz) == ("USD", "Asia/Seoul")
        assert T.money(12345.6) == "$12,345.60" and T.money(-5) == "-$5.00"
        Report("cohort_rfm", week=WEEK, source=str(folder), locale="de_DE", currency="EUR")
        assert T.money(12345.6) == "12.345,60\xa0€" and T.num(1234567) == "1.234.567" and T.pct(0.125) == "12,5%"
        Report("cohort_rfm", week=WEEK, source="sample", lang="ko")
        assert T.money(12345.6) == "₩12,346"
    finally:
        T.use_shop("KRW", "en")


def test_cli_bad_shop_setting_exits_2(good, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(weekly_args(good, out, "--set", "currency=WON")) == 2
    err = capsys.readouterr().err
    assert "currency='WON': not an ISO 4217 currency code" in err and err.count("\n") == 1 and not out.exists()
