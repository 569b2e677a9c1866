"""Frequentist tests of a variant against a control, from sufficient statistics.

Every function works on a few numbers per arm (:mod:`crmlab.abtest.samples`; the engine
aggregates them in :mod:`crmlab.abtest.sufficient`) and is vectorised: pass numpy arrays to
analyse thousands of simulated experiments at once. Nothing here touches data access.

Relative-lift intervals (``relative=``: ``"log"``, ``"delta"``, ``"fieller"``) and the
interval arithmetic are described in :mod:`crmlab.abtest.intervals`; the default
skewness-corrected test is :mod:`crmlab.abtest.skew`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .cuped import cuped
from .intervals import RELATIVE_METHODS, _check_relative, _newcombe, lift, wilson_interval
from .result import Comparison
from .skew import within_arm_moments, skew_test
from .samples import PairedStats, SampleStats, stats_from_frame
from ..io.checks import alpha as alpha_check
from ..io.checks import choice

__all__ = ["proportion_test", "mean_test", "ratio_test", "lift", "proportions_chisquare", "compare",
           "wilson_interval", "RELATIVE_METHODS", "DIFFERENCE_INTERVALS"]

DIFFERENCE_INTERVALS = ("wald", "newcomb")
MEAN_METHODS = ("skew_corrected", "welch")
PROPORTION_METHODS = ("skew_corrected", "wald", "pooled_z")

RESULT_COLUMNS = ["metric", "variant", "control", "n", "n_control", "estimate", "estimate_control",
                  "abs_lift", "abs_ci_low", "abs_ci_high", "rel_lift", "rel_ci_low", "rel_ci_high",
                  "p_value", "rel_p_value", "status", "reason", "n_needed", "method"]


def _relative_for(method, relative):
    """The relative interval of a method: the test's own (dual) one unless asked otherwise."""
    if relative is None:
        return "fieller"
    _check_relative(relative)
    if method == "skew_corrected" and relative != "fieller":
        raise ValueError(f"relative={relative!r}: method='skew_corrected' inverts its own test for the "
                         "relative interval (relative=None or 'fieller'); use method='welch' for 'log'/'delta'")
    return relative


def _ok_status(shape):
    return {"status": np.full(shape, "ok", dtype=object), "reason": np.full(shape, "", dtype=object),
            "n_needed": np.full(shape, np.nan)}


