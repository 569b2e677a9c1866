"""The glue between a data source and the analysis modules, one function per report section.

Each function takes the :class:`~crmlab.datasets.ShopData` of a report and its parameters,
calls the analysis modules (:mod:`crmlab.abtest`, :mod:`crmlab.uplift`, :mod:`crmlab.messages`,
:mod:`crmlab.cohort`, :mod:`crmlab.rfm`, :mod:`crmlab.clv`, :mod:`crmlab.funnel`, ...) and
returns plain pandas frames and, for the comparisons (weekly uplift, experiment readout),
:class:`~crmlab.report.findings.Finding` objects: the page's tables, charts, sentences, summary
and recommendations are all rendered from those findings (:mod:`crmlab.report.text`). No
statistics are re-implemented here; verdicts are the comparison engine's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import pandas as pd

from .. import clv as V
from .. import cohort as C
from .. import funnel as F
from .. import messages as M
from .. import paths as PATHS
from .. import rfm as R
from .. import segments as G
from .. import sessions as S
from ..abtest.bayes import beta_binomial
from ..abtest.readout import readout
from ..abtest.srm import srm_check
from ..compliance import check_compliance
from ..io.engine import as_table, is_table, local_time, to_pandas
from ..io.schema import DEFAULT_TZ
from ..uplift import INCOMPLETE_KEY, campaign_uplift, holdout_uplift, user_outcomes_expr, window_cutoff
from . import facts as FACTS
from . import findings as FND


# ----------------------------------------------------------------------------- lazy tables
# A report's tables are pandas frames (a ShopData loaded by hand) or lazy Ibis tables (the
# run's validated snapshot, crmlab.report.snapshot). The weekly sections filter and count in the
# engine either way; only aggregates come back to pandas.
def _lazy(obj, tz: str):
    """``obj`` as an Ibis table (pandas: its engine form, unvalidated; the library validates)."""
    return None if obj is None else (obj if is_table(obj) else as_table(obj, tz))


def _frame(obj, tz: str) -> pd.DataFrame | None:
    """``obj`` as pandas (a snapshot table is fetched whole: for the analyst sections that
    work row by row in pandas; the weekly sections never call this on events or messages)."""
    return to_pandas(obj, tz) if is_table(obj) else obj


def _since(t, col: str, lo, hi, tz: str):
    """Rows of ``t`` with ``lo <= col < hi`` (either bound may be None), in the engine."""
    if lo is not None:
        t = t.filter(t[col] >= ibis.literal(local_time(lo, tz)))
    if hi is not None:
        t = t.filter(t[col] < ibis.literal(local_time(hi, tz)))
    return t


def _count(t) -> int:
    return int(t.count().execute())

#: Control arm names tried, in order, when a report is not told which arm is the control.
CONTROL_NAMES = ("control", "holdout", "No E-Mail", "Control", "baseline", "A")


def guess_control(variants, control: str = "") -> str:
    """``control`` if given, else the first of :data:`CONTROL_NAMES` among ``variants``.

    Raises
    ------
    ValueError
        If ``control`` is given but absent, or no arm looks like a control.
    """
    variants = [str(v) for v in variants]
    if control:
        if control not in variants:
            raise ValueError(f"control={control!r}: not among the variants {variants}")
        return control
    for c in CONTROL_NAMES:
        if c in variants:
            return c
    raise ValueError(f"control='': cannot tell the control arm among {variants}; set the 'control' parameter")


def user_outcomes(assignments: pd.DataFrame, orders: pd.DataFrame, *, window_days: float | None,
                  as_of: pd.Timestamp | None, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Per assigned user: ``converted`` (0/1) and ``revenue`` of orders in
    ``[assigned_time, assigned_time + window_days)`` up to ``as_of`` (inclusive), by
    :func:`crmlab.uplift.user_outcomes_expr`, the same rule the uplift module uses."""
    a = as_table(assignments[["experiment", "user_id", "variant", "assigned_time"]], tz)
    o = as_table(orders[["user_id", "time", "revenue"]], tz)
    limit = None if as_of is None else local_time(as_of, tz)
    per = user_outcomes_expr(a, o, None if window_days is None else pd.Timedelta(days=window_days), limit)
    return to_pandas(per.select("experiment", "user_id", "orders", "revenue", "converted"), tz)


def last_instant(end: pd.Timestamp) -> pd.Timestamp:
    """The inclusive ``as_of`` of a period that ends, exclusively, at ``end``."""
    return end - pd.Timedelta(microseconds=1)


@dataclass
class ExperimentResult:
    """Everything the readout shows for one experiment."""
    experiment: str
    control: str
    srm: Any
    results: pd.DataFrame
    bayes: pd.DataFrame
    arms: pd.DataFrame
    metrics: dict[str, str] = field(default_factory=dict)
    heavy_tail: pd.DataFrame | None = None
    omnibus: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    findings: list = field(default_factory=list)  # one per arm and metric (crmlab.report.findings)


