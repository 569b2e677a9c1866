"""Variance reduction in the engine: regression adjustment (and the CUPED it generalises).

The CUPED computation itself is pure statistics on numbers, in :mod:`crmlab.abtest.cuped`.
CUPED (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data", WSDM) subtracts ``theta (x - mean(x))`` from the
metric ``y``, where ``x`` is a pre-period covariate unaffected by treatment. Here ``theta`` is
the slope pooled *within* arms, ``theta = sum_arms S_xy / sum_arms S_xx`` (centred cross
products), so the CUPED difference of means equals the treatment coefficient of the ANCOVA
regression ``y ~ arm + x`` exactly.

Regression adjustment with several covariates (:func:`regression_adjust`) fits OLS of the
metric on arm dummies and centred covariates, optionally interacted with the arms (Lin 2013,
"Agnostic notes on regression adjustments to experimental data", Ann. Appl. Stat.), with
heteroskedasticity-robust (HC0-HC3) standard errors (MacKinnon & White 1985; statsmodels
``OLS.fit(cov_type="HC2")``). Lin shows the interacted estimator cannot hurt asymptotic
precision, while the non-interacted one can when arms differ in size and in the covariate
slope; both are consistent. The cross products ``X'X``, ``X'y`` and the sandwich's meat
``sum e_i^2/(1-h_ii)^k x_i x_i'`` are aggregated in the engine; only p x p matrices reach numpy.
"""
from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd
from scipy import stats as sps

from ..io.engine import DataLike, report_exclusions, to_pandas
from ..io.schema import DEFAULT_TZ
from ..io.checks import alpha as alpha_check
from .frequentist import RESULT_COLUMNS
from .intervals import _check_relative, lift
from .sufficient import joined_outcomes

__all__ = ["cuped_theta", "cuped", "regression_adjust"]

COV_TYPES = ("HC0", "HC1", "HC2", "HC3")


