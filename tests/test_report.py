"""The report runner: parameter validation, safe publishing, failure handling, index, CLI.

These tests run a tiny notebook written into a temporary folder (a few seconds per kernel);
``tests/test_notebooks.py`` runs the real report notebooks.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from crmlab.__main__ import main
from crmlab.report import params as P
from crmlab.report import runner, text
from crmlab.report.export import external_refs, notebook_to_html
from crmlab.report.index import write_index


# ------------------------------------------------------------------------------ weeks
def test_parse_week_bounds():
    assert P.parse_week("2026-W47") == (dt.date(2026, 11, 16), dt.date(2026, 11, 23))
    # ISO week 1 of 2026 starts on Monday 2025-12-29; 2026 has 53 weeks, 2025 has 52.
    assert P.parse_week("2026-W01")[0] == dt.date(2025, 12, 29)
    assert P.parse_week("2026-W53")[0] == dt.date(2026, 12, 28)
    with pytest.raises(P.ParamError, match="2025 has ISO weeks W01..W52"):
        P.parse_week("2025-W53")


@pytest.mark.parametrize("bad", ["2026-47", "2026W47", "2026-W7", "W47", "2026-W00", "", "2026-w47x"])
def test_malformed_week(bad):
    with pytest.raises(P.ParamError, match="week"):
        P.parse_week(bad)


def test_last_complete_week():
    # Monday 2026-11-23 is in W48: the last complete week is W47; a Sunday is still in its week.
    assert P.last_complete_week(dt.date(2026, 11, 23)) == "2026-W47"
    assert P.last_complete_week(dt.date(2026, 11, 29)) == "2026-W47"
    assert P.last_complete_week(dt.date(2026, 1, 1)) == "2025-W52"  # Thursday of 2026-W01


# ------------------------------------------------------------------------------ a tiny notebook
PARAMS_SRC = '''week = None  # ISO week
source = "sample"  # data source
lang = "en"  # en | ko
alpha = 0.05  # significance level
windows = [1, 3]  # days
n_top = 5  # rows
rate = 1.5  # a float
limits = {"sms": 1, "email": 3}  # per channel
mode = "fast"  # speed: fast | slow
fail = False  # raise on purpose
'''

BODY_SRC = '''import sys
from crmlab.report.nb import Report
import pandas as pd
rep = Report("experiment_readout", week=week, source=source, lang=lang)
rep.header()
rep.summary([f"alpha {alpha}", f"windows {windows}"])
rep.h2("sec_exp_results")
rep.table(pd.DataFrame({"variant": ["a", "b"], "estimate": [0.1, 0.25]}))
print("PREFIX", sys.prefix)
import matplotlib.pyplot as plt
fig, ax = plt.subplots(); ax.bar(["가", "나"], [1, 2]); ax.set_title("한글")
rep.plot(ax)
if fail:
    raise RuntimeError("planted failure in the report")
'''


def make_notebook(folder: Path, name: str = "tiny", params: str = PARAMS_SRC, body: str = BODY_SRC) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    make_notebook(d)
    return d


# ------------------------------------------------------------------------------ validation
def declared(nbdir):
    return P.notebook_parameters(nbdir / "tiny.ipynb")


def test_notebook_parameters_defaults(nbdir):
    d = declared(nbdir)
    assert list(d) == ["week", "source", "lang", "alpha", "windows", "n_top", "rate", "limits", "mode", "fail"]
    assert d["alpha"]["default"] == 0.05 and d["windows"]["default"] == [1, 3] and d["week"]["default"] is None
    assert d["alpha"]["help"] == "significance level"


def test_validate_accepts_good_values(nbdir, tmp_path):
    out = P.validate("tiny", {"week": "2026-W47", "alpha": 0.1, "n_top": 3, "windows": [7],
                              "source": str(tmp_path)}, declared(nbdir))
    assert out["source"] == str(tmp_path.resolve())
    assert P.validate("tiny", {"rate": 2}, declared(nbdir)) == {"rate": 2}  # an int is a float
    assert P.validate("tiny", {"limits": {"lms": 0.5}, "windows": []}, declared(nbdir))["limits"] == {"lms": 0.5}
    assert P.validate("tiny", {"mode": "slow"}, declared(nbdir)) == {"mode": "slow"}
    assert P.choices("multiple-testing correction: holm | bh | none", "holm") == ["holm", "bh", "none"]
    assert P.choices("a | b", "c") is None


@pytest.mark.parametrize("params, message", [
    ({"alhpa": 0.1}, r"unknown parameter\(s\) \['alhpa'\]"),
    ({"week": "2026-47"}, "malformed ISO week"),
    ({"week": 202647}, "expected an ISO week"),
    ({"alpha": "0.05"}, "alpha='0.05' is of type str; expected float"),
    ({"n_top": 2.5}, "n_top=2.5 is of type float; expected int"),
    ({"fail": 1}, "fail=1 is of type int; expected bool"),
    ({"n_top": True}, "expected int"),
    ({"windows": "1,3"}, "expected list"),
    ({"windows": [1, "3"]}, "expected list"),  # elements are checked against the default's
    ({"limits": {"sms": "one"}}, "expected dict"),
    ({"source": "/no/such/folder"}, "data source not found"),
    ({"lang": "fr"}, r"lang='fr': allowed values are \['en', 'ko'\]"),
    ({"alpha": 1.5}, "alpha=1.5: must be between 0 and 1"),
    ({"mode": "medium"}, r"mode='medium': allowed values are \['fast', 'slow'\]"),  # from its comment
])
def test_validate_rejects(nbdir, params, message):
    with pytest.raises(P.ParamError, match=message):
        P.validate("tiny", params, declared(nbdir))


def test_plan_merges_file_and_overrides(nbdir, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("alpha: 0.1\nlang: ko\nnotebooks:\n  tiny:\n    n_top: 9\n")
    week, plans = runner.plan(["tiny"], week="2026-W40", params_file=f, overrides={"alpha": 0.2},
                              notebooks_dir=nbdir)
    assert week == "2026-W40"
    assert plans["tiny"] == {"alpha": 0.2, "lang": "ko", "n_top": 9, "week": "2026-W40"}
    # default week: the last complete one
    assert runner.plan(["tiny"], notebooks_dir=nbdir)[0] == P.last_complete_week()


@pytest.mark.parametrize("yaml_text, message", [
    ("alpah: 0.1\n", r"unknown parameter\(s\) \['alpah'\]: no notebook of this run declares them"),
    ("notebooks:\n  tiny:\n    bogus: 1\n", r"tiny: unknown parameter\(s\) \['bogus'\]"),
    ("notebooks:\n  nosuch:\n    alpha: 0.1\n", r"unknown notebook\(s\) \['nosuch'\]"),
    ("week: 2026-W99\n", "2026 has ISO weeks"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_plan_rejects_bad_files(nbdir, tmp_path, yaml_text, message):
    f = tmp_path / "p.yaml"
    f.write_text(yaml_text)
    with pytest.raises(P.ParamError, match=message):
        runner.plan(["tiny"], params_file=f, notebooks_dir=nbdir)


def test_cli_bad_params_start_no_kernel(nbdir, tmp_path, capsys):
    out = tmp_path / "reports"
    code = main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--week", "2026-W47",
                 "--set", "alpha=high", "--no-progress"])
    assert code == 2
    assert "alpha='high' is of type str; expected float" in capsys.readouterr().err
    assert not out.exists()  # nothing ran, nothing written
    assert main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--week", "2026-W470"]) == 2
    assert main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--source", "/nope"]) == 2
    assert main(["report", "nosuch", "--notebooks", str(nbdir), "--out", str(out)]) == 2
    assert not out.exists()


def test_cli_list_params(nbdir, capsys):
    assert main(["report", "tiny", "--notebooks", str(nbdir), "--list-params"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny:"
    alpha = next(line for line in lines if line.strip().startswith("alpha"))
    assert "float" in alpha and "0.05" in alpha and "significance level" in alpha
    assert any(line.strip().startswith("windows") and "[1, 3]" in line for line in lines)


# ------------------------------------------------------------------------------ running
def test_run_publishes_then_failure_keeps_previous(nbdir, tmp_path, capsys):
    out = tmp_path / "reports"
    args = ["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--week", "2026-W47", "--no-progress"]
    assert main(args) == 0
    wd = out / "2026-W47"
    html = (wd / "tiny.html").read_text(encoding="utf-8")
    executed = nbformat.read(str(wd / "tiny.ipynb"), as_version=4)
    # the kernel is this interpreter's environment (the venv), not another Python
    prefix = [o["text"] for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert any(f"PREFIX {sys.prefix}" in t for t in prefix), prefix
    # parameters injected
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'week = "2026-W47"' in injected[0].source
    # static, self-contained page without code
    assert "<table" in html and "data:image/png;base64," in html
    assert "rep.header()" not in html and 'class="jp-InputArea' not in html
    assert external_refs(html) == []
    assert not re.search(r"<script[^>]+src=", html)
    assert "2026-11-16" in html  # week bounds in the header
    good_html = html

    # the same report, now failing: exit 1, previous report untouched, failed run kept
    capsys.readouterr()
    assert main(args + ["--set", "fail=true"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: planted failure in the report" in err
    assert "raise RuntimeError" in err  # the failing cell's source is shown
    assert (wd / "tiny.html").read_text(encoding="utf-8") == good_html
    failed = nbformat.read(str(wd / "tiny.failed.ipynb"), as_version=4)
    errors = [o for c in failed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"
    assert not [p for p in wd.iterdir() if p.name.startswith(".tmp")]  # temp folders cleaned
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="2026-W47/tiny.html"' in index and 'href="2026-W47/tiny.failed.ipynb"' in index

    # a later good run clears the failure mark
    assert main(args) == 0
    assert not (wd / "tiny.failed.ipynb").exists()
    assert "failed.ipynb" not in (out / "index.html").read_text(encoding="utf-8")
    manifest = json.loads((wd / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tiny"]["parameters"]["week"] == "2026-W47"


def test_failure_without_previous_report(nbdir, tmp_path):
    out = tmp_path / "reports"
    code = main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--week", "2026-W46",
                 "--set", "fail=true", "--no-progress"])
    assert code == 1
    wd = out / "2026-W46"
    assert (wd / "tiny.failed.ipynb").exists() and not (wd / "tiny.html").exists()


# ------------------------------------------------------------------------------ index and export
def test_index_links_every_week(tmp_path):
    out = tmp_path / "reports"
    for week, names in {"2026-W45": ["weekly_uplift"], "2026-W46": ["weekly_uplift", "message_performance"],
                        "2026-W47": ["message_performance"]}.items():
        (out / week).mkdir(parents=True)
        for n in names:
            (out / week / f"{n}.html").write_text("<html></html>")
    (out / "notes").mkdir()  # not a week: ignored
    page = write_index(out).read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', page)
    assert links == ["2026-W47/message_performance.html", "2026-W46/weekly_uplift.html",
                     "2026-W46/message_performance.html", "2026-W45/weekly_uplift.html"]
    assert external_refs(page) == []


def test_external_refs_detects_cdn_scripts():
    page = ('<script src="https://cdn.example/require.js"></script><link href="//fonts.example/x.css" rel="stylesheet">'
            '<a href="https://example.com">a plain link is fine</a><img src="data:image/png;base64,xx">')
    assert external_refs(page) == ["https://cdn.example/require.js", "//fonts.example/x.css"]


def test_export_drops_widget_state_and_cdn(tmp_path):
    """nbconvert's lab template would add require.js, MathJax and the widget manager from a CDN."""
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_code_cell("w")
    widget.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(Dropdown(...),))"})]
    warn = nbformat.v4.new_code_cell("x")
    warn.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: noisy\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("$x^2$ math"), nbformat.v4.new_code_cell("print(1)"), widget, warn]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                             "version_minor": 0}}
    html = notebook_to_html(nb, tmp_path / "x.html", lang="ko")
    assert external_refs(html) == [] and "<script src" not in html
    assert '<html lang="ko">' in html and "print(1)" not in html
    assert "VBox(children" not in html and "UserWarning: noisy" not in html  # live widgets, stderr dropped


