"""Calibration of crmlab.abtest by seeded simulation: many A/A (and A/B) experiments at once.

Experiments are simulated as sufficient statistics, vectorised in numpy: a proportion metric
as binomial counts, a skewed revenue metric (Bernoulli purchase x lognormal amount, the
shape of e-commerce spend) as per-experiment sums and sums of squares of the buyers' amounts.
Every rate is compared with its target within three Monte Carlo standard errors (or the
tolerance the brief sets), so a wrong formula fails and a right one passes reliably.
"""
from __future__ import annotations

import numpy as np
import pytest

from crmlab.abtest import SampleStats, mean_test, proportion_test, sample_size

ALPHA = 0.05
N_PROP = 40_000      # simulated experiments, proportion metric
N_REV = 20_000       # simulated experiments, revenue metric


def revenue(rng, n_exp, n, p=0.05, mu=3.0, sigma=1.0, scale=1.0, chunk=4000) -> SampleStats:
    """Sufficient statistics of ``n`` users x ``n_exp`` experiments of spend = Bernoulli(p) x
    scale x LogNormal(mu, sigma)."""
    s, q, c = np.empty(n_exp), np.empty(n_exp), np.empty(n_exp)
    for start in range(0, n_exp, chunk):
        m = min(chunk, n_exp - start)
        k = rng.binomial(n, p, m)
        v = rng.lognormal(mu, sigma, int(k.sum())) * scale
        idx = np.repeat(np.arange(m), k)
        s[start:start + m] = np.bincount(idx, weights=v, minlength=m)
        q[start:start + m] = np.bincount(idx, weights=v * v, minlength=m)
        c[start:start + m] = np.bincount(idx, weights=v ** 3, minlength=m)
    return SampleStats(np.full(n_exp, float(n)), s, q, c)


def revenue_moments(p=0.05, mu=3.0, sigma=1.0, scale=1.0):
    """Mean and variance per user of Bernoulli(p) x scale x LogNormal(mu, sigma)."""
    m1 = scale * np.exp(mu + sigma ** 2 / 2)
    m2 = scale ** 2 * np.exp(2 * mu + 2 * sigma ** 2)
    return p * m1, p * m2 - (p * m1) ** 2


def sides(res):
    """False winners / losers: interval entirely above / below 0."""
    return {"abs_win": np.mean(res["abs_ci_low"] > 0), "abs_lose": np.mean(res["abs_ci_high"] < 0),
            "p_win": np.mean((res["p_value"] < ALPHA) & (res["abs_lift"] > 0)),
            "p_lose": np.mean((res["p_value"] < ALPHA) & (res["abs_lift"] < 0)),
            "rel_win": np.mean(res["rel_ci_low"] > 0), "rel_lose": np.mean(res["rel_ci_high"] < 0)}


def assert_per_side(rate, n_sim, target=ALPHA / 2):
    se = np.sqrt(target * (1 - target) / n_sim)
    assert abs(rate - target) < 3 * se, (rate, target, se)


@pytest.fixture(scope="module")
def prop_aa():
    rng = np.random.default_rng(20240601)
    n, p = 5000, 0.05
    return proportion_test(rng.binomial(n, p, N_PROP), n, rng.binomial(n, p, N_PROP), n, method="pooled_z", relative="log")


@pytest.fixture(scope="module")
def revenue_aa():
    rng = np.random.default_rng(20240602)
    n = 20_000
    return mean_test(revenue(rng, N_REV, n), revenue(rng, N_REV, n), method="welch", relative="log")


@pytest.mark.parametrize("key", ["abs_win", "abs_lose", "p_win", "p_lose", "rel_win", "rel_lose"])
def test_proportion_false_positives_per_side(prop_aa, key):
    assert_per_side(sides(prop_aa)[key], N_PROP)


@pytest.mark.parametrize("key", ["abs_win", "abs_lose", "p_win", "p_lose", "rel_win", "rel_lose"])
def test_revenue_false_positives_per_side(revenue_aa, key):
    assert_per_side(sides(revenue_aa)[key], N_REV)


