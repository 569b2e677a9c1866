"""crmlab.abtest core: each method checked against statsmodels / scipy / a published value."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint, proportion_effectsize,
                                          proportions_chisquare as sm_chisquare, proportions_ztest)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from crmlab.abtest import (PairedStats, SampleStats, adjust_pvalues, compare, correct, cuped, cuped_theta,
                           lift, mean_test, minimum_detectable_effect, power, proportion_test,
                           proportions_chisquare, ratio_test, regression_adjust, sample_size, srm_check,
                           sufficient_stats)
from tests.conftest import assert_same_frame


# ---------------------------------------------------------------- proportions
@pytest.mark.parametrize("xc,nc,xt,nt", [(120, 1000, 150, 1100), (2262, 21306, 3894, 21307), (5, 80, 1, 75)])
def test_proportion_test_matches_statsmodels(xc, nc, xt, nt):
    r = proportion_test(xc, nc, xt, nt, method="pooled_z", relative="log")
    z, p = proportions_ztest([xt, xc], [nt, nc])
    assert r["statistic"] == pytest.approx(z, rel=1e-9)
    assert r["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-300)
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert (r["abs_ci_low"], r["abs_ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="log", compare="ratio")
    assert (r["rel_ci_low"], r["rel_ci_high"]) == pytest.approx((lo - 1, hi - 1), abs=1e-9)
    assert r["rel_lift"] == pytest.approx((xt / nt) / (xc / nc) - 1, rel=1e-12)


@pytest.mark.parametrize("xc,nc,xt,nt", [(120, 1000, 150, 1100), (0, 40, 3, 35), (5, 80, 1, 75), (30, 30, 12, 40)])
def test_newcombe_and_wilson_intervals_match_statsmodels(xc, nc, xt, nt):
    from crmlab.abtest.frequentist import wilson_interval
    r = proportion_test(xc, nc, xt, nt, method="pooled_z", interval="newcomb", alpha=0.1)
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="newcomb", compare="diff", alpha=0.1)
    assert (r["abs_ci_low"], r["abs_ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
    assert r["p_value"] == pytest.approx(proportion_test(xc, nc, xt, nt, method="pooled_z")["p_value"],
                                         rel=1e-12)  # only the CI changes
    lo, hi = wilson_interval([xc, xt, 0], [nc, nt, 0], alpha=0.1)
    for i, (x, n) in enumerate(((xc, nc), (xt, nt))):
        assert (lo[i], hi[i]) == pytest.approx(proportion_confint(x, n, alpha=0.1, method="wilson"), abs=1e-12)
    assert np.isnan(lo[2]) and np.isnan(hi[2])  # no units, no interval
    with pytest.raises(ValueError, match="interval='score'"):
        proportion_test(xc, nc, xt, nt, interval="score")


def test_proportion_test_is_vectorised():
    xc, xt = np.array([100, 120, 90]), np.array([110, 100, 95])
    r = proportion_test(xc, 1000, xt, 1000, method="pooled_z")
    for i in range(3):
        assert r["p_value"][i] == pytest.approx(proportions_ztest([xt[i], xc[i]], [1000, 1000])[1], rel=1e-9)


def test_chisquare_of_k_proportions_reproduces_r_prop_test():
    # R prop.test reference used in statsmodels' own tests (smokers data)
    count, nobs = [73, 90, 114, 75], [86, 93, 136, 82]
    r = proportions_chisquare(count, nobs)
    assert r["statistic"] == pytest.approx(11.11938768628861, rel=1e-12)
    chi2, p, _ = sm_chisquare(np.array(count), np.array(nobs))
    assert r["statistic"] == pytest.approx(chi2, rel=1e-12)
    assert r["p_value"] == pytest.approx(p, rel=1e-9)
    assert r["df"] == 3


# ---------------------------------------------------------------- means
def _two_samples(seed=0):
    rng = np.random.default_rng(seed)
    c = rng.lognormal(1, 1, 400) * rng.binomial(1, 0.3, 400)
    t = rng.lognormal(1.1, 1.2, 350) * rng.binomial(1, 0.3, 350)
    return c, t


def test_welch_matches_scipy_and_statsmodels():
    c, t = _two_samples()
    r = mean_test(SampleStats.from_values(c), SampleStats.from_values(t), method="welch")
    ref = sps.ttest_ind_from_stats(t.mean(), t.std(ddof=1), t.size, c.mean(), c.std(ddof=1), c.size,
                                   equal_var=False)
    assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    tstat, p, df = ttest_ind(t, c, usevar="unequal")
    assert (r["statistic"], r["p_value"], r["df"]) == pytest.approx((tstat, p, df), rel=1e-6)
    lo, hi = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(usevar="unequal")
    assert (r["abs_ci_low"], r["abs_ci_high"]) == pytest.approx((lo, hi), rel=1e-6)


def test_log_ratio_interval_is_antisymmetric_and_fieller_is_dual_to_the_test():
    c, t = _two_samples(1)
    sc, st = SampleStats.from_values(c), SampleStats.from_values(t)
    a = mean_test(sc, st, method="welch", relative="log")
    b = mean_test(st, sc, method="welch", relative="log")
    # swapping the arms inverts the ratio: (1 + lo_ab) * (1 + hi_ba) = 1
    assert (1 + a["rel_ci_low"]) * (1 + b["rel_ci_high"]) == pytest.approx(1, rel=1e-12)
    assert a["rel_p_value"] == pytest.approx(b["rel_p_value"], rel=1e-12)
    # Fieller: at each end r, (m_t - r m_c)^2 = q^2 (v_t + r^2 v_c) exactly
    f = lift(sc.mean, sc.var_of_mean, st.mean, st.var_of_mean, relative="fieller")
    q = sps.norm.ppf(0.975)
    for r in (1 + f["rel_ci_low"], 1 + f["rel_ci_high"]):
        assert (st.mean - r * sc.mean) ** 2 == pytest.approx(q ** 2 * (st.var_of_mean + r ** 2 * sc.var_of_mean))
    # ... so it excludes 0 exactly when the Wald test rejects, over many cases
    rng = np.random.default_rng(3)
    mc, mt = rng.uniform(1, 2, 500), rng.uniform(1, 2.5, 500)
    vc, vt = rng.uniform(0.01, 0.2, 500), rng.uniform(0.01, 0.2, 500)
    g = lift(mc, vc, mt, vt, relative="fieller")
    ok = np.isfinite(g["rel_ci_low"])
    excludes = (g["rel_ci_low"] > 0) | (g["rel_ci_high"] < 0)
    assert ok.sum() > 400
    np.testing.assert_array_equal(excludes[ok], g["p_value"][ok] < 0.05)


def test_delta_relative_matches_hand_formula():
    r = lift(10.0, 0.25, 11.0, 0.36, relative="delta")
    se = np.sqrt(0.36 / 100 + 121 * 0.25 / 10 ** 4)
    assert r["rel_ci_high"] - r["rel_lift"] == pytest.approx(sps.norm.ppf(0.975) * se, rel=1e-12)


# ---------------------------------------------------------------- ratio metrics (delta method)
def test_ratio_delta_method_equals_linearisation_and_needs_the_covariance():
    rng = np.random.default_rng(5)
    n = 2000
    sessions = rng.poisson(3, n) + 1
    clicks = rng.binomial(sessions, 0.3)
    st = PairedStats.from_values(clicks, sessions)
    r = st.ratio
    # Deng et al. (2018): var of ratio = var of the linearised values (y - R x) / mean(x), over n
    lin = (clicks - r * sessions) / sessions.mean()
    assert st.ratio_var == pytest.approx(lin.var(ddof=1) / n, rel=1e-9)
    naive = (st.y.var / st.x.mean ** 2 + st.y.mean ** 2 * st.x.var / st.x.mean ** 4) / n
    assert naive > 1.5 * st.ratio_var  # positive covariance: leaving it out overstates the variance
    # truth by simulation: the spread of the ratio over 2,000 replicated experiments
    sims = rng.poisson(3, (2000, n)) + 1
    ratios = rng.binomial(sims, 0.3).sum(axis=1) / sims.sum(axis=1)
    assert ratios.var(ddof=1) == pytest.approx(st.ratio_var, rel=0.1)
    ctrl = PairedStats.from_values(rng.binomial(sessions, 0.3), sessions)
    res = ratio_test(ctrl, st)
    assert res["abs_se"] == pytest.approx(np.sqrt(st.ratio_var + ctrl.ratio_var), rel=1e-12)


# ---------------------------------------------------------------- corrections
@pytest.mark.parametrize("method,sm_name", [("holm", "holm"), ("bh", "fdr_bh"), ("bonferroni", "bonferroni")])
def test_adjust_pvalues_matches_multipletests(method, sm_name):
    p = np.random.default_rng(2).uniform(0, 0.2, 13) ** 2
    p[3] = p[7]  # a tie
    np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=sm_name)[1], rtol=1e-12)


def test_correct_scopes_form_the_right_families():
    res = pd.DataFrame({"metric": ["a", "a", "b", "b", "c", "c"], "variant": ["v1", "v2"] * 3,
                        "p_value": [0.01, 0.04, 0.03, 0.2, 0.001, 0.5]})
    both = correct(res, correction="holm", scope="both")
    np.testing.assert_allclose(both["p_adjusted"], multipletests(res["p_value"], method="holm")[1])
    by_metric = correct(res, correction="holm", scope="variants")
    for m, g in res.groupby("metric"):
        np.testing.assert_allclose(by_metric.loc[g.index, "p_adjusted"], multipletests(g["p_value"], method="holm")[1])
    by_variant = correct(res, correction="bh", scope="metrics")
    for v, g in res.groupby("variant"):
        np.testing.assert_allclose(by_variant.loc[g.index, "p_adjusted"],
                                   multipletests(g["p_value"], method="fdr_bh")[1])
    with pytest.raises(ValueError, match="scope='all'"):
        correct(res, scope="all")
    with pytest.raises(ValueError, match="correction='sidak'"):
        correct(res, correction="sidak")


# ---------------------------------------------------------------- SRM
def test_srm_matches_scipy_and_flags_a_planted_mismatch():
    ok = srm_check({"control": 5000, "a": 5050, "b": 4980})
    ref = sps.chisquare([5050, 4980, 5000])
    assert ok.statistic == pytest.approx(ref.statistic) and ok.p_value == pytest.approx(ref.pvalue)
    assert not ok.flagged
    borderline = srm_check({"control": 5000, "a": 5300})  # p = 0.0031: suspicious, not flagged at 0.001
    assert borderline.p_value == pytest.approx(sps.chisquare([5300, 5000]).pvalue) and not borderline.flagged
    bad = srm_check({"control": 5000, "a": 5400})
    assert bad.flagged and bad.p_value < 0.001
    planned = srm_check({"control": 2000, "a": 8000}, expected={"control": 1, "a": 4})
    assert planned.p_value == pytest.approx(1.0) and not planned.flagged
    ref = sps.chisquare([8000, 2000], [7000, 3000])
    wrong = srm_check({"control": 2000, "a": 8000}, expected={"control": 0.3, "a": 0.7})
    assert wrong.statistic == pytest.approx(ref.statistic) and wrong.flagged


def test_srm_from_assignments_counts_in_the_engine():
    a = pd.DataFrame({"experiment": "e", "user_id": [f"u{i}" for i in range(300)],
                      "variant": ["control"] * 100 + ["b"] * 200, "assigned_time": "2024-01-01"})
    r = srm_check(a)
    assert dict(zip(r.table["variant"], r.table["n"])) == {"b": 200, "control": 100}
    assert r.statistic == pytest.approx(sps.chisquare([200, 100]).statistic)


# ---------------------------------------------------------------- sufficient statistics
def _experiment(n=600, seed=0):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "a", "b"], n)
    a = pd.DataFrame({"experiment": "e", "user_id": [f"u{i:04d}" for i in range(n)], "variant": arm,
                      "assigned_time": pd.Timestamp("2024-03-01 09:00", tz="Asia/Seoul")})
    pre = rng.gamma(1.0, 20.0, n)
    buy = rng.random(n) < 0.3 + 0.05 * (arm == "b")
    spend = 0.6 * pre + np.where(buy, rng.gamma(2, 10, n), 0.0) + 5 * (arm == "a")
    o = pd.DataFrame({"user_id": a["user_id"], "buy": buy.astype(int), "spend": spend, "pre": pre,
                      "orders": rng.poisson(2, n) + 1})
    o["revenue"] = o["orders"] * rng.gamma(2, 15, n)
    return a, o


def test_sufficient_stats_sum_up_and_count_exclusions():
    a, o = _experiment()
    # a stranger's outcomes and a user without an outcome row
    o2 = pd.concat([o.iloc[1:], pd.DataFrame({"user_id": ["zz"], "buy": [1], "spend": [9.0], "pre": [1.0],
                                              "orders": [1], "revenue": [3.0]})], ignore_index=True)
    s = sufficient_stats(a, o2, metrics={"buy": "buy", "spend": "spend", "rpo": ("revenue", "orders")},
                         experiment="e", covariates={"spend": "pre"})
    assert s.attrs["excluded"] == {"outcome rows of users not assigned": 1}
    assert s.attrs["filled_zero"] == 1
    merged = a.merge(o2, on="user_id", how="left").fillna({"buy": 0, "spend": 0.0, "pre": 0.0, "orders": 0,
                                                          "revenue": 0.0})
    for arm, g in merged.groupby("variant"):
        row = s[(s.variant == arm) & (s.metric == "spend")].iloc[0]
        assert row["n"] == len(g)
        assert row["sum"] == pytest.approx(g["spend"].sum()) and row["sum_sq"] == pytest.approx((g["spend"] ** 2).sum())
        assert row["xy_sum"] == pytest.approx((g["spend"] * g["pre"]).sum()) and row["x_role"] == "covariate"
        rpo = s[(s.variant == arm) & (s.metric == "rpo")].iloc[0]
        assert rpo["x_sum"] == pytest.approx(g["orders"].sum()) and rpo["x_role"] == "denominator"
    assert s.loc[s.metric == "buy", "binary"].all() and not s.loc[s.metric == "spend", "binary"].any()
    assert s.groupby("metric")["n"].sum().eq(len(a)).all()  # no user lost


def test_sufficient_stats_same_on_duckdb_and_spark(backend):
    a, o = _experiment(300, seed=4)
    kw = dict(metrics={"buy": "buy", "spend": "spend", "rpo": ("revenue", "orders")}, experiment="e",
              covariates={"spend": "pre"})
    ref = sufficient_stats(a, o, **kw)
    got = sufficient_stats(backend(a), backend(o), **kw)
    assert_same_frame(ref, got, sort_by=["variant", "metric"])


def test_sufficient_stats_parameter_errors():
    a, o = _experiment(50)
    with pytest.raises(ValueError, match="nope"):
        sufficient_stats(a, o, metrics=["nope"])
    with pytest.raises(ValueError, match="covariates"):
        sufficient_stats(a, o, metrics=["spend"], covariates={"buy": "pre"})


def test_compare_picks_the_method_per_metric():
    a, o = _experiment(900, seed=7)
    s = sufficient_stats(a, o, metrics={"buy": "buy", "spend": "spend", "rpo": ("revenue", "orders")},
                         covariates={"spend": "pre"})
    res = compare(s, control="control")
    by = res.set_index(["metric", "variant"])
    assert by.loc[("buy", "a"), "method"].startswith("skewness-corrected z")
    assert by.loc[("rpo", "b"), "method"].startswith("delta-method z")
    assert by.loc[("spend", "b"), "method"].startswith("CUPED")
    assert set(res["status"]) <= {"ok", "insufficient"}
    assert len(res) == 6 and set(res["control"]) == {"control"}
    with pytest.raises(ValueError, match="control='ctl'"):
        compare(s, control="ctl")
    with pytest.raises(ValueError, match="relative='linear'"):
        compare(s, control="control", relative="linear")


# ---------------------------------------------------------------- CUPED and regression adjustment
def test_cuped_equals_ancova_point_estimate_and_reduces_variance():
    a, o = _experiment(3000, seed=11)
    d = a.merge(o, on="user_id")
    s = sufficient_stats(a, o, metrics=["spend"], covariates={"spend": "pre"})
    st = {r["variant"]: PairedStats(r["n"], r["sum"], r["sum_sq"], r["x_sum"], r["x_sum_sq"], r["xy_sum"])
          for r in s.to_dict("records")}
    res = cuped(st["control"], st["a"], pooled=list(st.values()))
    X = pd.DataFrame({"const": 1.0, "a": (d.variant == "a") * 1.0, "b": (d.variant == "b") * 1.0, "pre": d["pre"]})
    fit = sm.OLS(d["spend"], X).fit()
    assert res["abs_lift"] == pytest.approx(fit.params["a"], rel=1e-9)
    assert cuped_theta(list(st.values())) == pytest.approx(fit.params["pre"], rel=1e-9)
    # per-arm adjusted variance from the raw data: var(y - theta x) / n
    theta = res["theta"]
    g = d[d.variant.isin(["control", "a"])]
    raw = sum((g.loc[g.variant == v, "spend"] - theta * g.loc[g.variant == v, "pre"]).var(ddof=1)
              / (g.variant == v).sum() for v in ("control", "a"))
    assert res["abs_se"] ** 2 == pytest.approx(raw, rel=1e-9)
    # Deng et al. (2013): CUPED removes the share rho^2 of the variance (rho: within-arm correlation)
    rho2 = np.mean([np.corrcoef(g.loc[g.variant == v, "spend"], g.loc[g.variant == v, "pre"])[0, 1] ** 2
                    for v in ("control", "a")])
    assert res["variance_reduction"] == pytest.approx(rho2, abs=0.02)
    assert res["variance_reduction"] > 0.1


@pytest.mark.parametrize("interacted", [True, False])
@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_regression_adjust_matches_statsmodels(interacted, cov_type):
    a, o = _experiment(1500, seed=3)
    o = o.assign(pre2=np.random.default_rng(9).normal(size=len(o)))
    r = regression_adjust(a, o, metric="spend", covariates=["pre", "pre2"], control="control",
                          interacted=interacted, cov_type=cov_type)
    d = a.merge(o, on="user_id")
    X = pd.DataFrame({"const": np.ones(len(d))})
    for v in ("a", "b"):
        X[v] = (d.variant == v) * 1.0
    for c in ("pre", "pre2"):
        X[c] = d[c] - d[c].mean()
    if interacted:
        for v in ("a", "b"):
            for c in ("pre", "pre2"):
                X[f"{v}:{c}"] = X[v] * X[c]
    fit = sm.OLS(d["spend"].to_numpy(), X).fit(cov_type=cov_type)
    np.testing.assert_allclose(r.attrs["coef"]["coef"], fit.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r.attrs["coef"]["se"], fit.bse, rtol=1e-6)
    row = r.set_index("variant").loc["a"]
    assert row["abs_lift"] == pytest.approx(fit.params["a"], rel=1e-6)
    assert row["p_value"] == pytest.approx(fit.pvalues["a"], rel=1e-6)
    lo, hi = fit.conf_int().loc["a"]
    assert (row["abs_ci_low"], row["abs_ci_high"]) == pytest.approx((lo, hi), rel=1e-6)
    # relative lift: (b0 + b_a) / b0 - 1 with a log-scale delta interval using cov(b0, b_a)
    b0, ba = fit.params["const"], fit.params["a"]
    V = fit.cov_params().loc[["const", "a"], ["const", "a"]].to_numpy()
    grad = np.array([1 / (b0 + ba) - 1 / b0, 1 / (b0 + ba)])
    se = np.sqrt(grad @ V @ grad)
    assert row["rel_ci_high"] == pytest.approx(np.exp(np.log((b0 + ba) / b0) + 1.959963984540054 * se) - 1,
                                               rel=1e-6)


def test_regression_adjust_same_on_duckdb_and_spark(backend):
    a, o = _experiment(400, seed=8)
    kw = dict(metric="spend", covariates=["pre"], control="control", cov_type="HC2")
    ref = regression_adjust(a, o, **kw)
    got = regression_adjust(backend(a), backend(o), **kw)
    assert_same_frame(ref, got, sort_by=["variant"], rtol=1e-7)
    assert_same_frame(ref.attrs["coef"], got.attrs["coef"], rtol=1e-7)


def test_regression_adjust_rejects_bad_cov_type():
    a, o = _experiment(60)
    with pytest.raises(ValueError, match="cov_type='HC4'"):
        regression_adjust(a, o, metric="spend", covariates=["pre"], cov_type="HC4")


# ---------------------------------------------------------------- power
def test_sample_size_proportions_match_statsmodels():
    r = sample_size(baseline=0.1, mde=0.1, n_variants=2, method="arcsine", ratio=1.5)
    ref = NormalIndPower().solve_power(proportion_effectsize(0.11, 0.1), alpha=0.025, power=0.8, ratio=1.5)
    assert r["n_control"] == pytest.approx(ref, rel=1e-6)
    assert r["n_total"] == pytest.approx(r["n_control"] * (1 + 2 * 1.5))
    assert r["alpha_per_test"] == pytest.approx(0.025)
    r = sample_size(baseline=0.1, mde=0.1, method="normal")  # unpooled normal
    d = 0.01 / np.sqrt((0.1 * 0.9 + 0.11 * 0.89) / 2)
    assert r["n_control"] == pytest.approx(NormalIndPower().solve_power(d, alpha=0.05, power=0.8), rel=1e-6)


def test_sample_size_and_mde_means_match_statsmodels():
    r = sample_size(baseline=10, sd=30, mde=0.05, metric="mean", n_metrics=3, ratio=2, method="t")
    ref = TTestIndPower().solve_power(0.5 / 30, alpha=0.05 / 3, power=0.8, ratio=2)
    assert r["n_control"] == pytest.approx(ref, rel=1e-6)
    m = minimum_detectable_effect(5000, baseline=10, sd=30, metric="mean", n_variants=3, method="t")
    assert TTestIndPower().power(m["mde_abs"] / 30, 5000, 0.05 / 3) == pytest.approx(0.8, abs=1e-6)
    m = minimum_detectable_effect(5000, baseline=0.1, method="arcsine")
    h = proportion_effectsize(0.1 + m["mde_abs"], 0.1)
    assert NormalIndPower().power(h, 5000, 0.05) == pytest.approx(0.8, abs=1e-6)
    p = power(20, baseline=1, sd=1, mde=0.5, metric="mean", method="t")
    assert p["power"] == pytest.approx(TTestIndPower().power(0.5, 20, 0.05), rel=1e-9)


def test_power_parameter_errors():
    with pytest.raises(ValueError, match="metric='ratio'"):
        sample_size(baseline=0.1, mde=0.1, metric="ratio")
    with pytest.raises(ValueError, match="baseline=1.5"):
        sample_size(baseline=1.5, mde=0.1)
    with pytest.raises(ValueError, match="sd=None"):
        sample_size(baseline=10, mde=0.1, metric="mean")
    with pytest.raises(ValueError, match="correction='holm'"):
        sample_size(baseline=0.1, mde=0.1, correction="holm")
