"""The default comparison of two arms: a skewness-corrected z-test with dual intervals, and the
sufficiency rule that says ``insufficient`` where no normal-based method is calibrated.

CRM metrics are skewed (revenue per user: 95 % zeros and a long tail; conversion at 1-3 %) and
CRM splits are unequal (control groups of 10-20 %). The skewness of the difference of means,

    gamma = kappa3(D) / var(D)^(3/2),   kappa3(D) = mu3 (1/n_t^2 - 1/n_c^2),   var(D) = sigma^2 (1/n_t + 1/n_c)

does not cancel when the arms differ in size, and the Welch statistic then flags false winners
far more often than false losers (7.5 % / 0.3 % per side at a 20/80 split of lognormal
revenue; see ``docs/calibration.md``). Its Edgeworth expansion is (Hall 1992, *The Bootstrap
and Edgeworth Expansion*, sec. 2.6; the two-sample case follows because
``cov(D, var_hat(D)) = kappa3(D)``)

    P(T <= x) = Phi(x) + gamma (2 x^2 + 1) / 6 phi(x) + O(1/n),

and Hall's (1992, "On the removal of skewness by transformation", JRSS B 54:221-228) monotone
cubic transformation removes the first-order term:

    g(T) = T + a T^2 + a^2 T^3 / 3 + gamma / 6,   a = gamma / 3,

so ``g(T)`` is referred to the standard normal. The p-value is that of ``g(T_0)``; the
intervals invert the same test (``T_delta = (D - delta) / se``), so p-value and interval never
disagree. The relative interval inverts the test of ``m_t = (1 + r) m_c`` (a skewness-corrected
Fieller interval, Fieller 1954), so its p-value is the same test's and it is unbounded when the
control mean is not itself distinguishable from zero.

``mu3`` and ``sigma^2`` are the *pooled within-arm* central moments: under the null the arms
share one shape, and the pooled estimate is far more stable than the small arm's own (per-arm
plug-ins double the A/A rate at equal splits in our grid, because a large order in one arm
inflates its mean and its skewness together).

Sufficiency (chosen by the grid in ``docs/calibration.md``): a comparison is ``insufficient``
and gets no p-value when

- an arm has fewer than 2 users (``empty_arm``);
- a 0/1 metric expects fewer than ``MIN_EXPECTED`` = 10 successes or failures in the smaller arm
  at the pooled rate (``too_few_expected_events``; the usual ``np >= 10`` rule for the normal
  approximation);
- a non-negative metric has fewer than ``MIN_EFFECTIVE`` = 20 *effective* users in the smaller
  arm, ``n_eff = n_min / N * S1^2 / S2`` (Kish's effective sample size of the pooled values:
  with lognormal(sigma=2) spend one buyer in 400 carries the variance) (``too_few_effective_users``);
- ``|gamma| > MAX_SKEW`` = 0.3, where the first-order correction over-corrects because the
  sample skewness of a heavy tail is itself unreliable (``skewed_difference``). Kohavi, Deng &
  Vermeer (2014, "Seven rules of thumb for web site experimenters", rule 7: ``n > 355 s^2``)
  bounds the same quantity for an uncorrected one-sample test.

``n_needed`` is the control size, at the same split, that would pass the rule (``n_eff`` grows
linearly with n, ``gamma`` as ``1/sqrt(n)``).
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

__all__ = ["hall_transform", "hall_inverse", "skew_test", "sufficiency", "MIN_EFFECTIVE", "MAX_SKEW",
           "MIN_EXPECTED", "REASONS"]

MIN_EFFECTIVE = 20
MAX_SKEW = 0.3
MIN_EXPECTED = 10
REASONS = ("empty_arm", "too_few_expected_events", "too_few_effective_users", "skewed_difference", "no_variance")


def hall_transform(t, gamma):
    """Hall's (1992) monotone cubic ``t + a t^2 + a^2 t^3 / 3 + gamma/6`` with ``a = gamma/3``."""
    a = np.asarray(gamma, float) / 3
    return t + a * t * t + a * a * t ** 3 / 3 + a / 2