def regression_adjust(assignments: DataLike, outcomes: DataLike, *, metric: str, covariates: Sequence[str],
                      control: str = "control", experiment: str | None = None, interacted: bool = True,
                      cov_type: str = "HC2", alpha: float = 0.05, relative: str = "log", arm: str = "variant",
                      user: str = "user_id", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Regression-adjusted treatment effects with several covariates, fitted in the engine.

    OLS of ``metric`` on an intercept, one dummy per non-control arm, the covariates centred at
    their overall mean and, when ``interacted``, every dummy times every centred covariate
    (Lin 2013). With centred covariates the intercept is the control's adjusted mean and a
    dummy's coefficient the arm's average treatment effect. Standard errors are the sandwich
    ``(X'X)^-1 (sum w_i e_i^2 x_i x_i') (X'X)^-1`` with ``w_i`` = 1 (HC0), ``n/(n-p)`` (HC1),
    ``1/(1-h_ii)`` (HC2, Lin's and estimatr's default) or ``1/(1-h_ii)^2`` (HC3), matching
    statsmodels ``OLS(y, X).fit(cov_type=...)``; tests are normal (z), as in statsmodels.
    Relative lift is ``(b0 + b_arm) / b0 - 1`` with its interval by the delta method using the
    coefficients' covariance.

    Parameters
    ----------
    assignments, outcomes, experiment, arm, user, tz : as :func:`crmlab.abtest.sufficient_stats`.
    metric : outcome column.
    covariates : pre-treatment columns of ``outcomes`` (users without a row count as 0).
    control : control arm.
    interacted : Lin's interacted estimator (default) or plain ANCOVA.
    cov_type : ``"HC0"`` | ``"HC1"`` | ``"HC2"`` | ``"HC3"``.
    alpha, relative : as :func:`crmlab.abtest.compare`.

    Returns
    -------
    DataFrame: the columns of :func:`crmlab.abtest.compare` plus ``abs_se``; ``attrs['coef']``
    holds the coefficient table (``term, coef, se``) and ``attrs['excluded']`` the exclusions.
    """
    alpha_check(alpha)
    _check_relative(relative)
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r}: allowed values are {COV_TYPES}")
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    if not covariates:
        raise ValueError("covariates=[]: give at least one covariate (or use compare() without adjustment)")
    cols = list(dict.fromkeys([metric, *covariates]))
    j, n_unassigned, n_zero = joined_outcomes(assignments, outcomes, cols, experiment=experiment, arm=arm,
                                              user=user, tz=tz)
    first = to_pandas(j.group_by("_arm").aggregate(n=j.count(), **{f"m{i}": j[c].mean() for i, c in
                                                                   enumerate(covariates)}), None)
    arms = sorted(first["_arm"].tolist())
    if control not in arms:
        raise ValueError(f"control={control!r}: not among the variants {arms}")
    n_total = float(first["n"].sum())
    means = [float((first[f"m{i}"] * first["n"]).sum() / n_total) for i in range(len(covariates))]
    others = [a for a in arms if a != control]

    terms: list[tuple[str, object]] = [("Intercept", None)]
    dummies = {a: (j._arm == a).ifelse(1.0, 0.0) for a in others}
    centred = {c: j[c] - m for c, m in zip(covariates, means)}
    terms += [(f"arm[{a}]", dummies[a]) for a in others]
    terms += [(c, centred[c]) for c in covariates]
    if interacted:
        terms += [(f"arm[{a}]:{c}", dummies[a] * centred[c]) for a in others for c in covariates]
    names = [t for t, _ in terms]
    p = len(terms)
    # Materialise the design columns once, so later expressions refer to columns instead of
    # repeating (and re-compiling) the same arithmetic many times.
    j = j.mutate(_y=j[metric].cast("float64"), **{f"_x{k}": e for k, (_, e) in enumerate(terms) if e is not None})
    xs = [None] + [j[f"_x{k}"] for k in range(1, p)]

    def prod(a, b):
        if xs[a] is None and xs[b] is None:
            return None
        if xs[a] is None:
            return xs[b]
        if xs[b] is None:
            return xs[a]
        return xs[a] * xs[b]

    y = j._y
    aggs = {}
    for a in range(p):
        for b in range(a, p):
            e = prod(a, b)
            aggs[f"xx_{a}_{b}"] = e.sum() if e is not None else j.count().cast("float64")
        aggs[f"xy_{a}"] = (y * xs[a]).sum() if xs[a] is not None else y.sum()
    r = to_pandas(j.aggregate(**aggs), None).iloc[0]
    xtx = np.empty((p, p))
    for a in range(p):
        for b in range(a, p):
            xtx[a, b] = xtx[b, a] = float(r[f"xx_{a}_{b}"])
    xty = np.array([float(r[f"xy_{a}"]) for a in range(p)])
    inv = np.linalg.inv(xtx)
    beta = inv @ xty

    fitted = ibis.literal(float(beta[0]))
    for k in range(1, p):
        fitted = fitted + float(beta[k]) * xs[k]
    if cov_type in ("HC0", "HC1"):
        j = j.mutate(_e=y - fitted)
        j = j.mutate(_w=j._e * j._e)
    else:
        h = ibis.literal(float(inv[0, 0]))
        for a in range(p):
            for b in range(a, p):
                if a == 0 and b == 0:
                    continue
                h = h + float(inv[a, b]) * (1 if a == b else 2) * prod(a, b)
        j = j.mutate(_e=y - fitted, _h=h)
        lev = (1 - j._h) if cov_type == "HC2" else (1 - j._h) * (1 - j._h)
        j = j.mutate(_w=j._e * j._e / lev)
    xs = [None] + [j[f"_x{k}"] for k in range(1, p)]
    w = j._w
    maggs = {}
    for a in range(p):
        for b in range(a, p):
            e = prod(a, b)
            maggs[f"m_{a}_{b}"] = (w * e).sum() if e is not None else w.sum()
    mr = to_pandas(j.aggregate(**maggs), None).iloc[0]
    meat = np.empty((p, p))
    for a in range(p):
        for b in range(a, p):
            meat[a, b] = meat[b, a] = float(mr[f"m_{a}_{b}"])
    if cov_type == "HC1":
        meat *= n_total / (n_total - p)
    vcov = inv @ meat @ inv
    se = np.sqrt(np.diag(vcov))

    ns = dict(zip(first["_arm"], first["n"]))
    rows = []
    for a in others:
        k = names.index(f"arm[{a}]")
        b0, bk = beta[0], beta[k]
        v00, vkk, v0k = vcov[0, 0], vcov[k, k], vcov[0, k]
        # means: control b0, variant b0 + bk; var(b0+bk) = v00 + vkk + 2 v0k; cov(b0+bk, b0) = v00 + v0k
        res = lift(b0, v00, b0 + bk, v00 + vkk + 2 * v0k, alpha=alpha, relative=relative, cov=v00 + v0k)
        row = {"metric": metric, "variant": a, "control": control, "n": int(ns[a]), "n_control": int(ns[control]),
               "estimate": float(b0 + bk), "estimate_control": float(b0),
               "method": f"regression {'Lin interacted' if interacted else 'ANCOVA'} {cov_type}, rel={relative}"}
        for key in RESULT_COLUMNS:
            if key in res:
                row[key] = float(np.asarray(res[key]))
        row["abs_se"] = float(res["abs_se"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS + ["abs_se"])
    out.attrs["coef"] = pd.DataFrame({"term": names, "coef": beta, "se": se,
                                      "p_value": 2 * sps.norm.sf(np.abs(beta / se))})
    out.attrs["filled_zero"] = n_zero
    return report_exclusions(out, {"outcome rows of users not assigned": n_unassigned}, "regression_adjust")
