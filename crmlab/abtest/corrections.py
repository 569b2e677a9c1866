"""Multiple-comparison corrections of p-values, with an explicit family (``scope``).

- ``bonferroni``: ``min(1, m p)``; controls the family-wise error rate (FWER).
- ``holm``: Holm's (1979) step-down Bonferroni, ``max_{j<=i} min(1, (m - j + 1) p_(j))``;
  controls the FWER and is uniformly more powerful than Bonferroni.
- ``bh``: Benjamini & Hochberg (1995) step-up, ``min_{j>=i} min(1, m p_(j) / j)``; controls
  the false discovery rate under independence or positive dependence.

The same adjusted p-values as statsmodels ``multipletests(method="bonferroni" | "holm" |
"fdr_bh")``.

Which p-values form one family is a decision the analyst has to make and state; ``scope``
names it: ``"variants"`` (within each metric, across variants), ``"metrics"`` (within each
variant, across metrics), ``"both"`` (every variant x metric test of the experiment) or
``"none"``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.checks import choice
from .result import verdict

__all__ = ["adjust_pvalues", "correct", "with_family", "CORRECTIONS", "SCOPES"]

CORRECTIONS = ("holm", "bh", "bonferroni", "none")
SCOPES = ("variants", "metrics", "both", "none")


def adjust_pvalues(p, correction: str = "holm") -> np.ndarray:
    """Adjusted p-values of one family (NaNs are ignored and stay NaN).

    Parameters
    ----------
    p : array-like of p-values
    correction : ``"holm"`` | ``"bh"`` | ``"bonferroni"`` | ``"none"``
    """
    choice(correction, "correction", CORRECTIONS)
    method = correction
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    if method == "none":
        adj = q.copy()
    elif method == "bonferroni":
        adj = np.minimum(1.0, q * m)
    else:
        order = np.argsort(q, kind="mergesort")
        s = q[order]
        if method == "holm":
            a = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * s))
        else:
            a = np.minimum.accumulate((m * s / np.arange(1, m + 1))[::-1])[::-1]
            a = np.minimum(1.0, a)
        adj = np.empty(m)
        adj[order] = a
    out[ok] = adj
    return out


def correct(results: pd.DataFrame, *, correction: str = "holm", scope: str = "both",
            p_value: str = "p_value") -> pd.DataFrame:
    """Add ``p_adjusted`` and ``correction`` columns to a result frame of
    :func:`crmlab.abtest.compare`.

    Parameters
    ----------
    results : frame with ``metric``, ``variant`` and ``p_value`` columns.
    correction : ``"holm"`` | ``"bh"`` | ``"bonferroni"`` | ``"none"``.
    scope : ``"variants"`` | ``"metrics"`` | ``"both"`` | ``"none"`` (see the module docstring).
    p_value : the column to adjust.
    """
    choice(correction, "correction", CORRECTIONS)
    choice(scope, "scope", SCOPES)
    out = results.copy()
    if correction == "none" or scope == "none":
        out["p_adjusted"] = out[p_value].astype(float)
        out["correction"] = "none"
        return out
    keys = {"variants": ["metric"], "metrics": ["variant"], "both": None}[scope]
    adj = np.full(len(out), np.nan)
    pv = out[p_value].to_numpy(float)
    if keys is None:
        adj = adjust_pvalues(pv, correction)
    else:
        for _, idx in out.groupby(keys, sort=False).indices.items():
            adj[idx] = adjust_pvalues(pv[idx], correction)
    out["p_adjusted"] = adj
    out["correction"] = f"{correction} across {scope}"
    return out


def with_family(results: pd.DataFrame, by, *, correction: str = "holm", alpha: float = 0.05,
                p_value: str = "p_value", lift: str = "abs_lift") -> pd.DataFrame:
    """Correct p-values within each family of cells, then give every cell its verdict.

    A family is one group of ``results`` by the columns ``by`` (an empty list: the whole
    frame is one family; None: no correction). Cells whose p-value is NaN (``insufficient``:
    no test was run) are not members. Adds ``family`` (the family's key and how many tested
    cells it holds), ``correction``, ``p_adjusted`` and ``verdict`` (win / loss /
    inconclusive / insufficient from ``p_adjusted`` and the sign of ``lift``:
    :func:`crmlab.abtest.verdict`). The p-value adjustment is :func:`adjust_pvalues`.
    """
    choice(correction, "correction", CORRECTIONS)
    out = results.copy()
    p = out[p_value].to_numpy(float)
    out["p_adjusted"] = p
    out["correction"] = "none" if by is None or correction == "none" else correction
    out["family"] = pd.Series("none", index=out.index, dtype=object)
    if by is not None and len(out):
        keys = list(by)
        groups = out.groupby(keys, sort=False).indices.items() if keys else [("all", np.arange(len(out)))]
        adj = out["p_adjusted"].to_numpy(float).copy()
        fam = out["family"].to_numpy(object).copy()
        for key, idx in groups:
            adj[idx] = adjust_pvalues(p[idx], correction)
            name = " / ".join(str(k) for k in np.atleast_1d(key))
            fam[idx] = f"{name}: {int(np.isfinite(p[idx]).sum())} tested cells"
        out["p_adjusted"], out["family"] = adj, fam
    status = out["status"].to_numpy(object) if "status" in out else np.full(len(out), "ok", dtype=object)
    out["verdict"] = (verdict(status, out["p_adjusted"].to_numpy(float), out[lift].to_numpy(float), alpha)
                      if len(out) else pd.Series(dtype=object))
    return out