# ------------------------------------------------------------------------------ text
def test_both_languages_have_the_same_keys():
    assert set(text.TEXT["en"]) == set(text.TEXT["ko"])
    for key in text.TEXT["en"]:
        en = set(re.findall(r"{(\w+)", text.TEXT["en"][key]))
        ko = set(re.findall(r"{(\w+)", text.TEXT["ko"][key]))
        assert en == ko, key


def test_number_formats():
    assert text.pct(0.1234) == "12.3%"
    # a no-break space before the unit and a word joiner after a sign keep them with the number
    assert text.pp(0.012) == "+1.2\u00a0pp"
    assert text.money(12345.6) == "₩12,346" and text.money(-5) == "-₩5"
    assert text.bind_signs("(-₩5; +$3, a - b, -1.2, skew-corrected)") == "(-\u2060₩5; +\u2060$3, a - b, -1.2, skew-corrected)"
    assert text.pval(0.0004) == "< 0.001" and text.p_eq(0.0123) == "p = 0.012"
    assert text.prob(0.99995) == "> 99.9%" and text.prob(0.5) == "50.0%"
    with pytest.raises(ValueError, match="lang='fr'"):
        text.t("summary", "fr")


def test_experiment_summary_recommends_the_significant_winner():
    import pandas as pd

    from crmlab.report.analyses import ExperimentResult

    class Srm:
        flagged, p_value = False, 0.5

    res = pd.DataFrame([
        {"metric": "conversion", "variant": "B", "control": "A", "estimate": 0.06, "estimate_control": 0.05,
         "abs_lift": 0.01, "rel_lift": 0.2, "rel_ci_low": 0.05, "rel_ci_high": 0.35, "p_value": 0.004,
         "p_adjusted": 0.008, "correction": "holm", "abs_ci_low": 0.003, "abs_ci_high": 0.017},
        {"metric": "conversion", "variant": "C", "control": "A", "estimate": 0.052, "estimate_control": 0.05,
         "abs_lift": 0.002, "rel_lift": 0.04, "rel_ci_low": -0.1, "rel_ci_high": 0.2, "p_value": 0.6,
         "p_adjusted": 0.6, "correction": "holm", "abs_ci_low": -0.005, "abs_ci_high": 0.009}])
    r = ExperimentResult("exp1", "A", Srm(), res, pd.DataFrame(columns=["variant", "prob_better"]), pd.DataFrame())
    en = text.summary_experiment(r, 0.05, "en")
    # the claim (win after correction) first, in the findings' words, with the adjusted p
    assert en[0] == "Win: 'B' in 'exp1', conversion rate 6.00% against 5.00% (+1.00\u00a0pp; adjusted p = 0.008)."
    assert en[-1] == "Recommendation: roll out B (conversion rate +20.0%)."
    assert not any("'C'" in b for b in en)  # an inconclusive arm is not a claim
    ko = text.summary_experiment(r, 0.05, "ko")
    assert "권장: B을(를) 전체에 적용하세요" in ko[-1]
    # with a sample-ratio mismatch the only advice is to fix it
    Srm.flagged, Srm.p_value = True, 1e-6
    assert text.summary_experiment(r, 0.05, "en")[-1].startswith("Recommendation: fix the assignment problem")
    # nothing significant: wait
    Srm.flagged = False
    r.results = res.assign(p_adjusted=0.3, p_value=0.3)
    assert "no clear winner" in text.summary_experiment(r, 0.05, "en")[-1]