def test_coverage_under_a_true_lift():
    """95 % intervals cover the true difference and the true ratio within one point."""
    rng = np.random.default_rng(20240603)
    n, pc, pt = 5000, 0.05, 0.055
    r = proportion_test(rng.binomial(n, pc, N_PROP), n, rng.binomial(n, pt, N_PROP), n, method="pooled_z", relative="log")
    cov_abs = np.mean((r["abs_ci_low"] <= pt - pc) & (pt - pc <= r["abs_ci_high"]))
    cov_rel = np.mean((r["rel_ci_low"] <= pt / pc - 1) & (pt / pc - 1 <= r["rel_ci_high"]))
    assert abs(cov_abs - 0.95) < 0.01 and abs(cov_rel - 0.95) < 0.01, (cov_abs, cov_rel)

    n, scale = 20_000, 1.1
    mc, _ = revenue_moments()
    mt, _ = revenue_moments(scale=scale)
    r = mean_test(revenue(rng, N_REV, n), revenue(rng, N_REV, n, scale=scale), method="welch", relative="log")
    cov_abs = np.mean((r["abs_ci_low"] <= mt - mc) & (mt - mc <= r["abs_ci_high"]))
    cov_rel = np.mean((r["rel_ci_low"] <= scale - 1) & (scale - 1 <= r["rel_ci_high"]))
    assert abs(cov_abs - 0.95) < 0.01 and abs(cov_rel - 0.95) < 0.01, (cov_abs, cov_rel)


def test_aa_coverage_within_one_point(prop_aa, revenue_aa):
    for res in (prop_aa, revenue_aa):
        s = sides(res)
        assert abs(1 - s["abs_win"] - s["abs_lose"] - 0.95) < 0.01
        assert abs(1 - s["rel_win"] - s["rel_lose"] - 0.95) < 0.01


def test_linear_delta_relative_lift_is_lopsided_but_log_is_not():
    """A/A on a skewed metric with noisy means (250 buyers per arm): the linear delta method
    flags false losers several times more often than false winners; the log-ratio interval
    makes both mistakes equally often."""
    rng = np.random.default_rng(20240604)
    n = 5000
    c, t = revenue(rng, N_REV, n), revenue(rng, N_REV, n)
    lin = sides(mean_test(c, t, method="welch", relative="delta"))
    log = sides(mean_test(c, t, method="welch", relative="log"))
    se = np.sqrt(0.025 * 0.975 / N_REV)
    assert lin["rel_lose"] > 0.025 + 6 * se and lin["rel_win"] < 0.025 - 6 * se, lin
    assert lin["rel_lose"] > 2.5 * lin["rel_win"], lin
    # log: symmetric (difference of the two sides within 3 SE of a difference of two rates)
    assert abs(log["rel_win"] - log["rel_lose"]) < 3 * np.sqrt(2) * se, log
    # Fieller's interval is dual to the Welch test: identical error rates on each side
    fie = sides(mean_test(c, t, method="welch", relative="fieller"))
    assert (fie["rel_win"], fie["rel_lose"]) == (lin["abs_win"], lin["abs_lose"])


def test_computed_power_matches_simulated_power_proportions():
    rng = np.random.default_rng(20240605)
    plan = sample_size(baseline=0.05, mde=0.10, n_variants=2)  # Bonferroni: alpha 0.025 per test
    n = plan["n_control_ceil"]
    r = proportion_test(rng.binomial(n, 0.05, N_PROP), n, rng.binomial(n, 0.055, N_PROP), n)
    simulated = np.mean(r["p_value"] < plan["alpha_per_test"])
    assert abs(simulated - 0.8) < 0.02, simulated


def test_computed_power_matches_simulated_power_revenue():
    rng = np.random.default_rng(20240606)
    scale = 1.2
    mc, vc = revenue_moments()
    _, vt = revenue_moments(scale=scale)
    plan = sample_size(baseline=mc, sd=np.sqrt((vc + vt) / 2), mde=scale - 1, metric="mean")
    n = plan["n_control_ceil"]
    n_sim = 10_000
    r = mean_test(revenue(rng, n_sim, n), revenue(rng, n_sim, n, scale=scale))
    simulated = np.mean(r["p_value"] < ALPHA)
    assert abs(simulated - plan["power"]) < 0.02, (simulated, plan["power"])
