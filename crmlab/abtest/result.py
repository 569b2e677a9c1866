"""One result type for a comparison of a variant with a control, and the verdict vocabulary.

Every two-arm test in :mod:`crmlab.abtest` (and the uplift and message modules that call them)
returns a :class:`Comparison`: a frozen record whose fields name every number (statsmodels'
result classes and GrowthBook gbstats' ``TestResult`` are the models). Fields hold floats or,
for vectorised calls over many simulated experiments, numpy arrays of one shape. For code
written against the earlier dictionaries, ``result["p_value"]`` and ``"p_value" in result``
still work.

Verdicts (:func:`verdict`): ``win`` / ``loss`` when the (family-adjusted) p-value is below
alpha, by the sign of the absolute lift; ``inconclusive`` otherwise; ``insufficient`` when the
method declined to test (``status == "insufficient"``: see :mod:`crmlab.abtest.skew`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["Comparison", "verdict", "VERDICTS"]

VERDICTS = ("win", "loss", "inconclusive", "insufficient")


@dataclass(frozen=True)
class Comparison:
    """A variant against a control.

    Attributes
    ----------
    estimate_control, estimate : the control's and the variant's metric (rate or mean).
    abs_lift : ``estimate - estimate_control``, with ``abs_ci_low, abs_ci_high`` and ``abs_se``.
    rel_lift : ``estimate / estimate_control - 1``, with ``rel_ci_low, rel_ci_high``.
    p_value : two-sided p-value of no difference; ``rel_p_value`` that of the relative
        interval's test (the same number when the relative interval inverts the same test).
    statistic : the test statistic before any skewness correction; ``df`` its degrees of
        freedom (``inf`` for normal-reference tests); ``skewness`` the skewness of the
        difference used by the correction (0 where none applies).
    status : ``"ok"`` or ``"insufficient"``; ``reason`` a snake_case code when insufficient;
        ``n_needed`` the control size, at the same split, that would suffice.
    """

    estimate_control: object
    estimate: object
    abs_lift: object
    abs_se: object
    abs_ci_low: object
    abs_ci_high: object
    rel_lift: object
    rel_ci_low: object
    rel_ci_high: object
    p_value: object
    rel_p_value: object
    statistic: object
    df: object
    skewness: object
    status: object
    reason: object
    n_needed: object

    @classmethod
    def from_parts(cls, parts: dict) -> "Comparison":
        shape = np.shape(parts["abs_lift"])
        defaults = {"skewness": np.zeros(shape), "df": np.full(shape, np.inf), "abs_se": np.full(shape, np.nan),
                    "status": np.full(shape, "ok", dtype=object), "reason": np.full(shape, "", dtype=object),
                    "n_needed": np.full(shape, np.nan)}
        values = {f.name: parts.get(f.name, defaults.get(f.name)) for f in fields(cls)}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise ValueError(f"Comparison: missing {missing}")
        return cls(**values)

    def __getitem__(self, key: str):
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key) -> bool:
        return key in self.__dataclass_fields__

    def keys(self):
        return self.__dataclass_fields__.keys()

    def to_dict(self) -> dict:
        return asdict(self)

    def verdict(self, alpha: float = 0.05, p_value=None):
        """``win`` / ``loss`` / ``inconclusive`` / ``insufficient`` (see the module docstring)."""
        return verdict(self.status, self.p_value if p_value is None else p_value, self.abs_lift, alpha)


def verdict(status, p_value, abs_lift, alpha: float = 0.05):
    """Verdict per comparison from its status, (adjusted) p-value and signed lift."""
    status, p, lift = np.asarray(status, dtype=object), np.asarray(p_value, float), np.asarray(abs_lift, float)
    sig = p < alpha
    out = np.select([status == "insufficient", sig & (lift > 0), sig & (lift < 0)],
                    ["insufficient", "win", "loss"], default="inconclusive").astype(object)
    return out.item() if out.ndim == 0 else out
