"""Frequentist tests of a variant against a control, from sufficient statistics.

Every function works on a few numbers per arm (see :mod:`crmlab.abtest.sufficient`) and is
vectorised: pass numpy arrays to analyse thousands of simulated experiments at once.

Absolute lift is ``mean_variant - mean_control``; relative lift is
``mean_variant / mean_control - 1``. Relative-lift intervals (``relative=``):

``"log"`` (default)
    Delta method on the log of the ratio of means, ``var(log m_t - log m_c) =
    var(m_t)/m_t^2 + var(m_c)/m_c^2``, transformed back: ``exp(log(m_t/m_c) +- q se) - 1``.
    For proportions this is Katz's log interval (Katz et al. 1978; statsmodels
    ``confint_proportions_2indep(compare="ratio", method="log")``). Swapping the arms only
    flips its sign, so in an A/A test it makes false "winners" and false "losers" equally
    often. It relies on the means being roughly normal: on a skewed revenue metric
    (5 % buyers, lognormal sigma 1) our seeded A/A simulations (tests/test_abtest_calibration.py)
    give 2.4 % / 2.5 % per side with 1,000 buyers per arm, but 2.7 % / 2.8 % with 250.
``"delta"``
    The linear delta method on ``m_t/m_c - 1`` (GrowthBook's default; Deng, Knoblich & Lu
    2018 sec. 3.4): ``var = var(m_t)/m_c^2 + m_t^2 var(m_c)/m_c^4``, interval ``+- q se``.
    It is lopsided: when ``m_t`` is low by chance the estimate is negative *and* its standard
    error shrinks (``m_t^2`` in the second term), when ``m_c`` is low the estimate is positive
    but the error grows. With skewed metrics and noisy means an A/A test at 5% flags false
    losers far more often than false winners (4.6 % and 1.2 % in our simulation with 250
    buyers per arm, against 2.5 % each).
``"fieller"``
    Fieller's (1954) interval for the ratio ``m_t/m_c``: the set of ``r`` for which
    ``(m_t - r m_c)^2 <= q^2 (var(m_t) + r^2 var(m_c))``. It excludes 0 exactly when the
    unpooled Wald (Welch) test of the difference rejects, on the same side, so it inherits
    that test's calibration exactly; it is unbounded (NaN here) when the control mean is not
    itself significantly different from zero.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .result import Comparison
from .skew import within_arm_moments, skew_test
from .sufficient import PairedStats, SampleStats, stats_from_frame
from ..checks import alpha as alpha_check
from ..checks import choice

__all__ = ["proportion_test", "mean_test", "ratio_test", "lift", "proportions_chisquare", "compare",
           "wilson_interval", "RELATIVE_METHODS", "DIFFERENCE_INTERVALS"]

RELATIVE_METHODS = ("log", "delta", "fieller")
DIFFERENCE_INTERVALS = ("wald", "newcomb")
MEAN_METHODS = ("skew_corrected", "welch")
PROPORTION_METHODS = ("skew_corrected", "wald", "pooled_z")

RESULT_COLUMNS = ["metric", "variant", "control", "n", "n_control", "estimate", "estimate_control",
                  "abs_lift", "abs_ci_low", "abs_ci_high", "rel_lift", "rel_ci_low", "rel_ci_high",
                  "p_value", "rel_p_value", "status", "reason", "n_needed", "method"]




def _check_relative(relative):
    if relative not in RELATIVE_METHODS:
        raise ValueError(f"relative={relative!r}: allowed values are {RELATIVE_METHODS}")


def _satterthwaite(a, b, n_a, n_b):
    """Welch-Satterthwaite degrees of freedom for a sum of two variance components."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a + b) ** 2 / (a ** 2 / (n_a - 1) + b ** 2 / (n_b - 1))


def _quantile(alpha, df):
    if df is None:
        return sps.norm.ppf(1 - alpha / 2)
    return sps.t.ppf(1 - alpha / 2, df)


def _two_sided_p(stat, df):
    if df is None:
        return 2 * sps.norm.sf(np.abs(stat))
    return 2 * sps.t.sf(np.abs(stat), df)