def test_cohort_report_survives_data_without_repeat_buyers():
    """Every customer with one order (as in Hillstrom): segments still computed, CLV reported as
    not computable instead of failing the whole report."""
    import pandas as pd

    from crmlab.datasets import ShopData
    from crmlab.report.analyses import cohort_rfm

    n = 40
    orders = pd.DataFrame({"order_id": [f"o{i}" for i in range(n)], "user_id": [f"u{i}" for i in range(n)],
                           "time": pd.date_range("2026-09-01", periods=n, freq="1D", tz="Asia/Seoul"),
                           "revenue": [10_000.0 + 100 * i for i in range(n)]})
    res = cohort_rfm(ShopData(orders=orders), pd.Timestamp("2026-11-23", tz="Asia/Seoul"))
    assert res.segments is not None and int(res.segments["customers"].sum()) == n  # no customer lost
    assert res.value is None and res.problems and res.problems[0].startswith("CLV:")
    assert float(res.repurchase["rate"].iloc[0]) == 0.0


def test_uplift_summary_scales_winner_and_stops_loser():
    """Totals count claims only (a win and a loss here, not the inconclusive 'C'), every claim is
    stated (the loss first), and recommendations rest on claims only; rows without the engine's
    verdict, family and correction are never claims."""
    import pandas as pd

    from crmlab.report.analyses import UpliftResult

    def row(exp, metric, t_, c, est, p, inc, verdict):
        return {"experiment": exp, "segment": "all", "metric": metric, "estimate": t_, "estimate_control": c,
                "abs_lift": est, "abs_ci_low": est - 0.01, "abs_ci_high": est + 0.01, "p_value": p, "p_adjusted": p,
                "incremental": inc, "cost": 1000.0, "cost_per_incremental": 50.0, "verdict": verdict,
                "status": "ok", "family": f"{metric}: 3 tested cells", "correction": "holm"}
    camp = pd.DataFrame([row("A", "conversion_rate", 0.08, 0.05, 0.03, 0.001, 30, "win"),
                         row("A", "revenue_per_user", 5000.0, 3000.0, 2000.0, 0.01, 2_000_000, "win"),
                         row("B", "conversion_rate", 0.03, 0.05, -0.02, 0.01, -10, "loss"),
                         row("C", "conversion_rate", 0.051, 0.05, 0.001, 0.8, 1, "inconclusive")])
    seg = pd.DataFrame([{**row("A", "conversion_rate", 0.1, 0.05, 0.05, 0.01, 20, "win"), "segment": "at risk"},
                        {**row("A", "conversion_rate", 0.06, 0.05, 0.01, 0.5, 5, "inconclusive"),
                         "segment": "active"}])
    res = UpliftResult(camp, seg, None, None, ["A", "B", "C"])
    en = text.summary_uplift(res, 0.05, "en", week="2026-W47", weeks=4)
    assert en[0].startswith("Loss: 'B', conversion 3.00% against 5.00%")
    assert "Counting only the conversion wins and losses above ('A', 'B'): about 20 extra buyers." in en  # 30 - 10
    assert any("₩2,000,000" in b for b in en)
    assert "Do: send 'A' more widely, starting with at risk customers, where it wins on its own." in en
    assert "Do: stop or rework 'B'; it lowered conversion." in en
    assert not any("'C'" in b for b in en)
    ko = text.summary_uplift(res, 0.05, "ko", week="2026-W47", weeks=4)
    assert "이탈 위험 고객부터" in " ".join(ko) and "할 일: 'B'을(를) 중단하거나 수정하세요. 전환율을(를) 낮췄습니다." in ko
    # without verdicts (an older table), nothing is claimed and nothing recommended
    bare = UpliftResult(camp.drop(columns=["verdict", "family", "correction"]), None, None, None, ["A", "B", "C"])
    assert text.summary_uplift(bare, 0.05, "en", week="2026-W47", weeks=4)[-1] == text.t("rec_wait", "en")