def proportion_test(x_c, n_c, x_t, n_t, *, alpha=0.05, method="skew_corrected", relative=None, interval="wald"):
    """Test of ``x_t/n_t`` against ``x_c/n_c``, with dual intervals for the absolute and relative lift.

    ``method="skew_corrected"`` (default): the unpooled z statistic
    ``(p_t - p_c) / sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)`` with Hall's (1992) skewness
    correction, the skewness of ``p_t - p_c`` taken from the pooled rate
    (``mu3 = p(1-p)(1-2p)``), see :mod:`crmlab.abtest.skew`. Its p-value and both intervals
    come from the same test, and it is calibrated per side at 1-10 % conversion and 10-90 %
    splits where the plain z-tests are not (``docs/calibration.md``). Comparisons expecting
    fewer than 10 successes or failures in the smaller arm are ``insufficient`` (no p-value).

    ``method="wald"``: the unpooled z-test with its dual Wald interval
    (statsmodels ``test_proportions_2indep(method="wald")``, ``confint_proportions_2indep(method="wald")``)
    and Fieller's relative interval (dual to it).

    ``method="pooled_z"``: the textbook pooled z-test,
    ``z = (p_t - p_c) / sqrt(p (1-p) (1/n_t + 1/n_c))`` with ``p = (x_t + x_c)/(n_t + n_c)``
    (statsmodels ``proportions_ztest``), beside the interval named by ``interval=``: ``"wald"``
    (unpooled) or ``"newcomb"`` (Newcombe 1998 hybrid score, see :func:`_newcombe`). Test and
    interval are *not* dual and can disagree at the margin; kept to reproduce those references.

    Returns
    -------
    :class:`crmlab.abtest.result.Comparison` (fields may be arrays).
    """
    choice(method, "method", PROPORTION_METHODS)
    choice(interval, "interval", DIFFERENCE_INTERVALS)
    alpha_check(alpha)
    relative = _relative_for(method, relative)
    xc, nc, xt, nt = (np.asarray(v, float) for v in (x_c, n_c, x_t, n_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        pc, pt = xc / nc, xt / nt
        vc, vt = pc * (1 - pc) / nc, pt * (1 - pt) / nt
    if method == "skew_corrected":
        var, mu3 = within_arm_moments(nc, xc, xc, xc, nt, xt, xt, xt)
        out = skew_test(pc, vc, nc, pt, vt, nt, mu3=mu3, var=var, s1=xc + xt, s2=xc + xt,
                        binary=True, alpha=alpha)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = lift(pc, vc, pt, vt, alpha=alpha, relative=relative)
            out["statistic"] = out["abs_lift"] / out["abs_se"]
            if method == "pooled_z":
                pool = (xc + xt) / (nc + nt)
                out["statistic"] = (pt - pc) / np.sqrt(pool * (1 - pool) * (1 / nc + 1 / nt))
                out["p_value"] = 2 * sps.norm.sf(np.abs(out["statistic"]))
                if relative == "fieller":
                    out["rel_p_value"] = out["p_value"]
                if interval == "newcomb":
                    out["abs_ci_low"], out["abs_ci_high"] = _newcombe(xc, nc, xt, nt, alpha)
        out.update(_ok_status(np.shape(out["abs_lift"])))
    out["estimate_control"], out["estimate"] = pc, pt
    return Comparison.from_parts(out)


def mean_test(control: SampleStats, variant: SampleStats, *, alpha=0.05, method="skew_corrected", relative=None):
    """Test of the difference of two means from sufficient statistics, with dual intervals.

    ``method="skew_corrected"`` (default): Welch's statistic
    ``t = (m_t - m_c) / sqrt(s_t^2/n_t + s_c^2/n_c)`` with Hall's (1992) skewness correction
    (needs ``sum_cube`` in both :class:`SampleStats`), referred to the normal distribution; the
    relative interval inverts the same test. Skewed metrics with too few effective users, or a
    difference too skewed to correct, are ``insufficient`` (no p-value). See
    :mod:`crmlab.abtest.skew` and ``docs/calibration.md``.

    ``method="welch"``: Welch's t-test with Welch-Satterthwaite degrees of freedom (Welch 1947;
    scipy ``ttest_ind_from_stats(equal_var=False)``); the relative interval is Fieller's (dual)
    unless ``relative="log"`` or ``"delta"`` (see :func:`lift`). Fields may be arrays.

    Returns
    -------
    :class:`crmlab.abtest.result.Comparison` (fields may be arrays).
    """
    choice(method, "method", MEAN_METHODS)
    alpha_check(alpha)
    relative = _relative_for(method, relative)
    if method == "skew_corrected":
        cubes = np.asarray(control.sum_cube, float), np.asarray(variant.sum_cube, float)
        if np.isnan(cubes[0]).any() or np.isnan(cubes[1]).any():
            raise ValueError("method='skew_corrected' needs sum_cube in both SampleStats "
                             "(sufficient_stats computes it); pass method='welch' without it")
        var, mu3 = within_arm_moments(control.n, control.sum, control.sum_sq, cubes[0],
                                  variant.n, variant.sum, variant.sum_sq, cubes[1])
        binary = np.asarray(control.sum == control.sum_sq) & np.asarray(variant.sum == variant.sum_sq) \
            & np.asarray(control.sum == cubes[0]) & np.asarray(variant.sum == cubes[1])
        out = skew_test(control.mean, control.var_of_mean, control.n, variant.mean, variant.var_of_mean,
                        variant.n, mu3=mu3, var=var, s1=np.add(control.sum, variant.sum),
                        s2=np.add(control.sum_sq, variant.sum_sq), binary=binary, alpha=alpha)
    else:
        out = lift(control.mean, control.var_of_mean, variant.mean, variant.var_of_mean, alpha=alpha,
                   relative=relative, n_c=np.asarray(control.n, float), n_t=np.asarray(variant.n, float))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["statistic"] = out["abs_lift"] / out["abs_se"]
        out.update(_ok_status(np.shape(out["abs_lift"])))
    out["estimate_control"], out["estimate"] = control.mean, variant.mean
    return Comparison.from_parts(out)


def ratio_test(control: PairedStats, variant: PairedStats, *, alpha=0.05, relative=None):
    """Test of a ratio metric ``sum(y) / sum(x)`` (for example revenue per order, clicks per
    session) where the analysis unit (user) differs from the ratio's denominator.

    The variance of each arm's ratio is the delta-method variance including the covariance of
    numerator and denominator (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric
    Analytics", KDD, eq. 4), see :attr:`PairedStats.ratio_var`; the test is a z-test, and the
    relative interval Fieller's (dual to it) unless ``relative="log"`` or ``"delta"``.
    """
    if relative is not None:
        _check_relative(relative)
    out = lift(control.ratio, control.ratio_var, variant.ratio, variant.ratio_var, alpha=alpha,
               relative=_relative_for("wald", relative))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["statistic"] = out["abs_lift"] / out["abs_se"]
    out.update(_ok_status(np.shape(out["abs_lift"])))
    out["estimate_control"], out["estimate"] = control.ratio, variant.ratio
    return Comparison.from_parts(out)


def proportions_chisquare(count, nobs):
    """Chi-square test that k proportions are equal (Pearson's test of the 2 x k table).

    ``chi2 = sum over cells (O - E)^2 / E`` with expected counts from the pooled proportion,
    ``k - 1`` degrees of freedom, no continuity correction (R ``prop.test(correct=FALSE)``;
    statsmodels ``proportions_chisquare``).

    Returns
    -------
    dict: ``statistic``, ``p_value``, ``df``.
    """
    count = np.asarray(count, float)
    nobs = np.asarray(nobs, float)
    if count.shape != nobs.shape or count.ndim != 1 or count.size < 2:
        raise ValueError(f"count={count.tolist()}, nobs={nobs.tolist()}: need two equal-length lists of >= 2")
    p = count.sum() / nobs.sum()
    exp1, exp0 = nobs * p, nobs * (1 - p)
    chi2 = float((((count - exp1) ** 2) / exp1).sum() + (((nobs - count - exp0) ** 2) / exp0).sum())
    df = count.size - 1
    return {"statistic": chi2, "p_value": float(sps.chi2.sf(chi2, df)), "df": df}


def _method_of(row) -> str:
    role = row.get("x_role")
    if role == "denominator":
        return "ratio_delta"
    if role == "covariate":
        return "cuped"
    return "proportion" if bool(row.get("binary")) else "mean"


METHOD_LABELS = {
    ("proportion", "skew_corrected"): "skewness-corrected z (Hall 1992), dual intervals",
    ("proportion", "wald"): "unpooled z, Wald interval",
    ("mean", "skew_corrected"): "skewness-corrected Welch z (Hall 1992), dual intervals",
    ("mean", "welch"): "Welch t",
    ("ratio_delta", "wald"): "delta-method z (ratio metric)",
    ("cuped", "welch"): "CUPED, Welch t",
}


def _has_cubes(*rows) -> bool:
    return all(pd.notna(r.get("sum_cube", np.nan)) for r in rows)


def compare(stats: pd.DataFrame, *, control: str = "control", alpha: float = 0.05, relative: str | None = None,
            kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """Compare every variant with the control, for every metric of a sufficient-statistics frame.

    Parameters
    ----------
    stats : DataFrame from :func:`crmlab.abtest.sufficient_stats`
    control : name of the control arm.
    alpha : significance level of the intervals.
    relative : relative-lift interval: ``None`` (default) inverts each comparison's own test, so
        relative and absolute verdicts agree; ``"log"`` | ``"delta"`` switch proportions and
        means to the unpooled z / Welch tests with that interval (not dual).
    kinds : mapping ``metric -> "proportion" | "mean"``, optional
        Overrides the automatic choice (binary 0/1 metrics are proportions). Ratio metrics use
        :func:`ratio_test`, metrics with a covariate CUPED (:func:`crmlab.abtest.adjust.cuped`).

    Returns
    -------
    DataFrame with one row per metric and non-control variant: ``metric, variant, control, n,
    n_control, estimate, estimate_control, abs_lift, abs_ci_low, abs_ci_high, rel_lift,
    rel_ci_low, rel_ci_high, p_value, rel_p_value, status, reason, n_needed, method``.
    ``status`` is ``"ok"`` or ``"insufficient"`` (then ``reason`` names the rule,
    ``n_needed`` the control size that would suffice and the p-value is NaN); ``method`` names
    the test and the relative interval.
    """
    alpha_check(alpha)
    if relative is not None:
        _check_relative(relative)
    skew = relative in (None, "fieller")
    kinds = dict(kinds or {})
    for m, k in kinds.items():
        if k not in ("proportion", "mean"):
            raise ValueError(f"kinds[{m!r}]={k!r}: allowed values are 'proportion', 'mean'")
    arms = stats["variant"].unique().tolist()
    if control not in arms:
        raise ValueError(f"control={control!r}: not among the variants {arms}")
    rows = []
    for metric, g in stats.groupby("metric", sort=False):
        by_arm = {r["variant"]: r for r in g.to_dict("records")}
        c = by_arm[control]
        method = _method_of(c)
        if metric in kinds and method in ("proportion", "mean"):
            method = kinds[metric]
        for arm in arms:
            if arm == control or arm not in by_arm:
                continue
            t = by_arm[arm]
            if method == "proportion":
                test = "skew_corrected" if skew else "wald"
                res = proportion_test(c["sum"], c["n"], t["sum"], t["n"], alpha=alpha, method=test, relative=relative)
            elif method == "mean":
                test = "skew_corrected" if skew and _has_cubes(c, t) else "welch"
                res = mean_test(stats_from_frame(c), stats_from_frame(t), alpha=alpha, method=test, relative=relative)
            elif method == "ratio_delta":
                test = "wald"
                res = ratio_test(stats_from_frame(c), stats_from_frame(t), alpha=alpha, relative=relative)
            else:
                test = "welch"
                res = cuped(stats_from_frame(c), stats_from_frame(t), pooled=[stats_from_frame(r) for r in by_arm.values()],
                            alpha=alpha, relative=relative or "fieller")
                res.update(_ok_status(np.shape(res["abs_lift"])))
            row = {"metric": metric, "variant": arm, "control": control, "n": int(t["n"]),
                   "n_control": int(c["n"]),
                   "method": f"{METHOD_LABELS[method, test]}; relative: {relative or 'inverted test'}"}
            for k in RESULT_COLUMNS:
                if k in res:
                    v = np.asarray(res[k])
                    row[k] = v.item() if v.dtype == object else float(v)
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