def lift(mean_c, var_c, mean_t, var_t, *, alpha=0.05, relative="log", n_c=None, n_t=None, cov=0.0):
    """Absolute and relative lift of ``mean_t`` over ``mean_c`` with intervals and p-values.

    Parameters
    ----------
    mean_c, mean_t : array-like
        Estimated means of control and variant.
    var_c, var_t : array-like
        Variances *of those means* (squared standard errors).
    alpha : significance level; intervals have coverage ``1 - alpha``.
    relative : ``"log"`` | ``"delta"`` | ``"fieller"`` (see the module docstring).
    n_c, n_t : array-like, optional
        Sample sizes. When given, quantiles and p-values come from Student's t with
        Welch-Satterthwaite degrees of freedom computed on each scale's variance components
        (Welch 1947); otherwise from the normal distribution.
    cov : array-like, optional
        Covariance of the two means (nonzero for regression-adjusted means, which share
        coefficients); it enters every variance through the delta method.

    Returns
    -------
    dict of arrays
        ``abs_lift, abs_se, abs_ci_low, abs_ci_high, p_value`` (unpooled Wald/Welch test of the
        difference), ``rel_lift, rel_ci_low, rel_ci_high, rel_p_value`` (test of the ratio on
        the chosen scale; for ``fieller`` the difference test, to which it is dual).
    """
    alpha_check(alpha)
    _check_relative(relative)
    mc, mt = np.asarray(mean_c, float), np.asarray(mean_t, float)
    vc, vt = np.asarray(var_c, float), np.asarray(var_t, float)
    cv = np.asarray(cov, float)
    welch = n_c is not None and n_t is not None
    if welch and np.any(cv != 0):
        raise ValueError("cov: Welch degrees of freedom need independent means (cov=0) or n_c=n_t=None")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = mt - mc
        se = np.sqrt(vc + vt - 2 * cv)
        df = _satterthwaite(vt, vc, n_t, n_c) if welch else None
        q = _quantile(alpha, df)
        p = _two_sided_p(diff / se, df)
        out = {"abs_lift": diff, "abs_se": se, "abs_ci_low": diff - q * se, "abs_ci_high": diff + q * se,
               "p_value": p, "df": df if welch else np.full(np.shape(diff), np.inf)}
        rel = mt / mc - 1
        if relative == "log":
            ok = (mt > 0) & (mc > 0)
            lr = np.log(np.where(ok, mt / np.where(mc > 0, mc, 1.0), np.nan))
            a, b = vt / mt ** 2, vc / mc ** 2
            lse = np.sqrt(a + b - 2 * cv / (mt * mc))
            ldf = _satterthwaite(a, b, n_t, n_c) if welch else None
            lq = _quantile(alpha, ldf)
            lo, hi = np.exp(lr - lq * lse) - 1, np.exp(lr + lq * lse) - 1
            rp = _two_sided_p(lr / lse, ldf)
        elif relative == "delta":
            a, b = vt / mc ** 2, mt ** 2 * vc / mc ** 4
            rse = np.sqrt(a + b - 2 * mt * cv / mc ** 3)
            rdf = _satterthwaite(a, b, n_t, n_c) if welch else None
            rq = _quantile(alpha, rdf)
            lo, hi = rel - rq * rse, rel + rq * rse
            rp = _two_sided_p(rel / rse, rdf)
        else:  # fieller
            q2 = q ** 2
            aa = mc ** 2 - q2 * vc
            bb = mt * mc - q2 * cv
            disc = bb ** 2 - aa * (mt ** 2 - q2 * vt)
            bounded = (aa > 0) & (disc >= 0)
            root = np.sqrt(np.where(bounded, disc, np.nan))
            lo = np.where(bounded, (bb - root) / aa - 1, np.nan)
            hi = np.where(bounded, (bb + root) / aa - 1, np.nan)
            rp = p
    out.update({"rel_lift": rel, "rel_ci_low": lo, "rel_ci_high": hi, "rel_p_value": rp})
    return out


def wilson_interval(x, n, alpha=0.05):
    """Wilson's score interval of a proportion ``x / n`` (Wilson 1927, "Probable inference, the
    law of succession, and statistical inference", JASA 22:209-212)::

        (p + q^2/(2n) +- q sqrt(p(1-p)/n + q^2/(4n^2))) / (1 + q^2/n),   q = z_{1-alpha/2}

    as statsmodels ``proportion_confint(method="wilson")``. Vectorised; NaN where ``n == 0``.
    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1.
    """
    x, n = np.asarray(x, float), np.asarray(n, float)
    q = sps.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        centre = (p + q ** 2 / (2 * n)) / (1 + q ** 2 / n)
        half = q * np.sqrt(p * (1 - p) / n + q ** 2 / (4 * n ** 2)) / (1 + q ** 2 / n)
    ok = n > 0
    return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


def _newcombe(xc, nc, xt, nt, alpha):
    """Newcombe's hybrid score interval of ``p_t - p_c`` (Newcombe 1998, "Interval estimation
    for the difference between independent proportions", Stat. Med. 17:873-890, method 10):
    ``d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2)``, ``d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2)``
    with ``(l, u)`` each arm's Wilson interval (statsmodels
    ``confint_proportions_2indep(method="newcomb")``)."""
    lt, ut = wilson_interval(xt, nt, alpha)
    lc, uc = wilson_interval(xc, nc, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        pt, pc = xt / nt, xc / nc
    d = pt - pc
    return d - np.sqrt((pt - lt) ** 2 + (uc - pc) ** 2), d + np.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)


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
                from .adjust import cuped
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