def test_message_summary_flags_compliance():
    import pandas as pd

    from crmlab.report.analyses import MessageResult

    week = pd.DataFrame({"campaign": ["x", "y"], "channel": ["sms", "email"], "sent": [100, 300],
                         "delivered": [90, 270], "clicked": [9, 27], "converted": [3, 6], "revenue": [1000.0, 5000.0],
                         "optouts": [1, 0], "conversion_rate": [3 / 90, 6 / 270]})
    prev = week.assign(sent=[50, 50], delivered=[50, 50], clicked=[5, 5], converted=[1, 1])
    comp = pd.DataFrame({"rule": ["night_ad_without_consent", "ad_without_prefix"], "checked": [400, 400],
                         "violations": [3, 5], "description": ["", ""]})
    res = MessageResult(week, prev, None, None, None, None, comp, None)
    en = text.summary_messages(res, "en", week="2026-W47")
    assert en[0] == "400 messages went out this week (100 the week before); 360 of them were delivered (90.0%)."
    assert en[1].startswith("Of delivered messages, 10.0% were clicked and 2.5% led to an order")
    # click rate 10% both weeks; conversion 9/360 = 2.5% against 2/100 = 2.0%
    assert en[2] == "Against the previous week: click rate unchanged, conversion rate up 0.5 pp."
    assert "'y' on email (₩5,000" in en[3]
    assert "8 message(s) broke a rule this week; the most frequent is 'ad_without_prefix' (5 messages)." in en
    assert en[-1] == "Do: fix the compliance issues (night_ad_without_consent, ad_without_prefix) before the next send."


