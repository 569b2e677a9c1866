"""Sample ratio mismatch (SRM): are the arms' sizes what the allocation promised?

A chi-square goodness-of-fit test of observed arm counts against the expected allocation
(Pearson; scipy ``chisquare``). Fabijan et al. (2019, "Diagnosing Sample Ratio Mismatch in
Online Controlled Experiments", KDD) recommend flagging at ``p < 0.0005``-``0.001``: an SRM
means the assignment or the logging is broken, and every other result of the test is suspect.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from scipy import stats as sps

from ..io.engine import to_pandas
from ..io.schema import DEFAULT_TZ
from ..io.validate import canonical

__all__ = ["SRMResult", "srm_check"]


@dataclass
class SRMResult:
    """Outcome of :func:`srm_check`: the per-arm ``table`` (``variant, n, share,
    expected_share, expected_n``), the chi-square ``statistic``, ``df``, ``p_value``, the
    threshold ``alpha`` and ``flagged`` (``p_value < alpha``)."""

    table: pd.DataFrame
    statistic: float
    df: int
    p_value: float
    alpha: float
    flagged: bool

    def __str__(self) -> str:
        verdict = "SAMPLE RATIO MISMATCH" if self.flagged else "no sample ratio mismatch"
        return (f"SRM check: {verdict} (chi2 = {self.statistic:.3f}, df = {self.df}, "
                f"p = {self.p_value:.4g}, threshold {self.alpha:g})")


def srm_check(data, *, expected: Mapping[str, float] | None = None, alpha: float = 0.001,
              experiment: str | None = None, arm: str = "variant", tz: str = DEFAULT_TZ) -> SRMResult:
    """Chi-square goodness-of-fit test of arm sizes against the planned allocation.

    Parameters
    ----------
    data : assignments table (DataFrame, path or Ibis table; counted in the engine) or a
        mapping / Series ``variant -> count``.
    expected : mapping ``variant -> weight``, optional
        Planned allocation (weights are normalised; default equal split). Arms in the data but
        not in ``expected`` raise ValueError.
    alpha : threshold of the flag (default 0.001).
    experiment, arm, tz : which experiment of ``assignments`` and the arm column.

    Notes
    -----
    Pearson's statistic ``sum((n_i - N p_i)^2 / (N p_i))`` with ``k - 1`` degrees of freedom
    (scipy.stats.chisquare). The 0.001 threshold follows Fabijan et al. (2019), "Diagnosing
    sample ratio mismatch in online controlled experiments", KDD, and Kohavi, Tang & Xu (2020),
    *Trustworthy Online Controlled Experiments*, ch. 21.
    """
    if not (0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    if isinstance(data, Mapping) or isinstance(data, pd.Series):
        counts = pd.Series(dict(data), dtype=float)
    else:
        a = canonical(data, "assignments", tz=tz)
        if arm not in a.columns:
            raise ValueError(f"arm={arm!r}: not a column of assignments; columns are {list(a.columns)}")
        if experiment is not None:
            a = a.filter(a.experiment == experiment)
        df = to_pandas(a.group_by(arm).aggregate(n=a.count()), None)
        counts = pd.Series(df["n"].to_numpy(float), index=df[arm].astype(str))
    counts = counts.sort_index()
    if expected is None:
        weights = pd.Series(1.0, index=counts.index)
    else:
        weights = pd.Series(dict(expected), dtype=float)
        extra = sorted(set(counts.index) - set(weights.index))
        if extra:
            raise ValueError(f"expected={dict(expected)!r}: no weight for arm(s) {extra}")
        if (weights <= 0).any():
            raise ValueError(f"expected={dict(expected)!r}: weights must be positive")
        weights = weights.reindex(weights.index.union(counts.index))
        counts = counts.reindex(weights.index, fill_value=0.0)
    share = weights / weights.sum()
    total = counts.sum()
    exp_n = share * total
    res = sps.chisquare(counts.to_numpy(), exp_n.to_numpy())
    table = pd.DataFrame({"variant": counts.index, "n": counts.to_numpy().astype(int),
                          "share": (counts / total).to_numpy(), "expected_share": share.to_numpy(),
                          "expected_n": exp_n.to_numpy()})
    p = float(res.pvalue)
    return SRMResult(table=table, statistic=float(res.statistic), df=int(len(counts) - 1), p_value=p,
                     alpha=alpha, flagged=bool(p < alpha))
