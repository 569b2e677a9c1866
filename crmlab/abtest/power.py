"""Sample size, minimum detectable effect and power for proportion and mean metrics.

Sizes count every arm and the multiple-comparison correction: with ``n_variants`` variants
each compared with one control on ``n_metrics`` metrics, the per-test level is the Bonferroni
``alpha / (n_variants * n_metrics)`` (``correction="bonferroni"``; Holm's procedure rejects at
least as much, so the size is conservative for it too) or ``alpha`` (``correction="none"``).
``n_control`` is the control arm's size, each variant has ``ratio * n_control`` users and
``n_total = n_control (1 + n_variants ratio)``.

Power formulas (two-sided):

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

__all__ = ["power", "sample_size", "minimum_detectable_effect", "adjusted_alpha"]

METRICS = ("proportion", "mean")


def adjusted_alpha(alpha: float = 0.05, *, n_variants: int = 1, n_metrics: int = 1,
                   correction: str = "bonferroni") -> float:
    """Per-test significance level: ``alpha / (n_variants * n_metrics)`` for Bonferroni."""
    if not (0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    if int(n_variants) < 1 or int(n_metrics) < 1:
        raise ValueError(f"n_variants={n_variants!r}, n_metrics={n_metrics!r}: must be >= 1")
    if correction not in ("bonferroni", "none"):
        raise ValueError(f"correction={correction!r}: allowed values are 'bonferroni', 'none'")
    return alpha / (n_variants * n_metrics) if correction == "bonferroni" else alpha


def _check(metric, method, baseline, sd):
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: allowed values are {METRICS}")
    allowed = ("normal", "arcsine") if metric == "proportion" else ("t", "normal")
    if method is None:
        method = "normal" if metric == "proportion" else "t"
    if method not in allowed:
        raise ValueError(f"method={method!r}: allowed values for {metric} metrics are {allowed}")
    if metric == "proportion" and not (0 < baseline < 1):
        raise ValueError(f"baseline={baseline!r}: a proportion must be between 0 and 1")
    if metric == "mean" and (sd is None or not sd > 0):
        raise ValueError(f"sd={sd!r}: mean metrics need the metric's standard deviation sd > 0")
    return method


def _power(n1, delta, *, metric, method, baseline, sd, alpha, ratio):
    n2 = n1 * ratio
    if metric == "proportion":
        p1, p2 = baseline, baseline + delta
        if not (0 < p2 < 1):
            return np.nan
        if method == "arcsine":
            es = abs(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))
            se = np.sqrt(1 / n1 + 1 / n2)
        else:
            es = abs(delta)
            se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        z = sps.norm.isf(alpha / 2)
        return sps.norm.sf(z - es / se) + sps.norm.cdf(-z - es / se)
    es = abs(delta) / sd * np.sqrt(n1 * n2 / (n1 + n2))
    if method == "normal":
        z = sps.norm.isf(alpha / 2)
        return sps.norm.sf(z - es) + sps.norm.cdf(-z - es)
    df = n1 + n2 - 2
    c = sps.t.isf(alpha / 2, df)
    return sps.nct.sf(c, df, es) + sps.nct.cdf(-c, df, es)


def _delta(baseline, mde, relative):
    return baseline * mde if relative else mde


def _result(n1, delta, *, metric, method, baseline, sd, alpha, alpha_adj, ratio, n_variants, n_metrics,
            correction):
    n2 = n1 * ratio
    return pd.Series({
        "metric": metric, "method": method, "baseline": baseline, "sd": sd if metric == "mean" else np.nan,
        "mde_abs": delta, "mde_rel": delta / baseline if baseline else np.nan,
        "alpha": alpha, "alpha_per_test": alpha_adj, "comparisons": n_variants * n_metrics,
        "correction": correction, "n_variants": n_variants, "ratio": ratio,
        "n_control": n1, "n_variant": n2, "n_total": n1 + n_variants * n2,
        "n_control_ceil": int(np.ceil(n1 - 1e-9)), "n_variant_ceil": int(np.ceil(n2 - 1e-9)),
        "power": _power(n1, delta, metric=metric, method=method, baseline=baseline, sd=sd, alpha=alpha_adj,
                        ratio=ratio),
    })


def power(n_control: float, *, baseline: float, mde: float, sd: float | None = None, metric: str = "proportion",
          relative: bool = True, alpha: float = 0.05, n_variants: int = 1, n_metrics: int = 1,
          correction: str = "bonferroni", ratio: float = 1.0, method: str | None = None) -> pd.Series:
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
    method : see the module docstring (default ``normal`` for proportions, ``t`` for means).

    Returns
    -------
    Series naming every number: ``n_control, n_variant, n_total, alpha_per_test, power, ...``.
    """
    method = _check(metric, method, baseline, sd)
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    return _result(float(n_control), _delta(baseline, mde, relative), metric=metric, method=method,
                   baseline=baseline, sd=sd, alpha=alpha, alpha_adj=a, ratio=ratio, n_variants=n_variants,
                   n_metrics=n_metrics, correction=correction)