def test_report_week_excludes_next_monday_midnight():
    """The report's as_of is the week's last instant: an order stamped exactly at next Monday
    00:00 belongs to the next week and is excluded, and counted."""
    import pandas as pd
    from crmlab.report.nb import Report
    from crmlab.rfm import rfm_table
    rep = Report("weekly_uplift", week="2026-W47")
    assert rep.end == pd.Timestamp("2026-11-23", tz="Asia/Seoul") and rep.as_of < rep.end
    o = pd.DataFrame({"order_id": ["in", "edge"], "user_id": ["u", "u"], "revenue": [1.0, 2.0],
                      "time": [pd.Timestamp("2026-11-22 23:59:59", tz="Asia/Seoul"), rep.end]})
    r = rfm_table(o, as_of=rep.as_of)
    assert r["frequency"].tolist() == [1] and r["monetary"].tolist() == [1.0]
    assert sum(r.attrs["excluded"].values()) == 1


def test_weekly_uplift_leaves_out_windows_that_end_after_the_week():
    """Users messaged in the week's last days have not had their whole window: the report leaves
    them out and counts them; the summary says so when no campaign has a complete window yet."""
    import pandas as pd

    from crmlab.datasets import synthetic_shop
    from crmlab.report.analyses import UpliftResult, experiment_readout, last_instant, weekly_uplift

    shop = synthetic_shop(n_users=1_500, weeks=8, seed=5, end=pd.Timestamp("2025-06-02", tz="Asia/Seoul"))
    a = shop.assignments
    t = pd.to_datetime(a["assigned_time"])
    camp = a[a["variant"].isin(["treatment", "control"]) & (a["experiment"] != "global_holdout")]
    # a week that ends while some campaign is still sending
    end = pd.to_datetime(camp["assigned_time"]).median().ceil("D")
    start = end - pd.Timedelta(weeks=2)
    res = weekly_uplift(shop, start, end, window_days=3, segment_by="none", costs="none")
    sel = a["experiment"].isin(res.experiments) & (t >= start) & (t < end) & a["variant"].isin(["treatment", "control"])
    cut = int((t[sel] > last_instant(end) + pd.Timedelta(microseconds=1) - pd.Timedelta(days=3)).sum())
    assert 0 < cut < int(sel.sum())
    assert res.incomplete == cut
    conv = res.campaigns[res.campaigns["metric"] == "conversion_rate"]
    assert int((conv["n_treatment"] + conv["n_control"]).sum()) + cut == int(sel.sum())
    # The experiment readout applies the same rule to outcomes measured from orders.
    exp = a.loc[a["experiment"].isin(res.experiments), "experiment"].value_counts().index[0]
    as_of = t[a["experiment"] == exp].median() + pd.Timedelta(days=2)  # about half of the sends are cut
    mine = t[(a["experiment"] == exp) & (t <= as_of)]
    cut2 = int((mine > as_of + pd.Timedelta(microseconds=1) - pd.Timedelta(days=2)).sum())
    ro = experiment_readout(shop, exp, control="control", window_days=2, as_of=as_of)
    assert 0 < cut2 < len(mine)
    assert f"{cut2:,} assignments whose 2-day window had not ended by {as_of} left out" in ro.notes
    assert int(ro.arms["n"].sum()) + cut2 == len(mine)

    pending = UpliftResult(pd.DataFrame(), None, None, None, ["A"], incomplete=120)
    assert text.summary_uplift(pending, 0.05, "en", week="2026-W47", weeks=1, window_days=3) == [
        "120 messaged or control users are waiting for their 3-day window to end; they are left out until it has."]
    assert "120명" in text.summary_uplift(pending, 0.05, "ko", week="2026-W47", weeks=1, window_days=3)[0]


def test_insufficient_uplift_rows_say_so_in_both_languages():
    """The defect: an insufficient revenue row read 'this could be chance (p = -, ...)'."""
    from crmlab.report.text import explain_uplift
    row = {"experiment": "camp", "metric": "revenue_per_user", "estimate": 5018.0, "estimate_control": 1697.0,
           "abs_lift": 3321.0, "abs_ci_low": float("nan"), "abs_ci_high": float("nan"), "p_value": float("nan"),
           "incremental": 5.4e6, "status": "insufficient", "reason": "too_few_effective_users", "n_needed": 595.0}
    en = explain_uplift(row, 0.05, "en")
    assert "too few buyers" in en and "595 control users" in en and "p =" not in en
    ko = explain_uplift(row, 0.05, "ko")
    assert "595" in ko and "판정하지 않습니다" in ko
    ok = dict(row, status="ok", p_value=0.01, ci_low=100.0, ci_high=6000.0)
    assert "p = 0.01" in explain_uplift(ok, 0.05, "en")
