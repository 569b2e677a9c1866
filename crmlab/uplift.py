"""Campaign uplift against a randomised control (or global holdout) group, and Qini curves.

Why a control group: attribution (:mod:`crmlab.messages`) credits every order inside a window
to a message, including orders the customer would have placed anyway. The causal effect of
a campaign is the difference between users randomised to receive it and users randomised to
be left out, each followed over the same window. A control user receives nothing, so their
window starts at their *virtual send time* — the ``assigned_time`` of the assignments table,
the moment they would have been messaged — exactly as a treated user's starts at theirs.

Statistics come from :mod:`crmlab.abtest.frequentist` on per-arm sufficient statistics
aggregated in the engine: the two-proportion z-test (pooled p-value; Newcombe's hybrid score
interval, or the engine's unpooled Wald interval, for the difference; Katz log interval for the
ratio) for conversion, Welch's t-test (with a
delta-method log-ratio interval) for revenue per user.

Qini and uplift curves follow Radcliffe (2007), "Using control groups to target on predicted
lift: building and assessing uplift models", *Direct Marketing Analytics Journal* 1:14-21,
and Gutierrez & Gérardy (2017), "Causal inference and uplift modelling: a review of the
literature", *PMLR* 67:1-13, with the conventions of scikit-uplift (``sklift.metrics``):
ties in the score are grouped, curves start at (0, 0).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import ceil

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .abtest.corrections import CORRECTIONS, with_family
from .abtest.frequentist import METHOD_LABELS, mean_test, proportion_test
from .abtest.samples import SampleStats
from .io.checks import choice, duration
from .io.engine import DataLike, as_table, local_time, localize_frame, report_exclusions, to_pandas
from .io.schema import DEFAULT_TZ
from .io.sources import channels
from .io.validate import canonical

#: Illustrative per-message costs in KRW (2024 list prices of Korean bulk-messaging vendors,
#: rounded): pass your own contract prices as ``costs=``.
DEFAULT_COSTS = {"sms": 9.0, "lms": 30.0, "kakao_alimtalk": 7.0, "kakao_friendtalk": 15.0,
                 "email": 0.5, "app_push": 0.0, "web_push": 0.0, "in_app": 0.0}

RESULT_COLUMNS = ["experiment", "segment", "metric", "n_treatment", "n_control", "estimate",
                  "estimate_control", "abs_lift", "abs_ci_low", "abs_ci_high", "p_value", "rel_lift",
                  "rel_ci_low", "rel_ci_high", "incremental", "cost", "cost_per_incremental",
                  "status", "reason", "n_needed", "family", "correction", "p_adjusted", "verdict", "method"]

#: Families of cells over which p-values are corrected (``family=`` of :func:`campaign_uplift`).
FAMILIES = ("metric", "experiment", "none")


# ----------------------------------------------------------------------------- helpers
def _segments_table(segments, segment: str | None) -> tuple[ir.Table, str]:
    if isinstance(segments, pd.DataFrame):
        if "user_id" not in segments.columns:
            raise ValueError(f"segments: needs a user_id column, has {list(segments.columns)}")
        others = [c for c in segments.columns if c != "user_id"]
        if segment is None:
            if len(others) != 1:
                raise ValueError(f"segment=None is ambiguous: segments has columns {others}; "
                                 "name the segment column with segment=")
            segment = others[0]
        if segment not in segments.columns:
            raise ValueError(f"segment={segment!r} is not a column of segments: {list(segments.columns)}")
        seg = segments[["user_id", segment]].drop_duplicates()  # identical rows say nothing new
        seg = seg.assign(**{segment: seg[segment].astype(str)})
        _one_segment_per_user(ibis.memtable(localize_frame(seg)), segment)
        return ibis.memtable(localize_frame(seg)), segment
    t = as_table(segments)
    if segment is None:
        others = [c for c in t.columns if c != "user_id"]
        if len(others) != 1:
            raise ValueError(f"segment=None is ambiguous: segments has columns {others}")
        segment = others[0]
    t = t.select("user_id", t[segment].cast("string").name(segment)).distinct()
    _one_segment_per_user(t, segment)
    return t, segment


def _one_segment_per_user(t: ir.Table, segment: str) -> None:
    """A user in two segments would be counted twice: refuse, naming examples."""
    per = t.group_by("user_id").agg(_n=t.count())
    bad = per.filter(per._n > 1)
    n_bad = int(bad.count().execute())
    if n_bad:
        ex = to_pandas(t.semi_join(bad.select("user_id").limit(5), "user_id").order_by("user_id").limit(10), None)
        raise ValueError(f"segments: {n_bad:,} user(s) are in more than one {segment!r} segment; "
                         f"give one segment per user. Examples:\n{ex.to_string()}")


def _as_list(value, name):
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    out = list(value)
    if not out:
        raise ValueError(f"{name}={value!r}: give at least one")
    return out


INCOMPLETE = ("exclude", "keep")
INCOMPLETE_KEY = "assignments whose window ends after as_of"


def complete_windows(assignments: ir.Table, window: pd.Timedelta | None,
                     as_of_local: pd.Timestamp | None) -> tuple[ir.Table, int]:
    """Keep the assignments whose outcome window has ended by ``as_of``; count the others.

    A window ``[assigned_time, assigned_time + window)`` is complete when its end is at most
    ``as_of`` plus one microsecond (the time resolution), so that with ``as_of`` at a week's
    last instant a send whose window ends exactly at the week's end is kept. A user whose
    window is cut short has had less time to convert: keeping them biases rates towards zero
    and mixes window lengths between weeks. Exclusion depends only on ``assigned_time``,
    which randomisation makes independent of the arm, so the comparison stays unbiased.
    Nothing is cut when ``window`` or ``as_of`` is None (an open window ends at ``as_of``).
    """
    cutoff = window_cutoff(window, as_of_local)
    if cutoff is None:
        return assignments, 0
    late = assignments.assigned_time > ibis.literal(cutoff)
    n = int(assignments.filter(late).count().execute())
    return assignments.filter(~late), n


def window_cutoff(window: pd.Timedelta | None, as_of_local: pd.Timestamp | None) -> pd.Timestamp | None:
    """The latest ``assigned_time`` whose window has ended by ``as_of`` (rule of
    :func:`complete_windows`); None when nothing is cut."""
    if window is None or as_of_local is None:
        return None
    # The same whole-second window that user_outcomes_expr applies.
    span = pd.Timedelta(seconds=int(window.total_seconds()))
    return as_of_local + pd.Timedelta(microseconds=1) - span


def _in_window(a: ir.Table, rows: ir.Table, user: str, time: str, window: pd.Timedelta | None,
               as_of_local: pd.Timestamp | None) -> ir.Table:
    """``a`` left-joined with the ``rows`` of each user inside the user's window:
    ``assigned_time <= time < assigned_time + window`` (unbounded above when ``window`` is
    None) and ``time <= as_of``. Users with no such row keep one row of nulls."""
    t = rows[time]
    cond = [a.user_id == rows[user], t >= a.assigned_time]
    if window is not None:
        cond.append(t < a.assigned_time + ibis.interval(seconds=int(window.total_seconds())))
    if as_of_local is not None:
        cond.append(t <= ibis.literal(as_of_local))
    return a.left_join(rows, cond)


def user_outcomes_expr(assignments: ir.Table, orders: ir.Table, window: pd.Timedelta | None,
                       as_of_local: pd.Timestamp | None) -> ir.Table:
    """Per assigned user: ``converted`` (0/1, at least one order in the window) and ``revenue``.

    The window is half-open, ``assigned_time <= order_time < assigned_time + window``
    (unbounded above, or up to ``as_of``, when ``window`` is None).
    """
    a = assignments
    o = orders.select(o_user=orders.user_id, o_time=orders.time, o_revenue=orders.revenue)
    j = _in_window(a, o, "o_user", "o_time", window, as_of_local)
    per_user = j.group_by(list(a.columns)).agg(orders=j.o_time.count(), revenue=j.o_revenue.sum())
    return per_user.mutate(converted=(per_user.orders > 0).ifelse(1, 0),
                           revenue=per_user.revenue.fill_null(0.0))


def _visit_stats(a: ir.Table, events: ir.Table, window, as_of_local, keys: list[str], tz: str) -> pd.DataFrame:
    """Per arm: users with at least one event in their window (half-open, as for orders)."""
    e = events.select(e_user=events.user_id, e_time=events.time)
    j = _in_window(a, e, "e_user", "e_time", window, as_of_local)
    per_user = j.group_by(list(a.columns)).agg(_events=j.e_time.count())
    agg = per_user.group_by(keys).agg(visits=(per_user._events > 0).ifelse(1, 0).sum())
    return to_pandas(agg, tz)


def _arm_stats(per_user: ir.Table, keys: list[str], tz: str) -> pd.DataFrame:
    agg = per_user.group_by(keys).agg(
        n=per_user.count(), conversions=per_user.converted.sum(),
        revenue_sum=per_user.revenue.sum(), revenue_sum_sq=(per_user.revenue * per_user.revenue).sum(),
        revenue_sum_cube=(per_user.revenue * per_user.revenue * per_user.revenue).sum())
    return to_pandas(agg, tz)


def _cost_frame(messages, assignments: ir.Table, treatment: str, costs, tz: str) -> pd.DataFrame | None:
    """Total message cost per (experiment, segment) of treated users' messages of the campaign."""
    if messages is None:
        return None
    m = canonical(messages, "messages", tz=tz)
    if costs is None:
        rate = ibis.null("float64")
    else:
        rates = DEFAULT_COSTS if isinstance(costs, str) and costs == "default" else costs
        if not isinstance(rates, Mapping):
            raise ValueError(f"costs={costs!r}: give None, 'default' or a mapping channel -> cost per message")
        bad = [k for k in rates if k not in channels.names()]
        if bad:
            raise ValueError(f"costs: unknown channel(s) {bad}; allowed: {', '.join(channels.names())}")
        negative = {k: v for k, v in rates.items() if not (np.isfinite(float(v)) and float(v) >= 0)}
        if negative:
            raise ValueError(f"costs={negative!r}: a cost per message must be a finite number >= 0")
        rate = ibis.cases(*[(m.channel == ch, ibis.literal(float(v))) for ch, v in rates.items()],
                          else_=ibis.null("float64"))
    m = m.mutate(_cost=m.cost.cast("float64").coalesce(rate))
    a = assignments.filter(assignments.variant == treatment)
    mm = m.select(m_user=m.user_id, m_campaign=m.campaign, _cost=m._cost)
    j = a.join(mm, [a.user_id == mm.m_user, a.experiment == mm.m_campaign])
    keys = ["experiment"] + (["segment"] if "segment" in a.columns else [])
    agg = j.group_by(keys).agg(cost=j._cost.sum(), _n_costed=j._cost.count())
    df = to_pandas(agg, tz)
    df.loc[df["_n_costed"] == 0, "cost"] = np.nan
    return df.drop(columns="_n_costed")


