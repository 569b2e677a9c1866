"""Always-valid confidence sequences (Waudby-Smith et al. 2024) versus peeking at a z-test.

The simulations run many A/A (and A/B) experiments at once with cumulative sums over
20 weekly looks, fully vectorised and seeded.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from crmlab.abtest import sequential as seq

LOOKS = 20
PER_LOOK = 500            # users per arm added each week
REPS = 4000               # simulated experiments
N_OPT = 2 * PER_LOOK * LOOKS  # planned total at the last look
ALPHA = 0.05


def _se_rate(p: float, n: int = REPS) -> float:
    return math.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------------------
# simulation helpers: cumulative sufficient statistics per look, shape (REPS, LOOKS)
# --------------------------------------------------------------------------------------
def _cum_binomial(rng, p):
    conv = rng.binomial(PER_LOOK, p, size=(REPS, LOOKS)).cumsum(axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    mean = conv / n
    return n, mean, mean * (1 - mean) * n / (n - 1)


def _cum_revenue(rng, buy_p=0.1, mu=3.0, sigma=1.2):
    """Zero-inflated lognormal revenue per user: n, mean, var (ddof=1) per look."""
    buyers = rng.binomial(PER_LOOK, buy_p, size=(REPS, LOOKS))
    vals = rng.lognormal(mu, sigma, size=int(buyers.sum()))
    cell = np.repeat(np.arange(REPS * LOOKS), buyers.ravel())
    s1 = np.bincount(cell, vals, minlength=REPS * LOOKS).reshape(REPS, LOOKS).cumsum(axis=1)
    s2 = np.bincount(cell, vals ** 2, minlength=REPS * LOOKS).reshape(REPS, LOOKS).cumsum(axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    mean = s1 / n
    var = (s2 - n * mean ** 2) / (n - 1)
    return n, mean, var


def _fixed_z_reject(n_a, m_a, v_a, n_b, m_b, v_b):
    z = (m_b - m_a) / np.sqrt(v_a / n_a + v_b / n_b)
    return np.abs(z) > stats.norm.ppf(1 - ALPHA / 2)


def _aa_rates(arm_a, arm_b):
    cs = seq.confidence_sequence_diff(*arm_a, *arm_b, alpha=ALPHA, n_opt=N_OPT)
    cs_reject_any = ((cs["ci_low"] > 0) | (cs["ci_high"] < 0)).any(axis=1).mean()
    z_reject_any = _fixed_z_reject(*arm_a, *arm_b).any(axis=1).mean()
    z_reject_last = _fixed_z_reject(*arm_a, *arm_b)[:, -1].mean()
    return cs, float(cs_reject_any), float(z_reject_any), float(z_reject_last)


# Armitage, McPherson & Rowe (1969, JRSS A 132, Table 2): overall type I error of a
# two-sided 5% z-test repeated after each of 20 equal groups of observations.
ARMITAGE_20_LOOKS = 0.248


def test_aa_proportion_20_looks():
    rng = np.random.default_rng(20260101)
    a, b = _cum_binomial(rng, 0.10), _cum_binomial(rng, 0.10)
    cs, fpr_cs, fpr_z, fpr_last = _aa_rates(a, b)
    print(f"proportion A/A, {LOOKS} looks: CS FPR={fpr_cs:.4f}, peeking z FPR={fpr_z:.4f}, "
          f"single final z-test={fpr_last:.4f}")
    assert fpr_cs <= ALPHA + 3 * _se_rate(ALPHA)
    # peeking at a fixed-horizon test inflates the error to Armitage et al.'s ~25%
    assert fpr_z > ALPHA + 3 * _se_rate(ALPHA)
    assert abs(fpr_z - ARMITAGE_20_LOOKS) < 3 * _se_rate(ARMITAGE_20_LOOKS) + 0.01
    # the single final look is a valid 5% test (sanity check of the simulation)
    assert abs(fpr_last - ALPHA) < 3 * _se_rate(ALPHA)
    # always-valid p-value agrees with the CS: rejects exactly where 0 is excluded
    p = seq.always_valid_p_value(*a, *b, alpha=ALPHA, n_opt=N_OPT)
    excl = (cs["ci_low"] > 0) | (cs["ci_high"] < 0)
    assert np.array_equal(p <= ALPHA, excl)


def test_aa_skewed_revenue_20_looks():
    rng = np.random.default_rng(20260102)
    a, b = _cum_revenue(rng), _cum_revenue(rng)
    _, fpr_cs, fpr_z, _ = _aa_rates(a, b)
    rel = seq.confidence_sequence_diff(*a, *b, alpha=ALPHA, n_opt=N_OPT, relative=True)
    fpr_rel = float(((rel["ci_low"] > 0) | (rel["ci_high"] < 0)).any(axis=1).mean())
    print(f"revenue A/A, {LOOKS} looks: CS FPR={fpr_cs:.4f} (lift CS {fpr_rel:.4f}), "
          f"peeking z FPR={fpr_z:.4f}")
    assert fpr_cs <= ALPHA + 3 * _se_rate(ALPHA)
    assert fpr_rel <= ALPHA + 3 * _se_rate(ALPHA)
    assert fpr_z > ALPHA + 3 * _se_rate(ALPHA)
    assert abs(fpr_z - ARMITAGE_20_LOOKS) < 3 * _se_rate(ARMITAGE_20_LOOKS) + 0.02


def test_cs_covers_true_difference_at_all_looks():
    rng = np.random.default_rng(20260103)
    # proportions with a real effect: 10% vs 11%
    a, b = _cum_binomial(rng, 0.10), _cum_binomial(rng, 0.11)
    cs = seq.confidence_sequence_diff(*a, *b, alpha=ALPHA, n_opt=N_OPT)
    cover_p = float(((cs["ci_low"] <= 0.01) & (cs["ci_high"] >= 0.01)).all(axis=1).mean())
    # revenue with a planted +10% lift in the buyers' spend (lognormal mu + log 1.1)
    ra, rb = _cum_revenue(rng), _cum_revenue(rng, mu=3.0 + math.log(1.1))
    true_diff = 0.1 * math.exp(3.0 + 1.2 ** 2 / 2) * 0.1   # buy_p * E[lognormal] * 10%
    cs_r = seq.confidence_sequence_diff(*ra, *rb, alpha=ALPHA, n_opt=N_OPT)
    cover_r = float(((cs_r["ci_low"] <= true_diff) & (cs_r["ci_high"] >= true_diff)).all(axis=1).mean())
    # the running intersection keeps the guarantee
    lo, hi = seq.running_bounds(cs["ci_low"], cs["ci_high"])
    cover_run = float(((lo <= 0.01) & (hi >= 0.01)).all(axis=1).mean())
    print(f"coverage at all {LOOKS} looks: proportion={cover_p:.4f}, revenue={cover_r:.4f}, "
          f"proportion running intersection={cover_run:.4f}")
    floor = 1 - ALPHA - 3 * _se_rate(ALPHA)
    assert cover_p >= floor
    assert cover_r >= floor
    assert cover_run == cover_p   # intersection only drops runs that already missed once
    assert np.all(lo >= cs["ci_low"]) and np.all(hi <= cs["ci_high"])


def test_optimal_rho_minimises_width_at_n_opt():
    for alpha in (0.01, 0.05, 0.1):
        for n_opt in (1_000, 20_000):
            rho = seq.optimal_rho(n_opt, alpha)
            best = optimize.minimize_scalar(lambda r: float(seq.cs_radius(1.0, n_opt, r, alpha)),
                                            bounds=(1e-6, 1.0), method="bounded",
                                            options={"xatol": 1e-12})
            assert rho == pytest.approx(best.x, rel=1e-4)
            approx = seq.optimal_rho(n_opt, alpha, exact=False)
            assert approx == pytest.approx(rho, rel=0.05)


def test_cs_is_wider_than_fixed_ci_and_shrinks():
    n = np.arange(100, 100_001, 100)
    se = 1 / np.sqrt(n)
    r = seq.cs_radius(se, 2 * n, seq.optimal_rho(20_000), 0.05)
    assert np.all(r > stats.norm.ppf(0.975) * se)
    assert np.all(np.diff(r) < 0)
    # near n_opt the price of peeking is moderate (about 1.3-1.5x the fixed CI)
    ratio = r[n == 10_000][0] / (1.959964 * se[n == 10_000][0])
    assert 1.2 < ratio < 1.6


def test_proportion_helper_and_relative():
    out = seq.confidence_sequence_prop(120, 1000, 150, 1000, n_opt=4000)
    ref = seq.confidence_sequence_diff(1000, 0.12, 0.12 * 0.88, 1000, 0.15, 0.15 * 0.85, n_opt=4000)
    for k in ("estimate", "ci_low", "ci_high", "p_value"):
        assert out[k] == pytest.approx(ref[k], rel=1e-12)
    rel = seq.confidence_sequence_prop(120, 1000, 150, 1000, n_opt=4000, relative=True)
    assert rel["estimate"] == pytest.approx(0.25)
    # delta-method se of the log ratio: sqrt(v_a/(n_a m_a^2) + v_b/(n_b m_b^2))
    se = math.sqrt(0.12 * 0.88 / (1000 * 0.12 ** 2) + 0.15 * 0.85 / (1000 * 0.15 ** 2))
    assert rel["se"] == pytest.approx(se)
    r = float(seq.cs_radius(se, 2000, seq.optimal_rho(4000), 0.05))
    assert (rel["ci_low"], rel["ci_high"]) == pytest.approx((1.25 * math.exp(-r) - 1, 1.25 * math.exp(r) - 1))
    # scalars in, floats out
    assert isinstance(out["ci_low"], float)


def test_sequential_table_one_experiment():
    rng = np.random.default_rng(99)
    weeks = 12
    conv_a = rng.binomial(2000, 0.10, weeks).cumsum()
    conv_b = rng.binomial(2000, 0.12, weeks).cumsum()   # planted +2 points
    n = 2000 * np.arange(1, weeks + 1)
    pa, pb = conv_a / n, conv_b / n
    looks = pd.DataFrame({"week": pd.date_range("2026-01-05", periods=weeks, freq="W-MON"),
                          "n_a": n, "mean_a": pa, "var_a": pa * (1 - pa),
                          "n_b": n, "mean_b": pb, "var_b": pb * (1 - pb)})
    out = seq.sequential_table(looks, n_opt=4 * 2000 * weeks)
    assert len(out) == weeks and list(out.columns[:7]) == list(looks.columns)
    ref = seq.confidence_sequence_prop(conv_a, n, conv_b, n, n_opt=4 * 2000 * weeks)
    np.testing.assert_allclose(out["ci_low"], ref["ci_low"])
    assert out["ci_low_running"].is_monotonic_increasing
    assert out["ci_high_running"].is_monotonic_decreasing
    assert out["p_value_running"].is_monotonic_decreasing
    # 24k users per arm with a 2-point lift: detected by the end, and the CS covers 0.02
    assert out["significant"].iloc[-1]
    assert out["ci_low_running"].iloc[-1] <= 0.02 <= out["ci_high_running"].iloc[-1]
    with pytest.raises(ValueError, match="missing columns"):
        seq.sequential_table(looks.drop(columns="var_b"))


def test_bad_parameters():
    with pytest.raises(ValueError, match="alpha"):
        seq.confidence_sequence_diff(10, 0, 1, 10, 0, 1, alpha=1.5)
    with pytest.raises(ValueError, match="rho or n_opt"):
        seq.confidence_sequence_diff(10, 0, 1, 10, 0, 1, rho=0.1, n_opt=100)
    with pytest.raises(ValueError, match="n_opt"):
        seq.optimal_rho(-5)
    with pytest.raises(ValueError, match="var_a"):
        seq.confidence_sequence_diff(10, 0, -1, 10, 0, 1)
