"""Findings: the structured results every report page is rendered from.

A :class:`Finding` is one comparison (a campaign, a segment cell, the global holdout or an arm of
an experiment, on one metric) with everything a sentence, a table row, a chart bar, a summary
bullet or a recommendation needs: what was compared, its family and correction, the arms'
values, the lift and its interval, raw and adjusted p, the engine's verdict, n, and the window
and denominator it was measured on.

The rules that keep pages honest live here, not in the prose:

* a finding is a **claim** (:attr:`Finding.is_claim`) only if the engine's verdict is ``win`` or
  ``loss`` *and* it was corrected for its family (or is alone in it); every claim in a table is
  in the summary (:func:`claims`), losses included;
* a **recommendation** (:func:`recommendable`) only ever comes from a claim;
* totals (extra buyers, extra revenue) add up claims only (:func:`claimed_total`) and say so;
* cost per incremental exists only for conversion findings (a cost per won of revenue is not a
  cost per buyer).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import pandas as pd

VERDICTS = ("win", "loss", "inconclusive", "insufficient")
#: The global holdout's family on every page (weekly uplift and experiment readout): its metrics
#: (conversion and revenue per user) are corrected together, as the readout corrects every
#: arm x metric test of an experiment (``scope="both"``; the holdout has one arm). Grouping the
#: holdout rows by experiment makes both metrics one family.
HOLDOUT_FAMILY = ("experiment",)
#: Metrics whose incremental count is people (a cost per incremental makes sense).
COUNT_METRICS = ("conversion_rate", "conversion", "visit_rate", "visit")


def _f(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _n(x) -> int:
    v = _f(x)
    return 0 if math.isnan(v) else int(v)


@dataclass(frozen=True)
class Finding:
    """One comparison of one metric between an arm and its control."""
    analysis: str               # campaign | segment | holdout | experiment
    subject: str                # experiment or campaign name
    metric: str
    arm: str
    control: str
    segment: str = "all"
    family: str = ""
    correction: str = "none"
    estimate: float = math.nan            # the arm's value
    estimate_control: float = math.nan    # the control's value
    abs_lift: float = math.nan
    ci_low: float = math.nan              # interval of abs_lift (dual to p_value)
    ci_high: float = math.nan
    rel_lift: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan
    verdict: str = "inconclusive"
    n: int = 0                            # users in the arm
    n_control: int = 0
    window_days: float = math.nan         # outcome window after assignment; NaN: open-ended to as_of
    assigned_from: str = ""               # first and last assignment date counted (ISO)
    assigned_to: str = ""
    as_of: str = ""                       # last day of outcomes counted (ISO)
    denominator: str = "complete"         # complete: assigned users whose window ended by as_of
                                          # all: every user assigned by as_of
    incremental: float = math.nan
    cost: float = math.nan
    cost_per_incremental: float = math.nan
    reason: str = ""
    n_needed: float = math.nan

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r}: allowed values are {VERDICTS}")

    @property
    def corrected(self) -> bool:
        """Corrected for its family, or alone in it (nothing to correct)."""
        return self.correction not in ("", "none") or self.family_size == 1

    @property
    def family_size(self) -> int:
        head = self.family.split(":")[-1].strip().split(" ")[0] if self.family else ""
        return int(head) if head.isdigit() else 0

    @property
    def is_claim(self) -> bool:
        """A stated win or loss: the engine's verdict, after correction."""
        return self.verdict in ("win", "loss") and self.corrected

    @property
    def sign(self) -> int:
        return 0 if _nan(self.abs_lift) or self.abs_lift == 0 else (1 if self.abs_lift > 0 else -1)

    @property
    def p_shown(self) -> float:
        """The p-value the verdict rests on (adjusted if there is one)."""
        return self.p_value if _nan(self.p_adjusted) else self.p_adjusted

    @property
    def counts_people(self) -> bool:
        return self.metric in COUNT_METRICS

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(is_claim=self.is_claim, p_shown=self.p_shown)
        return d


@dataclass(frozen=True)
class Fact:
    """A descriptive finding: numbers a page states where no test applies (volumes, rates,
    retention shares, funnel steps), with the window and the denominator they were counted on.

    A fact is never a claim and never a verdict; a sentence or an ``action`` (a next step that
    rests on counts, such as fixing compliance violations) is rendered from it by
    :func:`crmlab.report.text.fact_sentence` with the catalogue key ``key``.

    ``values`` holds ``(placeholder, value, kind)`` triples: ``kind`` says how the number is
    formatted (``int``, ``pct``, ``pct2``, ``money``, ``days``, ``text``, ``segment``, ``step``,
    ``moved`` for a ``(now, before)`` pair, ``rel``, ``p``, ...). ``window`` and ``denominator``
    are ``(catalogue key, ((placeholder, text), ...))``: what period the numbers cover and what
    their rates divide by; ``n`` is the size of that denominator.
    """
    analysis: str                     # messages | cohort | funnel
    key: str
    values: tuple = ()
    window: tuple = ()
    denominator: tuple = ()
    n: float = math.nan
    role: str = "fact"                # fact | action | caveat (a model caveat shown where it applies)
    p_value: float = math.nan         # a test without a sign (e.g. chi-square over groups)
    p_adjusted: float = math.nan

    verdict = "descriptive"
    is_claim = False

    def value(self, name: str):
        for k, v, _ in self.values:
            if k == name:
                return v
        raise KeyError(name)


