"""Sample size, minimum detectable effect and power for proportion and mean metrics.

Sizes count every arm and the multiple-comparison correction: with ``n_variants`` variants
each compared with one control on ``n_metrics`` metrics, the per-test level is the Bonferroni
``alpha / (n_variants * n_metrics)`` (``correction="bonferroni"``; Holm's procedure rejects at
least as much, so the size is conservative for it too) or ``alpha`` (``correction="none"``).
``n_control`` is the control arm's size, each variant has ``ratio * n_control`` users and
``n_total = n_control (1 + n_variants ratio)``.

Power formulas (two-sided). The default, ``method="skew_corrected"``, plans for the test that
:func:`crmlab.abtest.proportion_test` and :func:`crmlab.abtest.mean_test` run by default (the
skewness-corrected z of :mod:`crmlab.abtest.skew`): it rejects when the statistic
``T = D / se_hat`` leaves ``[g^-1(-z), g^-1(z)]`` (Hall's transformation at the pooled skewness
``gamma_0``), and under the alternative ``T`` is expanded to first order in the skewness
``gamma`` of ``D`` (``se_hat`` moves with ``D`` because ``cov(D, se_hat^2) = kappa3(D)``):
``T - d ~ Z (1 + gamma d / 2) - gamma Z^2 / 2`` with ``Z`` standardised, of skewness ``gamma``
(Edgeworth, Hall 1992 sec. 2.6), so ``P(T <= x) = Phi(w) - gamma (w^2 - 1) phi(w) / 6``,
``w = u (1 + gamma d / 2) + gamma u^2 / 2``, ``u = x - d``, ``d = delta / se``. At an 80/20
split, 4 % -> 5 %, it gives 77.05 % where exact enumeration of the test gives 77.12 % (the
unpooled normal formula said 80.0 %; tests/test_abtest_power.py). Proportions take their
skewness from ``p``; means from ``skewness=`` (per user, default 0, both arms alike).

- proportions, ``method="normal"``: the z-test with unpooled variances,
  ``power = Phi(|d|/se - z) + Phi(-|d|/se - z)``, ``se^2 = p1 q1 / n1 + p2 q2 / n2``
  (Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, 2008, sec. 4.2);
  equals statsmodels ``NormalIndPower`` with ``effect_size = (p2-p1)/sqrt((p1q1+p2q2)/2)`` when
  ``ratio = 1``.
- proportions, ``method="arcsine"``: Cohen's ``h = 2 asin(sqrt p2) - 2 asin(sqrt p1)`` with
  ``se^2 = 1/n1 + 1/n2`` (statsmodels ``proportion_effectsize`` + ``NormalIndPower``).
- means, ``method="t"``: the two-sample t-test with a common standard deviation ``sd``,
  noncentral t with ``df = n1 + n2 - 2`` and noncentrality ``d sqrt(n1 n2 / (n1 + n2))``
  (statsmodels ``TTestIndPower``); ``method="normal"`` uses the normal approximation
  (``NormalIndPower``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats as sps

from ..io.checks import choice
from .skew import hall_inverse

#: Corrections of the planned alpha for many comparisons.
CORRECTIONS = ("bonferroni", "none")

__all__ = ["power", "sample_size", "minimum_detectable_effect", "adjusted_alpha"]

METRICS = ("proportion", "mean")


def adjusted_alpha(alpha: float = 0.05, *, n_variants: int = 1, n_metrics: int = 1,
                   correction: str = "bonferroni") -> float:
    """Per-test significance level: ``alpha / (n_variants * n_metrics)`` for Bonferroni."""
    if not (0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    if int(n_variants) < 1 or int(n_metrics) < 1:
        raise ValueError(f"n_variants={n_variants!r}, n_metrics={n_metrics!r}: must be >= 1")
    choice(correction, "correction", CORRECTIONS)
    return alpha / (n_variants * n_metrics) if correction == "bonferroni" else alpha


def _check(metric, method, baseline, sd, correction="none"):
    choice(correction, "correction", CORRECTIONS)
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: allowed values are {METRICS}")
    allowed = ("skew_corrected", "normal", "arcsine") if metric == "proportion" else ("skew_corrected", "t", "normal")
    if method is None:
        method = "skew_corrected"
    if method not in allowed:
        raise ValueError(f"method={method!r}: allowed values for {metric} metrics are {allowed}")
    if metric == "proportion" and not (0 < baseline < 1):
        raise ValueError(f"baseline={baseline!r}: a proportion must be between 0 and 1")
    if metric == "mean" and (sd is None or not sd > 0):
        raise ValueError(f"sd={sd!r}: mean metrics need the metric's standard deviation sd > 0")
    return method


def _skew_power(n1, n2, delta, v1, v2, m3_1, m3_2, alpha):
    """Power of the skewness-corrected z-test (module docstring) from per-user variances
    ``v`` and third central moments ``m3`` of each arm under the alternative."""
    var0 = (n1 * v1 + n2 * v2) / (n1 + n2)
    mu3_0 = (n1 * m3_1 + n2 * m3_2) / (n1 + n2)
    gamma0 = mu3_0 * (1 / n2 ** 2 - 1 / n1 ** 2) / (var0 * (1 / n2 + 1 / n1)) ** 1.5
    se = np.sqrt(v1 / n1 + v2 / n2)
    gamma = (m3_2 / n2 ** 2 - m3_1 / n1 ** 2) / se ** 3
    q = sps.norm.isf(alpha / 2)
    d = delta / se

    def cdf(x):
        u = x - d
        w = u * (1 + gamma * d / 2) + gamma * u * u / 2
        return sps.norm.cdf(w) - gamma / 6 * (w * w - 1) * sps.norm.pdf(w)

    return 1 - cdf(hall_inverse(q, gamma0)) + cdf(hall_inverse(-q, gamma0))


def _power(n1, delta, *, metric, method, baseline, sd, alpha, ratio, skewness=0.0):
    n2 = n1 * ratio
    if metric == "proportion":
        p1, p2 = baseline, baseline + delta
        if not (0 < p2 < 1):
            return np.nan
        if method == "skew_corrected":
            v1, v2 = p1 * (1 - p1), p2 * (1 - p2)
            return float(_skew_power(n1, n2, delta, v1, v2, v1 * (1 - 2 * p1), v2 * (1 - 2 * p2), alpha))
        if method == "arcsine":
            es = abs(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))
            se = np.sqrt(1 / n1 + 1 / n2)
        else:
            es = abs(delta)
            se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        z = sps.norm.isf(alpha / 2)
        return sps.norm.sf(z - es / se) + sps.norm.cdf(-z - es / se)
    if method == "skew_corrected":
        m3 = skewness * sd ** 3
        return float(_skew_power(n1, n2, delta, sd ** 2, sd ** 2, m3, m3, alpha))
    es = abs(delta) / sd * np.sqrt(n1 * n2 / (n1 + n2))
    if method == "normal":
        z = sps.norm.isf(alpha / 2)
        return sps.norm.sf(z - es) + sps.norm.cdf(-z - es)
    df = n1 + n2 - 2
    c = sps.t.isf(alpha / 2, df)
    return sps.nct.sf(c, df, es) + sps.nct.cdf(-c, df, es)


def _solve_n(delta, target, kw):
    """Smallest control size reaching ``target`` power (bisection on a doubling bracket)."""
    if kw["method"] == "skew_corrected":
        kw = dict(kw, method="normal")
    lo = 2.0 if kw["method"] == "t" else 1e-3
    hi = 64.0
    while _power(hi, delta, **kw) < target:
        lo, hi = hi, hi * 2
        if hi > 1e13:
            raise ValueError(f"mde: needs more than 1e13 users per arm (delta={delta!r})")
    return optimize.brentq(lambda n: _power(n, delta, **kw) - target, lo, hi, xtol=1e-10, rtol=1e-14)


def _delta(baseline, mde, relative):
    return baseline * mde if relative else mde


def _result(n1, delta, *, metric, method, baseline, sd, alpha, alpha_adj, ratio, n_variants, n_metrics,
            correction, skewness=0.0):
    n2 = n1 * ratio
    return pd.Series({
        "metric": metric, "method": method, "baseline": baseline, "sd": sd if metric == "mean" else np.nan,
        "mde_abs": delta, "mde_rel": delta / baseline if baseline else np.nan,
        "alpha": alpha, "alpha_per_test": alpha_adj, "comparisons": n_variants * n_metrics,
        "correction": correction, "n_variants": n_variants, "ratio": ratio,
        "n_control": n1, "n_variant": n2, "n_total": n1 + n_variants * n2,
        "n_control_ceil": int(np.ceil(n1 - 1e-9)), "n_variant_ceil": int(np.ceil(n2 - 1e-9)),
        "power": _power(n1, delta, metric=metric, method=method, baseline=baseline, sd=sd, alpha=alpha_adj,
                        ratio=ratio, skewness=skewness),
    })


def power(n_control: float, *, baseline: float, mde: float, sd: float | None = None, metric: str = "proportion",
          relative: bool = True, alpha: float = 0.05, n_variants: int = 1, n_metrics: int = 1,
          correction: str = "bonferroni", ratio: float = 1.0, method: str | None = None,
          skewness: float = 0.0) -> pd.Series:
    """Power of each variant-versus-control test with ``n_control`` control users.

    Parameters
    ----------
    n_control : users in the control arm (each variant has ``ratio * n_control``).
    baseline : control proportion, or control mean for mean metrics.
    mde : effect to detect, relative to ``baseline`` (``relative=True``, e.g. 0.05 for +5 %)
        or absolute.
    sd : standard deviation of the metric (mean metrics).
    metric : ``"proportion"`` | ``"mean"``.
    alpha, n_variants, n_metrics, correction : see :func:`adjusted_alpha`.
    ratio : variant size over control size.
    method : see the module docstring (default ``skew_corrected``: the test the readout runs).
    skewness : per-user skewness of a mean metric (``skew_corrected`` only; revenue per user
        is often 10-50); proportions take theirs from the rates.

    Returns
    -------
    Series naming every number: ``n_control, n_variant, n_total, alpha_per_test, power, ...``.
    """
    method = _check(metric, method, baseline, sd, correction)
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    return _result(float(n_control), _delta(baseline, mde, relative), metric=metric, method=method,
                   baseline=baseline, sd=sd, alpha=alpha, alpha_adj=a, ratio=ratio, n_variants=n_variants,
                   n_metrics=n_metrics, correction=correction, skewness=skewness)


def sample_size(*, baseline: float, mde: float, sd: float | None = None, metric: str = "proportion",
                relative: bool = True, alpha: float = 0.05, power: float = 0.8, n_variants: int = 1,
                n_metrics: int = 1, correction: str = "bonferroni", ratio: float = 1.0,
                method: str | None = None, skewness: float = 0.0) -> pd.Series:
    """Users needed per arm to detect ``mde`` with the given ``power`` (parameters as
    :func:`power`). ``n_control`` is the exact (fractional) solution, ``n_control_ceil`` the
    number to plan for."""
    method = _check(metric, method, baseline, sd, correction)
    if not (0 < power < 1):
        raise ValueError(f"power={power!r}: must be between 0 and 1")
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    delta = _delta(baseline, mde, relative)
    if delta == 0:
        raise ValueError(f"mde={mde!r}: must be nonzero")
    kw = dict(metric=metric, method=method, baseline=baseline, sd=sd, alpha=a, ratio=ratio, skewness=skewness)
    if np.isnan(_power(10.0, delta, **kw)):
        raise ValueError(f"mde={mde!r}: baseline + effect is outside (0, 1)")
    n1 = _solve_n(delta, power, kw)
    if method == "skew_corrected":
        # The skewness expansion is first order: search near the normal plan, where it holds
        # (far below it the expansion of a tiny arm is meaningless).
        near = _solve_n(delta, power, dict(kw, method="normal" if metric == "proportion" else "normal"))
        lo, hi = near / 4, near * 4
        if _power(lo, delta, **kw) < power < _power(hi, delta, **kw):
            n1 = optimize.brentq(lambda n: _power(n, delta, **kw) - power, lo, hi, xtol=1e-10, rtol=1e-14)
        else:
            n1 = near
    return _result(n1, delta, metric=metric, method=method, baseline=baseline, sd=sd, alpha=alpha, alpha_adj=a,
                   ratio=ratio, n_variants=n_variants, n_metrics=n_metrics, correction=correction, skewness=skewness)


def minimum_detectable_effect(n_control: float, *, baseline: float, sd: float | None = None,
                              metric: str = "proportion", alpha: float = 0.05, power: float = 0.8,
                              n_variants: int = 1, n_metrics: int = 1, correction: str = "bonferroni",
                              ratio: float = 1.0, method: str | None = None, skewness: float = 0.0) -> pd.Series:
    """Smallest positive effect detected with ``power`` given ``n_control`` users in the control
    (parameters as :func:`power`); ``mde_abs`` and ``mde_rel`` (relative to ``baseline``)."""
    method = _check(metric, method, baseline, sd, correction)
    if not (0 < power < 1):
        raise ValueError(f"power={power!r}: must be between 0 and 1")
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    kw = dict(metric=metric, method=method, baseline=baseline, sd=sd, alpha=a, ratio=ratio, skewness=skewness)
    n1 = float(n_control)
    if metric == "proportion":
        lo, hi = 1e-12, (1 - baseline) * (1 - 1e-12)
        if _power(n1, hi, **kw) < power:
            raise ValueError(f"n_control={n_control!r}: too small to reach power {power} for any effect")
    else:
        lo, hi = 0.0, sd / np.sqrt(n1)
        while _power(n1, hi, **kw) < power:
            lo, hi = hi, hi * 2
            if hi > 1e6 * sd:
                raise ValueError(f"n_control={n_control!r}: too small to reach power {power}")
    d = optimize.brentq(lambda e: _power(n1, e, **kw) - power, lo, hi, xtol=1e-14, rtol=1e-14)
    return _result(float(n_control), d, metric=metric, method=method, baseline=baseline, sd=sd, alpha=alpha,
                   alpha_adj=a, ratio=ratio, n_variants=n_variants, n_metrics=n_metrics, correction=correction,
                   skewness=skewness)
