"""Always-valid inference for A/B tests that are looked at repeatedly (peeking-safe).

A fixed-horizon z-test read every week rejects a true null far more often than ``alpha``
(about 25% after 20 looks at ``alpha = 0.05``). A *confidence sequence* (CS) instead covers
the true effect at all looks simultaneously with probability ``1 - alpha``, so an analyst
may look as often as they like and stop whenever the interval excludes zero.

This module implements the Gaussian-mixture *asymptotic confidence sequence* of

    I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas (2024),
    "Time-uniform central limit theory and asymptotic confidence sequences",
    Annals of Statistics (arXiv:2103.06476), section 2, Gaussian-mixture asymptotic CS:

        mu_hat_t  +/-  sigma_hat_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2)
                                            * log( sqrt(t rho^2 + 1) / alpha ) ),

with the tuning parameter ``rho`` chosen to make the CS tightest at an intended sample
size ``t* = n_opt`` (the paper's appendix on tuning rho; exact minimiser via Lambert W):

        rho^2 = ( -W_{-1}(-alpha^2 / e) - 1 ) / n_opt
              ~ ( 2 log(1/alpha) + log(1 + 2 log(1/alpha)) ) / n_opt.

For a two-arm experiment the estimator of ``mu_b - mu_a`` from ``t = n_a + n_b`` units is
treated as the mean of ``t`` influence-function terms (paper, section 3, randomised
experiments), whose variance is ``sigma^2 = t * (var_a / n_a + var_b / n_b)``; the CS half
width is therefore ``se * sqrt(2 (t rho^2 + 1)/(t rho^2) * log(sqrt(t rho^2 + 1)/alpha))``
with ``se^2 = var_a/n_a + var_b/n_b``. This is the form GrowthBook's gbstats uses for its
sequential testing (its default ``n_opt`` = 5000 is also the default here).

The always-valid p-value is the smallest ``alpha`` whose CS excludes 0 (inverting the
mixture martingale ``M_t = (t rho^2 + 1)^{-1/2} exp(t rho^2 z^2 / (2 (t rho^2 + 1)))`` by
Ville's inequality, ``p_t = min(1, 1/M_t)`` with ``z = estimate / se``); take its running
minimum over looks (:func:`running_bounds`).

Variance plug-in (``variance="guarded"``, the default). The CS is asymptotic: it needs
``se`` to be estimated well at the looks one acts on. On CRM data it is not: with few buyers
of a long-tailed spend, an arm that by chance has no big spender has a low mean *and* a low
sample variance, so ``z`` is inflated exactly when the estimate is off (the arms-own-variance
plug-in of gbstats gives 15 % false wins over 20 looks at 400 / 3,600 users and lognormal
sigma 1 spend, 32 % for the relative lift at sigma 2; ``bench/calibration_sequential.py``).
The guarded plug-in uses, per arm, ``max(var_arm, c var_pooled)`` (``c`` = :data:`GUARD_SHARE`
= 0.7, chosen by the grid) with ``var_pooled`` the
variance of both arms pooled into one sample (:func:`pooled_moments`): the variance of the
pooled two-sample (score) test under ``H0`` of equal distributions (as the pooled two-proportion
z-test, statsmodels ``proportions_ztest``), which a lucky small arm cannot drag down, while
the arm's own variance is kept when larger (so the interval stays an interval for the
difference under ``H1``). Measured over the issue-12 grid (20 weekly looks; splits 50/50,
80/20, 20/80, 90/10; control 400 / 2,000 / 20,000; conversion 1 / 3 / 10 %; revenue with 5 %
buyers, lognormal sigma 1, 2, Lomax 2.5; absolute and relative) every cell keeps the A/A error
below ``alpha / 2`` per side (worst 1.3 %), down to 2 users per arm per look.

Minimum size. A look is ``insufficient`` (NaN interval and p-value, a ``reason`` and, where
one can be named, ``n_required``) when an arm has fewer than ``min_arm_size`` units (default
:data:`DEFAULT_MIN_ARM_SIZE` = 100, chosen by the grid for coverage under a true lift), when
neither arm varies yet (no conversion at all), or, for ``relative=True``, when an arm's mean
is 0. An optional
skewness rule (``max_skew``, Kohavi, Tang & Xu 2020 "Trustworthy Online Controlled
Experiments" ch. 17: ``n > 355 s^2`` per arm, i.e. skewness of the arm mean below 0.053 for a
fixed-horizon test) refuses looks whose smaller arm's mean has a skewness above ``max_skew``,
computed from the pooled sample skewness. It is off by default: on long-tailed spend the
sample skewness is low exactly when the big spenders are missing, so the rule refuses the
looks that would have been right and keeps the ones that are wrong (measured: it does not
raise coverage and refuses up to 60 % of the looks). The misses it was meant to prevent sit at
the first looks of small experiments, which the size floor removes instead.

All functions are elementwise over numpy arrays (broadcasting), so many looks or many
simulated experiments can be evaluated at once.

Other sources: Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics) for running intersections;
Lindon & Malek (2022, "Anytime-valid inference for multinomial count data", NeurIPS) for the
sample-ratio variant of the same mixture martingales; GrowthBook documentation,
"Sequential testing" (docs.growthbook.io/statistics/sequential) for the ``n_opt`` tuning.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special
from ..io.checks import alpha as alpha_check
from ..io.checks import choice, positive

__all__ = [
    "DEFAULT_N_OPT",
    "DEFAULT_MAX_SKEW",
    "DEFAULT_MIN_ARM_SIZE",
    "GUARD_SHARE",
    "optimal_rho",
    "cs_radius",
    "confidence_sequence_diff",
    "confidence_sequence_prop",
    "always_valid_p_value",
    "pooled_moments",
    "moments_from_sums",
    "running_bounds",
    "sequential_table",
]

DEFAULT_N_OPT = 5000
"""Intended total sample size for tuning ``rho`` when none is given (GrowthBook's default)."""




def optimal_rho(n_opt: float, alpha: float = 0.05, exact: bool = True) -> float:
    """Mixture tuning ``rho`` that makes the asymptotic CS tightest at ``t = n_opt``.

    Waudby-Smith et al. (2024), appendix on choosing rho: minimising the half width at ``t*`` gives
    ``t* rho^2 = -W_{-1}(-alpha^2 / e) - 1`` (``W_{-1}`` the lower branch of Lambert W,
    ``scipy.special.lambertw(k=-1)``); with ``exact=False`` the paper's approximation
    ``t* rho^2 = 2 log(1/alpha) + log(1 + 2 log(1/alpha))`` is used (as in gbstats).

    Parameters
    ----------
    n_opt : float
        Total units (both arms) at which the CS should be tightest; pick the planned size.
    alpha : float
        Significance level.
    exact : bool
        Lambert-W minimiser (True) or the closed-form approximation (False).

    Returns
    -------
    float, ``rho`` (per unit; the boundary depends on ``t rho^2``).
    """
    alpha = alpha_check(alpha)
    n_opt = positive(n_opt, "n_opt", "a positive number of units")
    if exact:
        x = float(-special.lambertw(-alpha ** 2 / math.e, k=-1).real - 1.0)
    else:
        la = math.log(1 / alpha)
        x = 2 * la + math.log(1 + 2 * la)
    return math.sqrt(x / n_opt)


def cs_radius(se, t, rho, alpha: float = 0.05):
    """Half width of the Gaussian-mixture asymptotic CS for an estimate with standard error ``se``.

    ``se * sqrt(2 (t rho^2 + 1) / (t rho^2) * log(sqrt(t rho^2 + 1) / alpha))``
    (Waudby-Smith et al. 2024, section 2, written with ``se = sigma / sqrt(t)``).
    Elementwise over arrays.
    """
    alpha = alpha_check(alpha)
    se = np.asarray(se, dtype=float)
    x = np.asarray(t, dtype=float) * float(rho) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = se * np.sqrt(2 * (x + 1) / x * (0.5 * np.log1p(x) - math.log(alpha)))
    return out


def _resolve_rho(rho, n_opt, alpha) -> tuple[float, float | None]:
    if rho is not None and n_opt is not None:
        raise ValueError(f"give rho or n_opt, not both (got rho={rho!r}, n_opt={n_opt!r})")
    if rho is not None:
        return positive(rho, "rho"), None
    n_opt = DEFAULT_N_OPT if n_opt is None else n_opt
    return optimal_rho(n_opt, alpha), float(n_opt)


VARIANCES = ("guarded", "arm")

GUARD_SHARE = 0.7
"""Share of the pooled variance below which no arm's variance may fall (``variance="guarded"``).
Chosen by ``bench/calibration_sequential.py``: 1.0 holds the A/A error (worst side 1.1 %) but
inflates the small control arm's variance by the lift squared under a true lift (power on
Lomax revenue, 90/10, 20,000 controls: 24 % against 60 % unguarded); 0.7 keeps every cell
within alpha / 2 per side (worst 1.3 %) with power 43 %; 0.5 lets the same cell reach 2.7 %."""

VARIANCES_DOC = {"guarded": "per arm max(own variance, 0.7 x pooled variance)", "arm": "each arm's own variance"}

DEFAULT_MAX_SKEW = None
"""Skewness rule off by default (module docstring: on long-tailed data it selects the wrong
looks; ``bench/calibration_sequential.py --max-skew 1`` measures it)."""

DEFAULT_MIN_ARM_SIZE = 100
"""Fewest units per arm at which a look is analysed (``min_arm_size``; at least 2). Chosen by
``bench/calibration_sequential.py``: with 2 (a sample variance) the A/A error already holds
in every cell, but on lognormal-sigma-2 spend the sequence misses a true +20 % lift at the
first looks of small experiments; floors of 2 / 30 / 50 / 100 units per arm give a worst
coverage of 77.3 / 90.1 / 94.1 / 96.7 % over the grid (1,000 experiments per cell), at the
same power (the refused looks are too small to decide anything anyway)."""


def _as_arrays(*values):
    return tuple(np.asarray(v, dtype=float) for v in values)


def _check_arms(n_a, var_a, n_b, var_b):
    for name, v in (("n_a", n_a), ("n_b", n_b)):
        if np.any(v < 0):
            raise ValueError(f"{name} must be >= 0, got {v[v < 0].ravel()[:3].tolist()}")
    for name, v in (("var_a", var_a), ("var_b", var_b)):
        if np.any(v < 0):
            raise ValueError(f"{name} must be >= 0, got {v[v < 0].ravel()[:3].tolist()}")


def _diff_and_se(n_a, mean_a, var_a, n_b, mean_b, var_b, relative: bool):
    """Estimate, its standard error and ``t = n_a + n_b``; NaN where the scale is undefined
    (relative lift with a mean <= 0 in an arm). Never raises for data values."""
    n_a, mean_a, var_a, n_b, mean_b, var_b = _as_arrays(n_a, mean_a, var_a, n_b, mean_b, var_b)
    _check_arms(n_a, var_a, n_b, var_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if relative:
            # log ratio, delta method: var = var_a/(n_a mean_a^2) + var_b/(n_b mean_b^2)
            ok = (mean_a > 0) & (mean_b > 0)
            est = np.where(ok, np.log(np.where(ok, mean_b, 1.0) / np.where(ok, mean_a, 1.0)), np.nan)
            var = np.where(ok, var_a / (n_a * mean_a ** 2) + var_b / (n_b * mean_b ** 2), np.nan)
        else:
            est = mean_b - mean_a
            var = var_a / n_a + var_b / n_b
    return est, np.sqrt(var), n_a + n_b


def pooled_moments(n_a, mean_a, var_a, n_b, mean_b, var_b, skew_a=None, skew_b=None):
    """Variance (``n - 1``) and skewness of the two arms pooled into one sample.

    From each arm's count, mean, sample variance and skewness the raw power sums are rebuilt
    and added (exact for the combined sample):
    ``var = ((n_a - 1) var_a + (n_b - 1) var_b + n_a n_b / (n_a + n_b) (mean_a - mean_b)^2)
    / (n_a + n_b - 1)``; the skewness likewise from the pooled third central moment
    (NaN without ``skew_a`` / ``skew_b``).
    """
    n_a, mean_a, var_a, n_b, mean_b, var_b = _as_arrays(n_a, mean_a, var_a, n_b, mean_b, var_b)
    n = n_a + n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (n_a * mean_a + n_b * mean_b) / n
        var = ((n_a - 1) * var_a + (n_b - 1) * var_b + n_a * n_b / n * (mean_a - mean_b) ** 2) / (n - 1)
        if skew_a is None or skew_b is None:
            return var, np.full(np.shape(var), np.nan)
        m3 = 0.0
        for k, m, v, g in ((n_a, mean_a, var_a, skew_a), (n_b, mean_b, var_b, skew_b)):
            m2k = v * (k - 1) / k                       # population second moment of the arm
            d = m - mean
            m3 = m3 + k * (np.asarray(g, float) * m2k ** 1.5 + 3 * d * m2k + d ** 3)
        m2 = var * (n - 1) / n
        skew = np.where(m2 > 0, m3 / n / m2 ** 1.5, np.nan)
    return var, skew


def _sufficiency(n_a, mean_a, var_a, n_b, mean_b, var_b, relative, skew_pooled, var_pooled, max_skew,
                 guarded, min_arm_size=2):
    """Per-look ``status`` (``ok`` / ``insufficient``), ``reason`` and ``n_required`` (total
    units at which the skewness rule would pass at the same split; NaN when no size can be
    named)."""
    out_shape = np.broadcast(*_as_arrays(n_a, mean_a, var_a, n_b, mean_b, var_b, skew_pooled,
                                         var_pooled)).shape
    n_a, mean_a, var_a, n_b, mean_b, var_b, skew_pooled, var_pooled = (
        np.broadcast_to(v, out_shape).ravel() for v in _as_arrays(n_a, mean_a, var_a, n_b, mean_b, var_b,
                                                                  skew_pooled, var_pooled))
    shape = n_a.shape
    reason = np.full(shape, "", dtype=object)
    n_required = np.full(shape, np.nan)
    t = np.broadcast_to(n_a + n_b, shape)

    def flag(mask, text):
        mask = np.broadcast_to(mask, shape) & (reason == "")
        reason[mask] = text

    small = np.minimum(n_a, n_b) < min_arm_size
    flag(small, f"fewer than {min_arm_size:g} units in an arm: too few for the asymptotic sequence")
    with np.errstate(divide="ignore", invalid="ignore"):
        n_required[small] = np.where(np.minimum(n_a, n_b) > 0,
                                     np.ceil(t * min_arm_size / np.minimum(n_a, n_b)), np.nan)[small]
    if guarded:
        flag(var_pooled <= 0, "no variation in either arm yet (variance 0, e.g. no conversions)")
    else:
        flag(var_a <= 0, "control arm has no variation yet (variance 0, e.g. no conversions)")
        flag(var_b <= 0, "variant arm has no variation yet (variance 0, e.g. no conversions)")
    if relative:
        flag(mean_a <= 0, "relative lift needs a positive control mean (control mean is 0)")
        flag(mean_b <= 0, "relative lift needs a positive variant mean (variant mean is 0)")
    if max_skew is not None:
        g = np.broadcast_to(np.abs(skew_pooled) / np.sqrt(np.minimum(n_a, n_b)), shape)
        with np.errstate(invalid="ignore"):
            too = g > max_skew
            need = np.broadcast_to(np.ceil(t * (g / max_skew) ** 2), shape)
        free = (reason == "") & too
        if free.any():
            idx = np.nonzero(free)
            reason[idx] = [f"skewness of the smaller arm's mean {gi:.3f} exceeds {max_skew:g}: too few "
                           f"units for the skew of the metric (about {ni:.0f} units in total would suffice)"
                           for gi, ni in zip(g[idx], need[idx])]
            n_required[idx] = need[idx]
    status = np.where(reason == "", "ok", "insufficient").astype(object)
    return status.reshape(out_shape), reason.reshape(out_shape), n_required.reshape(out_shape)


def _scalarise(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
            v = float(v) if isinstance(v, (int, float, np.floating)) else v
        out[k] = v
    return out


_METHOD = "asymptotic confidence sequence, Gaussian mixture (Waudby-Smith et al. 2024)"


def confidence_sequence_diff(n_a, mean_a, var_a, n_b, mean_b, var_b, alpha: float = 0.05,
                             rho: float | None = None, n_opt: float | None = None,
                             relative: bool = False, skew_a=None, skew_b=None,
                             max_skew: float | None = "default", variance: str = "guarded",
                             min_arm_size: float | str = "default") -> dict:
    """Always-valid confidence sequence for ``mean_b - mean_a`` from sufficient statistics.

    Gaussian-mixture asymptotic CS of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2024,
    Annals of Statistics, "Time-uniform central limit theory and asymptotic confidence
    sequences", section 2)::

        estimate +/- se * sqrt( 2 (t rho^2 + 1) / (t rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

    with ``t = n_a + n_b``, ``se^2 = var_a/n_a + var_b/n_b``, and ``rho`` tuned for
    ``n_opt`` total units by
    :func:`optimal_rho`. With probability at least ``1 - alpha`` (asymptotically) the
    interval covers the true difference at *every* look, however many looks are taken.

    ``rho`` (or ``n_opt``) must be fixed before the experiment starts and not changed
    between looks. Intersecting the intervals over looks (:func:`running_bounds`) keeps
    the guarantee.

    The guarantee is asymptotic, so the variance plug-in is guarded (``variance=``, module
    docstring): per arm ``max(var_arm, 0.7 var_pooled)``, which holds the A/A error below
    ``alpha / 2`` per side on skewed CRM revenue where the arms' own variances do not.
    A look is ``insufficient`` (NaN interval and p-value, with a ``reason`` and, where it can
    be named, ``n_required`` total units) when an arm has fewer than ``min_arm_size`` units
    (default 100), when no arm
    varies yet (no conversion at all; with ``variance="arm"``: either arm), when
    ``relative=True`` and an arm's mean is 0, or when the optional skewness rule fails
    (``max_skew``; the smaller arm's mean skewness ``|skew_pooled| / sqrt(min(n_a, n_b))``
    from ``skew_a`` / ``skew_b``; then ``n_required`` is where it would pass, since that
    skewness falls like ``1/sqrt(n)``). Other looks are computed as usual: one bad look
    never fails the experiment.

    Parameters
    ----------
    n_a, mean_a, var_a, n_b, mean_b, var_b : float or array
        Units, mean and sample variance per arm (``a`` control, ``b`` treatment);
        arrays broadcast (e.g. one entry per look).
    alpha : float
        Significance level (time-uniform).
    rho : float, optional
        Mixture tuning parameter (per unit). Give ``rho`` or ``n_opt``, not both.
    n_opt : float, optional
        Planned total units at which the CS is tightest; default
        :data:`DEFAULT_N_OPT` (5000) when neither is given.
    relative : bool
        CS for the lift ``mean_b / mean_a - 1`` instead of the difference: the CS is built
        for ``log(mean_b / mean_a)`` with the delta-method variance ``var_a/(n_a mean_a^2)
        + var_b/(n_b mean_b^2)`` and mapped back by ``exp(.) - 1`` (then ``se`` is that of
        the log ratio).
    skew_a, skew_b : float or array, optional
        Sample skewness of the metric per unit in each arm (``m3 / m2^1.5``; for sums
        ``s1, s2, s3`` of values, powers 1-3, see :func:`moments_from_sums`). Without them
        the skewness rule is not applied.
    max_skew : float or None
        Largest skewness of the smaller arm's mean that is analysed; ``"default"`` is
        :data:`DEFAULT_MAX_SKEW` (off), ``None`` switches the rule off.
    variance : ``"guarded"`` | ``"arm"``
        Variance plug-in: per arm ``max(own sample variance, 0.7 x pooled variance)`` (default) or
        each arm's own variance (gbstats' choice; miscalibrated on skewed revenue).
    min_arm_size : float or ``"default"``
        Fewest units per arm analysed (>= 2); default :data:`DEFAULT_MIN_ARM_SIZE`.

    Returns
    -------
    dict with ``estimate``, ``ci_low``, ``ci_high``, ``se``, ``p_value`` (always-valid
    p-value at this look, see :func:`always_valid_p_value`), ``n`` (total units),
    ``status`` (``"ok"`` / ``"insufficient"``), ``reason``, ``n_required``, ``rho``,
    ``n_opt`` and ``method``; arrays when the inputs are arrays.
    """
    max_skew, min_arm_size = _check_rules(max_skew, variance, min_arm_size)
    alpha = alpha_check(alpha)
    rho, n_opt = _resolve_rho(rho, n_opt, alpha)
    n_a, mean_a, var_a, n_b, mean_b, var_b = _as_arrays(n_a, mean_a, var_a, n_b, mean_b, var_b)
    _check_arms(n_a, var_a, n_b, var_b)
    var_p, skew_p = pooled_moments(n_a, mean_a, var_a, n_b, mean_b, var_b, skew_a, skew_b)
    guarded = variance == "guarded"
    if guarded:
        var_a, var_b = np.fmax(var_a, GUARD_SHARE * var_p), np.fmax(var_b, GUARD_SHARE * var_p)
    est, se, t = _diff_and_se(n_a, mean_a, var_a, n_b, mean_b, var_b, relative)
    status, reason, n_required = _sufficiency(n_a, mean_a, var_a, n_b, mean_b, var_b, relative,
                                              skew_p, var_p, max_skew if skew_a is not None else None,
                                              guarded, min_arm_size)
    bad = np.broadcast_to(status == "insufficient", np.broadcast(est, status).shape)
    est = np.where(bad, np.nan, est)
    se = np.where(bad, np.nan, se)
    r = cs_radius(se, t, rho, alpha)
    p = _p_from_z(est, se, t, rho)
    lo, hi = est - r, est + r
    if relative:
        with np.errstate(over="ignore"):
            est, lo, hi = np.expm1(est), np.expm1(lo), np.expm1(hi)
    return _scalarise({
        "estimate": est, "ci_low": lo, "ci_high": hi, "se": se, "p_value": p,
        "n": t, "status": status, "reason": reason, "n_required": n_required,
        "rho": rho, "n_opt": n_opt,
        "method": _METHOD + (", lift via log ratio (delta method)" if relative else "")
                  + f", variance: {VARIANCES_DOC[variance]}",
    })


def _check_rules(max_skew, variance, min_arm_size):
    """The sufficiency rules, checked before any number is read: ``(max_skew, min_arm_size)``."""
    choice(variance, "variance", VARIANCES)
    return _resolve_max_skew(max_skew), _resolve_min_arm_size(min_arm_size)


def _resolve_max_skew(max_skew):
    if isinstance(max_skew, str) and max_skew == "default":
        return DEFAULT_MAX_SKEW
    if max_skew is None:
        return None
    return positive(max_skew, "max_skew", "a positive number, None (no rule) or 'default'")


def _resolve_min_arm_size(min_arm_size) -> float:
    if isinstance(min_arm_size, str) and min_arm_size == "default":
        return float(DEFAULT_MIN_ARM_SIZE)
    try:
        ok = not isinstance(min_arm_size, bool) and float(min_arm_size) >= 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"min_arm_size={min_arm_size!r}: must be a number >= 2 or 'default'")
    return float(min_arm_size)


def moments_from_sums(n, s1, s2, s3=None):
    """Mean, sample variance (``n - 1``) and sample skewness ``m3 / m2^1.5`` of values with
    count ``n`` and sums of powers ``s1 = sum x``, ``s2 = sum x^2``, ``s3 = sum x^3``
    (central moments from raw power sums; ``skew`` is NaN without ``s3``)."""
    n, s1, s2 = _as_arrays(n, s1, s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        m2 = np.maximum(s2 / n - mean ** 2, 0.0)
        var = m2 * n / (n - 1)
        if s3 is None:
            skew = np.full(np.shape(mean), np.nan)
        else:
            m3 = np.asarray(s3, float) / n - 3 * mean * s2 / n + 2 * mean ** 3
            skew = np.where(m2 > 0, m3 / m2 ** 1.5, np.nan)
    return mean, var, skew


def confidence_sequence_prop(conversions_a, n_a, conversions_b, n_b, alpha: float = 0.05,
                             rho: float | None = None, n_opt: float | None = None,
                             relative: bool = False, max_skew: float | None = "default",
                             variance: str = "guarded",
                             min_arm_size: float | str = "default") -> dict:
    """:func:`confidence_sequence_diff` for two conversion rates.

    Uses ``mean = conversions / n``, the Bernoulli variance ``p (1 - p)`` and skewness
    ``(1 - 2p) / sqrt(p (1 - p))`` per arm (same Waudby-Smith et al. 2024 boundary, same
    ``insufficient`` rule: an arm without conversions, or with conversions only, has no
    variation). Arrays broadcast.
    """
    _check_rules(max_skew, variance, min_arm_size)
    ca, na, cb, nb = (np.asarray(v, dtype=float) for v in (conversions_a, n_a, conversions_b, n_b))
    for name, c, n in (("conversions_a", ca, na), ("conversions_b", cb, nb)):
        if np.any((c < 0) | (c > n)):
            raise ValueError(f"{name} must be between 0 and the arm size")
    pa, pb = ca / na, cb / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        ska = (1 - 2 * pa) / np.sqrt(pa * (1 - pa))
        skb = (1 - 2 * pb) / np.sqrt(pb * (1 - pb))
    return confidence_sequence_diff(na, pa, pa * (1 - pa), nb, pb, pb * (1 - pb), alpha=alpha,
                                    rho=rho, n_opt=n_opt, relative=relative, skew_a=ska, skew_b=skb,
                                    max_skew=max_skew, variance=variance,
                                    min_arm_size=min_arm_size)


def _p_from_z(est, se, t, rho):
    x = np.asarray(t, dtype=float) * rho ** 2
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = np.where(se > 0, (est / np.where(se > 0, se, 1.0)) ** 2, np.where(est == 0, 0.0, np.inf))
        log_p = 0.5 * np.log1p(x) - x * z2 / (2 * (x + 1))
    p = np.minimum(1.0, np.exp(log_p))
    return np.where(np.isnan(est) | np.isnan(se), np.nan, p)


def always_valid_p_value(n_a, mean_a, var_a, n_b, mean_b, var_b, alpha: float = 0.05,
                         rho: float | None = None, n_opt: float | None = None,
                         relative: bool = False, skew_a=None, skew_b=None,
                         max_skew: float | None = "default", variance: str = "guarded",
                         min_arm_size: float | str = "default"):
    """Always-valid p-value of ``H0: mean_b = mean_a`` at one look (or array of looks).

    ``p_t = min(1, sqrt(t rho^2 + 1) * exp(-t rho^2 z^2 / (2 (t rho^2 + 1))))`` with
    ``z = estimate / se``: the reciprocal of the Gaussian-mixture martingale, so by Ville's
    inequality ``P(exists t: p_t <= alpha) <= alpha`` (asymptotically; Waudby-Smith et al.
    2024). ``p_t <= alpha`` exactly when the CS of :func:`confidence_sequence_diff`
    excludes 0; NaN at an ``insufficient`` look. ``alpha`` is only used to tune ``rho`` from
    ``n_opt``. Report the running minimum over looks (:func:`running_bounds`).
    """
    _check_rules(max_skew, variance, min_arm_size)
    p = confidence_sequence_diff(n_a, mean_a, var_a, n_b, mean_b, var_b, alpha=alpha, rho=rho,
                                 n_opt=n_opt, relative=relative, skew_a=skew_a, skew_b=skew_b,
                                 max_skew=max_skew, variance=variance,
                                    min_arm_size=min_arm_size)["p_value"]
    return p


def running_bounds(ci_low, ci_high, p_value=None, axis: int = -1):
    """Running intersection of a CS and running minimum of its p-values over looks.

    Any intersection of the intervals of a ``1 - alpha`` confidence sequence is again one
    (Howard et al. 2021, "Time-uniform, nonparametric, nonasymptotic confidence
    sequences", Annals of Statistics), so the reported interval never widens. NaN entries
    (``insufficient`` looks) are skipped: the running value carries the last analysed one
    (NaN until the first).

    Parameters
    ----------
    ci_low, ci_high : array
        Bounds at successive looks along ``axis``.
    p_value : array, optional
        Always-valid p-values at the same looks.

    Returns
    -------
    ``(ci_low, ci_high)`` or ``(ci_low, ci_high, p_value)`` with running max / min.
    """
    lo = np.fmax.accumulate(np.asarray(ci_low, dtype=float), axis=axis)
    hi = np.fmin.accumulate(np.asarray(ci_high, dtype=float), axis=axis)
    if p_value is None:
        return lo, hi
    return lo, hi, np.fmin.accumulate(np.asarray(p_value, dtype=float), axis=axis)


_LOOK_COLUMNS = ("n_a", "mean_a", "var_a", "n_b", "mean_b", "var_b")


def sequential_table(looks: pd.DataFrame, alpha: float = 0.05, rho: float | None = None,
                     n_opt: float | None = None, relative: bool = False,
                     max_skew: float | None = "default", variance: str = "guarded",
                     min_arm_size: float | str = "default") -> pd.DataFrame:
    """Confidence sequence at every look of one experiment, as a tidy frame.

    Parameters
    ----------
    looks : pandas.DataFrame
        One row per look in time order with the *cumulative* sufficient statistics
        ``n_a, mean_a, var_a, n_b, mean_b, var_b`` and optionally ``skew_a, skew_b`` (the
        metric's skewness per arm, for the minimum-size rule); other columns, e.g. the look
        date, are kept.
    alpha, rho, n_opt, relative, max_skew, variance
        As in :func:`confidence_sequence_diff` (Waudby-Smith et al. 2024).

    Returns
    -------
    pandas.DataFrame: the input columns plus ``status`` (``ok`` / ``insufficient``),
    ``reason``, ``n_required``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value`` at each
    look (NaN at an insufficient look), their running versions ``ci_low_running``,
    ``ci_high_running``, ``p_value_running`` (:func:`running_bounds`, over analysed looks),
    ``significant`` (``p_value_running <= alpha``) and ``method``.
    """
    _check_rules(max_skew, variance, min_arm_size)
    if not isinstance(looks, pd.DataFrame):
        raise ValueError(f"looks must be a pandas DataFrame, got {type(looks).__name__}")
    missing = [c for c in _LOOK_COLUMNS if c not in looks.columns]
    if missing:
        raise ValueError(f"looks is missing columns {missing}; expected {list(_LOOK_COLUMNS)}")
    skews = {k: looks[k].to_numpy(float) if k in looks.columns else None for k in ("skew_a", "skew_b")}
    cs = confidence_sequence_diff(*(looks[c].to_numpy(float) for c in _LOOK_COLUMNS), alpha=alpha,
                                  rho=rho, n_opt=n_opt, relative=relative, max_skew=max_skew, variance=variance,
                                  min_arm_size=min_arm_size, **skews)
    out = looks.copy()
    for k in ("status", "reason"):
        out[k] = np.asarray(cs[k], dtype=object)
    for k in ("n_required", "estimate", "ci_low", "ci_high", "p_value"):
        out[k] = np.asarray(cs[k], dtype=float)
    lo, hi, p = running_bounds(out["ci_low"], out["ci_high"], out["p_value"])
    out["ci_low_running"], out["ci_high_running"], out["p_value_running"] = lo, hi, p
    out["significant"] = out["p_value_running"] <= alpha
    out["method"] = cs["method"]
    return out
