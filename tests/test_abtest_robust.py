"""Robust comparisons: winsorize, Mann-Whitney and bootstrap against scipy, plus coverage."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats import mstats

from crmlab.abtest import robust


def _revenue(rng, n, buy_p=0.2, mu=3.0, sigma=1.0):
    return np.where(rng.random(n) < buy_p, rng.lognormal(mu, sigma, n), 0.0)


# --------------------------------------------------------------------------------------
# winsorize
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [10, 99, 100, 1001])
@pytest.mark.parametrize("limits", [(0.01, 0.99), (0.05, 0.95), (0.1, 0.9), (0.0, 0.9)])
def test_winsorize_rank_matches_scipy_mstats(n, limits):
    rng = np.random.default_rng(n)
    v = np.round(rng.lognormal(2, 1.5, n), 1)       # rounding creates ties
    lower, upper = limits
    ours = robust.winsorize(v, lower, upper, method="rank")
    ref = np.asarray(mstats.winsorize(v, limits=(lower, round(1 - upper, 12))))
    np.testing.assert_array_equal(ours, ref)


def test_winsorize_linear_is_numpy_quantile_clip_and_keeps_nan():
    rng = np.random.default_rng(1)
    v = rng.lognormal(2, 1.5, 5000)
    v[::97] = np.nan
    out = robust.winsorize(v, 0.01, 0.99)
    finite = v[~np.isnan(v)]
    lo, hi = np.quantile(finite, [0.01, 0.99])
    np.testing.assert_array_equal(np.isnan(out), np.isnan(v))
    np.testing.assert_allclose(out[~np.isnan(v)], np.clip(finite, lo, hi))
    # pandas' default quantile is the same definition
    import pandas as pd
    assert out[~np.isnan(out)].max() == pytest.approx(pd.Series(v).quantile(0.99))
    # values inside the caps are untouched, and about 1% is capped at each end
    assert (out[~np.isnan(v)] != finite).mean() == pytest.approx(0.02, abs=0.002)
    # upper=1 leaves the top alone
    assert np.nanmax(robust.winsorize(v, 0.05, 1.0)) == np.nanmax(v)


def test_winsorize_bad_parameters():
    with pytest.raises(ValueError, match="upper"):
        robust.winsorize([1, 2, 3], 0.01, 99)
    with pytest.raises(ValueError, match="lower must be < upper"):
        robust.winsorize([1, 2, 3], 0.5, 0.4)
    with pytest.raises(ValueError, match="method"):
        robust.winsorize([1, 2, 3], method="nearest")


# --------------------------------------------------------------------------------------
# Mann-Whitney
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_mann_whitney_matches_scipy_with_ties(alternative):
    rng = np.random.default_rng(3)
    x = np.round(_revenue(rng, 700), 0)             # many zeros and ties
    y = np.round(_revenue(rng, 650, buy_p=0.24), 0)
    ours = robust.mann_whitney(x, y, alternative=alternative)
    ref = stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")
    assert ours["statistic"] == ref.statistic
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert ours["method"].endswith("(asymptotic)")


def test_mann_whitney_exact_small_and_effect_size():
    x = np.array([1.2, 3.4, 0.5, 2.2, 5.1])
    y = np.array([2.5, 4.4, 6.0, 3.9, 7.7, 0.9])
    ours = robust.mann_whitney(x, y)
    ref = stats.mannwhitneyu(x, y, method="exact")
    assert ours["method"].endswith("(exact)")
    assert ours["statistic"] == ref.statistic
    assert ours["p_value"] == pytest.approx(ref.pvalue)
    # probability of superiority = P(Y > X) + P(Y = X)/2 over all pairs
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 5, 300), rng.integers(0, 6, 280)
    r = robust.mann_whitney(x, y)
    diff = y[None, :] - x[:, None]
    ps = (diff > 0).mean() + 0.5 * (diff == 0).mean()
    assert r["prob_superiority"] == pytest.approx(ps, rel=1e-12)
    assert r["rank_biserial"] == pytest.approx(2 * ps - 1, rel=1e-12)


def test_mann_whitney_drops_and_counts_nan():
    r = robust.mann_whitney([1.0, np.nan, 3.0, 4.0], [2.0, 5.0, np.nan, np.nan, 6.0])
    assert (r["n_x"], r["n_y"], r["n_excluded"]) == (3, 3, 3)
    with pytest.raises(ValueError, match="alternative"):
        robust.mann_whitney([1, 2], [3, 4], alternative="bigger")


# --------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------
def test_loo_trimmed_mean_matches_brute_force():
    rng = np.random.default_rng(5)
    for n in (10, 11, 57):
        x = np.round(rng.lognormal(size=n), 1)
        for trim in (0.0, 0.05, 0.1, 0.25):
            brute = [stats.trim_mean(np.delete(x, i), trim) for i in range(n)]
            np.testing.assert_allclose(robust._loo_trimmed_mean(x, trim), brute, rtol=1e-12)


@pytest.mark.parametrize("stat", ["mean", "trimmed_mean"])
@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("relative", [False, True])
def test_bootstrap_matches_scipy_bootstrap(stat, method, relative):
    rng = np.random.default_rng(6)
    x, y = rng.lognormal(0, 1, 300), rng.lognormal(0.1, 1, 320)
    f = (lambda v, axis=-1: np.mean(v, axis=axis)) if stat == "mean" else \
        (lambda v, axis=-1: stats.trim_mean(v, 0.1, axis=axis))

    def statistic(a, b, axis=-1):
        return f(b, axis) / f(a, axis) - 1 if relative else f(b, axis) - f(a, axis)
    ours = robust.bootstrap_diff(x, y, stat=stat, relative=relative, n_boot=20_000, method=method, seed=1)
    ref = stats.bootstrap((x, y), statistic, n_resamples=20_000, rng=2,
                          method="BCa" if method == "bca" else "percentile")
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours["estimate"] == pytest.approx(statistic(x, y), rel=1e-12)
    # both are Monte Carlo: the endpoints agree to a few percent of the width
    assert ours["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.04 * width)
    assert ours["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.04 * width)
    assert ours["se"] == pytest.approx(ref.standard_error, rel=0.03)


def test_bootstrap_large_arms_se_matches_formula():
    rng = np.random.default_rng(8)
    x, y = _revenue(rng, 25_000), _revenue(rng, 22_000)
    r = robust.bootstrap_diff(x, y, n_boot=2000)
    se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    # sd of 2000 replicates has relative MC error ~1/sqrt(2*2000) = 1.6%
    assert r["se"] == pytest.approx(se, rel=0.06)
    assert r["ci_low"] < r["estimate"] < r["ci_high"]
    assert r["n_x"] + r["n_y"] == 47_000


def test_bootstrap_coverage_on_lognormal():
    """BCa interval for a difference of lognormal means covers the truth ~95% of the time."""
    reps, n, sigma, shift = 300, 300, 0.75, 0.1
    truth = math.exp(shift + sigma ** 2 / 2) - math.exp(sigma ** 2 / 2)
    rng = np.random.default_rng(2024)
    hit_boot = hit_welch = 0
    for r in range(reps):
        x, y = rng.lognormal(0, sigma, n), rng.lognormal(shift, sigma, n)
        out = robust.bootstrap_diff(x, y, n_boot=999, seed=r)
        hit_boot += out["ci_low"] <= truth <= out["ci_high"]
        ci = stats.ttest_ind(y, x, equal_var=False).confidence_interval()
        hit_welch += ci.low <= truth <= ci.high
    cov, cov_welch = hit_boot / reps, hit_welch / reps
    se = math.sqrt(0.95 * 0.05 / reps)
    print(f"bootstrap BCa coverage={cov:.4f}, Welch t coverage={cov_welch:.4f} ({reps} reps)")
    # both are large-sample intervals: on skewed data they may undercover by a point or two
    assert 0.95 - 3 * se - 0.02 <= cov <= 0.95 + 3 * se
    assert abs(cov - cov_welch) <= 0.03


def test_bootstrap_bad_parameters_and_nan():
    with pytest.raises(ValueError, match="stat"):
        robust.bootstrap_diff([1, 2, 3], [1, 2, 3], stat="median")
    with pytest.raises(ValueError, match="n_boot"):
        robust.bootstrap_diff([1, 2, 3], [1, 2, 3], n_boot=10)
    with pytest.raises(ValueError, match="method"):
        robust.bootstrap_diff([1, 2, 3], [1, 2, 3], method="basic")
    r = robust.bootstrap_diff([1.0, 2.0, np.nan, 4.0], [2.0, 3.0, 5.0], n_boot=200)
    assert r["n_excluded"] == 1 and r["estimate"] == pytest.approx(10 / 3 - 7 / 3)