# ----------------------------------------------------------------------------- uplift
METHODS = ("skew_corrected", "previous")


def campaign_uplift(assignments: DataLike, orders: DataLike, *, experiment: str | Sequence[str] | None = None,
                    treatment: str = "treatment", control: str = "control", window="3D",
                    segments=None, segment: str | None = None, events: DataLike | None = None,
                    event: str | Sequence[str] | None = None, messages: DataLike | None = None,
                    costs=None, alpha: float = 0.05, method: str = "skew_corrected",
                    family: str = "metric", correction: str = "holm", as_of=None,
                    incomplete: str = "exclude", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Causal uplift of campaigns on conversion and revenue per user, by segment.

    Parameters
    ----------
    assignments : canonical ``assignments`` table
        One row per user and experiment. For a campaign, ``experiment`` is the campaign name,
        ``variant`` is ``treatment`` or ``control`` and ``assigned_time`` the (virtual, for
        control users) send time, where each user's window starts.
    orders : canonical ``orders`` table.
    experiment : name or names of the experiments; None for every experiment that has both
        ``treatment`` and ``control`` arms.
    treatment, control : arm names.
    window : str or Timedelta, default "3D"; None for "until as_of / the end of the data".
        Half-open: ``assigned_time <= order_time < assigned_time + window``.
    segments : DataFrame or Ibis table ``user_id -> segment``, optional
        For example an RFM segment, a lifecycle stage or a persona; ``segment`` names the
        column when there are several. Assigned users without a segment are left out and
        counted in ``attrs["excluded"]``.
    events : canonical ``events`` table, optional
        Adds the metric ``visit_rate``: share of users with at least one event (of the names
        in ``event``, or any) in their window.
    event : event name(s) counted as a visit; None for any event.
    messages : canonical ``messages`` table, optional
        Used for costs: messages of the campaign (``campaign == experiment``) sent to treated
        users; a message's ``cost`` column wins, otherwise ``costs[channel]``.
    costs : None, "default" or mapping channel -> cost per message
        ``"default"`` uses :data:`DEFAULT_COSTS` (illustrative KRW prices).
    alpha : significance level (intervals cover ``1 - alpha``).
    method : {"skew_corrected", "previous"}
        ``"skew_corrected"`` (default): the A/B engine's default comparison for every metric
        (:mod:`crmlab.abtest.skew`): skewness-corrected z with dual absolute and relative
        intervals, and ``status="insufficient"`` (no p-value, ``n_needed`` stated) where the
        cell is too small for its skew; calibrated in ``docs/calibration.md``.
        ``"previous"``: the earlier pooled z-test with Newcombe's interval for rates and Welch's
        t-test with the log-ratio interval for revenue (not dual; kept for comparison).
    family : {"metric", "experiment", "none"}, default "metric"
        The cells whose p-values are corrected together before any verdict: ``"metric"``, every
        experiment and segment of this call for one metric (the campaigns of a week, or its
        campaign x segment cells); ``"experiment"``, the segments of one experiment for one
        metric; ``"none"``, no correction. Insufficient cells are not tests and are not counted.
    correction : {"holm", "bh", "bonferroni", "none"}, default "holm"
        Holm's (1979) step-down method controls the family-wise error rate; ``"bh"`` is
        Benjamini & Hochberg's (1995) false-discovery rate (:func:`crmlab.abtest.adjust_pvalues`,
        equal to statsmodels ``multipletests``).
    as_of : orders after it are ignored and assignments after it left out (counted).
    incomplete : {"exclude", "keep"}, default "exclude"
        Users whose window has not ended by ``as_of`` (``assigned_time + window > as_of``):
        left out and counted in ``attrs["excluded"]`` (default; see
        :func:`complete_windows`), or kept with the part of the window observed so far,
        which understates conversion and revenue.

    Returns
    -------
    DataFrame
        One row per experiment, segment and metric (``conversion_rate``, ``revenue_per_user``,
        and ``visit_rate`` when ``events`` are given):
        ``n_treatment, n_control``, the arms' values ``estimate`` (treatment) and
        ``estimate_control``, the absolute uplift ``abs_lift`` with ``abs_ci_low, abs_ci_high,
        p_value``, the relative uplift ``rel_lift`` (treatment/control - 1) with ``rel_ci_low,
        rel_ci_high`` (the names of :class:`crmlab.abtest.Comparison`), ``incremental``
        (incremental conversions = uplift x treated users, or incremental revenue = uplift in
        revenue per user x treated users), ``cost`` of the campaign's messages to treated users
        and ``cost_per_incremental`` (cost per incremental conversion; for revenue, cost per
        unit of incremental revenue), ``family`` (which cells were corrected together, and how
        many), ``correction``, ``p_adjusted``, ``verdict`` (win / loss / inconclusive /
        insufficient, from ``p_adjusted``: :func:`crmlab.abtest.verdict`) and ``method``.
        ``segment`` is "all" without segments.

    Notes
    -----
    Conversion: :func:`crmlab.abtest.frequentist.proportion_test`; revenue per user:
    :func:`crmlab.abtest.frequentist.mean_test` on ``n``, the sum, squares and cubes of
    revenue per user aggregated in the engine. ``status``, ``reason`` and ``n_needed`` say
    when a cell is ``insufficient``.
    """
    if not (0 < float(alpha) < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    method = choice(method, "method", METHODS)
    family = choice(family, "family", FAMILIES)
    correction = choice(correction, "correction", CORRECTIONS)
    incomplete = choice(incomplete, "incomplete", INCOMPLETE)
    win = duration(window, "window", optional=True)
    a = canonical(assignments, "assignments", tz=tz)
    o = canonical(orders, "orders", tz=tz, columns=["user_id", "time", "revenue"])
    excluded: dict[str, int] = {}
    as_of_local = local_time(as_of, tz) if as_of is not None else None
    if as_of_local is not None:
        late = a.assigned_time > ibis.literal(as_of_local)
        excluded["assignments after as_of"] = int(a.filter(late).count().execute())
        a = a.filter(~late)
    exps, excluded["assignments of experiments without both arms"] = _experiments(
        a, _as_list(experiment, "experiment"), treatment, control, tz)
    a = a.filter(a.experiment.isin(exps))
    other = a.filter(~a.variant.isin([treatment, control])).count().execute()
    excluded["assignments to other arms"] = int(other)
    a = a.filter(a.variant.isin([treatment, control])).select("experiment", "user_id", "variant", "assigned_time")
    if incomplete == "exclude":
        a, excluded[INCOMPLETE_KEY] = complete_windows(a, win, as_of_local)
    seg = None
    keys = ["experiment", "variant"]
    if segments is not None:
        seg, segment = _segments_table(segments, segment)
        n_before = int(a.count().execute())
        a = a.join(seg, a.user_id == seg.user_id).select(*a.columns, seg[segment].name("segment"))
        excluded["assigned users without a segment"] = n_before - int(a.count().execute())
        keys = ["experiment", "segment", "variant"]
    per_user = user_outcomes_expr(a, o, win, as_of_local)
    stats = _arm_stats(per_user, keys, tz)
    if events is not None:
        ev = canonical(events, "events", tz=tz)
        names = _as_list(event, "event")
        if names is not None:
            ev = ev.filter(ev.event.isin(names))
        stats = stats.merge(_visit_stats(a, ev, win, as_of_local, keys, tz), on=keys, how="left")
    if "segment" not in stats.columns:
        stats["segment"] = "all"
    cost = _cost_frame(messages, a, treatment, costs, tz)
    rows = []
    one_arm = 0
    for (exp, sg), g in stats.groupby(["experiment", "segment"], sort=True):
        arm = {r["variant"]: r for r in g.to_dict("records")}
        if treatment not in arm or control not in arm:
            one_arm += int(g["n"].sum())
            continue
        t, c = arm[treatment], arm[control]
        c_cost = np.nan
        if cost is not None:
            sel = cost["experiment"] == exp
            if "segment" in cost.columns:
                sel &= cost["segment"] == sg
            c_cost = float(cost.loc[sel, "cost"].sum()) if sel.any() and cost.loc[sel, "cost"].notna().any() else np.nan
        tests = _tests(c, t, alpha=alpha, method=method, visits=events is not None)
        for metric, res, label in tests:
            est = float(res["abs_lift"])
            inc = est * float(t["n"])
            rows.append({
                "experiment": exp, "segment": sg, "metric": metric,
                "n_treatment": int(t["n"]), "n_control": int(c["n"]),
                "estimate": float(res["estimate"]), "estimate_control": float(res["estimate_control"]),
                "abs_lift": est, "abs_ci_low": float(res["abs_ci_low"]), "abs_ci_high": float(res["abs_ci_high"]),
                "p_value": float(res["p_value"]), "rel_lift": float(res["rel_lift"]),
                "rel_ci_low": float(res["rel_ci_low"]), "rel_ci_high": float(res["rel_ci_high"]),
                "incremental": inc, "cost": c_cost,
                "cost_per_incremental": (c_cost / inc if metric != "visit_rate" and inc > 0
                                         and np.isfinite(c_cost) else np.nan),
                "status": res["status"].item(), "reason": res["reason"].item(),
                "n_needed": float(res["n_needed"]), "method": label,
            })
    if segments is not None:
        excluded["assigned users in a segment cell with one arm only"] = one_arm
    out = _with_family(pd.DataFrame(rows, columns=RESULT_COLUMNS), family, correction, alpha)
    out.attrs["window"] = str(win) if win is not None else "until as_of"
    return report_exclusions(out, excluded, "campaign_uplift")


def _experiments(a: ir.Table, asked: list[str] | None, treatment: str, control: str,
                 tz: str) -> tuple[list[str], int]:
    """The experiments to compare, and how many assignments belong to experiments left out
    because they lack the ``treatment`` or the ``control`` arm. A named experiment that is
    not in the table, or lacks an arm, is a parameter error, not a silent drop."""
    arms = to_pandas(a.group_by("experiment").agg(
        n=a.count(), has_t=(a.variant == treatment).any(), has_c=(a.variant == control).any()), tz)
    both = arms["has_t"].astype(bool) & arms["has_c"].astype(bool)
    if asked is not None:
        known = set(arms["experiment"])
        missing = [e for e in asked if e not in known]
        if missing:
            raise ValueError(f"experiment={missing!r}: not in assignments; experiments there: "
                             f"{sorted(known)[:20]}")
        lacking = sorted(set(asked) - set(arms.loc[both, "experiment"]))
        if lacking:
            raise ValueError(f"experiment={lacking!r}: lacks the arm treatment={treatment!r} or "
                             f"control={control!r}")
        return list(asked), 0
    exps = sorted(arms.loc[both, "experiment"].tolist())
    if not exps:
        raise ValueError(f"no experiment has both arms treatment={treatment!r} and control={control!r}")
    return exps, int(arms.loc[~both, "n"].sum())


def _with_family(out: pd.DataFrame, family: str, correction: str, alpha: float) -> pd.DataFrame:
    """Correct p-values within each family of cells (``family=``), then give verdicts."""
    keys = {"metric": ["metric"], "experiment": ["experiment", "metric"], "none": None}[family]
    return with_family(out, keys, correction=correction, alpha=alpha)


def _tests(c, t, *, alpha, method, visits):
    """The comparisons of one cell: (metric, result, method label)."""
    prop = "skew_corrected" if method == "skew_corrected" else "pooled_z"
    kw = {} if prop == "skew_corrected" else {"interval": "newcomb", "relative": "log"}
    label = (METHOD_LABELS["proportion", "skew_corrected"] if prop == "skew_corrected"
             else "pooled z-test; Newcombe CI; Katz log ratio")
    rev_label = (METHOD_LABELS["mean", "skew_corrected"] if prop == "skew_corrected"
                 else "Welch t-test; log ratio")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = [("conversion_rate", proportion_test(c["conversions"], c["n"], t["conversions"], t["n"], alpha=alpha,
                                                   method=prop, **kw), label),
               ("revenue_per_user", mean_test(
                   SampleStats(c["n"], c["revenue_sum"], c["revenue_sum_sq"], c["revenue_sum_cube"]),
                   SampleStats(t["n"], t["revenue_sum"], t["revenue_sum_sq"], t["revenue_sum_cube"]), alpha=alpha,
                   method="skew_corrected" if prop == "skew_corrected" else "welch",
                   relative=None if prop == "skew_corrected" else "log"), rev_label)]
        if visits:
            out.append(("visit_rate", proportion_test(c["visits"], c["n"], t["visits"], t["n"], alpha=alpha,
                                                      method=prop, **kw), label))
    return out


def holdout_uplift(assignments: DataLike, orders: DataLike, *, experiment: str = "global_holdout",
                   treatment: str = "treatment", control: str = "holdout", window=None, segments=None,
                   segment: str | None = None, alpha: float = 0.05, method: str = "skew_corrected",
                   family: str = "metric", correction: str = "holm", as_of=None,
                   incomplete: str = "exclude", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Effect of the whole CRM programme: users messaged as usual versus a global holdout.

    Same computation as :func:`campaign_uplift` on the ``global_holdout`` experiment (arms
    ``treatment`` and ``holdout``), with by default an open-ended window: from each user's
    ``assigned_time`` up to ``as_of`` (or the end of the data). Costs are not attributed.
    """
    return campaign_uplift(assignments, orders, experiment=experiment, treatment=treatment, control=control,
                           window=window, segments=segments, segment=segment, alpha=alpha, method=method,
                           family=family, correction=correction, as_of=as_of, incomplete=incomplete, tz=tz)