def hall_inverse(y, gamma):
    """The ``t`` with ``hall_transform(t, gamma) == y`` (the transformation is a shifted cube:
    ``((1 + a t)^3 - 1) / (3 a) + a / 2``)."""
    a = np.asarray(gamma, float) / 3
    y = np.asarray(y, float)
    small = np.abs(a) < 1e-10
    safe = np.where(small, 1.0, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.cbrt(1 + 3 * safe * (y - safe / 2)) - 1) / safe
    return np.where(small, y - a / 2, t)


def _gamma(mu3, var, n_c, n_t, ratio=1.0):
    """Skewness of ``m_t - ratio * m_c`` when both arms share the per-user moments ``var, mu3``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k3 = mu3 * (1 / n_t ** 2 - ratio ** 3 / n_c ** 2)
        v = var * (1 / n_t + ratio ** 2 / n_c)
        g = k3 / v ** 1.5
    return np.where(np.isfinite(g), g, 0.0)


def sufficiency(n_c, n_t, s1, s2, gamma, binary):
    """Status of each comparison under the rule in the module docstring.

    ``s1, s2`` are the pooled sum and sum of squares of the metric (both arms). Returns
    ``(ok, reason, n_needed)``: a boolean array, an object array of reason codes (``""`` when
    ok) and the control size at the same split that would suffice (``n_c`` when ok).
    """
    n_c, n_t, s1, s2, gamma = (np.asarray(v, float) for v in (n_c, n_t, s1, s2, gamma))
    binary = np.asarray(binary, bool)
    n_min, n_all = np.minimum(n_c, n_t), n_c + n_t
    with np.errstate(divide="ignore", invalid="ignore"):
        p = s1 / n_all
        expected = np.minimum(p, 1 - p) * n_min
        n_eff = np.where(s2 > 0, s1 * s1 / s2, 0.0) * n_min / n_all
        need_count = np.where(binary, MIN_EXPECTED / expected, MIN_EFFECTIVE / n_eff)
        need_skew = np.where(binary, 1.0, (gamma / MAX_SKEW) ** 2)
    empty = n_min < 2
    few = np.where(binary, expected < MIN_EXPECTED, n_eff < MIN_EFFECTIVE)
    skewed = ~binary & (np.abs(gamma) > MAX_SKEW)
    reason = np.select([empty, few & binary, few, skewed], list(REASONS[:4]), default="").astype(object)
    ok = reason == ""
    factor = np.nanmax(np.stack(np.broadcast_arrays(need_count, need_skew, 1.0)), axis=0)
    factor = np.where(np.isfinite(factor), factor, np.nan)
    n_needed = np.where(ok, n_c, np.ceil(n_c * factor))
    return ok, reason, n_needed


def _relative_bounds(m_c, v_c, n_c, m_t, v_t, n_t, mu3, var, q, rel):
    """Invert the skewness-corrected test of ``m_t = (1 + r) m_c`` by vectorised bisection."""
    def stat(r):
        k = 1 + r
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (m_t - k * m_c) / np.sqrt(v_t + k * k * v_c)
        return hall_transform(t, _gamma(mu3, var, n_c, n_t, k))

    def solve(lo, hi, target):
        f_lo = stat(lo) - target
        for _ in range(70):
            mid = (lo + hi) / 2
            f_mid = stat(mid) - target
            left = np.sign(f_mid) == np.sign(f_lo)
            lo, f_lo = np.where(left, mid, lo), np.where(left, f_mid, f_lo)
            hi = np.where(left, hi, mid)
        return (lo + hi) / 2

    r_hat = np.where(np.isfinite(rel), rel, 0.0)
    minus_one = np.full_like(r_hat, -1.0)
    lower = np.where(stat(minus_one) <= q, -1.0, solve(minus_one, r_hat, q))
    far = np.maximum(1e6, 1e3 * (1 + np.abs(r_hat)))
    bounded = stat(far) < -q
    upper = np.where(bounded, solve(r_hat, far, -q), np.nan)
    return lower, upper


def skew_test(m_c, v_c, n_c, m_t, v_t, n_t, *, mu3, var, s1, s2, binary, alpha=0.05):
    """Skewness-corrected z-test of ``m_t - m_c`` (see the module docstring).

    Parameters
    ----------
    m_c, m_t : means of the arms; ``v_c, v_t`` the variances of those means; ``n_c, n_t`` sizes.
    mu3, var : pooled within-arm third central moment and variance per user.
    s1, s2 : pooled sum and sum of squares (for the sufficiency rule).
    binary : whether the metric is 0/1.
    alpha : two-sided level.

    Returns
    -------
    dict of arrays: ``abs_lift, abs_se, abs_ci_low, abs_ci_high, statistic, p_value, rel_lift,
    rel_ci_low, rel_ci_high, rel_p_value, skewness, status, reason, n_needed``. ``status`` is
    ``"ok"`` or ``"insufficient"``; insufficient comparisons have NaN p-values and intervals.
    """
    m_c, v_c, n_c, m_t, v_t, n_t = (np.asarray(x, float) for x in (m_c, v_c, n_c, m_t, v_t, n_t))
    q = sps.norm.ppf(1 - alpha / 2)
    gamma = _gamma(mu3, var, n_c, n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = m_t - m_c
        se = np.sqrt(v_c + v_t)
        t0 = diff / se
        y0 = hall_transform(t0, gamma)
        p = 2 * sps.norm.sf(np.abs(y0))
        # T_delta = (diff - delta)/se; g(T_delta) = +-q  <=>  delta = diff - se * g^-1(+-q)
        lo, hi = diff - se * hall_inverse(q, gamma), diff - se * hall_inverse(-q, gamma)
        rel = np.where(m_c > 0, m_t / m_c - 1, np.nan)
    r_lo, r_hi = _relative_bounds(m_c, v_c, n_c, m_t, v_t, n_t, mu3, var, q, rel)
    r_lo, r_hi = np.where(m_c > 0, r_lo, np.nan), np.where(m_c > 0, r_hi, np.nan)
    ok, reason, n_needed = sufficiency(n_c, n_t, s1, s2, gamma, binary)
    ok = ok & np.isfinite(se) & (se > 0)
    reason = np.where(ok | (reason != ""), reason, REASONS[4]).astype(object)
    nan = np.where(ok, 1.0, np.nan)
    return {"abs_lift": diff, "abs_se": se, "abs_ci_low": lo * nan, "abs_ci_high": hi * nan,
            "statistic": t0, "p_value": p * nan, "rel_lift": rel, "rel_ci_low": r_lo * nan,
            "rel_ci_high": r_hi * nan, "rel_p_value": p * nan, "skewness": gamma,
            "status": np.where(ok, "ok", "insufficient").astype(object), "reason": reason,
            "n_needed": n_needed, "df": np.full(np.shape(diff), np.inf)}


def within_arm_moments(n_c, s1_c, s2_c, s3_c, n_t, s1_t, s2_t, s3_t):
    """Pooled *within-arm* variance and third central moment per user (deviations from each
    arm's own mean, unlike :func:`crmlab.abtest.sequential.pooled_moments`, which pools the
    two arms into one sample) from each arm's
    ``n, sum, sum of squares, sum of cubes`` (``sum (x - m)^3 = S3 - 3 m S2 + 2 m^2 S1`` since
    ``S1 = n m``); both divide by the total ``N`` (the ``N - 2`` correction is immaterial at the
    sizes the rule admits)."""
    def central(n, s1, s2, s3):
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(n > 0, s1 / n, 0.0)
        return s2 - m * s1, s3 - 3 * m * s2 + 2 * m * m * s1

    c2, c3 = central(*(np.asarray(v, float) for v in (n_c, s1_c, s2_c, s3_c)))
    t2, t3 = central(*(np.asarray(v, float) for v in (n_t, s1_t, s2_t, s3_t)))
    n = np.asarray(n_c, float) + np.asarray(n_t, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(c2 + t2, 0.0) / n, (c3 + t3) / n
