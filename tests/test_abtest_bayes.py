"""Bayesian A/B readouts: exact closed forms against Monte Carlo and numerical integration."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from crmlab.abtest import bayes

CASES = [
    # conversions_a, n_a, conversions_b, n_b, prior
    (120, 1000, 145, 1000, (1, 1)),
    (3, 40, 7, 38, (1, 1)),
    (50, 10_000, 48, 9_500, (1, 1)),
    (400, 5_000, 460, 5_100, (2, 30)),
    (0, 0, 0, 0, (1, 1)),
]


def _quad_prob(aa, ba, ab, bb):
    """P(p_b > p_a) = int f_a(x) S_b(x) dx, integrated with the bulk of f_a as breakpoints."""
    lo, hi = stats.beta.ppf([1e-12, 1 - 1e-12], aa, ba)
    pts = stats.beta.ppf(np.linspace(0.01, 0.99, 15), aa, ba)
    val, _ = integrate.quad(lambda x: stats.beta.pdf(x, aa, ba) * stats.beta.sf(x, ab, bb),
                            lo, hi, points=pts, limit=500, epsabs=1e-13, epsrel=1e-12)
    return val


def _quad_loss_a(aa, ba, ab, bb):
    """E[max(p_b - p_a, 0)] = int f_a(x) E[(p_b - x)^+] dx by quadrature.

    The inner partial expectation of a Beta is the textbook identity
    E[(B - x)^+] = E[B] P(B' > x) - x P(B > x), B' ~ Beta(ab + 1, bb) (regularised
    incomplete Beta functions, no Miller sums involved).
    """
    mean_b = ab / (ab + bb)

    def inner(x):
        return mean_b * stats.beta.sf(x, ab + 1, bb) - x * stats.beta.sf(x, ab, bb)
    lo, hi = stats.beta.ppf([1e-12, 1 - 1e-12], aa, ba)
    pts = stats.beta.ppf(np.linspace(0.01, 0.99, 15), aa, ba)
    val, _ = integrate.quad(lambda x: stats.beta.pdf(x, aa, ba) * inner(x), lo, hi,
                            points=pts, limit=500, epsabs=1e-13, epsrel=1e-12)
    return val


@pytest.mark.parametrize("case", CASES)
def test_beta_binomial_against_quadrature(case):
    ca, na, cb, nb, prior = case
    r = bayes.beta_binomial(ca, na, cb, nb, prior=prior, draws=0)
    aa, ba, ab, bb = r["alpha_a"], r["beta_a"], r["alpha_b"], r["beta_b"]
    assert (aa, ba) == (prior[0] + ca, prior[1] + na - ca)
    assert r["chance_to_beat"] == pytest.approx(_quad_prob(aa, ba, ab, bb), abs=1e-6)
    assert r["expected_loss_a"] == pytest.approx(_quad_loss_a(aa, ba, ab, bb), abs=1e-6)
    assert r["expected_loss_b"] == pytest.approx(_quad_loss_a(ab, bb, aa, ba), abs=1e-6)


def test_beta_binomial_against_monte_carlo():
    rng = np.random.default_rng(7)
    for ca, na, cb, nb, prior in CASES[:4]:
        r = bayes.beta_binomial(ca, na, cb, nb, prior=prior, draws=0)
        pa = rng.beta(r["alpha_a"], r["beta_a"], size=1_000_000)
        pb = rng.beta(r["alpha_b"], r["beta_b"], size=1_000_000)
        assert r["chance_to_beat"] == pytest.approx((pb > pa).mean(), abs=3e-3)
        sd = max(abs(r["estimate"]), r["ci_high_a"] - r["ci_low_a"])
        assert r["expected_loss_a"] == pytest.approx(np.maximum(pb - pa, 0).mean(), abs=1e-3 * sd)
        assert r["expected_loss_b"] == pytest.approx(np.maximum(pa - pb, 0).mean(), abs=1e-3 * sd)


def test_four_forms_of_millers_sum_agree():
    aa, ba, ab, bb = 121.0, 881.0, 146.0, 856.0
    forms = [bayes._miller_sum(aa, ba, ab, bb),
             1 - bayes._miller_sum(ab, bb, aa, ba),
             bayes._miller_sum(bb, ab, ba, aa),
             1 - bayes._miller_sum(ba, aa, bb, ab),
             bayes._quantile_integral(aa, ba, ab, bb)]
    assert max(forms) - min(forms) < 1e-9


def test_non_integer_prior_uses_quadrature():
    r = bayes.beta_binomial(12, 100, 20, 100, prior=(0.5, 0.5), draws=0)
    assert "quadrature" in r["method"]
    assert r["chance_to_beat"] == pytest.approx(_quad_prob(12.5, 88.5, 20.5, 80.5), abs=1e-7)


def test_beta_binomial_symmetry_and_complement():
    r = bayes.beta_binomial(120, 1000, 145, 1000, draws=0)
    rev = bayes.beta_binomial(145, 1000, 120, 1000, draws=0)
    assert r["chance_to_beat"] + rev["chance_to_beat"] == pytest.approx(1.0, abs=1e-12)
    assert r["expected_loss_a"] == pytest.approx(rev["expected_loss_b"], rel=1e-9)
    assert r["expected_loss_b"] == pytest.approx(rev["expected_loss_a"], rel=1e-9)
    # E[max(b-a,0)] - E[max(a-b,0)] = E[b - a]
    assert r["expected_loss_a"] - r["expected_loss_b"] == pytest.approx(r["mean_b"] - r["mean_a"], abs=1e-12)
    same = bayes.beta_binomial(77, 900, 77, 900, draws=0)
    assert same["chance_to_beat"] == pytest.approx(0.5, abs=1e-12)
    assert same["expected_loss_a"] == pytest.approx(same["expected_loss_b"], rel=1e-9)


def test_beta_binomial_intervals():
    # no data: the posterior is the uniform prior
    r = bayes.beta_binomial(0, 0, 0, 0, draws=1000)
    assert (r["ci_low_a"], r["ci_high_a"]) == pytest.approx((0.025, 0.975))
    r = bayes.beta_binomial(120, 1000, 145, 1000, draws=200_000, seed=3)
    # difference interval of two nearly normal posteriors ~ normal interval
    sd = math.sqrt(r["alpha_a"] * r["beta_a"] / ((r["alpha_a"] + r["beta_a"]) ** 2 * (r["alpha_a"] + r["beta_a"] + 1))
                   + r["alpha_b"] * r["beta_b"] / ((r["alpha_b"] + r["beta_b"]) ** 2 * (r["alpha_b"] + r["beta_b"] + 1)))
    assert r["ci_low"] == pytest.approx(r["estimate"] - 1.96 * sd, abs=0.1 * sd)
    assert r["ci_high"] == pytest.approx(r["estimate"] + 1.96 * sd, abs=0.1 * sd)
    assert r["lift_ci_low"] < r["lift"] < r["lift_ci_high"]


def test_large_counts_are_fast_and_exact():
    # the shortest of the four sums is used: 300 terms although n is a million
    r = bayes.beta_binomial(300, 1_000_000, 360, 1_000_000, draws=0)
    z = (361 / 1_000_002 - 301 / 1_000_002) / math.sqrt(2 * 3.3e-4 / 1_000_000)
    assert r["chance_to_beat"] == pytest.approx(stats.norm.cdf(z), abs=5e-3)
    assert "a1" in r["method"] or "a2" in r["method"]


def test_beta_binomial_bad_parameters():
    with pytest.raises(ValueError, match="conversions_a"):
        bayes.beta_binomial(11, 10, 1, 10)
    with pytest.raises(ValueError, match="n_b"):
        bayes.beta_binomial(1, 10, 1, -3)
    with pytest.raises(ValueError, match="prior"):
        bayes.beta_binomial(1, 10, 1, 10, prior=(0, 1))
    with pytest.raises(ValueError, match="alpha"):
        bayes.beta_binomial(1, 10, 1, 10, alpha=0)


# --------------------------------------------------------------------------------------
# normal model
# --------------------------------------------------------------------------------------
def _arms(seed=11, n_a=3000, n_b=3200):
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.5, 40.0, size=n_a)
    y = rng.gamma(0.5, 42.0, size=n_b)
    return x, y


def test_normal_means_flat_prior_matches_z_test():
    x, y = _arms()
    r = bayes.normal_means(len(x), x.mean(), x.var(ddof=1), len(y), y.mean(), y.var(ddof=1))
    # with a flat prior P(b > a) = 1 - one-sided p-value of the unequal-variance z-test
    _, p_larger = CompareMeans(DescrStatsW(y), DescrStatsW(x)).ztest_ind(alternative="larger", usevar="unequal")
    assert r["chance_to_beat"] == pytest.approx(1 - p_larger, abs=2e-3)
    low, high = CompareMeans(DescrStatsW(y), DescrStatsW(x)).zconfint_diff(alpha=0.05, usevar="unequal")
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((low, high), rel=2e-3)


def test_normal_means_expected_loss_against_quadrature_and_mc():
    x, y = _arms()
    r = bayes.normal_means(len(x), x.mean(), x.var(ddof=1), len(y), y.mean(), y.var(ddof=1))
    m, s = r["estimate"], r["se"]
    quad_a, _ = integrate.quad(lambda d: d * stats.norm.pdf(d, m, s), 0, m + 12 * s, epsabs=1e-13)
    quad_b, _ = integrate.quad(lambda d: -d * stats.norm.pdf(d, m, s), m - 12 * s, 0, epsabs=1e-13)
    assert r["expected_loss_a"] == pytest.approx(quad_a, abs=1e-8)
    assert r["expected_loss_b"] == pytest.approx(quad_b, abs=1e-8)
    d = np.random.default_rng(5).normal(m, s, 1_000_000)
    assert r["expected_loss_a"] == pytest.approx(np.maximum(d, 0).mean(), rel=5e-3)
    assert r["expected_loss_a"] - r["expected_loss_b"] == pytest.approx(m, rel=1e-9)


def test_normal_means_lift_delta_method_against_mc():
    x, y = _arms(n_a=20_000, n_b=20_000)
    r = bayes.normal_means(len(x), x.mean(), x.var(ddof=1), len(y), y.mean(), y.var(ddof=1))
    rng = np.random.default_rng(9)
    mu_a = rng.normal(x.mean(), x.std(ddof=1) / math.sqrt(len(x)), 1_000_000)
    mu_b = rng.normal(y.mean(), y.std(ddof=1) / math.sqrt(len(y)), 1_000_000)
    lo, hi = np.quantile(mu_b / mu_a - 1, [0.025, 0.975])
    width = hi - lo
    assert r["lift_ci_low"] == pytest.approx(lo, abs=0.03 * width)
    assert r["lift_ci_high"] == pytest.approx(hi, abs=0.03 * width)


def test_normal_means_prior_shrinks():
    args = (2000, 10.0, 400.0, 2000, 11.0, 420.0)
    flat = bayes.normal_means(*args)
    vague = bayes.normal_means(*args, prior=(0.0, 1e6), prior_scale="absolute")
    assert vague["estimate"] == pytest.approx(flat["estimate"], rel=1e-4)
    tight = bayes.normal_means(*args, prior=(0.0, 0.01 ** 2))     # lift prior N(0, 1%^2)
    assert abs(tight["lift"]) < 0.01 and abs(tight["estimate"]) < 0.1
    mid = bayes.normal_means(*args, prior=(0.0, 0.05 ** 2))
    assert 0 < mid["lift"] < flat["lift"]
    # conjugate update by hand on the relative scale
    v = 420 / (2000 * 100) + 121 * 400 / (2000 * 10 ** 4)
    post = (0.1 / v) / (1 / v + 1 / 0.05 ** 2)
    assert mid["lift"] == pytest.approx(post, rel=1e-12)


def test_normal_means_bad_parameters():
    with pytest.raises(ValueError, match="var_b"):
        bayes.normal_means(100, 1.0, 1.0, 100, 1.0, -1.0)
    with pytest.raises(ValueError, match="prior_scale"):
        bayes.normal_means(100, 1.0, 1.0, 100, 1.0, 1.0, prior_scale="log")
    with pytest.raises(ValueError, match="n_a"):
        bayes.normal_means(1, 1.0, 1.0, 100, 1.0, 1.0)