# ----------------------------------------------------------------------------- Qini
def _curve_inputs(data: pd.DataFrame, treatment: str, outcome: str, score: str):
    for name, col in (("treatment", treatment), ("outcome", outcome), ("score", score)):
        if col not in data.columns:
            raise ValueError(f"{name}={col!r} is not a column of data: {list(data.columns)}")
    t = data[treatment]
    if t.dtype == bool or pd.api.types.is_bool_dtype(t):
        t = t.astype(int)
    t = np.asarray(t, dtype=float)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError(f"treatment={treatment!r}: the column must be 0/1 or boolean")
    y = np.asarray(data[outcome], dtype=float)
    s = np.asarray(data[score], dtype=float)
    if np.isnan(s).any() or np.isnan(y).any():
        raise ValueError("score and outcome must not contain missing values")
    return y, t, s


def _cumulative(y, t, s):
    order = np.argsort(s, kind="mergesort")[::-1]
    y, t, s = y[order], t[order], s[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each tie group
    n_t = np.cumsum(t)[last]
    y_t = np.cumsum(y * t)[last]
    y_c = np.cumsum(y * (1 - t))[last]
    n = last + 1.0
    return n, n_t, n - n_t, y_t, y_c


def qini_curve(data: pd.DataFrame, *, treatment: str = "treatment", outcome: str = "outcome",
               score: str = "score") -> pd.DataFrame:
    """Qini curve: incremental responders when targeting the top-``n`` users by ``score``.

    ``Q(n) = Y_t(n) - Y_c(n) * N_t(n) / N_c(n)`` where ``Y_t, Y_c`` are the summed outcomes
    and ``N_t, N_c`` the counts of treated and control users among the ``n`` highest scores
    (Radcliffe 2007; scikit-uplift ``qini_curve``); users with tied scores enter together,
    and the curve starts at ``(0, 0)``. ``Q`` is 0 while no control user has been reached.

    Returns
    -------
    DataFrame ``n, fraction, n_treatment, n_control, y_treatment, y_control, qini``.
    """
    y, t, s = _curve_inputs(data, treatment, outcome, score)
    n, n_t, n_c, y_t, y_c = _cumulative(y, t, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = y_t - y_c * np.where(n_c > 0, n_t / np.where(n_c > 0, n_c, 1), 0.0)
    out = pd.DataFrame({"n": n, "n_treatment": n_t, "n_control": n_c, "y_treatment": y_t,
                        "y_control": y_c, "qini": q})
    out = pd.concat([pd.DataFrame({c: [0.0] for c in out.columns}), out], ignore_index=True)
    out.insert(1, "fraction", out["n"] / len(y))
    return out


def uplift_curve(data: pd.DataFrame, *, treatment: str = "treatment", outcome: str = "outcome",
                 score: str = "score") -> pd.DataFrame:
    """Uplift (gain) curve: ``U(n) = (Y_t(n)/N_t(n) - Y_c(n)/N_c(n)) * n`` (Gutierrez &
    Gérardy 2017 sec. 4; scikit-uplift ``uplift_curve``); a rate whose group is still empty
    counts as 0. Ties are grouped; the curve starts at (0, 0).

    Returns
    -------
    DataFrame ``n, fraction, n_treatment, n_control, y_treatment, y_control, uplift``.
    """
    y, t, s = _curve_inputs(data, treatment, outcome, score)
    n, n_t, n_c, y_t, y_c = _cumulative(y, t, s)
    rt = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t > 0)
    rc = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    out = pd.DataFrame({"n": n, "n_treatment": n_t, "n_control": n_c, "y_treatment": y_t,
                        "y_control": y_c, "uplift": (rt - rc) * n})
    out = pd.concat([pd.DataFrame({c: [0.0] for c in out.columns}), out], ignore_index=True)
    out.insert(1, "fraction", out["n"] / len(y))
    return out


def _auc(x, y):
    return float(np.trapezoid(y, x))


def qini_auc(data: pd.DataFrame, *, treatment: str = "treatment", outcome: str = "outcome",
             score: str = "score", negative_effect: bool = True) -> float:
    """Normalised area under the Qini curve (the Qini coefficient as scikit-uplift's
    ``qini_auc_score`` computes it).

    ``(AUC(model) - AUC(random)) / (AUC(perfect) - AUC(random))`` with trapezoidal areas; the
    random curve is the straight line from (0, 0) to (N, Q(N)); the perfect curve ranks
    treated responders first and control responders last (``negative_effect=True``), or
    reaches the total uplift at once and stays there (``negative_effect=False``)
    (Radcliffe 2007; Gutierrez & Gérardy 2017). 1 is a perfect ranking, 0 random.
    """
    y, t, s = _curve_inputs(data, treatment, outcome, score)
    frame = pd.DataFrame({"t": t, "y": y, "s": s})
    q = qini_curve(frame, treatment="t", outcome="y", score="s")
    n_all = float(len(y))
    total = float(q["qini"].iloc[-1])
    random = _auc([0.0, n_all], [0.0, total])
    if negative_effect:
        perfect = qini_curve(frame.assign(s=y * t - y * (1 - t)), treatment="t", outcome="y", score="s")
        p_auc = _auc(perfect["n"], perfect["qini"])
    else:
        p_auc = _auc([0.0, total, n_all], [0.0, total, total])
    denom = p_auc - random
    return float((_auc(q["n"], q["qini"]) - random) / denom) if denom != 0 else float("nan")


def uplift_at_k(data: pd.DataFrame, k: float | int = 0.3, *, treatment: str = "treatment",
                outcome: str = "outcome", score: str = "score", strategy: str = "overall") -> float:
    """Uplift among the top ``k`` users by score: mean outcome of treated minus control.

    ``strategy="overall"``: the top ``k`` of all users (``ceil(k * N)`` when ``k`` is a
    fraction), then the difference of the two groups' means among them; ``"by_group"``: the
    top ``k`` of each group separately (scikit-uplift ``uplift_at_k``; Gutierrez & Gérardy
    2017). Users tied with the ``k``-th score enter together, as in :func:`qini_curve`: the
    top group ends at the end of that tie group, so the result never depends on row order.
    """
    if strategy not in ("overall", "by_group"):
        raise ValueError(f"strategy={strategy!r}: allowed values are 'overall', 'by_group'")
    y, t, s = _curve_inputs(data, treatment, outcome, score)
    n = len(y)
    is_frac = isinstance(k, float)
    if (is_frac and not 0 < k <= 1) or (not is_frac and not 0 < int(k) <= n):
        raise ValueError(f"k={k!r}: a fraction in (0, 1] or a count in 1..{n}")
    if strategy == "overall":
        top = _top_with_ties(s, ceil(n * k) if is_frac else int(k))
        yy, tt = y[top], t[top]
        if not (tt == 1).any() or not (tt == 0).any():
            return float("nan")
        return float(yy[tt == 1].mean() - yy[tt == 0].mean())
    means = []
    for arm in (1.0, 0.0):
        ya, sa = y[t == arm], s[t == arm]
        ka = ceil(len(ya) * k) if is_frac else int(k)
        if ka == 0 or ka > len(ya):
            return float("nan")
        means.append(ya[_top_with_ties(sa, ka)].mean())
    return float(means[0] - means[1])


def _top_with_ties(score: np.ndarray, count: int) -> np.ndarray:
    """Mask of the ``count`` highest scores, extended to everyone tied with the last of them."""
    cut = np.sort(score)[::-1][count - 1]
    return score >= cut


def plot_qini(data: pd.DataFrame, *, treatment: str = "treatment", outcome: str = "outcome",
              score: str = "score", ax=None):
    """Plot the Qini curve with the random-targeting line; returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from .plotting import setup
    setup()
    q = qini_curve(data, treatment=treatment, outcome=outcome, score=score)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(x=q["fraction"], y=q["qini"], ax=ax, label="model")
    ax.plot([0, 1], [0, q["qini"].iloc[-1]], ls="--", color="grey", label="random")
    ax.set_xlabel("fraction targeted")
    ax.set_ylabel("incremental responders (Qini)")
    ax.legend()
    return ax


def plot_uplift(result: pd.DataFrame, metric: str = "conversion_rate", ax=None):
    """Forest plot of :func:`campaign_uplift`'s absolute uplift with its interval, one line per
    experiment (and segment); returns the Axes."""
    import matplotlib.pyplot as plt
    from .plotting import setup
    allowed = sorted(result["metric"].unique())
    if metric not in allowed:
        raise ValueError(f"metric={metric!r}: allowed values are {allowed}")
    setup()
    r = result[result["metric"] == metric].reset_index(drop=True)
    labels = [e if s == "all" else f"{e} · {s}" for e, s in zip(r["experiment"], r["segment"])]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.4 * len(r) + 1.2))
    y = np.arange(len(r))[::-1]
    ax.errorbar(r["abs_lift"], y, xerr=[r["abs_lift"] - r["abs_ci_low"], r["abs_ci_high"] - r["abs_lift"]],
                fmt="o", capsize=3)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel(f"uplift in {metric} (treatment - control)")
    return ax
