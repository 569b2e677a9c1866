"""crmlab.abtest.readout on the bundled Hillstrom e-mail test, checked against independent
computations on the raw per-customer file (statsmodels / scipy on counts and values)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import test_proportions_2indep as wald_2indep, confint_proportions_2indep, proportions_chisquare, proportions_ztest

from crmlab.abtest import Readout, plot_forest, readout
from crmlab.datasets import load_hillstrom

CONTROL = "No E-Mail"
ARMS = ("Mens E-Mail", "Womens E-Mail")


@pytest.fixture(scope="module")
def hill():
    return load_hillstrom()


@pytest.fixture(scope="module")
def ro(hill) -> Readout:
    return readout(hill.assignments, hill.outcomes, experiment="hillstrom_email", control=CONTROL,
                   metrics=["visit", "conversion", "spend"], correction="holm", scope="both",
                   heavy_tail=("spend",), n_boot=500, seed=1)


def test_srm_comes_first_and_matches_scipy(ro, hill):
    counts = hill.assignments["variant"].value_counts().sort_index()
    assert counts.to_dict() == {"Mens E-Mail": 21307, "No E-Mail": 21306, "Womens E-Mail": 21387}
    ref = sps.chisquare(counts.to_numpy())
    assert ro.srm.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ro.srm.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert not ro.srm.flagged
    assert str(ro).startswith("SRM check: no sample ratio mismatch")
    assert ro._repr_html_().index("SRM check") < ro._repr_html_().index("<table")


@pytest.mark.parametrize("metric", ["visit", "conversion"])
@pytest.mark.parametrize("arm", ARMS)
def test_proportion_rows_match_statsmodels(ro, hill, metric, arm):
    o = hill.outcomes
    xt, nt = int(o.loc[o.variant == arm, metric].sum()), int((o.variant == arm).sum())
    xc, nc = int(o.loc[o.variant == CONTROL, metric].sum()), int((o.variant == CONTROL).sum())
    row = ro.table.set_index(["metric", "variant"]).loc[(metric, arm)]
    assert (row["n"], row["n_control"]) == (nt, nc)
    assert row["estimate"] == pytest.approx(xt / nt, rel=1e-12)
    assert row["estimate_control"] == pytest.approx(xc / nc, rel=1e-12)
    # Hillstrom's arms are equal to 1 user in 21,306, so the skewness of the difference is ~0
    # and the default (skewness-corrected z) reduces to the unpooled Wald z-test and interval.
    _, p_wald = wald_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert row["p_value"] == pytest.approx(p_wald, rel=1e-2)  # the gamma T^2/3 term: ~0.5 % at z = 4
    assert row["p_value"] == pytest.approx(proportions_ztest([xt, xc], [nt, nc])[1], rel=0.05)
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert (row["abs_ci_low"], row["abs_ci_high"]) == pytest.approx((lo, hi), rel=1e-3)
    assert row["rel_p_value"] == row["p_value"]  # one test, one answer
    assert row["status"] == "ok"
    assert row["method"].startswith("skewness-corrected z")


def test_published_hillstrom_figures(ro):
    t = ro.table.set_index(["metric", "variant"])
    # visit rates: 18.28 % (men's), 15.14 % (women's), 10.62 % (no e-mail)
    assert t.loc[("visit", "Mens E-Mail"), "estimate"] == pytest.approx(3894 / 21307)
    assert t.loc[("visit", "Womens E-Mail"), "estimate"] == pytest.approx(3238 / 21387)
    assert t.loc[("visit", "Mens E-Mail"), "estimate_control"] == pytest.approx(2262 / 21306)
    # spend per customer: $1.42 (men's), $1.08 (women's), $0.65 (no e-mail)
    assert t.loc[("spend", "Mens E-Mail"), "estimate"] == pytest.approx(30311.69 / 21307, rel=1e-6)
    assert t.loc[("spend", "Mens E-Mail"), "estimate_control"] == pytest.approx(13908.33 / 21306, rel=1e-6)


@pytest.mark.parametrize("arm", ARMS)
def test_spend_is_welch_on_the_raw_values(ro, hill, arm):
    o = hill.outcomes
    t, c = o.loc[o.variant == arm, "spend"], o.loc[o.variant == CONTROL, "spend"]
    ref = sps.ttest_ind(t, c, equal_var=False)
    row = ro.table.set_index(["metric", "variant"]).loc[("spend", arm)]
    # equal arms: the skewness correction is ~0 and the statistic is Welch's (normal reference)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-2)  # normal vs t(df ~ 42,000) at z = 5
    assert row["abs_lift"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
    assert row["method"].startswith("skewness-corrected Welch z")


def test_holm_over_all_six_tests_and_omnibus(ro, hill):
    assert len(ro.table) == 6
    np.testing.assert_allclose(ro.table["p_adjusted"], multipletests(ro.table["p_value"], method="holm")[1],
                               rtol=1e-12)
    assert (ro.table["correction"] == "holm across both").all()
    o = hill.outcomes
    g = o.groupby("variant")
    for metric in ("visit", "conversion"):
        chi2, p, _ = proportions_chisquare(g[metric].sum().to_numpy(), g.size().to_numpy())
        row = ro.omnibus.set_index("metric").loc[metric]
        assert row["statistic"] == pytest.approx(chi2, rel=1e-9) and row["df"] == 2
    assert "spend" not in set(ro.omnibus["metric"])


def test_heavy_tail_section_for_spend(ro, hill):
    h = ro.heavy_tail
    assert set(h["metric"]) == {"spend"} and set(h["variant"]) == set(ARMS)
    wins = h[h["method"].str.startswith("winsorized") & (h["scale"] == "absolute")].set_index("variant")
    # Hillstrom's spend is already capped at 499 (its q0.99 among buyers), so winsorising
    # at that cap reproduces the plain Welch test
    o = hill.outcomes
    cap = o.loc[o.spend > 0, "spend"].quantile(0.99)
    for arm in ARMS:
        t = o.loc[o.variant == arm, "spend"].clip(upper=cap)
        c = o.loc[o.variant == CONTROL, "spend"].clip(upper=cap)
        assert wins.loc[arm, "p_value"] == pytest.approx(sps.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-6)
    try:
        from crmlab.abtest import robust  # noqa: F401
    except ImportError:
        pytest.skip("crmlab.abtest.robust not available yet")
    boot = h[h["method"].str.contains("bootstrap")].set_index("variant")
    for arm in ARMS:
        row = boot.loc[arm]
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
        assert row["estimate"] == pytest.approx(ro.table.set_index(["metric", "variant"])
                                                .loc[("spend", arm), "rel_lift"], rel=1e-9)


def test_scope_changes_the_family(hill):
    kw = dict(experiment="hillstrom_email", control=CONTROL, metrics=["visit", "conversion"], heavy_tail=())
    r = readout(hill.assignments, hill.outcomes, correction="bonferroni", scope="variants", **kw)
    np.testing.assert_allclose(r.table["p_adjusted"], np.minimum(1, 2 * r.table["p_value"]), rtol=1e-12)
    r = readout(hill.assignments, hill.outcomes, correction="none", **kw)
    np.testing.assert_allclose(r.table["p_adjusted"], r.table["p_value"])
    with pytest.raises(ValueError, match="correction='fdr'"):
        readout(hill.assignments, hill.outcomes, correction="fdr", **kw)


def test_readout_flags_planted_srm_and_reports_exclusions():
    rng = np.random.default_rng(0)
    n = 4000
    arm = np.where(rng.random(n) < 0.55, "b", "control")  # planned 50/50, delivered 55/45
    a = pd.DataFrame({"experiment": "e", "user_id": [f"u{i}" for i in range(n)], "variant": arm,
                      "assigned_time": "2024-05-01 10:00"})
    o = pd.DataFrame({"user_id": list(a["user_id"][:-10]) + ["stranger"], "buy": rng.binomial(1, 0.1, n - 9)})
    r = readout(a, o, metrics=["buy"], heavy_tail=())
    assert r.srm.flagged and r.notes[0].startswith("SAMPLE RATIO MISMATCH")
    assert r.stats.attrs["excluded"] == {"outcome rows of users not assigned": 1}
    assert r.stats.attrs["filled_zero"] == 10
    assert r.table["n"].iloc[0] + r.table["n_control"].iloc[0] == n


def test_plot_forest(ro):
    ax = plot_forest(ro)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "visit | Mens E-Mail" and len(labels) == 6
    assert ax.get_lines()[1].get_xdata()[0] == pytest.approx(ro.table["rel_lift"].iloc[0])
    with pytest.raises(ValueError, match="columns"):
        plot_forest(ro.table.drop(columns="rel_ci_low"))
