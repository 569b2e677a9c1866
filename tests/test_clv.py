"""BG/NBD and Gamma-Gamma on the CDNOW sample: the published figures, plus simulation checks.

Published figures:
- Fader, Hardie & Lee (2005), "Counting your customers" the easy way, Marketing Science 24(2):
  39-week calibration (1997-01-01..1997-09-30), weeks at day precision; r = 0.243,
  alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4; a customer with x = 2, t_x = 30.43,
  T = 38.86 expects 1.226 purchases in the next 39 weeks.
- Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": 946 repeat buyers,
  p = 6.25, q = 3.74, gamma = 15.44.
- The calibration summary itself (Hardie's CDNOW summary file, as shipped by lifetimes as
  ``cdnow_customers_summary_with_transactions.csv``: ID, x, t_x, T, zbar): first rows and
  column totals are copied below.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlab.clv import (BGNBD, bgnbd_loglik, customer_value, fit_bgnbd, fit_gamma_gamma,
                        gamma_gamma_loglik, value_by_segment)
from crmlab.datasets import load_cdnow_sample
from crmlab.rfm import rfm_scores, rfm_table

# ID, x, t_x, T, zbar: first 11 rows of the published summary
PUBLISHED_ROWS = [
    (1, 2, 30.43, 38.86, 22.35), (2, 1, 1.71, 38.86, 11.77), (3, 0, 0.00, 38.86, 0.00),
    (4, 0, 0.00, 38.86, 0.00), (5, 0, 0.00, 38.86, 0.00), (6, 7, 29.43, 38.86, 73.74),
    (7, 1, 5.00, 38.86, 11.77), (8, 0, 0.00, 38.86, 0.00), (9, 2, 35.71, 38.86, 25.55),
    (10, 0, 0.00, 38.86, 0.00), (11, 5, 24.43, 38.86, 29.44),
]
# column totals of the published summary (2,357 rows, values rounded to 2 decimals)
PUBLISHED_TOTALS = {"x": 2457, "t_x": 16135.52, "T": 77111.21, "zbar": 33184.31}


@pytest.fixture(scope="module")
def cal():
    orders = load_cdnow_sample().orders
    return rfm_table(orders, as_of="1997-09-30", definition="lifetimes", freq="D", freq_multiplier=7)


@pytest.fixture(scope="module")
def bg(cal):
    return fit_bgnbd(cal["frequency"], cal["recency"], cal["T"])


@pytest.fixture(scope="module")
def gg(cal):
    return fit_gamma_gamma(cal["frequency"], cal["monetary"])


PAPER = BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426, loglik=-9582.4, n=2357)


# --------------------------------------------------------------------------------------------
# Data preparation reproduces the published calibration summary
# --------------------------------------------------------------------------------------------
def test_calibration_summary_matches_published(cal):
    assert len(cal) == 2357
    assert int((cal["frequency"] > 0).sum()) == 946
    # all first purchases in the first 12 weeks (1997-01-01 .. 1997-03-25)
    assert cal["first_time"].max() <= pd.Timestamp("1997-03-31", tz="Asia/Seoul")
    assert cal["T"].min() >= 27 - 1e-9
    c = cal.assign(ID=cal["user_id"].astype(int)).set_index("ID")
    for id_, x, t_x, T, zbar in PUBLISHED_ROWS:
        row = c.loc[id_]
        assert row["frequency"] == x
        assert round(row["recency"], 2) == t_x
        assert round(row["T"], 2) == T
        assert row["monetary"] == pytest.approx(zbar, abs=0.0051)
    assert c["frequency"].sum() == PUBLISHED_TOTALS["x"]
    # totals of 2-decimal-rounded values: our rounded values must add to the same totals
    assert c["recency"].round(2).sum() == pytest.approx(PUBLISHED_TOTALS["t_x"], abs=0.005)
    assert c["T"].round(2).sum() == pytest.approx(PUBLISHED_TOTALS["T"], abs=0.005)
    assert c["monetary"].sum() == pytest.approx(PUBLISHED_TOTALS["zbar"], abs=0.01 * 946)


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------
def test_bgnbd_reproduces_fader_hardie_lee_2005(bg):
    assert round(bg.r, 3) == 0.243
    assert round(bg.alpha, 3) == 4.414
    assert round(bg.a, 3) == 0.793
    assert round(bg.b, 3) == 2.426
    assert round(bg.loglik, 1) == -9582.4
    assert bg.n == 2357 and bg.converged
    assert round(float(bg.conditional_expected_purchases(39, 2, 30.43, 38.86)), 3) == 1.226


def test_bgnbd_loglik_is_a_maximum(bg, cal):
    x, t_x, T = cal["frequency"], cal["recency"], cal["T"]
    best = bgnbd_loglik((bg.r, bg.alpha, bg.a, bg.b), x, t_x, T)
    assert best == pytest.approx(bg.loglik)
    # the published (rounded) parameters are within rounding of the optimum, and below it
    paper = bgnbd_loglik((PAPER.r, PAPER.alpha, PAPER.a, PAPER.b), x, t_x, T)
    assert best - 0.01 < paper <= best
    for i in range(4):
        for f in (0.97, 1.03):
            p = np.array([bg.r, bg.alpha, bg.a, bg.b])
            p[i] *= f
            assert bgnbd_loglik(p, x, t_x, T) < best


def test_bgnbd_single_customer_likelihood_by_hand():
    # x = 0: L = B(a, b)/B(a, b) * alpha^r / (alpha + T)^r  (FHL eq. 6, second term absent)
    r, alpha, a, b, T = 0.5, 3.0, 1.2, 2.5, 10.0
    assert bgnbd_loglik((r, alpha, a, b), [0], [0], [T]) == pytest.approx(r * np.log(alpha / (alpha + T)))


def test_expected_purchases_properties(bg):
    t = np.linspace(0, 200, 81)
    e = bg.expected_purchases(t)
    assert e[0] == pytest.approx(0.0, abs=1e-12)
    assert (np.diff(e) > 0).all()
    # slope at 0 is the mean purchase rate while alive, r/alpha
    h = 1e-5
    assert float(bg.expected_purchases(h)) / h == pytest.approx(bg.r / bg.alpha, rel=1e-3)
    # a brand-new customer (x = 0, t_x = 0, T = 0) has the unconditional expectation
    np.testing.assert_allclose(bg.conditional_expected_purchases(t[1:], 0, 0, 0), e[1:], rtol=1e-10)
    # conditional expectation grows with the horizon
    c = bg.conditional_expected_purchases(t[1:], 3, 20.0, 38.0)
    assert (np.diff(c) > 0).all()


def test_p_alive_properties(bg, cal):
    pa = bg.p_alive(cal["frequency"], cal["recency"], cal["T"])
    assert ((pa >= 0) & (pa <= 1)).all()
    # x = 0: a BG/NBD customer can only drop out right after a repeat purchase
    assert (pa[cal["frequency"].to_numpy() == 0] == 1).all()
    assert (pa[cal["frequency"].to_numpy() > 0] < 1).all()
    # same x and T: a later last purchase means more likely alive
    assert bg.p_alive(3, 30.0, 38.0) > bg.p_alive(3, 10.0, 38.0)
    # same x and t_x: the longer the silence, the less likely alive
    assert bg.p_alive(3, 10.0, 50.0) < bg.p_alive(3, 10.0, 20.0)
    # last purchase at T: odds of being inactive are a/(b + x - 1)
    assert float(bg.p_alive(4, 30.0, 30.0)) == pytest.approx(1 / (1 + bg.a / (bg.b + 3)))


def _simulate_bgnbd(m: BGNBD, n: int, T: float, horizon: float, seed: int):
    """Simulate the BG/NBD story: rate ~ Gamma(r, 1/alpha), dropout ~ Beta(a, b) after each repeat
    purchase. Returns x, t_x in (0, T], alive at T, purchases in (T, T + horizon]."""
    rng = np.random.default_rng(seed)
    lam = np.maximum(rng.gamma(m.r, 1 / m.alpha, n), 1e-12)
    p = rng.beta(m.a, m.b, n)
    now = np.zeros(n)
    alive = np.ones(n, bool)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    alive_T = np.ones(n, bool)
    active = np.ones(n, bool)  # still simulating
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1 / lam[idx])
        past = now[idx] > T + horizon
        active[idx[past]] = False
        idx = idx[~past]
        cal_ = now[idx] <= T
        x[idx[cal_]] += 1
        t_x[idx[cal_]] = now[idx[cal_]]
        future[idx[~cal_]] += 1
        dies = rng.random(len(idx)) < p[idx]
        active[idx[dies]] = False
        alive[idx[dies]] = False
        alive_T[idx[dies & cal_]] = False
    return x, t_x, alive_T, future


def test_p_alive_and_conditional_expectation_calibrated_on_simulated_bgnbd(bg):
    """Law of total expectation: averaged over simulated histories, P(alive | data) must equal the
    simulated share alive at T and E[Y(t) | data] the simulated mean of future purchases."""
    T, horizon, n = 39.0, 39.0, 40_000
    x, t_x, alive_T, future = _simulate_bgnbd(bg, n, T, horizon, seed=7)
    pa = bg.p_alive(x, t_x, np.full(n, T))
    ey = bg.conditional_expected_purchases(horizon, x, t_x, np.full(n, T))
    for mask in (x >= 0, x >= 1, x >= 3):
        k = mask.sum()
        se_alive = np.sqrt(alive_T[mask].mean() * (1 - alive_T[mask].mean()) / k)
        assert abs(pa[mask].mean() - alive_T[mask].mean()) < 4 * se_alive + 1e-3
        se_y = future[mask].std() / np.sqrt(k)
        assert abs(ey[mask].mean() - future[mask].mean()) < 4 * se_y
    # unconditional: E[X(T)] against the simulated calibration counts
    assert abs(float(bg.expected_purchases(T)) - x.mean()) < 4 * x.std() / np.sqrt(n)


def test_fit_bgnbd_recovers_planted_parameters():
    truth = BGNBD(r=0.5, alpha=5.0, a=1.5, b=4.0, loglik=np.nan, n=0)
    rng = np.random.default_rng(3)
    T = rng.uniform(20, 52, 6000)
    x = np.zeros(6000)
    t_x = np.zeros(6000)
    for T_val in np.unique(np.round(T)):  # simulate per T group (vectorised inside)
        sel = np.flatnonzero(np.round(T) == T_val)
        xs, ts, _, _ = _simulate_bgnbd(truth, len(sel), float(T_val), 0.0, seed=int(T_val))
        x[sel], t_x[sel], T[sel] = xs, ts, T_val
    fit = fit_bgnbd(x, t_x, T)
    assert fit.r == pytest.approx(truth.r, rel=0.1)
    assert fit.alpha == pytest.approx(truth.alpha, rel=0.1)
    assert fit.a == pytest.approx(truth.a, rel=0.3)
    assert fit.b == pytest.approx(truth.b, rel=0.4)
    assert fit.loglik >= bgnbd_loglik((truth.r, truth.alpha, truth.a, truth.b), x, t_x, T)


def test_fit_bgnbd_rejects_bad_input():
    with pytest.raises(ValueError, match="recency <= T"):
        fit_bgnbd([1, 2], [5, 3], [4, 10])
    with pytest.raises(ValueError, match="recency must be 0"):
        fit_bgnbd([0, 2], [1, 3], [4, 10])
    with pytest.raises(ValueError, match="equal length"):
        fit_bgnbd([0, 2], [0, 3], [4])


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------
def test_gamma_gamma_reproduces_fader_hardie_2013(gg):
    assert gg.n == 946
    assert round(gg.p, 2) == 6.25
    assert round(gg.q, 2) == 3.74
    assert round(gg.gamma, 2) == 15.44


def test_gamma_gamma_conditional_spend(gg, cal):
    # x = 0 -> population mean p*gamma/(q-1); large x -> the customer's own mean
    assert float(gg.conditional_expected_spend(0, 0.0)) == pytest.approx(gg.p * gg.gamma / (gg.q - 1))
    assert float(gg.conditional_expected_spend(10_000, 50.0)) == pytest.approx(50.0, rel=1e-3)
    # a weighted mean: between the population mean and m_x
    rep = cal[cal["frequency"] > 0]
    e = gg.conditional_expected_spend(rep["frequency"], rep["monetary"])
    lo = np.minimum(rep["monetary"], gg.mean_spend)
    hi = np.maximum(rep["monetary"], gg.mean_spend)
    assert ((e >= lo - 1e-9) & (e <= hi + 1e-9)).all()


def test_gamma_gamma_likelihood_integrates_to_one():
    # f(m_x | x) is a density in m_x (Fader & Hardie 2013, eq. 3)
    from scipy import integrate
    for x in (1, 3):
        val, _ = integrate.quad(lambda m: np.exp(gamma_gamma_loglik((6.25, 3.74, 15.44), [x], [m])),
                                0, np.inf, limit=200)
        assert val == pytest.approx(1.0, abs=1e-6)


def test_fit_gamma_gamma_recovers_planted_parameters():
    p, q, g = 6.0, 4.0, 15.0
    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.integers(1, 8, n)
    nu = rng.gamma(q, 1 / g, n)  # customer's scale: nu ~ Gamma(q, rate gamma)
    # mean of x draws of Gamma(p, rate nu) is Gamma(p x, rate nu x)
    mx = rng.gamma(p * x, 1 / (nu * x))
    fit = fit_gamma_gamma(np.r_[x, 0, 2], np.r_[mx, 0.0, 0.0])  # two rows that must be left out
    assert fit.n == n and fit.converged
    assert fit.p == pytest.approx(p, rel=0.1)
    assert fit.q == pytest.approx(q, rel=0.1)
    assert fit.gamma == pytest.approx(g, rel=0.15)
    assert fit.mean_spend == pytest.approx(p * g / (q - 1), rel=0.03)
    assert fit.loglik >= gamma_gamma_loglik((p, q, g), x, mx)


# --------------------------------------------------------------------------------------------
# Value per customer and per segment
# --------------------------------------------------------------------------------------------
def test_customer_value(cal, bg, gg):
    v = customer_value(cal, 39, bgnbd=bg, gamma_gamma=gg)
    assert len(v) == len(cal)
    np.testing.assert_allclose(v["expected_value"], v["expected_purchases"] * v["expected_spend"])
    row = v[v["user_id"] == "0001"].iloc[0]  # the paper's x=2, t_x=30.43, T=38.86 customer
    assert round(row["expected_purchases"], 3) == 1.226
    assert ((v["p_alive"] >= 0) & (v["p_alive"] <= 1)).all()
    # discounting: lower value; one step = divide by (1 + d); zero rate = undiscounted
    d = customer_value(cal, 39, bgnbd=bg, gamma_gamma=gg, discount_rate=0.01)
    assert (d["expected_value"] < v["expected_value"]).all()
    assert (d["expected_value"] > v["expected_value"] / 1.01 ** 39).all()
    one = customer_value(cal, 39, bgnbd=bg, gamma_gamma=gg, discount_rate=0.1, steps=1)
    np.testing.assert_allclose(one["expected_value"], v["expected_value"] / 1.1)
    # fitting inside gives the same models
    auto = customer_value(cal, 39)
    assert auto.attrs["bgnbd"]["r"] == pytest.approx(bg.r, rel=1e-6)
    with pytest.raises(ValueError, match="horizon=-1"):
        customer_value(cal, -1, bgnbd=bg, gamma_gamma=gg)


def test_value_by_segment_adds_up(cal, bg, gg):
    orders = load_cdnow_sample().orders
    seg = rfm_scores(rfm_table(orders, as_of="1997-09-30"))
    v = customer_value(cal, 39, bgnbd=bg, gamma_gamma=gg)
    out = value_by_segment(v.iloc[:-5], seg)  # 5 customers without a value
    assert out["customers"].sum() == len(v) - 5
    assert out["expected_value"].sum() == pytest.approx(v["expected_value"].iloc[:-5].sum())
    assert out["value_share"].sum() == pytest.approx(1.0)
    assert out.attrs["excluded"] == {"customers without a segment": 0, "customers without a value": 5}
    by = out.set_index("segment")
    # Champions are worth more per head than Lost customers
    assert by.loc["Champions", "value_per_customer"] > by.loc["Lost", "value_per_customer"]
