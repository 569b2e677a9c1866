"""Sufficient statistics as numbers: the inputs of every test in :mod:`crmlab.abtest`.

A test needs a handful of numbers per arm and metric (GrowthBook's ``gbstats`` works the same
way): the count ``n``, the sum, the sum of squares and the sum of cubes of the metric and,
for ratio metrics or CUPED, the second variable's sum, sum of squares and the cross sum. This
module holds them as frozen dataclasses and never touches data access; the engine side that
aggregates them is :mod:`crmlab.abtest.sufficient`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SampleStats", "PairedStats", "stats_from_frame", "parse_metrics"]


@dataclass(frozen=True)
class SampleStats:
    """Sufficient statistics of one metric in one variant: ``n``, ``sum``, ``sum_sq`` and
    ``sum_cube`` (the third moment, for the skewness-corrected test; NaN when unknown).

    ``var`` is the sample variance with ``n - 1`` in the denominator.
    """

    n: float
    sum: float
    sum_sq: float
    sum_cube: float = np.nan

    @property
    def mean(self):
        return self.sum / self.n

    @property
    def var(self):
        return np.maximum(self.sum_sq - self.sum ** 2 / self.n, 0.0) / (self.n - 1)

    @property
    def sd(self):
        return np.sqrt(self.var)

    @property
    def var_of_mean(self):
        return self.var / self.n

    @classmethod
    def from_values(cls, values) -> "SampleStats":
        v = np.asarray(values, dtype=float)
        return cls(n=float(v.size), sum=float(v.sum()), sum_sq=float((v * v).sum()), sum_cube=float((v ** 3).sum()))


@dataclass(frozen=True)
class PairedStats:
    """Sufficient statistics of a pair of per-user variables ``y`` and ``x`` in one variant.

    ``x`` is a ratio metric's denominator (ratio ``sum / x_sum``) or CUPED's pre-period
    covariate. Variances and the covariance use ``n - 1``.
    """

    n: float
    sum: float
    sum_sq: float
    x_sum: float
    x_sum_sq: float
    xy_sum: float

    @property
    def y(self) -> SampleStats:
        return SampleStats(self.n, self.sum, self.sum_sq)

    @property
    def x(self) -> SampleStats:
        return SampleStats(self.n, self.x_sum, self.x_sum_sq)

    @property
    def cov(self):
        return (self.xy_sum - self.sum * self.x_sum / self.n) / (self.n - 1)

    @property
    def ratio(self):
        return self.sum / self.x_sum

    @property
    def ratio_var(self):
        """Delta-method variance of ``mean(y) / mean(x)`` (Deng, Knoblich & Lu 2018, eq. 4):
        ``(var_y / mx^2 - 2 my cov / mx^3 + my^2 var_x / mx^4) / n``."""
        my, mx = self.sum / self.n, self.x_sum / self.n
        return (self.y.var / mx ** 2 - 2 * my * self.cov / mx ** 3
                + my ** 2 * self.x.var / mx ** 4) / self.n

    @classmethod
    def from_values(cls, y, x) -> "PairedStats":
        y = np.asarray(y, dtype=float)
        x = np.asarray(x, dtype=float)
        return cls(n=float(y.size), sum=float(y.sum()), sum_sq=float((y * y).sum()),
                   x_sum=float(x.sum()), x_sum_sq=float((x * x).sum()), xy_sum=float((x * y).sum()))


def parse_metrics(metrics) -> dict[str, tuple[str, str | None]]:
    """Normalise ``metrics`` to ``{name: (numerator column, denominator column or None)}``.

    Accepted: a column name, a list of names, or a mapping ``name -> column`` or
    ``name -> (numerator, denominator)`` for ratio metrics.
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        out = {}
        for name, spec in metrics.items():
            if isinstance(spec, str):
                out[str(name)] = (spec, None)
            elif isinstance(spec, Sequence) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
                out[str(name)] = (spec[0], spec[1])
            else:
                raise ValueError(f"metrics[{name!r}]={spec!r}: expected a column name or a "
                                 "(numerator, denominator) pair of column names")
        return out
    if isinstance(metrics, Sequence) and metrics and all(isinstance(m, str) for m in metrics):
        return {m: (m, None) for m in metrics}
    raise ValueError(f"metrics={metrics!r}: expected a column name, a list of column names or a "
                     "mapping name -> column | (numerator, denominator)")


def stats_from_frame(row) -> SampleStats | PairedStats:
    """The dataclass for one row of :func:`sufficient_stats` (PairedStats when ``x_role`` is set)."""
    if isinstance(row.get("x_role"), str):
        return PairedStats(row["n"], row["sum"], row["sum_sq"], row["x_sum"], row["x_sum_sq"], row["xy_sum"])
    return SampleStats(row["n"], row["sum"], row["sum_sq"], row.get("sum_cube", np.nan))