def planned_split(allocations: dict | None, experiment: str, arms) -> dict[str, float] | None:
    """The planned allocation of ``experiment``: ``allocations[experiment]``, else
    ``allocations["default"]`` when it names exactly the experiment's arms, else None (equal split).

    Raises
    ------
    ValueError
        If the allocation given for ``experiment`` does not name exactly its arms.
    """
    arms = {str(a) for a in arms}
    allocations = allocations or {}
    if experiment in allocations:
        plan = {str(k): float(v) for k, v in allocations[experiment].items()}
        if set(plan) != arms:
            raise ValueError(f"allocations[{experiment!r}]={allocations[experiment]!r}: arms must be exactly {sorted(arms)}")
        return plan
    default = allocations.get("default")
    if default and {str(k) for k in default} == arms:
        return {str(k): float(v) for k, v in default.items()}
    return None


def experiments(data, *, as_of: pd.Timestamp | None = None) -> list[str]:
    """Experiments with assignments up to ``as_of`` (inclusive)."""
    a = data.assignments
    if a is None:
        return []
    if is_table(a):
        if as_of is not None:
            a = a.filter(a.assigned_time <= ibis.literal(local_time(as_of)))
        return sorted(str(x) for x in a.select("experiment").distinct().execute()["experiment"])
    if a.empty:
        return []
    if as_of is not None:
        a = a[pd.to_datetime(a["assigned_time"]) <= as_of]
    return sorted(a["experiment"].astype(str).unique().tolist())