def counted(items: Iterable) -> list[tuple]:
    """The distinct ``(window, denominator)`` pairs of ``items`` (facts, and findings of copy
    tests that carry one), in order: what a page states under "What is counted"."""
    seen: dict[tuple, None] = {}
    for f in items:
        if isinstance(f, Fact):
            w, d = f.window, f.denominator
        elif hasattr(f, "counted_pair"):
            w, d = f.counted_pair
        else:
            continue
        if w:
            seen.setdefault((w, d), None)
    return list(seen)


def from_copy_test(df: pd.DataFrame | None, *, window: tuple = (), denominator: tuple = ()) -> list[Finding]:
    """Findings of :func:`crmlab.messages.copy_test` rows (a ``campaign`` column added): each
    test's metrics are one family, with the engine's verdict on the adjusted p-value. The
    ``window`` / ``denominator`` describe the attribution (see :class:`Fact`); the finding's own
    ``denominator`` field says ``messages`` (rates are per delivered message)."""
    if df is None or df.empty:
        return []
    out = []
    for r in df.to_dict("records"):
        status = r.get("status", "ok")
        verdict = str(r.get("verdict") or ("insufficient" if status == "insufficient" else "inconclusive"))
        out.append(CopyFinding(
            analysis="copy_test", subject=str(r.get("campaign", "")), metric=str(r["metric"]), arm=str(r["variant"]),
            control=str(r["control"]), family=str(r.get("family", "")),
            correction=str(r.get("correction", "none") or "none"), estimate=_f(r.get("estimate")),
            estimate_control=_f(r.get("estimate_control")), abs_lift=_f(r.get("abs_lift")),
            ci_low=_f(r.get("abs_ci_low")), ci_high=_f(r.get("abs_ci_high")), rel_lift=_f(r.get("rel_lift")),
            p_value=_f(r.get("p_value")), p_adjusted=_f(r.get("p_adjusted")), verdict=verdict,
            n=_n(r.get("n")), n_control=_n(r.get("n_control")), denominator="messages",
            reason=str(r.get("reason") or ""), n_needed=_f(r.get("n_needed")), window=window,
            counted_per=denominator))
    return out


def from_uplift(df: pd.DataFrame | None, *, analysis: str, window_days: float | None, assigned_from: str = "",
                assigned_to: str = "", as_of: str = "", denominator: str = "complete",
                control: str = "control") -> list[Finding]:
    """Findings of :func:`crmlab.uplift.campaign_uplift` / ``holdout_uplift`` rows (verdict,
    family, correction and p_adjusted as the library gives them)."""
    if df is None or df.empty:
        return []
    out = []
    for r in df.to_dict("records"):
        metric = str(r["metric"])
        count = metric in COUNT_METRICS
        status = r.get("status", "ok")
        verdict = str(r.get("verdict") or ("insufficient" if status == "insufficient" else "inconclusive"))
        out.append(Finding(
            analysis=analysis, subject=str(r["experiment"]), metric=metric, arm=str(r.get("treatment", "treatment")),
            control=control, segment=str(r.get("segment", "all")), family=str(r.get("family", "")),
            correction=str(r.get("correction", "none") or "none"),
            estimate=_f(r.get("estimate")), estimate_control=_f(r.get("estimate_control")),
            abs_lift=_f(r.get("abs_lift")), ci_low=_f(r.get("abs_ci_low")), ci_high=_f(r.get("abs_ci_high")),
            rel_lift=_f(r.get("rel_lift")), p_value=_f(r.get("p_value")), p_adjusted=_f(r.get("p_adjusted")),
            verdict=verdict, n=_n(r.get("n_treatment")), n_control=_n(r.get("n_control")),
            window_days=math.nan if window_days is None else float(window_days), assigned_from=assigned_from,
            assigned_to=assigned_to, as_of=as_of, denominator=denominator,
            incremental=_f(r.get("incremental")), cost=_f(r.get("cost")),
            # a cost per incremental buyer, never per won of revenue
            # and only where an increment was measured (an insufficient cell has none)
            cost_per_incremental=(_f(r.get("cost_per_incremental")) if count and verdict != "insufficient"
                                  else math.nan),
            reason=str(r.get("reason") or ""), n_needed=_f(r.get("n_needed"))))
    return out