def sample_size(*, baseline: float, mde: float, sd: float | None = None, metric: str = "proportion",
                relative: bool = True, alpha: float = 0.05, power: float = 0.8, n_variants: int = 1,
                n_metrics: int = 1, correction: str = "bonferroni", ratio: float = 1.0,
                method: str | None = None) -> pd.Series:
    """Users needed per arm to detect ``mde`` with the given ``power`` (parameters as
    :func:`power`). ``n_control`` is the exact (fractional) solution, ``n_control_ceil`` the
    number to plan for."""
    method = _check(metric, method, baseline, sd)
    if not (0 < power < 1):
        raise ValueError(f"power={power!r}: must be between 0 and 1")
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    delta = _delta(baseline, mde, relative)
    if delta == 0:
        raise ValueError(f"mde={mde!r}: must be nonzero")
    kw = dict(metric=metric, method=method, baseline=baseline, sd=sd, alpha=a, ratio=ratio)
    if np.isnan(_power(10.0, delta, **kw)):
        raise ValueError(f"mde={mde!r}: baseline + effect is outside (0, 1)")
    lo = 2.0 if metric == "mean" and method == "t" else 1e-3
    hi = 64.0
    while _power(hi, delta, **kw) < power:
        lo, hi = hi, hi * 2
        if hi > 1e13:
            raise ValueError(f"mde={mde!r}: needs more than 1e13 users per arm")
    n1 = optimize.brentq(lambda n: _power(n, delta, **kw) - power, lo, hi, xtol=1e-10, rtol=1e-14)
    return _result(n1, delta, metric=metric, method=method, baseline=baseline, sd=sd, alpha=alpha, alpha_adj=a,
                   ratio=ratio, n_variants=n_variants, n_metrics=n_metrics, correction=correction)


def minimum_detectable_effect(n_control: float, *, baseline: float, sd: float | None = None,
                              metric: str = "proportion", alpha: float = 0.05, power: float = 0.8,
                              n_variants: int = 1, n_metrics: int = 1, correction: str = "bonferroni",
                              ratio: float = 1.0, method: str | None = None) -> pd.Series:
    """Smallest positive effect detected with ``power`` given ``n_control`` users in the control
    (parameters as :func:`power`); ``mde_abs`` and ``mde_rel`` (relative to ``baseline``)."""
    method = _check(metric, method, baseline, sd)
    if not (0 < power < 1):
        raise ValueError(f"power={power!r}: must be between 0 and 1")
    a = adjusted_alpha(alpha, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
    kw = dict(metric=metric, method=method, baseline=baseline, sd=sd, alpha=a, ratio=ratio)
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
                   alpha_adj=a, ratio=ratio, n_variants=n_variants, n_metrics=n_metrics, correction=correction)
