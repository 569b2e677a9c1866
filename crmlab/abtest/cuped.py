"""CUPED from sufficient statistics (Deng, Xu, Kohavi & Walker 2013, "Improving the
Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM).

CUPED subtracts ``theta (x - mean(x))`` from the metric ``y``, where ``x`` is a pre-period
covariate unaffected by treatment; ``theta`` is the slope pooled *within* arms, so the CUPED
difference of means equals the treatment coefficient of the ANCOVA ``y ~ arm + x`` exactly.
Pure statistics on numbers (:class:`~crmlab.abtest.samples.PairedStats`); the
engine-side regression adjustment is :func:`crmlab.abtest.adjust.regression_adjust`.
"""
from __future__ import annotations

from collections.abc import Sequence

from .intervals import _check_relative, lift
from .samples import PairedStats

__all__ = ["cuped_theta", "cuped"]


def cuped_theta(pooled: Sequence[PairedStats]) -> float:
    """CUPED's ``theta``: within-arm pooled covariance of metric and covariate over the
    within-arm pooled variance of the covariate, ``sum_a S_xy,a / sum_a S_xx,a``."""
    sxy = sum(p.xy_sum - p.sum * p.x_sum / p.n for p in pooled)
    sxx = sum(p.x_sum_sq - p.x_sum ** 2 / p.n for p in pooled)
    return sxy / sxx


def cuped(control: PairedStats, variant: PairedStats, *, pooled: Sequence[PairedStats] | None = None,
          alpha: float = 0.05, relative: str = "log"):
    """CUPED comparison of ``variant`` with ``control`` from sufficient statistics.

    Each arm's adjusted mean is ``mean(y) - theta (mean(x) - mean_all(x))`` with ``theta`` from
    :func:`cuped_theta` over ``pooled`` (default: the two arms; pass every arm of the experiment
    so that all comparisons share one theta and one reference mean ``mean_all(x)``). Its
    variance is ``(s_y^2 + theta^2 s_x^2 - 2 theta s_xy) / n`` per arm (Deng et al. 2013,
    sec. 3.2), treating ``theta`` and ``mean_all(x)`` as known, which is exact asymptotically.
    Intervals and the test then follow :func:`crmlab.abtest.frequentist.lift` with Welch
    degrees of freedom.

    Returns
    -------
    dict: as :func:`lift`, plus ``estimate_control``, ``estimate`` (adjusted means), ``theta``
    and ``variance_reduction`` (1 - adjusted variance of the difference / unadjusted).
    """
    _check_relative(relative)
    pooled = list(pooled) if pooled is not None else [control, variant]
    theta = cuped_theta(pooled)
    mx = sum(p.x_sum for p in pooled) / sum(p.n for p in pooled)

    def adj(s: PairedStats):
        m = s.sum / s.n - theta * (s.x_sum / s.n - mx)
        v = (s.y.var + theta ** 2 * s.x.var - 2 * theta * s.cov) / s.n
        return m, v

    mc, vc = adj(control)
    mt, vt = adj(variant)
    out = lift(mc, vc, mt, vt, alpha=alpha, relative=relative, n_c=control.n, n_t=variant.n)
    out["estimate_control"], out["estimate"] = mc, mt
    out["theta"] = theta
    out["variance_reduction"] = 1 - (vc + vt) / (control.y.var_of_mean + variant.y.var_of_mean)
    return out