def from_readout(results: pd.DataFrame, *, experiment: str, alpha: float, window_days: float | None,
                 assigned_from: str = "", assigned_to: str = "", as_of: str = "", denominator: str = "complete",
                 family: str = "") -> list[Finding]:
    """Findings of an experiment readout table (:func:`crmlab.abtest.readout.readout`): the
    verdict is the engine's (:func:`crmlab.abtest.result.verdict`) on the adjusted p-value."""
    from ..abtest.result import verdict as engine_verdict
    if results is None or results.empty:
        return []
    fam = family or f"{experiment}: {len(results)} tested cells"
    out = []
    for r in results.to_dict("records"):
        p_adj = _f(r.get("p_adjusted"))
        p = _f(r.get("p_value"))
        v = str(engine_verdict(r.get("status", "ok"), p if _nan(p_adj) else p_adj, _f(r.get("abs_lift")), alpha))
        out.append(Finding(
            analysis="experiment", subject=experiment, metric=str(r["metric"]), arm=str(r["variant"]),
            control=str(r.get("control", "")), family=fam, correction=str(r.get("correction", "none") or "none"),
            estimate=_f(r.get("estimate")), estimate_control=_f(r.get("estimate_control")),
            abs_lift=_f(r.get("abs_lift")), ci_low=_f(r.get("abs_ci_low")), ci_high=_f(r.get("abs_ci_high")),
            rel_lift=_f(r.get("rel_lift")), p_value=p, p_adjusted=p_adj, verdict=v,
            n=_n(r.get("n")), n_control=_n(r.get("n_control")),
            window_days=math.nan if window_days is None else float(window_days), assigned_from=assigned_from,
            assigned_to=assigned_to, as_of=as_of, denominator=denominator, reason=str(r.get("reason") or ""),
            n_needed=_f(r.get("n_needed"))))
    return out


def holdout_family(df: pd.DataFrame | None, *, correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame | None:
    """``holdout_uplift`` rows corrected over the holdout's metrics (:data:`HOLDOUT_FAMILY`),
    with the engine's verdict on the adjusted p (:func:`crmlab.abtest.with_family`): the same
    family, ``p_adjusted`` and verdict the experiment readout gives the holdout.

    Holm (1979): with ``m`` tested metrics ordered by p, ``p_adj(i) = max_{j<=i} min(1, (m-j+1) p(j))``.
    """
    from ..abtest.corrections import with_family
    if df is None or df.empty:
        return df
    return with_family(df, list(HOLDOUT_FAMILY), correction=correction, alpha=alpha)


@dataclass(frozen=True)
class CopyFinding(Finding):
    """A copy test's comparison (a :class:`Finding`) with the attribution window and
    denominator it was counted on, for the page's "What is counted"."""
    window: tuple = ()
    counted_per: tuple = ()

    @property
    def counted_pair(self) -> tuple:
        return self.window, self.counted_per


def claims(findings: Iterable[Finding]) -> list[Finding]:
    """Every stated win or loss, losses first (never dropped, never softened)."""
    fs = [f for f in findings if f.is_claim]
    return sorted(fs, key=lambda f: (f.verdict != "loss", f.analysis, f.subject, f.metric, f.segment))


def recommendable(f: Finding) -> bool:
    """A recommendation may rest on ``f`` only if it is a corrected win or loss."""
    return f.is_claim


def claimed_total(findings: Iterable[Finding], metric: str) -> tuple[float, list[str]]:
    """Sum of ``incremental`` over the claims on ``metric`` and the subjects summed."""
    fs = [f for f in findings if f.metric == metric and f.is_claim and not _nan(f.incremental)]
    return float(sum(f.incremental for f in fs)), [f.subject for f in fs]


def frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """The findings as a frame (one row each), for tables and charts."""
    return pd.DataFrame([f.as_dict() for f in findings])


def windows(findings: Iterable[Finding]) -> list[tuple]:
    """The distinct (analysis, subject, window_days, assigned_from, assigned_to, as_of,
    denominator) of ``findings``, in order: what a page must state. ``subject`` is the
    experiment for readout findings and the holdout's name, empty for campaigns and segment
    cells (one window for all of them)."""
    seen: dict[tuple, None] = {}
    for f in findings:
        wd = None if _nan(f.window_days) else f.window_days
        subject = f.subject if f.analysis in ("experiment", "holdout") else ""
        seen.setdefault((f.analysis, subject, wd, f.assigned_from, f.assigned_to, f.as_of, f.denominator), None)
    return list(seen)
