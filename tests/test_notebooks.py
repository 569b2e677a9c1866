"""The report notebooks: committed clean, and rendered end to end on small generated data.

Every notebook in ``notebooks/`` is run once through the CLI (Papermill, the venv's kernel) on
a 600-customer synthetic shop written to a Parquet folder, and its HTML is checked as a
stakeholder would get it: no error, the expected section headings, tables, embedded images,
no code, nothing fetched from the network.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from crmlab.report import text as T
from crmlab.report.export import external_refs
from crmlab.report.params import notebook_parameters
from crmlab.report.runner import NOTEBOOKS, available, default_notebooks_dir

NB_DIR = default_notebooks_dir()
ALL = available(NB_DIR)
WEEK = "2026-W47"


def test_every_registered_notebook_exists():
    assert set(NOTEBOOKS) <= set(ALL), set(NOTEBOOKS) - set(ALL)


# ------------------------------------------------------------------------------ committed form
@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_clean(name):
    nb = nbformat.read(str(NB_DIR / f"{name}.ipynb"), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has outputs"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"
        else:  # prose belongs in crmlab.report.text: markdown is only an analyst's note, not rendered
            assert "remove_cell" in cell.metadata.get("tags", []), f"{name}: markdown cell would be rendered"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("name", ALL)
def test_parameters_cell_holds_plain_literals(name):
    nb = nbformat.read(str(NB_DIR / f"{name}.ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters'"
    names = []
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), \
            f"{name}: parameters cell may only assign literals to names: {ast.unparse(stmt)}"
        ast.literal_eval(stmt.value)  # raises on anything but a plain literal
        names.append(stmt.targets[0].id)
    # Papermill sees every one of them (a '=' inside a comment would hide a parameter from it)
    declared = notebook_parameters(NB_DIR / f"{name}.ipynb")
    assert list(declared) == names
    assert declared["week"]["default"] is None
    assert declared["source"]["default"] == "sample"
    assert declared["lang"]["default"] == "en"


# ------------------------------------------------------------------------------ rendered
@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    from crmlab.datasets import synthetic_shop
    folder = tmp_path_factory.mktemp("shop")
    synthetic_shop(n_users=600, weeks=12, seed=3).to_parquet(folder)
    return folder


@pytest.fixture(scope="module")
def rendered(small_source, tmp_path_factory):
    """Every notebook rendered once in English on the small shop, through the CLI."""
    from crmlab.__main__ import main
    out = tmp_path_factory.mktemp("reports")
    code = main(["report", "all", "--week", WEEK, "--source", str(small_source), "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def _h2(html: str) -> list[str]:
    import html as h
    return [h.unescape(re.sub("<[^>]+>", "", x)).strip() for x in re.findall(r"<h2[^>]*>(.*?)</h2>", html, re.S)]


EXPECTED = {  # text keys (with their arguments) of the section headings each report must have
    "weekly_uplift": [("summary", {}), ("sec_campaigns", {"weeks": 4}), ("sec_segments", {"segment_by": "lifecycle stage"}),
                      ("sec_holdout", {})],
    "message_performance": [("summary", {}), ("sec_msg_week", {}), ("sec_msg_trend", {"weeks": 6}),
                            ("sec_fatigue", {}), ("sec_compliance", {})],
    "cohort_rfm": [("summary", {}), ("sec_retention", {"period_name": "week"}), ("sec_repurchase", {}),
                   ("sec_rfm", {})],
    "funnel": [("summary", {}), ("sec_kpis", {}), ("sec_session_funnel", {}), ("sec_ordered_funnel", {"hours": "24"}),
               ("sec_device", {}), ("sec_behaviour", {})],
    "experiment_readout": [("summary", {}), ("sec_exp", {"experiment": "global_holdout"})],
}


@pytest.mark.parametrize("name", ALL)
def test_report_html(rendered, name):
    wd = rendered / WEEK
    html = (wd / f"{name}.html").read_text(encoding="utf-8")
    executed = nbformat.read(str(wd / f"{name}.ipynb"), as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert "Traceback" not in html and 'data-mime-type="application/vnd.jupyter.stderr"' not in html
    # a stakeholder summary first, then sections
    heads = _h2(html)
    assert heads and heads[0] == T.t("summary", "en")
    for key, kw in EXPECTED.get(name, [("summary", {})]):
        assert T.t(key, "en", **kw) in heads, (key, heads)
    summary = re.search(r"<div class=[\"']crm-summary[\"']>(.*?)</div>", html, re.S).group(1)
    assert summary.count("<li>") >= 2
    assert "<table" in html
    # images embedded, nothing else
    imgs = re.findall(r"<img[^>]+src=\"([^\"]+)\"", html)
    # the weekly uplift page draws an interval chart only for comparisons that have an interval
    # (on this 600-customer shop every cell may have too few users: then no empty chart is drawn)
    assert imgs or name == "weekly_uplift"
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    # no code, no prompts, no analyst notes
    assert "rep.header()" not in html and "from crmlab" not in html and 'class="jp-InputArea' not in html
    assert "Parameters are in the next cell" not in html
    # nothing fetched from the network
    assert external_refs(html) == [] and not re.search(r"<script[^>]*\bsrc=", html)
    assert "require.js" not in html and "mathjax" not in html.lower()


def test_index_links_every_report(rendered):
    page = (rendered / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', page)
    assert sorted(links) == sorted(f"{WEEK}/{n}.html" for n in ALL)
    for link in links:
        assert (rendered / link).exists()


def test_weekly_report_in_korean(small_source, tmp_path):
    from crmlab.__main__ import main
    code = main(["report", "weekly", "--week", WEEK, "--source", str(small_source), "--lang", "ko",
                 "--out", str(tmp_path), "--params", str(Path(NB_DIR).parent / "params" / "weekly.yaml"),
                 "--no-progress"])
    assert code == 0
    for name in ("weekly_uplift", "message_performance"):
        html = (tmp_path / WEEK / f"{name}.html").read_text(encoding="utf-8")
        assert '<html lang="ko">' in html
        heads = _h2(html)
        assert heads[0] == "요약"
        assert all(re.search("[가-힣]", h) for h in heads), heads  # every heading in Korean
        assert f"<h1>{T.report_title(name, 'ko')}</h1>" in html


def test_widgets_only_when_live(monkeypatch):
    """Widgets are built in a live notebook; a rendered report shows the static note instead."""
    from crmlab.report.explore import controls
    from crmlab.report.nb import Report

    calls = []
    rep = Report("funnel", week=WEEK, lang="en")
    monkeypatch.setenv("CRMLAB_REPORT", "1")
    assert rep.interactive is False
    assert controls(rep, lambda **kw: calls.append(kw), device=["app", "mobile"]) is False
    assert calls == []

    class Live(Report):
        interactive = True

    live = Live("funnel", week=WEEK, lang="en")
    assert controls(live, lambda **kw: calls.append(kw), device=["app", "mobile"], window=(1, 48, 1, 24)) is True
    assert calls and calls[0] == {"device": "app", "window": 24}  # rendered once with the defaults


def test_advertised_message_options_are_accepted_by_the_library():
    """The options a notebook's parameters cell lists (and the runner enforces before the kernel
    starts) must be exactly what crmlab.messages accepts, or a listed value crashes the report."""
    from crmlab import messages
    from crmlab.report.params import choices, notebook_parameters
    declared = notebook_parameters(NB_DIR / "message_performance.ipynb")
    assert set(choices(declared["attribution"]["help"], declared["attribution"]["default"])) == set(messages.BASES)
    assert set(choices(declared["share"]["help"], declared["share"]["default"])) == set(messages.SHARES)


def test_cdnow_cohort_report_shows_dollars(tmp_path):
    """CDNOW sold in dollars: its report printed ₩. The shop settings (the source's own here)
    format every amount on the page with Babel."""
    from crmlab.__main__ import main
    code = main(["report", "cohort_rfm", "--source", "cdnow", "--week", "1998-W26", "--set", "period=M",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    html = (tmp_path / "1998-W26" / "cohort_rfm.html").read_text(encoding="utf-8")
    assert "₩" not in html
    amounts = re.findall(r"\$[0-9]{1,3}(?:,[0-9]{3})*\.[0-9]{2}", html)
    assert len(amounts) > 20, amounts[:5]
    # 'Lost' and 'Hibernating' (one-time buyers) show P(alive) 100%: the page says why
    assert "P(alive) is 100% for a customer with no repeat purchase" in html and re.search(r"P\(alive\) is 100%[^<]*'Lost' are mostly one-time buyers", html)


@pytest.mark.parametrize("name", ["weekly_uplift", "experiment_readout"])
def test_pages_state_their_windows_and_denominators(rendered, name):
    """Every page states each window and denominator it uses (issue 13), and the weekly uplift
    and readout pages name the one holdout definition they share."""
    import html as h
    page = h.unescape((rendered / WEEK / f"{name}.html").read_text(encoding="utf-8"))
    assert f">{T.t('sec_windows', 'en')}<" in page
    key = "win_same_holdout" if name == "weekly_uplift" else "win_same_readout"
    assert T.t(key, "en", experiment="global_holdout") in page
    assert "however long that is; per user assigned by then" in page
    if name == "weekly_uplift":
        assert "in the 3 days after each user's (virtual) send" in page


def test_signs_never_wrap_away_from_amounts(rendered):
    """Defect: '+ / ₩3,321' wrapped in the weekly table; a word joiner keeps sign and amount."""
    import html as h
    page = h.unescape((rendered / WEEK / "weekly_uplift.html").read_text(encoding="utf-8"))
    assert re.search(r"[+-]\u2060₩", page)
    assert not re.search(r"[+-]₩", page)
    assert not re.search(r"[0-9] pp", page)  # '+1.2 pp' keeps a no-break space