def _assigned_by(a: pd.DataFrame, limit: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """Assignments up to ``limit`` (inclusive) and how many came later."""
    later = pd.to_datetime(a["assigned_time"]) > limit
    return a[~later], int(later.sum())


#: Experiments measured open-ended (from assignment to ``as_of``) by default, as the weekly
#: uplift page measures the global holdout: one definition for one experiment on every page.
OPEN_WINDOW = ("global_holdout",)


def experiment_readout(data, experiment: str, *, control: str = "", alpha: float = 0.05, window_days: float = 7,
                       srm_alpha: float = 0.001, correction: str = "holm", allocations: dict | None = None,
                       as_of: pd.Timestamp | None = None, open_window: tuple = OPEN_WINDOW,
                       tz: str = DEFAULT_TZ) -> ExperimentResult:
    """Readout of one experiment: SRM check, frequentist comparison of each arm with the
    control (multiple-testing corrected), and the Bayesian chance to beat control on conversion.

    Metrics: conversion and revenue per user within ``window_days`` of assignment, from the
    orders table; a source with per-user ``outcomes`` (Hillstrom) uses its own columns
    (visit, conversion, spend). ``allocations`` gives planned splits for the SRM check (see
    :func:`planned_split`). Experiments in ``open_window`` (the global holdout) are measured from
    each user's assignment up to ``as_of``, the definition the weekly uplift page uses.
    """
    wd = None if experiment in open_window else window_days

    a = data.assignments
    if is_table(a):  # one experiment's assignments (not the whole table) come to pandas
        a = to_pandas(a.filter(a.experiment.cast("string") == experiment), tz)
    a = a[a["experiment"].astype(str) == experiment]
    n_later = 0
    if as_of is not None:
        a, n_later = _assigned_by(a, as_of)
    if a.empty:
        raise ValueError(f"experiment={experiment!r}: no assignments before {as_of}")
    out = _frame(data.outcomes, tz)
    own_outcomes = out is not None and set(a["user_id"]).issubset(set(out["user_id"]))
    n_cut = 0
    if not own_outcomes:
        # Measured from orders: only users whose whole window has passed by as_of.
        cutoff = window_cutoff(None if wd is None else pd.Timedelta(days=wd), as_of)
        if cutoff is not None:
            a, n_cut = _assigned_by(a, cutoff)
        if a.empty:
            raise ValueError(f"experiment={experiment!r}: no assignment's {window_days}-day window has ended by {as_of}")
    ctrl = guess_control(a["variant"].unique(), control)
    expected = planned_split(allocations, experiment, a["variant"].unique())
    srm = srm_check(a, experiment=experiment, expected=expected, tz=tz, alpha=srm_alpha)
    if own_outcomes:
        metrics = {m: m for m in ("conversion", "visit", "spend") if m in out.columns}
        outcomes = out[["user_id", *metrics.values()]]
    else:
        if data.orders is None:
            raise ValueError("the data source has no orders table to measure outcomes on")
        outcomes = user_outcomes(a, data.orders, window_days=wd, as_of=as_of, tz=tz)
        metrics = {"conversion": "converted", "revenue_per_user": "revenue"}
    heavy = [m for m in ("spend", "revenue_per_user") if m in metrics]
    ro = readout(a, outcomes, metrics=metrics, experiment=experiment, control=ctrl, alpha=alpha,
                 correction=correction, heavy_tail=heavy, expected=expected, srm_alpha=srm_alpha, n_boot=500,
                 tz=tz)
    srm, res, stats = ro.srm, ro.table, ro.stats
    heavy_tail, omnibus, notes = ro.heavy_tail, ro.omnibus, list(ro.notes)
    arms = (stats.assign(mean=stats["sum"] / stats["n"])
            .pivot_table(index="variant", columns="metric", values="mean", aggfunc="first"))
    arms.insert(0, "n", stats.groupby("variant")["n"].first())
    arms = arms.reset_index()
    conv = "conversion"
    bayes_rows = []
    cstat = stats[(stats["metric"] == conv) & (stats["variant"] == ctrl)]
    if not cstat.empty:
        c = cstat.iloc[0]
        for _, t in stats[(stats["metric"] == conv) & (stats["variant"] != ctrl)].iterrows():
            b = beta_binomial(int(c["sum"]), int(c["n"]), int(t["sum"]), int(t["n"]), alpha=alpha, draws=20_000)
            bayes_rows.append({"variant": t["variant"], "metric": conv, "prob_better": b["chance_to_beat"],
                               "expected_loss": b["expected_loss_b"], "lift": b["lift"],
                               "lift_ci_low": b["lift_ci_low"], "lift_ci_high": b["lift_ci_high"]})
    bayes = pd.DataFrame(bayes_rows, columns=["variant", "metric", "prob_better", "expected_loss", "lift",
                                              "lift_ci_low", "lift_ci_high"])
    if n_later:
        notes.append(f"{n_later:,} assignments after {as_of} left out")
    if n_cut:
        notes.append(f"{n_cut:,} assignments whose {window_days:g}-day window had not ended by {as_of} left out")
    at = pd.to_datetime(a["assigned_time"])
    found = FND.from_readout(res, experiment=experiment, alpha=alpha, window_days=None if own_outcomes else wd,
                             assigned_from=_day(at.min()), assigned_to=_day(at.max()),
                             as_of="" if as_of is None else _day(as_of),
                             denominator="own" if own_outcomes else ("all" if wd is None else "complete"))
    return ExperimentResult(experiment, ctrl, srm, res, bayes, arms, metrics, heavy_tail, omnibus, notes, found)


# ----------------------------------------------------------------------------- weekly uplift
@dataclass
class UpliftResult:
    """What the weekly uplift report shows."""
    campaigns: pd.DataFrame  # campaign_uplift rows, segment "all"
    by_segment: pd.DataFrame | None  # campaign_uplift rows per segment
    segment_sizes: pd.DataFrame | None
    holdout: pd.DataFrame | None  # holdout_uplift rows
    experiments: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: int = 0  # assigned users left out because their window had not ended by the week's end
    #: Every comparison of the page (campaigns, segment cells, holdout) as findings: the tables,
    #: charts, sentences, summary and recommendations are rendered from these.
    findings: list = field(default_factory=list)


def week_campaigns(data, start: pd.Timestamp, end: pd.Timestamp, *, treatment: str = "treatment",
                   control: str = "control", tz: str = DEFAULT_TZ) -> list[str]:
    """Campaign experiments (arms ``treatment`` and ``control``) with users assigned in [start, end)."""
    a = _lazy(data.assignments, tz)
    if a is None:
        return []
    a = _since(a, "assigned_time", start, end, tz)
    arms = to_pandas(a.group_by("experiment").agg(has_t=(a.variant == treatment).any(),
                                                  has_c=(a.variant == control).any()), tz)
    return sorted(str(e) for e in arms.loc[arms["has_t"] & arms["has_c"], "experiment"])


def segments_frame(data, kind: str, *, as_of, new_days: float = 30, active_days: float = 60,
                   churn_days: float = 120, tz: str = DEFAULT_TZ) -> pd.DataFrame | None:
    """``user_id, segment`` for ``kind`` = ``lifecycle`` (crmlab.segments.lifecycle stages),
    ``rfm`` (crmlab.rfm named segments) or ``none``; None if the module or orders are missing."""
    if kind == "none" or data.orders is None:
        return None
    if kind == "lifecycle":
        st = G.lifecycle(data.orders, as_of=as_of, new_days=new_days, active_days=active_days,
                       churn_days=churn_days, tz=tz)
        return st[["user_id"]].assign(segment=st["stage"].astype(str))
    if kind == "rfm":
        scored = R.assign_segments(R.rfm_scores(R.rfm_table(data.orders, as_of=as_of, tz=tz)))
        return scored[["user_id"]].assign(segment=scored["segment"].astype(str))
    raise ValueError(f"segment_by={kind!r}: allowed values are 'lifecycle', 'rfm', 'none'")


def weekly_uplift(data, start: pd.Timestamp, end: pd.Timestamp, *, window_days: float = 3,
                  treatment: str = "treatment", control: str = "control", segment_by: str = "lifecycle",
                  new_days: float = 30, active_days: float = 60, churn_days: float = 120,
                  holdout_experiment: str = "global_holdout", holdout_arm: str = "holdout",
                  alpha: float = 0.05, costs: str = "default", tz: str = DEFAULT_TZ,
                  progress: bool = False) -> UpliftResult:
    """Uplift of every campaign sent in [start, end) (the report's weeks) against its randomised control
    (:func:`crmlab.uplift.campaign_uplift`), by segment, and of the whole programme against
    the global holdout (:func:`crmlab.uplift.holdout_uplift`) up to ``end``. ``progress`` shows a
    :mod:`tqdm.auto` bar over the three comparisons (campaigns, segments, holdout) in a live notebook.

    Assignments, orders and messages stay in the engine (filtered there, never fetched row by
    row); what comes back is the uplift tables, the segment sizes and the findings."""
    from tqdm.auto import tqdm
    bar = tqdm(total=3, desc="uplift", disable=not progress)
    notes: list[str] = []
    exps = week_campaigns(data, start, end, treatment=treatment, control=control, tz=tz)
    a = _lazy(data.assignments, tz)
    orders = _lazy(data.orders, tz)
    msgs = _lazy(data.messages, tz)
    cost_arg = None if costs in ("", "none") else costs
    campaigns = by_seg = sizes = holdout = None
    incomplete = 0
    if exps:
        wk = _since(a, "assigned_time", start, end, tz)
        wk = wk.filter(wk.experiment.isin(exps))
        kw = dict(experiment=exps, treatment=treatment, control=control, window=pd.Timedelta(days=window_days),
                  messages=msgs, costs=cost_arg, alpha=alpha, as_of=last_instant(end), tz=tz)
        campaigns = campaign_uplift(wk, orders, **kw)
        bar.update()
        incomplete = campaigns.attrs["excluded"].get(INCOMPLETE_KEY, 0)
        seg = segments_frame(data, segment_by, as_of=start, new_days=new_days, active_days=active_days,
                             churn_days=churn_days, tz=tz)
        if seg is not None:
            seg.attrs = {}  # the exclusion counts are not part of the table sent to the engine
            seg_t = ibis.memtable(seg)
            by_seg = campaign_uplift(wk, orders, segments=seg_t, segment="segment", **kw)
            tr = wk.filter(wk.variant == treatment)
            j = tr.join(seg_t, tr.user_id == seg_t.user_id)
            sizes = (to_pandas(j.group_by("segment").agg(users=j.count()), tz)
                     .sort_values("segment").reset_index(drop=True))
        bar.update()
    h_span = None
    if a is not None:
        h = a.filter(a.experiment == holdout_experiment)
        if _count(h):
            h = _since(h, "assigned_time", None, end, tz)
            arms = {str(v) for v in h.select("variant").distinct().execute()["variant"]}
            if {treatment, holdout_arm} <= arms:
                holdout = holdout_uplift(h, orders, experiment=holdout_experiment, treatment=treatment,
                                         control=holdout_arm, alpha=alpha, as_of=last_instant(end), tz=tz)
                # one family rule for the holdout on every page: its metrics together
                holdout = FND.holdout_family(holdout, alpha=alpha)
                h_span = to_pandas(h.aggregate(lo=h.assigned_time.min(), hi=h.assigned_time.max()), tz).iloc[0]
    bar.update(3 - bar.n)
    bar.close()
    as_of_day = _day(last_instant(end))
    span = dict(assigned_from=_day(start), assigned_to=as_of_day, as_of=as_of_day)
    found = (FND.from_uplift(campaigns, analysis="campaign", window_days=window_days, control=control, **span)
             + FND.from_uplift(by_seg, analysis="segment", window_days=window_days, control=control, **span))
    if holdout is not None:
        found += FND.from_uplift(holdout, analysis="holdout", window_days=None, assigned_from=_day(h_span["lo"]),
                                 assigned_to=_day(h_span["hi"]), as_of=as_of_day, denominator="all",
                                 control=holdout_arm)
    return UpliftResult(campaigns, by_seg, sizes, holdout, exps, notes, incomplete, found)


def _day(ts) -> str:
    return pd.Timestamp(ts).date().isoformat()


# ----------------------------------------------------------------------------- message performance
@dataclass
class MessageResult:
    """What the weekly message performance report shows."""
    week: pd.DataFrame  # message_performance of the report week, by campaign and channel
    previous: pd.DataFrame  # the week before, same breakdown
    totals: pd.DataFrame  # one row per week of the trend: overall funnel rates
    trend: pd.DataFrame  # per week and channel
    fatigue: pd.DataFrame | None
    heatmap: pd.DataFrame | None
    compliance: pd.DataFrame | None
    copy_tests: pd.DataFrame | None
    #: The week's days, the attribution windows, basis and share: what the page's numbers count.
    context: dict = field(default_factory=dict)
    #: The page's facts and copy-test findings (crmlab.report.facts.message_facts): its summary,
    #: sentences and "What is counted" are rendered from these.
    findings: list = field(default_factory=list)


def _windows_text(window_days: float, channel_windows: dict | None) -> str:
    """'3 d; sms, lms 1 d': the default window, then channels grouped by their own window."""
    groups: dict[float, list[str]] = {}
    for ch, days in (channel_windows or {}).items():
        groups.setdefault(float(days), []).append(str(ch))
    return "; ".join([f"{float(window_days):g} d"] + [f"{', '.join(chs)} {d:g} d" for d, chs in groups.items()])


def _windows(window_days: float, channel_windows: dict | None):
    w: dict[str, Any] = {"default": pd.Timedelta(days=window_days)}
    for ch, days in (channel_windows or {}).items():
        w[ch] = pd.Timedelta(days=float(days))
    return w


_COUNTS = ("sent", "delivered", "delivered_open_tracked", "delivered_click_tracked", "opened", "clicked", "clicked_after_open", "converted",
           "orders", "revenue", "optouts")


def _recipients(recent, as_of, tz: str) -> dict[tuple[str, ...], pd.DataFrame]:
    """Distinct recipients (``recipients`` of :func:`crmlab.messages.message_performance`) of
    the messages sent up to ``as_of``, per roll-up of :func:`message_report`: a distinct count
    does not add up over groups, so each is its own (join-free) query."""
    m = recent.filter(recent.sent_time <= ibis.literal(local_time(as_of, tz)))
    m = m.mutate(period=m.sent_time.truncate("W"))
    out = {}
    for keys in (("campaign", "channel", "period"), ("channel", "period"), ("period",)):
        out[keys] = to_pandas(m.group_by(list(keys)).agg(recipients=m.user_id.nunique()), tz)
    return out


def _rollup(cube: pd.DataFrame, keys: list[str], recipients) -> pd.DataFrame:
    """``cube`` (message_performance by campaign, channel, weekday, hour and week) summed to
    ``keys``: the same frame message_performance gives for ``by=keys[:-1], period="W"``."""
    from ..messages import _rates
    cols = [c for c in cube.columns if c in _COUNTS or c == "recipients"]
    df = cube.groupby(keys, dropna=False, sort=True)[[c for c in _COUNTS]].sum().reset_index()
    df = df.merge(recipients[tuple(keys)], on=keys, how="left")
    df["recipients"] = df["recipients"].fillna(0).astype("int64")
    df = _rates(df[keys + cols])
    _signal_gaps(df, cube.attrs.get("signals", {}))
    df.attrs = {k: v for k, v in cube.attrs.items() if k != "signals"}
    return df.reset_index(drop=True)


def _signal_gaps(df: pd.DataFrame, signals: dict) -> None:
    """message_performance's rule: no open (click) in the data at all is unknown, not zero."""
    if int(signals.get("opens", 1)) == 0:
        df["open_rate"] = float("nan")
        df["click_to_open"] = float("nan")
    if int(signals.get("clicks", 1)) == 0:
        if "click_rate" in df:
            df["click_rate"] = float("nan")
        df["click_to_open"] = float("nan")


def _heatmap(cube: pd.DataFrame) -> pd.DataFrame:
    """:func:`crmlab.messages.send_time_heatmap` of the same messages, from the cube."""
    from ..messages import WEEKDAYS_KO, _rates
    df = cube.groupby(["weekday", "hour"], dropna=False, sort=True)[list(_COUNTS)].sum().reset_index()
    df = _rates(df)
    _signal_gaps(df, cube.attrs.get("signals", {}))
    df.insert(1, "weekday_name", [WEEKDAYS_KO[int(w)] for w in df["weekday"]])
    cols = ["weekday", "weekday_name", "hour", "sent", "delivered", "delivered_click_tracked", "clicked", "click_rate", "converted",
            "conversion_rate"]
    out = df[cols].sort_values(["weekday", "hour"]).reset_index(drop=True)
    out.attrs = {k: v for k, v in cube.attrs.items() if k != "signals"}
    return out


def message_report(data, start: pd.Timestamp, end: pd.Timestamp, *, trend_weeks: int = 6, window_days: float = 3,
                   channel_windows: dict | None = None, basis: str = "receipt", share: str = "last_touch",
                   alpha: float = 0.05, tz: str = DEFAULT_TZ) -> MessageResult:
    """Message funnel (:func:`crmlab.messages.message_performance`) for the week [start, end)
    and the weeks before it, message pressure (:func:`crmlab.messages.fatigue`), send-time
    heatmap, copy tests run in the week and the compliance check
    (:func:`crmlab.compliance.check_compliance`) of the week's messages.

    Messages and orders stay in the engine: each section is an aggregate query."""
    windows = _windows(window_days, channel_windows)
    msgs = _lazy(data.messages, tz)
    since = start - pd.Timedelta(weeks=trend_weeks - 1)
    recent = _since(msgs, "sent_time", since, end, tz)
    wk_msgs = _since(msgs, "sent_time", start, end, tz)
    n_recent, n_week = _count(recent), _count(wk_msgs)
    kw = dict(windows=windows, basis=basis, share=share, as_of=last_instant(end), tz=tz)
    orders = _lazy(data.orders, tz)
    # One attribution of the recent messages (the costly join of messages with orders), rolled
    # up four ways, instead of four message_performance calls that each join again.
    cube_in = recent.mutate(weekday=recent.sent_time.day_of_week.index(), hour=recent.sent_time.hour())
    cube = M.message_performance(cube_in, orders, by=("campaign", "channel", "weekday", "hour"), period="W", **kw)
    recipients = _recipients(recent, last_instant(end), tz)
    by_week = _rollup(cube, ["campaign", "channel", "period"], recipients)
    p = pd.to_datetime(by_week["period"])
    week = by_week[p == start].drop(columns="period").reset_index(drop=True)
    previous = by_week[p == start - pd.Timedelta(weeks=1)].drop(columns="period").reset_index(drop=True)
    trend = _rollup(cube, ["channel", "period"], recipients)
    totals = _rollup(cube, ["period"], recipients)
    fat = M.fatigue(recent, orders, period="W", as_of=last_instant(end), tz=tz) if n_recent else None
    heat = _heatmap(cube) if n_recent else None
    comp = None
    if data.customers is not None and n_week:
        comp = check_compliance(wk_msgs, _lazy(data.customers, tz), tz=tz, as_of=last_instant(end))
    copy = None
    rows = []
    if "variant" in wk_msgs.columns:
        tested = wk_msgs.filter(wk_msgs.variant.notnull())
        pairs = tested.select(tested.campaign, tested.variant.cast("string").name("variant")).distinct().execute()
        for camp, g in pairs.groupby("campaign", sort=True):
            variants = sorted(set(g["variant"].astype(str)))
            if len(variants) == 2:
                ref = "generic" if "generic" in variants else variants[0]
                other = [v for v in variants if v != ref][0]
                # every send of the test up to the week's end (a test may span weeks), and
                # nothing the report cannot know yet: as_of cuts later sends and orders
                r = M.copy_test(msgs.filter(msgs.campaign == camp), orders, campaign=camp, variant=other, control=ref,
                                windows=windows, alpha=alpha, as_of=last_instant(end), tz=tz)
                rows.append(r.assign(campaign=camp))
    if rows:
        copy = pd.concat(rows, ignore_index=True)
    ctx = dict(first=_day(start), last=_day(last_instant(end)), prev_first=_day(start - pd.Timedelta(weeks=1)),
               prev_last=_day(last_instant(start)), trend_first=_day(since), basis=basis, share=share,
               windows=_windows_text(window_days, channel_windows),
               week=iso_week(start))
    res = MessageResult(week, previous, totals, trend, fat, heat, comp, copy, ctx)
    res.findings = FACTS.message_facts(res)
    return res


# ----------------------------------------------------------------------------- cohorts, RFM, CLV
@dataclass
class CohortResult:
    """What the cohort/RFM/CLV report shows; a part is None when its module is missing."""
    retention: pd.DataFrame | None = None  # long frame (crmlab.cohort.retention)
    matrix: pd.DataFrame | None = None
    average: pd.DataFrame | None = None
    repurchase: pd.DataFrame | None = None
    second: pd.DataFrame | None = None  # time_to_second_purchase summary
    segments: pd.DataFrame | None = None  # rfm.segment_summary
    scores: pd.DataFrame | None = None
    value: pd.DataFrame | None = None  # clv.value_by_segment
    value_total: float = float("nan")
    lapse: pd.DataFrame | None = None  # crmlab.paths.lapse_signals: last sessions, lapsing vs retained
    notes: list[str] = field(default_factory=list)  # modules missing
    problems: list[str] = field(default_factory=list)  # sections the data does not allow, and why
    context: dict = field(default_factory=dict)  # as_of, period, windows: what the numbers count
    findings: list = field(default_factory=list)  # facts (crmlab.report.facts.cohort_facts)


def cohort_rfm(data, as_of: pd.Timestamp, *, period: str = "W", repurchase_days: float = 30, rfm_bins: int = 5,
               clv_horizon_weeks: float = 12, max_cohorts: int = 12, tz: str = DEFAULT_TZ) -> CohortResult:
    """Retention by first-purchase cohort (:mod:`crmlab.cohort`), repeat purchase, RFM segments
    (:mod:`crmlab.rfm`) and expected customer value by segment (:mod:`crmlab.clv`) at ``as_of``."""
    out = CohortResult()
    orders = data.orders
    if orders is None:
        out.notes.append("no orders table")
        return out
    r = C.retention(orders, period=period, as_of=as_of, tz=tz)
    keep = sorted(r["cohort"].unique())[-max_cohorts:]
    out.retention = r[r["cohort"].isin(keep)]
    out.matrix = C.retention_matrix(out.retention)
    out.average = C.retention_average(r)
    out.repurchase = C.repurchase_rate(orders, as_of=as_of, window=pd.Timedelta(days=repurchase_days), tz=tz)
    out.second = C.time_to_second_purchase(orders, as_of=as_of, tz=tz)[1]
    out.scores = R.rfm_scores(R.rfm_table(orders, as_of=as_of, tz=tz), bins=rfm_bins)
    out.segments = R.segment_summary(out.scores)
    try:
        lt = R.rfm_table(orders, as_of=as_of, definition="lifetimes", freq="W", tz=tz)
        values = V.customer_value(lt, clv_horizon_weeks)
        out.value = V.value_by_segment(values, out.scores)
        out.value_total = float(values["expected_value"].sum())
    except ValueError as e:  # e.g. no repeat buyers: the models cannot be fitted
        out.problems.append(f"CLV: {e}")
    if data.events is not None:
        out.lapse = PATHS.lapse_signals(data.events, orders, as_of=as_of, tz=tz)
    out.context = dict(as_of=_day(as_of), period=period, repurchase_days=repurchase_days,
                       horizon_weeks=clv_horizon_weeks)
    out.findings = FACTS.cohort_facts(out)
    return out


# ----------------------------------------------------------------------------- funnel and sessions
FUNNEL_STEPS = (("sessions", "session"), ("sessions_with_add_to_cart", "add_to_cart"),
                ("sessions_with_checkout", "begin_checkout"), ("sessions_with_purchase", "purchase"))


@dataclass
class FunnelResult:
    """What the funnel report shows."""
    kpis: pd.DataFrame | None = None  # shop_kpis per week
    week: pd.Series | None = None  # the report week's KPI row
    previous: pd.Series | None = None
    steps: pd.DataFrame | None = None  # session funnel of the week: step, sessions, from_start, from_previous
    by_device: pd.DataFrame | None = None  # shop_kpis of the week by device
    traffic: pd.DataFrame | None = None  # sessions.traffic per week and device
    ordered: pd.DataFrame | None = None  # crmlab.funnel.funnel of the week (users per step)
    ordered_by: pd.DataFrame | None = None  # the same by ``by``
    groups_test: pd.DataFrame | None = None  # crmlab.funnel.compare_groups
    time_to_convert: pd.DataFrame | None = None  # crmlab.funnel.time_to_convert summary
    trend: pd.DataFrame | None = None  # crmlab.funnel.funnel_trend by entry week over the trend weeks
    flows: pd.DataFrame | None = None  # crmlab.paths.step_flows of the week's sessions
    behaviour: pd.DataFrame | None = None  # segment, users
    notes: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # the week's days, the window, by: what the numbers count
    findings: list = field(default_factory=list)  # facts (crmlab.report.facts.funnel_facts)


def session_steps(row: pd.Series) -> pd.DataFrame:
    """The session funnel (session -> add to cart -> checkout -> purchase) of one shop_kpis row,
    with the share of sessions kept from the start and from the previous step."""
    counts = [float(row[c]) for c, _ in FUNNEL_STEPS]
    out = pd.DataFrame({"step": [s for _, s in FUNNEL_STEPS], "sessions": counts})
    out["from_start"] = out["sessions"] / counts[0] if counts[0] else float("nan")
    prev = [float("nan")] + counts[:-1]
    out["from_previous"] = [c / p if p else float("nan") for c, p in zip(counts, prev)]
    return out


def funnel_report(data, start: pd.Timestamp, end: pd.Timestamp, *, trend_weeks: int = 6,
                  steps: list[str] | None = None, window_hours: float = 24, by: str = "device",
                  tz: str = DEFAULT_TZ) -> FunnelResult:
    """Shop KPIs and the session funnel (:func:`crmlab.sessions.shop_kpis`) per week, traffic by
    ``by`` (:func:`crmlab.sessions.traffic`), the ordered user funnel of ``steps`` within
    ``window_hours`` (:mod:`crmlab.funnel`, when present) and the behaviour segments active in
    the week (:mod:`crmlab.segments`)."""
    out = FunnelResult()
    ev = data.events
    if ev is None:
        out.notes.append("no events table")
        return out
    since = start - pd.Timedelta(weeks=trend_weeks - 1)
    if is_table(ev):  # a snapshot: the trend weeks' events come to pandas, not the whole table
        ev = _frame(_since(ev, "time", None, end, tz), tz)
    t = pd.to_datetime(ev["time"])
    recent = ev[(t >= since) & (t < end)]
    orders = _frame(data.orders, tz)
    if orders is not None:
        ot = pd.to_datetime(orders["time"])
        orders = orders[(ot >= since) & (ot < end)]
    k = S.shop_kpis(recent, orders, period="W", as_of=last_instant(end), tz=tz)
    out.kpis = k
    p = pd.to_datetime(k["period"])
    if (p == start).any():
        out.week = k[p == start].iloc[0]
        out.steps = session_steps(out.week)
    if (p == start - pd.Timedelta(weeks=1)).any():
        out.previous = k[p == start - pd.Timedelta(weeks=1)].iloc[0]
    wk = recent[pd.to_datetime(recent["time"]) >= start]
    if by in ev.columns and len(wk):
        wk_orders = orders[pd.to_datetime(orders["time"]) >= start] if orders is not None else None
        out.by_device = S.shop_kpis(wk, wk_orders, by=by, as_of=last_instant(end), tz=tz)
        out.traffic = S.traffic(recent, period="W", by=by, as_of=last_instant(end), tz=tz)
    st = list(steps or ["product_view", "add_to_cart", "begin_checkout", "purchase"])
    window = pd.Timedelta(hours=window_hours)
    if len(wk):
        out.ordered = F.funnel(wk, st, window=window, as_of=last_instant(end), tz=tz)
        if by in wk.columns and wk[by].notna().any():
            out.ordered_by = F.funnel(wk, st, window=window, by=by, as_of=last_instant(end), tz=tz)
            out.groups_test = _holm_over_steps(F.compare_groups(out.ordered_by))
        out.time_to_convert = F.time_to_convert(wk, st, window=window, as_of=last_instant(end), tz=tz)
    if len(recent):
        out.trend = F.funnel_trend(recent, st, period="W", window=window, as_of=last_instant(end), tz=tz)
    if len(wk):
        out.flows = PATHS.step_flows(wk, per="session", max_steps=5, top=5, as_of=last_instant(end), tz=tz)
    rows = []
    ev = data.events  # the behaviour segments look at the whole history (lazy tables as they are)
    ex = G.explorers(ev, as_of=last_instant(end), tz=tz)
    rows.append(("explorers", int((pd.to_datetime(ex["last_long_view_time"]) >= start).sum())))
    co = G.comparers(ev, data.orders, as_of=last_instant(end), tz=tz)
    rows.append(("comparers", int((pd.to_datetime(co["last_unbought_add_time"]) >= start).sum())))
    ab = G.cart_abandonment(ev, data.orders, as_of=last_instant(end), tz=tz)
    recent_ab = ab[pd.to_datetime(ab["abandoned_time"]) >= start]
    for stage, n in recent_ab["stage"].value_counts().sort_index().items():
        rows.append((f"abandoned_{stage}", int(n)))
    out.behaviour = pd.DataFrame(rows, columns=["segment", "users"])
    out.context = dict(first=_day(start), last=_day(last_instant(end)), prev_first=_day(start - pd.Timedelta(weeks=1)),
                       prev_last=_day(last_instant(start)), hours=window_hours, by=by, week=iso_week(start))
    out.findings = FACTS.funnel_facts(out)
    return out


def _holm_over_steps(test: pd.DataFrame) -> pd.DataFrame:
    """The funnel's group tests (one chi-square per step) corrected together (Holm 1979): a
    page that says "devices differ at the checkout step" must not rest on one of several
    uncorrected tests. Steps without a test (NaN p) are no members."""
    from ..abtest.corrections import adjust_pvalues
    out = test.copy()
    if out.empty:
        return out.assign(p_adjusted=pd.Series(dtype=float), correction=pd.Series(dtype=object))
    p = out["p_value"].to_numpy(float)
    adj = p.copy()
    ok = ~pd.isna(p)
    if ok.any():
        adj[ok] = adjust_pvalues(p[ok], "holm")
    return out.assign(p_adjusted=adj, correction="holm")


def iso_week(start: pd.Timestamp) -> str:
    y, w, _ = pd.Timestamp(start).isocalendar()
    return f"{y}-W{w:02d}"
