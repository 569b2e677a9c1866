"""Conversion funnels: ordered / adjacent / any-order / anchored steps within a window,
ClickHouse ``windowFunnel`` exactly, exclusions, breakdowns, time to convert, dropped users and
a chi-square comparison of groups.

Definitions
-----------
steps
    A list of steps; each step is an event name or a set of event names (any of them
    counts), or a dict ``{label: names}``. ``step_name`` is the label, the event name, or the
    sorted names joined with ``"|"``.
order of a user's events (ties)
    By ``time``. In the attempt modes (``ordered``, ``adjacent``, ``any_order``,
    ``anchored``) events at the **same timestamp** are ordered by the (lowest) step they
    match -- step 1 before step 2 before ... -- then events matching no step (exclusion and
    other events), then by event name. So ``view`` and ``cart`` logged in the same second
    count as view-then-cart (the optimistic rule). In ``windowfunnel`` mode the order is
    ClickHouse's: each row becomes one entry per step it matches, entries sorted by (time,
    step index), and with ``strict_order`` rows matching no step are entries of index 0, so
    at one timestamp they come **before** the step events (the attempt modes put them after).
attempt
    Every event matching step 1 starts an attempt (in ``any_order`` mode, every event matching
    any step). The **conversion window** is counted from the attempt's first event:
    a later step is reached only if its event is at most ``window`` after it -- **inclusive**
    (an event exactly ``window`` later counts), as ClickHouse ``windowFunnel``
    (``timestamp <= first_timestamp + window``). ``window="session"``: steps must happen in
    the same session as the first event (sessions derived from 30 minutes of inactivity when
    ``session_id`` is missing, see :func:`crmlab.sessions.sessionize`); ``window=None``: no
    limit. In ``ordered`` and ``adjacent`` mode one event row never fills two steps of one
    attempt.
modes
    ``ordered``: steps in order, other events (also repeats of steps) may come between;
    each step takes the first matching event after the previous step's event (greedy,
    which reaches the furthest step possible for that start).
    ``adjacent`` (called ``strict`` before; renamed because it is *not* ClickHouse's
    ``strict_order``): the step-``k`` event must be the user's very next event (among *all*
    the user's events, in the event order above) after the step-``k-1`` event; anything in
    between, also a repeat of a step, ends the attempt. ``A B B C`` reaches 2 (ClickHouse
    ``strict_order``: 3); ``A X A B`` reaches 2 with ``count="best"`` (the second A's
    attempt; ClickHouse: 1, its scan stops at X).
    ``any_order``: step ``k`` is reached when steps ``1..k`` all occur, in any order, at or
    after the attempt's first event (an event of any step) and within ``window`` of it.
    ``anchored``: any order anchored on step 1 (retentioneering's "hybrid" funnel): every
    step-1 event starts an attempt and step ``k`` is reached when steps ``2..k`` all occur
    after it (in the event order), in any order, within ``window``; one row may fill several
    of the steps ``2..k`` when their event sets overlap.
    ``windowfunnel``: ClickHouse's ``windowFunnel(window, clickhouse_modes...)`` (ClickHouse
    docs, "windowFunnel"; ``src/AggregateFunctions/AggregateFunctionWindowFunnel.cpp``),
    checked per user against chdb in the tests. The user's entries (see "ties") are scanned
    in order, keeping for each level ``k`` the chain that reached ``k`` last: a step-1 entry
    starts a chain; a step-``k`` entry extends the last level-``k-1`` chain if it is within
    ``window`` of that chain's start. One row can fill several steps (``A > A > B`` reaches
    3 from the events A, B). ``clickhouse_modes`` is a subset of ``strict_order`` (after the
    first step-1 entry the scan stops at an entry matching no step, or at a step whose previous
    level is unreached; repeats of a reached step do not stop it), ``strict_deduplication``
    (the scan stops at an entry of step ``k >= 2`` when level ``k`` is already reached) and
    ``strict_increase`` (a step's time must be strictly later than the previous step's). The
    level is the highest reached before the scan stops; ``t_1..t_n`` are the times of the
    chain kept at that level. ClickHouse has no exclusions (``exclude`` raises) and no
    first/best choice (``count`` must stay ``None``); with ``window="session"`` the best
    session's chain is counted (highest level, earliest).
    ``ordered`` with ``count="best"`` equals ``windowfunnel`` (no ``clickhouse_modes``) when
    the steps' event sets are disjoint (tested against chdb); with overlapping steps it does
    not, since one row fills one step only.
exclusions
    ``exclude`` is an event name or a set of names (not also a step). An attempt is
    **disqualified** when an exclusion event lies after its first event and no later than the
    last step it reached (in the event order above, so an exclusion at the same timestamp as a
    step event counts as after it). Exclusion events after the last reached step do not
    matter. Disqualified attempts are dropped before one attempt per user is chosen; users
    whose every attempt is disqualified leave the funnel and are counted in
    ``attrs["excluded"]["users whose every attempt was excluded"]``.
counting (one attempt per user)
    ``count="first"`` (the default, ``count=None``): the user's first attempt (earliest first
    event). ``count="best"``: the attempt that reached the furthest step, the earliest among
    equals. A user counts at every step up to the one reached, so a user appears in exactly
    one breakdown group and step counts never grow.
breakdown attribution
    ``by`` is a column of ``events`` or a frame of segments (``user_id`` plus one column).
    For a column, ``by_step`` states whose value is used: ``1`` (default) the counted attempt's
    step-1 event; an integer ``k`` the step-``k`` event (for attempts that stopped before
    ``k``, the last step they reached); ``"last"`` the last step reached; ``"first"`` the
    user's first event in the data (first touch). Values are shown as text, missing values as
    ``"(none)"``.

Design and complexity (one function per strategy)
-------------------------------------------------
Everything runs in the engine (Ibis; DuckDB, PySpark, ...); ``_attempts`` picks a strategy:

``_first_attempt_by_time``
    ordered, ``count="first"``, no exclusions, disjoint steps and no breakdown needing a
    step's row: one frontier row per user, advanced by ``time >=`` the current step's time
    (ties go by step), one hash join and aggregate per step, no sort of the events.
``_first_attempt_by_position``
    the same with overlapping steps or a step-row breakdown: the frontier advances by
    position ``pos`` (``row_number`` in the event order).
``_ordered_attempts``, ``_adjacent_attempts``, ``_any_order_attempts``, ``_anchored_attempts``
    every attempt at once. For each step ``k`` one window function computes, for every row,
    the position and time of the next row matching step ``k`` (``min`` over a cumulative
    frame in descending position order, which engines evaluate incrementally). Attempts
    advance one step at a time by an **equi-join** on ``(user, pos)`` against the frontier
    (adjacent mode looks up the row at ``pos + 1``); any-order modes read all steps' next
    rows at once. O(n log n) over all events, never a self-join of a user's events.
``_windowfunnel_chain``
    ClickHouse's scan as one pass of window functions per level: the carried values of a
    level's chains (start, step times, positions) never decrease along the user's entries, so
    "the last level-``k-1`` chain before this entry" is a running ``max`` over the preceding
    entries; the stop of the scan is the first stopping entry (``min``).
Then ``_disqualify`` (exclusions: running counts of exclusion events looked up at the
attempt's first and last positions), ``_choose_attempt`` (first/best) and ``_attach_by``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .io.checks import duration
from .io.engine import DataLike, as_table, is_table, optimizers_off, report_exclusions, to_pandas
from .io.schema import DEFAULT_TZ
from .sessions import NONE_LABEL, _cut_as_of, _interval, _with_sessions
from .io.validate import canonical

__all__ = ["funnel", "funnel_users", "time_to_convert", "funnel_trend", "dropped_users", "compare_groups",
           "plot_funnel", "plot_time_to_convert", "plot_funnel_trend"]

_MODES = ("ordered", "adjacent", "any_order", "anchored", "windowfunnel")
_CH_MODES = ("strict_order", "strict_deduplication", "strict_increase")
_COUNTS = ("first", "best")
#: DuckDB optimizers the funnel's plans run without on crmlab's own connection
#: (:func:`crmlab.io.engine.optimizers_off` says why).
_OPTIMIZERS_OFF = ("partitioned_execution",)


# --------------------------------------------------------------------------- parameters
def _parse_steps(steps) -> tuple[list[tuple[str, ...]], list[str]]:
    if isinstance(steps, Mapping):
        items = list(steps.items())
    elif isinstance(steps, (str, bytes)) or not isinstance(steps, (Sequence, set, frozenset)):
        raise ValueError(f"steps={steps!r} is not allowed; give a list of event names or sets of names, "
                         "or a dict {label: names}")
    else:
        items = [(None, s) for s in steps]
    sets, names = [], []
    for label, s in items:
        names_k = (s,) if isinstance(s, str) else tuple(sorted(set(s))) if isinstance(s, (set, frozenset, list, tuple)) else ()
        if not names_k or not all(isinstance(x, str) and x for x in names_k):
            raise ValueError(f"steps: step {s!r} is not allowed; use an event name or a set of event names")
        sets.append(names_k)
        names.append(str(label) if label is not None else "|".join(names_k))
    if len(sets) < 1:
        raise ValueError("steps=[] is not allowed; give at least one step")
    return sets, names


def _parse_window(window):
    if window is None or (isinstance(window, str) and window == "session"):
        return window
    return duration(window, "window")


def _parse_exclude(exclude, sets) -> tuple[str, ...]:
    if exclude is None:
        return ()
    ex = (exclude,) if isinstance(exclude, str) else tuple(sorted(set(exclude)))
    if not ex or not all(isinstance(x, str) for x in ex):
        raise ValueError(f"exclude={exclude!r} is not allowed; use an event name or a set of event names")
    overlap = set(ex) & set().union(*map(set, sets))
    if overlap:
        raise ValueError(f"exclude={exclude!r} is not allowed: {sorted(overlap)} are also funnel steps")
    return ex


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {list(allowed)}")


# --------------------------------------------------------------------------- engine core
@dataclass
class _Spec:
    """The parsed parameters every strategy reads."""
    sets: list
    names: list
    w: object           # pd.Timedelta, "session" or None
    mode: str
    count: str
    ex: tuple
    ch: frozenset       # ClickHouse windowFunnel modes (mode="windowfunnel")
    part: list          # ["user_id"] or ["user_id", "session_id"]
    by_col: str | None
    seg: object
    by_step: object

    @property
    def n(self) -> int:
        return len(self.sets)

    def within(self, ts, start):
        """The inclusive conversion window: ``ts <= start + window``."""
        if isinstance(self.w, pd.Timedelta):
            return ts <= start + _interval(self.w)
        return ibis.literal(True)


def _parse_mode_and_count(mode, count, clickhouse_modes):
    if mode == "strict":
        raise ValueError("mode='strict' is not allowed: it was renamed mode='adjacent' (each step must be the "
                         "user's very next event); ClickHouse's strict_order is mode='windowfunnel', "
                         "clickhouse_modes={'strict_order'}")
    _check("mode", mode, _MODES)
    ch = frozenset([clickhouse_modes] if isinstance(clickhouse_modes, str) else clickhouse_modes or ())
    bad = sorted(ch - set(_CH_MODES))
    if bad:
        raise ValueError(f"clickhouse_modes={sorted(ch)!r} is not allowed; use a subset of {list(_CH_MODES)}")
    if ch and mode != "windowfunnel":
        raise ValueError(f"clickhouse_modes={sorted(ch)!r} is not allowed with mode={mode!r}; "
                         "they apply to mode='windowfunnel' only")
    if mode == "windowfunnel":
        if count is not None:
            raise ValueError(f"count={count!r} is not allowed with mode='windowfunnel': ClickHouse keeps one "
                             "chain per user (its own rule); leave count=None")
        return "best", ch
    count = "first" if count is None else count
    _check("count", count, _COUNTS)
    return count, ch


def _parse_by(by, by_step, t, n):
    """(column name, segment table) of a breakdown; at most one is set."""
    if by is None:
        return None, None
    if isinstance(by, str):
        if by not in t.columns or by in ("user_id", "time"):
            raise ValueError(f"by={by!r} is not allowed; use a column of events (other than user_id, time) "
                             "or a segment frame (user_id + one column)")
        if not (by_step in ("first", "last") or (isinstance(by_step, int) and 1 <= by_step <= n)):
            raise ValueError(f"by_step={by_step!r} is not allowed; use 'first', 'last' or a step number 1..{n}")
        return by, None
    if isinstance(by, pd.DataFrame) or is_table(by):
        return None, by
    raise ValueError(f"by={by!r} is not allowed; use None, a column name or a segment frame")


def _prepare(events, steps, *, window, mode, count, clickhouse_modes, exclude, by, by_step, as_of, timeout, tz):
    """Validated parameters and the canonical events table (after ``as_of``, with sessions)."""
    count, ch = _parse_mode_and_count(mode, count, clickhouse_modes)
    sets, names = _parse_steps(steps)
    w = _parse_window(window)
    ex = _parse_exclude(exclude, sets)
    if ex and mode == "windowfunnel":
        raise ValueError(f"exclude={exclude!r} is not allowed with mode='windowfunnel' (ClickHouse's "
                         "windowFunnel has no exclusion steps); use mode='ordered'")
    read = ["user_id", "time", "event"] + (["session_id"] if w == "session" else []) \
        + ([by] if isinstance(by, str) else [])
    t = canonical(events, "events", tz=tz, columns=read)
    t, n_after = _cut_as_of(t, "time", as_of, tz)
    if w == "session":
        t, _ = _with_sessions(t, timeout, False)
    by_col, seg = _parse_by(by, by_step, t, len(sets))
    if seg is not None:
        seg = as_table(seg, tz) if isinstance(seg, pd.DataFrame) else seg
        other = [c for c in seg.columns if c != "user_id"]
        if "user_id" not in seg.columns or len(other) != 1:
            raise ValueError(f"by: a segment frame needs columns user_id and exactly one other column, got {list(seg.columns)}")
    part = ["user_id", "session_id"] if w == "session" else ["user_id"]
    spec = _Spec(sets=sets, names=names, w=w, mode=mode, count=count, ex=ex, ch=ch, part=part,
                 by_col=by_col, seg=seg, by_step=by_step)
    return spec, t, n_after


def _positioned(t, spec: _Spec):
    """The events in the attempt modes' event order with ``_pos``, step flags ``_m1.._mn``,
    ``_mx`` (exclusion) and ``_cx`` (running count of exclusion events)."""
    n = spec.n
    m = [t.event.isin(list(s)) for s in spec.sets]
    mx = t.event.isin(list(spec.ex)) if spec.ex else ibis.literal(False)
    base = t
    if spec.mode != "adjacent":  # events that are neither steps nor exclusions cannot matter
        base = t.filter(ibis.or_(*m, mx)) if spec.ex else t.filter(ibis.or_(*m))
        m = [base.event.isin(list(s)) for s in spec.sets]
        mx = base.event.isin(list(spec.ex)) if spec.ex else ibis.literal(False)
    rank = ibis.cases(*[(m[k], k + 1) for k in range(n)], else_=n + 1)
    order = [base.time, rank, base.event] + ([base[spec.by_col]] if spec.by_col else [])
    r = base.mutate(_pos=ibis.row_number().over(group_by=spec.part, order_by=order),
                    **{f"_m{k + 1}": m[k].ifelse(1, 0) for k in range(n)},
                    _mx=mx.ifelse(1, 0) if spec.ex else ibis.literal(0))
    cum = ibis.window(group_by=spec.part, order_by="_pos", rows=(None, 0))
    return base, m, r.mutate(_cx=r._mx.sum().over(cum))


def _with_next_step(r, spec: _Spec, first_step: int, inclusive: bool):
    """For every row, the position and time of the next row matching step k (k >= first_step):
    ``min`` over a cumulative frame in descending position order (strictly later rows, or this
    row and later ones when ``inclusive``)."""
    frame = ibis.window(group_by=spec.part, order_by=ibis.desc("_pos"), rows=(None, 0 if inclusive else -1))
    cols = {}
    for k in range(first_step, spec.n + 1):
        hit = r[f"_m{k}"] == 1
        cols[f"_np{k}"] = hit.ifelse(r._pos, ibis.null("int64")).min().over(frame)
        cols[f"_nt{k}"] = hit.ifelse(r.time, ibis.null("timestamp")).min().over(frame)
    return r.mutate(**cols)


def _lookup(r, part, a: ir.Table, pos_name: str, fields: dict[str, str], how="inner") -> ir.Table:
    """Join ``a`` with the rows of ``r`` at position ``a[pos_name]`` of the same part."""
    rr = r.select(**{f"_j_{c}": r[c] for c in part}, _j_pos=r._pos, **{v: r[k] for k, v in fields.items()})
    preds = [a[c] == rr[f"_j_{c}"] for c in part] + [a[pos_name] == rr._j_pos]
    return a.join(rr, preds, how=how).select(*a.columns, *fields.values())


def _first_attempt_by_time(base, m, spec: _Spec):
    """Ordered, first attempt, no exclusions, disjoint steps, no breakdown needing a step's row.

    An event of a later step at the same time as the current step's event comes after it in
    the event order (ties go by step), so "after" is simply ``time >=`` the current step's
    time and no positions are needed: one hash aggregate per step, no sort of the events.
    """
    part, n = spec.part, spec.n
    tb = base.select(*part, "time", **{f"_m{k + 1}": m[k] for k in range(n)})
    s1 = tb.filter(tb._m1)
    s1 = s1.group_by(part).agg(_t0=s1.time.min())
    if part != ["user_id"]:  # the user's first session with a step-1 event
        s1 = s1.mutate(_rn1=ibis.row_number().over(group_by="user_id", order_by=[s1._t0, *[s1[c] for c in part[1:]]]))
        s1 = s1.filter(s1._rn1 == 0)
    a = s1.select(*part, _p1=ibis.null("int64"), _t0=s1._t0, t_1=s1._t0, _tcur=s1._t0,
                  reached=ibis.literal(1).cast("int64"), _cx1=ibis.literal(0).cast("int64"))
    for k in range(2, n + 1):
        c = tb.filter(tb[f"_m{k}"])
        c = c.select(**{f"_c_{x}": c[x] for x in part}, _c_time=c.time)
        # One left join per step, the frontier referenced once: users who stopped earlier
        # keep their row (no match), so no step's table is computed twice.
        preds = [a[x] == c[f"_c_{x}"] for x in part] + [a.reached == k - 1, c._c_time >= a._tcur,
                                                         spec.within(c._c_time, a._t0)]
        jj = a.left_join(c, preds)
        g = jj.group_by([jj[x] for x in a.columns]).agg(_nt=jj._c_time.min())
        ok = g._nt.notnull()
        a = g.select(*[c2 for c2 in a.columns if c2 not in ("_tcur", "reached")],
                     _tcur=ok.ifelse(g._nt, g._tcur), reached=ok.ifelse(k, g.reached),
                     **{f"t_{k}": g._nt, f"_p{k}": ibis.null("int64")})
    return a.mutate(_plast=ibis.null("int64"))


def _first_attempt_by_position(r, spec: _Spec):
    """Ordered, first attempt, no exclusions: one frontier row per user advances step by step.

    Each later step is the user's first step-k event after the current one (position) and
    within the window: an equi-join on the user of one frontier row with the user's step-k
    events, filtered and reduced with ``min`` -- linear in the events, never events x events.
    """
    part, n = spec.part, spec.n
    s1 = r.filter(r._m1 == 1)
    if part == ["user_id"]:
        a = s1.group_by("user_id").agg(_p1=s1._pos.min(), _t0=s1.time.min())
    else:
        s1 = s1.mutate(_rn1=ibis.row_number().over(group_by="user_id", order_by=[s1.time, *[s1[c] for c in part[1:]], s1._pos]))
        s1 = s1.filter(s1._rn1 == 0)
        a = s1.select(*part, _p1=s1._pos, _t0=s1.time)
    a = a.select(*part, "_p1", "_t0", t_1=a._t0, _cur=a._p1, reached=ibis.literal(1).cast("int64"),
                 _cx1=ibis.literal(0).cast("int64"))
    for k in range(2, n + 1):
        c = r.filter(r[f"_m{k}"] == 1)
        c = c.select(**{f"_c_{x}": c[x] for x in part}, _c_pos=c._pos, _c_time=c.time)
        preds = [a[x] == c[f"_c_{x}"] for x in part] + [a.reached == k - 1, c._c_pos > a._cur,
                                                         spec.within(c._c_time, a._t0)]
        jj = a.left_join(c, preds)  # as above: the frontier referenced once per step
        g = jj.group_by([jj[x] for x in a.columns]).agg(_np=jj._c_pos.min(), _nt=jj._c_time.min())
        ok = g._np.notnull()
        a = g.select(*[c2 for c2 in a.columns if c2 not in ("_cur", "reached")],
                     _cur=ok.ifelse(g._np, g._cur), reached=ok.ifelse(k, g.reached),
                     **{f"t_{k}": g._nt, f"_p{k}": g._np})
    return a.mutate(_plast=a._cur)


def _advance(a, j, spec: _Spec, k, hit, pos, extra_drop=()):
    """Move attempts at step ``k - 1`` whose candidate (``hit``, ``pos``, ``j._nt``) is in the
    window to step ``k``; the others keep their state and get no time for step ``k``."""
    ok = ((j.reached == k - 1) & hit & spec.within(j._nt, j._t0)).fill_null(False)
    drop = {"_cur", "reached", *extra_drop}
    return j.select(*[c for c in a.columns if c not in drop],
                    _cur=ok.ifelse(pos, j._cur), reached=ok.ifelse(k, j.reached),
                    **{f"t_{k}": ok.ifelse(j._nt, ibis.null("timestamp")),
                       f"_p{k}": ok.ifelse(pos, ibis.null("int64"))})


def _step1_attempts(r):
    a = r.filter(r._m1 == 1)
    return a.select(*[c for c in a.columns if c in ("user_id", "session_id")], _p1=a._pos, _t0=a.time,
                    t_1=a.time, _cur=a._pos, reached=ibis.literal(1), _cx1=a._cx)


def _ordered_attempts(r, spec: _Spec):
    """Ordered mode, every step-1 event an attempt: each step takes the first matching event
    after the previous step's (greedy), looked up by an equi-join on ``(user, pos)``."""
    r = _with_next_step(r, spec, 2, inclusive=False)
    a = _step1_attempts(r)
    for k in range(2, spec.n + 1):
        j = _lookup(r, spec.part, a, "_cur", {f"_np{k}": "_np", f"_nt{k}": "_nt"})
        a = _advance(a, j, spec, k, j._np.notnull(), j._np)
    return r, a.mutate(_plast=a._cur)


def _adjacent_attempts(r, spec: _Spec):
    """Adjacent mode: the step-k event must be the row at ``pos + 1`` (the very next event)."""
    a = _step1_attempts(r)
    for k in range(2, spec.n + 1):
        a = a.mutate(_nextpos=a._cur + 1)
        j = _lookup(r, spec.part, a, "_nextpos", {f"_m{k}": "_hit", "time": "_nt"}, how="left")
        a = _advance(a, j, spec, k, j._hit == 1, j._nextpos, extra_drop=("_nextpos",))
    return r, a.mutate(_plast=a._cur)


def _reached_in_any_order(a, spec: _Spec, first_step: int, start_time, sel):
    """Step k is reached when steps 1..k all have a next event within the window of the start."""
    ok_prev = ibis.literal(True)
    plast = sel.get("_p1", ibis.null("int64"))
    reached = ibis.literal(first_step - 1)
    for k in range(first_step, spec.n + 1):
        ok = (ok_prev & a[f"_np{k}"].notnull() & spec.within(a[f"_nt{k}"], start_time)).fill_null(False)
        sel[f"t_{k}"] = ok.ifelse(a[f"_nt{k}"], ibis.null("timestamp"))
        sel[f"_p{k}"] = ok.ifelse(a[f"_np{k}"], ibis.null("int64"))
        plast = ok.ifelse(ibis.greatest(plast.fill_null(-1), a[f"_np{k}"]), plast)
        reached = ok.ifelse(k, reached)
        ok_prev = ok
    return a.select(*spec.part, **sel, reached=reached, _plast=plast)


def _any_order_attempts(r, spec: _Spec):
    """Any-order mode: every step event starts an attempt; step k is reached when steps 1..k
    each have an event at or after the start, within the window."""
    r = _with_next_step(r, spec, 1, inclusive=True)
    a = r.filter(ibis.or_(*[r[f"_m{k}"] == 1 for k in range(1, spec.n + 1)]))
    a = _reached_in_any_order(a, spec, 1, a.time, {"_p0": a._pos, "_t0": a.time, "_cx1": a._cx})
    return r, a.filter(a.reached >= 1)


def _anchored_attempts(r, spec: _Spec):
    """Anchored any-order mode: every step-1 event starts an attempt; step k is reached when
    steps 2..k each have an event after it (in the event order), within the window."""
    r = _with_next_step(r, spec, 2, inclusive=False)
    a = r.filter(r._m1 == 1)
    sel = {"_p1": a._pos, "_t0": a.time, "t_1": a.time, "_cx1": a._cx}
    return r, _reached_in_any_order(a, spec, 2, a.time, sel)


def _windowfunnel_events(t, spec: _Spec, levels_only: bool = False):
    """ClickHouse's event list: one row per (event row, step it matches) -- a row matching two
    steps appears twice -- plus, with ``strict_order``, one row of step 0 per row matching no
    step; positions by (time, step index), ClickHouse's sort (then event and ``by`` value, so
    that step rows' positions are deterministic; levels alone do not need them)."""
    strict = "strict_order" in spec.ch
    if sum(len(x) for x in spec.sets) == len(set().union(*map(set, spec.sets))):
        # disjoint steps: each row has at most one step index, one scan of the events
        k = ibis.cases(*[(t.event.isin(list(s)), i) for i, s in enumerate(spec.sets, start=1)], else_=0)
        e = t.mutate(_k=k.cast("int64"))
        e = e if strict else e.filter(e._k > 0)
    else:
        parts = [t.filter(t.event.isin(list(s))).mutate(_k=ibis.literal(k).cast("int64"))
                 for k, s in enumerate(spec.sets, start=1)]
        if strict:
            any_step = t.event.isin(sorted(set().union(*map(set, spec.sets))))
            parts.append(t.filter(~any_step).mutate(_k=ibis.literal(0).cast("int64")))
        e = parts[0]
        for p in parts[1:]:
            e = e.union(p)
    keep = [*spec.part, "time", "_k"] + ([] if levels_only else ["event"] + ([spec.by_col] if spec.by_col else []))
    e = e.select(*dict.fromkeys(keep))  # narrow rows through the sorts
    if levels_only and not spec.ch:
        # Rows with equal (time, step) are interchangeable for the levels: order by them alone,
        # no positions (one sort fewer).
        return e.mutate(_pos=ibis.literal(None).cast("int64"), _cx=ibis.literal(0))
    order = [e.time, e._k] + ([] if levels_only else [e.event] + ([e[spec.by_col]] if spec.by_col else []))
    return e.mutate(_pos=ibis.row_number().over(group_by=spec.part, order_by=order), _cx=ibis.literal(0))


def _windowfunnel_chain(t, spec: _Spec, levels_only: bool = False):
    """ClickHouse ``windowFunnel``'s state machine, one level per pass of window functions.

    ClickHouse scans the sorted event list keeping, for each level k, the chain that reached k
    last (its start time and the time of its step-k event). A step-k event (k >= 2) extends the
    level-(k-1) chain when it is within ``window`` of that chain's start (and, with
    ``strict_increase``, strictly later than its step-(k-1) event). Along a level's successes
    every carried value (start time, step times, positions) is non-decreasing in position, so
    "the last level-(k-1) chain before this row" is a running ``max`` over the preceding rows:
    no joins, no loop over a user's events. The scan stops at the first level-n success, at a
    repeated step (``strict_deduplication``) and, after the first step-1 event, at a non-step
    event or a step whose previous level is unreached (``strict_order``). The level is the
    highest reached before the stop; the chain reported is the last one at that level.
    ``levels_only`` (for counts, as :func:`funnel` needs): carry only each chain's start and
    last time, and return the level alone (no step times or positions).
    """
    n, part = spec.n, spec.part
    r = _windowfunnel_events(t, spec, levels_only)
    lean = levels_only and not spec.ch
    before = ibis.window(group_by=part, order_by=["time", "_k"] if lean else "_pos", rows=(None, -1))
    own_time = bool(spec.ch & {"strict_increase", "strict_deduplication"})

    def carry(i, k):  # which step's time/position a level-k chain carries
        # levels only: the start, and its own time when a mode reads it
        return not levels_only or i == 1 or (i == k and own_time)

    is1 = r._k == 1
    r = r.mutate(_ct1_1=is1.ifelse(r.time, ibis.null("timestamp")), _cp1_1=is1.ifelse(r._pos, ibis.null("int64")),
                 _lvl=is1.ifelse(1, 0))
    if "strict_order" in spec.ch:
        r = r.mutate(_seen1=is1.ifelse(1, 0).max().over(before).fill_null(0))
    stop = ibis.literal(False)
    for k in range(2, n + 1):
        prev = [i for i in range(1, k) if carry(i, k - 1)]
        last = {f"_lt{i}": r[f"_ct{k - 1}_{i}"].max().over(before) for i in prev}
        if not levels_only:
            last |= {f"_lp{i}": r[f"_cp{k - 1}_{i}"].max().over(before) for i in prev}
        r = r.mutate(**last)
        here = r._k == k
        ok = (here & r._lt1.notnull() & spec.within(r.time, r._lt1)).fill_null(False)
        if "strict_increase" in spec.ch:
            ok = (ok & (r[f"_lt{k - 1}"] < r.time)).fill_null(False)
        carried = {f"_ct{k}_{i}": ok.ifelse(r[f"_lt{i}"], ibis.null("timestamp")) for i in prev if carry(i, k)}
        if carry(k, k):
            carried[f"_ct{k}_{k}"] = ok.ifelse(r.time, ibis.null("timestamp"))
        if not levels_only:
            carried |= {f"_cp{k}_{i}": ok.ifelse(r[f"_lp{i}"], ibis.null("int64")) for i in prev}
            carried[f"_cp{k}_{k}"] = ok.ifelse(r._pos, ibis.null("int64"))
        if "strict_order" in spec.ch:  # a step whose previous level is unreached breaks the chain
            stop = stop | (here & r._lt1.isnull() & (r._seen1 == 1))
        r = r.mutate(**carried, _lvl=ok.ifelse(k, r._lvl), _stop=stop)
        r = r.drop(*[c for c in r.columns if c.startswith(("_lt", "_lp"))])
        stop = r._stop
    if "strict_deduplication" in spec.ch:  # a step-k event (k >= 2) after a level-k success
        dup = ibis.literal(False)
        for k in range(2, n + 1):
            dup = dup | ((r._k == k) & r[f"_ct{k}_{k}"].max().over(before).notnull())
        stop = stop | dup
    if "strict_order" in spec.ch:
        stop = stop | ((r._k == 0) & (r._seen1 == 1))
    if levels_only and not spec.ch:
        # Without strict modes nothing stops the scan before the last level, and ClickHouse's
        # early return at the last level cannot lower the maximum: the level is max(_lvl).
        g = r.group_by(part).agg(reached=r._lvl.max().cast("int64"))
        g = g.filter(g.reached > 0)
        return r, g.mutate(_t0=ibis.null("timestamp"), _p1=ibis.null("int64"), _plast=ibis.null("int64"),
                           _cx1=ibis.literal(0).cast("int64"),
                           **{f"t_{i}": ibis.null("timestamp") for i in range(1, n + 1)})
    stop = stop | (r._lvl == n)  # ClickHouse returns as soon as the last level is reached
    r = r.mutate(_stop=stop)
    r = r.mutate(_cut=r._stop.ifelse(r._pos, ibis.null("int64")).min().over(group_by=part))
    c = r.filter(r._cut.isnull() | (r._pos <= r._cut))
    c = c.mutate(_best=c._lvl.max().over(group_by=part))
    c = c.filter((c._lvl == c._best) & (c._lvl > 0))
    if levels_only:
        c = c.group_by(part).agg(_lvl=c._lvl.max())
        return r, c.select(*part, reached=c._lvl.cast("int64"), _t0=ibis.null("timestamp"), _p1=ibis.null("int64"),
                           _plast=ibis.null("int64"), _cx1=ibis.literal(0).cast("int64"),
                           **{f"t_{i}": ibis.null("timestamp") for i in range(1, n + 1)})
    c = c.mutate(_rn=ibis.row_number().over(group_by=part, order_by=ibis.desc(c._pos)))
    c = c.filter(c._rn == 0)
    sel = {}
    for i in range(1, n + 1):
        sel[f"t_{i}"] = ibis.coalesce(*[c[f"_ct{k}_{i}"] for k in range(i, n + 1)] + [ibis.null("timestamp")])
        sel[f"_p{i}"] = ibis.coalesce(*[c[f"_cp{k}_{i}"] for k in range(i, n + 1)] + [ibis.null("int64")])
    a = c.select(*part, **sel, reached=c._lvl.cast("int64"), _cx1=ibis.literal(0).cast("int64"), _plast=c._pos)
    return r, a.mutate(_t0=a.t_1)


def _disqualify(a, r, spec: _Spec):
    """Drop attempts with an exclusion event after their first event, up to their last step
    (running exclusion counts at the two positions); count attempts and users dropped."""
    j = _lookup(r, spec.part, a, "_plast", {"_cx": "_cxl"})
    a = j.mutate(_disq=(j._cxl - j._cx1) > 0)
    stats = a.aggregate(users=a.user_id.nunique(), disq=a._disq.ifelse(1, 0).sum(),
                        users_ok=a.user_id.nunique(where=~a._disq)).execute()
    n_disq = int(stats["disq"].fillna(0).iloc[0])
    n_users_gone = int(stats["users"].iloc[0]) - int(stats["users_ok"].iloc[0])
    return a.filter(~a._disq), n_disq, n_users_gone


def _choose_attempt(a, spec: _Spec):
    """One attempt per user: the earliest (``first``) or the furthest, earliest among equals (``best``)."""
    tie = [a[c] for c in spec.part[1:]] + [a._p0 if "_p0" in a.columns else a._p1]
    okey = [a._t0] + tie if spec.count == "first" else [ibis.desc(a.reached), a._t0] + tie
    a = a.mutate(_rn=ibis.row_number().over(group_by="user_id", order_by=okey))
    return a.filter(a._rn == 0)


def _attach_by(a, r, t, spec: _Spec):
    """The breakdown value ``by`` of each chosen attempt (module docstring, "breakdown attribution")."""
    if spec.by_col is not None:
        if spec.by_step == "first":
            ft = t.mutate(_rn=ibis.row_number().over(group_by="user_id", order_by=[t.time, t.event, t[spec.by_col]]))
            ft = ft.filter(ft._rn == 0).select(_f_uid=ft.user_id, by=ft[spec.by_col].cast("string"))
            a = a.left_join(ft, a.user_id == ft._f_uid).select(*a.columns, "by")
        else:
            if spec.by_step == "last":
                a = a.mutate(_pb=a._plast)
            else:
                ps = [a[f"_p{k}"] for k in range(spec.by_step, 0, -1)]  # step k, else the last reached before it
                a = a.mutate(_pb=ibis.coalesce(*ps) if len(ps) > 1 else ps[0])
            rr = r.select(**{f"_b_{c}": r[c] for c in spec.part}, _b_pos=r._pos, by=r[spec.by_col].cast("string"))
            preds = [a[c] == rr[f"_b_{c}"] for c in spec.part] + [a._pb == rr._b_pos]
            a = a.left_join(rr, preds).select(*a.columns, "by")
    elif spec.seg is not None:
        seg = spec.seg
        seg_col = [c for c in seg.columns if c != "user_id"][0]
        s2 = seg.select(_s_uid=seg.user_id.cast(t.schema()["user_id"]), by=seg[seg_col].cast("string"))
        a = a.left_join(s2, a.user_id == s2._s_uid).select(*a.columns, "by")
    else:
        return a
    return a.mutate(by=a.by.fill_null(NONE_LABEL))


_STRATEGIES = {"ordered": _ordered_attempts, "adjacent": _adjacent_attempts,
               "any_order": _any_order_attempts, "anchored": _anchored_attempts}


def _attempts(events, steps, *, window, mode, count, clickhouse_modes=(), exclude, by, by_step, as_of, timeout, tz,
              levels_only=False):
    """The chosen attempt of each user as an Ibis table, plus exclusion counts and metadata.

    Columns: ``user_id``, (``session_id``,) ``by`` (when given; text), ``reached`` (1..n),
    ``t_1..t_n`` (time of each reached step). The strategy is picked as the module docstring
    ("Design") says. ``levels_only`` (counts without step times, :func:`funnel`): ``t_k`` may
    be null, and ordered mode with ``count="best"`` on disjoint steps without exclusions or a
    step-row breakdown runs ClickHouse's scan, its equal (tested against chdb), in fewer passes.
    """
    spec, t, n_after = _prepare(events, steps, window=window, mode=mode, count=count,
                                clickhouse_modes=clickhouse_modes, exclude=exclude, by=by, by_step=by_step,
                                as_of=as_of, timeout=timeout, tz=tz)
    one_per_user = False
    disjoint = sum(len(x) for x in spec.sets) == len(set().union(*map(set, spec.sets)))
    step_row_by = spec.by_col is not None and spec.by_step != "first"
    best_as_scan = (levels_only and spec.mode == "ordered" and spec.count == "best" and not spec.ex and disjoint
                    and not step_row_by)
    if spec.mode == "windowfunnel" or best_as_scan:
        r, a = _windowfunnel_chain(t, spec, levels_only=levels_only and not step_row_by)
        one_per_user = spec.part == ["user_id"]
    else:
        base, m, r = _positioned(t, spec)
        first_only = spec.mode == "ordered" and spec.count == "first" and not spec.ex
        if first_only and disjoint and not step_row_by:
            a = _first_attempt_by_time(base, m, spec)
        elif first_only:
            a = _first_attempt_by_position(r, spec)
        else:
            r, a = _STRATEGIES[spec.mode](r, spec)
        one_per_user = first_only  # the frontier paths already hold one attempt per user
    n_disq = n_gone = 0
    if spec.ex:
        a, n_disq, n_gone = _disqualify(a, r, spec)
    if not one_per_user:
        a = _choose_attempt(a, spec)
    a = _attach_by(a, r, t, spec)
    out_cols = ["user_id"] + (["session_id"] if spec.w == "session" else []) + (["by"] if by is not None else []) \
        + ["reached"] + [f"t_{k}" for k in range(1, spec.n + 1)]
    a = a.select(*out_cols)
    excluded = {"events after as_of": n_after, "attempts excluded": n_disq,
                "users whose every attempt was excluded": n_gone}
    meta = {"steps": spec.names, "sets": spec.sets, "mode": spec.mode, "count": spec.count,
            "clickhouse_modes": sorted(spec.ch), "window": window, "exclude": list(spec.ex),
            "by": (by if isinstance(by, str) else ("segment" if by is not None else None)), "by_step": by_step}
    return a, excluded, meta



_DOC_PARAMS = """
    events : DataFrame, path or Ibis table
        Canonical ``events``.
    steps : list or dict
        Steps in order; each an event name or a set of names; or ``{label: names}``.
    window : str, pd.Timedelta, "session" or None
        Conversion window from the attempt's first event, inclusive (default ``"1D"``).
    mode : {"ordered", "adjacent", "any_order", "anchored", "windowfunnel"}
        See the module docstring ("modes"); ``"strict"`` was renamed ``"adjacent"``.
    count : {None, "first", "best"}
        Which attempt of a user is counted; ``None`` is ``"first"`` (``"windowfunnel"``: ClickHouse's
        own rule, leave ``None``).
    clickhouse_modes : subset of {"strict_order", "strict_deduplication", "strict_increase"}
        ClickHouse ``windowFunnel`` modes, with ``mode="windowfunnel"`` only.
    exclude : str or set of str, optional
        Exclusion events (disqualify an attempt, see the module docstring).
    by : None, column name or segment frame (``user_id`` + one column)
    by_step : 1..n, "first" or "last"
        Whose value of the ``by`` column is used (module docstring, "breakdown attribution").
    as_of : time, optional
        Events after it are excluded and counted.
    timeout : inactivity that ends a session when ``window="session"`` derives sessions.
    tz : time zone.
"""


def funnel_users(events: DataLike, steps, *, window="1D", mode: str = "ordered", count: str | None = None,
                 clickhouse_modes=(), exclude=None, by=None, by_step=1, as_of=None, timeout="30min",
                 tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """One row per user who entered the funnel: the counted attempt.

    Parameters
    ----------
    {params}

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (``session_id`` with ``window="session"``), ``by`` (when given), ``reached``
        (last step reached, 1..n) and ``t_1..t_n`` (time of each step reached, else NaT).
    """
    a, excluded, meta = _attempts(events, steps, window=window, mode=mode, count=count,
                                  clickhouse_modes=clickhouse_modes, exclude=exclude,
                                  by=by, by_step=by_step, as_of=as_of, timeout=timeout, tz=tz)
    with optimizers_off(a, *_OPTIMIZERS_OFF):
        df = to_pandas(a, tz).sort_values("user_id", kind="stable").reset_index(drop=True)
    df["reached"] = df["reached"].astype("int64")
    df.attrs["steps"] = meta["steps"]
    df.attrs.update({k: meta[k] for k in ("mode", "count", "clickhouse_modes", "window", "exclude", "by", "by_step")})
    return report_exclusions(df, excluded, "funnel_users")


def funnel(events: DataLike, steps, *, window="1D", mode: str = "ordered", count: str | None = None,
           clickhouse_modes=(), exclude=None, by=None, by_step=1, as_of=None, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Users reaching each step of a conversion funnel (``mode="windowfunnel"``: exactly ClickHouse's
    ``windowFunnel``; the other modes are described in the module docstring).

    Parameters
    ----------
    {params}

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per (``by``,) step: ``step`` (1..n), ``step_name``, ``users`` (users whose
        counted attempt reached the step), ``conversion_from_start = users / users at step 1``,
        ``conversion_from_previous = users / users at the previous step`` (1 at step 1),
        ``drop_off = users at the previous step - users`` (0 at step 1). ``attrs`` record the
        settings and ``attrs["excluded"]`` the events after ``as_of``, disqualified attempts
        and users whose every attempt was disqualified.

    Notes
    -----
    Semantics (ties, window edge, modes, exclusions, attribution, first/best) and the O(n log n)
    engine design are in the module docstring. In every mode ``window`` is measured from the
    first step as in ClickHouse's ``windowFunnel`` (ClickHouse docs, "windowFunnel"):
    ``timestamp <= first_timestamp + window``.
    """
    a, excluded, meta = _attempts(events, steps, window=window, mode=mode, count=count,
                                  clickhouse_modes=clickhouse_modes, exclude=exclude,
                                  by=by, by_step=by_step, as_of=as_of, timeout=timeout, tz=tz,
                                  levels_only=True)
    n = len(meta["steps"])
    keys = ["by"] if by is not None else []
    aggs = {f"s{k}": (a.reached >= k).ifelse(1, 0).sum() for k in range(1, n + 1)}
    agg = a.group_by(keys).agg(**aggs) if keys else a.aggregate(**aggs)
    with optimizers_off(agg, *_OPTIMIZERS_OFF):
        wide = to_pandas(agg, tz)
    if by is not None:
        wide = wide.sort_values("by", kind="stable").reset_index(drop=True)
    out = _tidy(wide, meta["steps"], by)
    out.attrs.update({k: meta[k] for k in ("steps", "mode", "count", "clickhouse_modes", "window", "exclude", "by",
                                    "by_step")})
    return report_exclusions(out, excluded, "funnel")


funnel_users.__doc__ = funnel_users.__doc__.replace("{params}", _DOC_PARAMS.strip("\n").lstrip())
funnel.__doc__ = funnel.__doc__.replace("{params}", _DOC_PARAMS.strip("\n").lstrip())


def _tidy(wide: pd.DataFrame, names: list[str], by) -> pd.DataFrame:
    rows = []
    n = len(names)
    for _, w in wide.iterrows():
        counts = [int(0 if pd.isna(w[f"s{k}"]) else w[f"s{k}"]) for k in range(1, n + 1)]
        for k in range(1, n + 1):
            users = counts[k - 1]
            prev = counts[k - 2] if k > 1 else users
            row = {"step": k, "step_name": names[k - 1], "users": users,
                   "conversion_from_start": users / counts[0] if counts[0] else np.nan,
                   "conversion_from_previous": (users / prev if prev else np.nan) if k > 1 else (1.0 if users else np.nan),
                   "drop_off": prev - users if k > 1 else 0}
            if by is not None:
                row = {"by": w["by"], **row}
            rows.append(row)
    cols = (["by"] if by is not None else []) + ["step", "step_name", "users", "conversion_from_start",
                                                 "conversion_from_previous", "drop_off"]
    out = pd.DataFrame(rows, columns=cols)
    if not len(out) and by is None:  # nobody entered: zero rows for each step
        out = pd.DataFrame({"step": range(1, n + 1), "step_name": names, "users": 0,
                            "conversion_from_start": np.nan, "conversion_from_previous": np.nan, "drop_off": 0})
    for c in ("step", "users", "drop_off"):
        out[c] = out[c].astype("int64")
    return out


# --------------------------------------------------------------------------- time to convert
def time_to_convert(events: DataLike, steps, *, output: str = "summary",
                    percentiles: Sequence[float] = (0.25, 0.5, 0.75, 0.9), bins=20, **kwargs) -> pd.DataFrame:
    """Time from the first step (and from the previous step) to each later step.

    Only users whose counted attempt reached the step contribute (the others have no time).

    Parameters
    ----------
    events, steps
        As in :func:`funnel`; further keyword arguments (``window``, ``mode``, ``count``,
        ``exclude``, ``by``, ``by_step``, ``as_of``, ``tz``) are passed to :func:`funnel_users`.
    output : {"summary", "per_user", "histogram"}
        ``"summary"``: per step (2..n; and ``by``): ``n``, ``mean_seconds``, ``median_seconds``
        and ``p<q>_seconds`` for each percentile (pandas' linear interpolation, numpy's default),
        from the first step and ``median_from_previous_seconds``.
        ``"per_user"``: long, histogram-ready frame: ``user_id``, (``by``,) ``step``,
        ``step_name``, ``seconds_from_start``, ``seconds_from_previous``.
        ``"histogram"``: per step, counts of users in ``bins`` bins of ``seconds_from_start``
        (``bin_left``, ``bin_right``, ``users``; ``numpy.histogram`` with shared edges).
    percentiles : probabilities in (0, 1).
    bins : int or edges, for ``output="histogram"``.

    Notes
    -----
    In ``any_order`` mode a later step may precede step 1, so times can be negative.
    """
    _check("output", output, ("summary", "per_user", "histogram"))
    for q in percentiles:
        if not 0 < q < 1:
            raise ValueError(f"percentiles={list(percentiles)!r} is not allowed; use probabilities in (0, 1)")
    u = funnel_users(events, steps, **kwargs)
    names = u.attrs["steps"]
    has_by = "by" in u.columns
    parts = []
    for k in range(2, len(names) + 1):
        sub = u[u["reached"] >= k]
        d = pd.DataFrame({"user_id": sub["user_id"].to_numpy()})
        if has_by:
            d["by"] = sub["by"].to_numpy()
        d["step"] = k
        d["step_name"] = names[k - 1]
        d["seconds_from_start"] = ((sub[f"t_{k}"] - sub["t_1"]) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
        d["seconds_from_previous"] = ((sub[f"t_{k}"] - sub[f"t_{k - 1}"]) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
        parts.append(d)
    cols = ["user_id"] + (["by"] if has_by else []) + ["step", "step_name", "seconds_from_start", "seconds_from_previous"]
    per_user = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    per_user = per_user[cols]
    per_user.attrs["excluded"] = u.attrs.get("excluded", {})
    if output == "per_user":
        return per_user
    keys = (["by"] if has_by else []) + ["step", "step_name"]
    if output == "histogram":
        x = per_user["seconds_from_start"].to_numpy(dtype=float)
        edges = np.histogram_bin_edges(x, bins=bins) if len(x) else np.asarray([0.0, 1.0])
        rows = []
        for key, g in per_user.groupby(keys, sort=True):
            cnt, _ = np.histogram(g["seconds_from_start"].to_numpy(dtype=float), bins=edges)
            key = key if isinstance(key, tuple) else (key,)
            for i, c in enumerate(cnt):
                rows.append(dict(zip(keys, key), bin_left=edges[i], bin_right=edges[i + 1], users=int(c)))
        return pd.DataFrame(rows, columns=keys + ["bin_left", "bin_right", "users"])
    rows = []
    for key, g in per_user.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        s = g["seconds_from_start"]
        row = dict(zip(keys, key), n=len(g), mean_seconds=s.mean(), median_seconds=s.median())
        for q in percentiles:
            row[f"p{round(q * 100):g}_seconds"] = s.quantile(q)
        row["median_from_previous_seconds"] = g["seconds_from_previous"].median()
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["excluded"] = per_user.attrs["excluded"]
    return out


# --------------------------------------------------------------------------- trends
_TREND_PERIODS = ("D", "W")


def funnel_trend(events: DataLike, steps, *, period: str = "W", alpha: float = 0.05, as_of=None,
                 tz: str = DEFAULT_TZ, **kwargs) -> pd.DataFrame:
    """Conversion and time to convert by **entry** period (the day or ISO week of the counted
    attempt's step-1 event, in the shop's zone).

    Parameters
    ----------
    events, steps
        As in :func:`funnel`; further keyword arguments (``window``, ``mode``, ``count``,
        ``exclude``, ``by``, ...) go to :func:`funnel_users`.
    period : {"D", "W"}
        Day, or ISO week starting on Monday.
    alpha : the intervals are ``1 - alpha`` Wilson score intervals.

    Returns
    -------
    pandas.DataFrame
        One row per (``by``,) ``period`` and step ``2..n``: ``step``, ``step_name``,
        ``entered`` (users whose counted attempt started in the period), ``users`` (of them,
        reached the step), ``conversion = users / entered`` with ``ci_low``, ``ci_high``
        (Wilson 1927; :func:`crmlab.abtest.frequentist.wilson_interval`, as statsmodels
        ``proportion_confint(method="wilson")``), ``median_seconds`` and ``p75_seconds`` from
        step 1 to the step (users who reached it), ``complete`` (False when the period's last
        entrant's window -- a fixed ``window`` -- ends after ``as_of`` or the last event, so
        late entrants have had less time to convert and the period's rate is biased down) and
        ``method``.
    """
    from .abtest.frequentist import wilson_interval
    from .io.checks import alpha as check_alpha

    _check("period", period, _TREND_PERIODS)
    alpha = check_alpha(alpha, "alpha")
    u = funnel_users(events, steps, as_of=as_of, tz=tz, **kwargs)
    names = u.attrs["steps"]
    keys = (["by"] if "by" in u.columns else []) + ["period"]
    t1 = u["t_1"].dt.tz_localize(None) if getattr(u["t_1"].dt, "tz", None) is not None else u["t_1"]
    u = u.assign(period=t1.dt.to_period(period).dt.start_time)
    rows = []
    for k in range(2, len(names) + 1):
        secs = (u[f"t_{k}"] - u["t_1"]) / pd.Timedelta(seconds=1)
        d = u.assign(_hit=u["reached"] >= k, _s=secs.where(u["reached"] >= k))
        g = d.groupby(keys, sort=True).agg(entered=("user_id", "size"), users=("_hit", "sum"),
                                           median_seconds=("_s", "median"),
                                           p75_seconds=("_s", lambda x: x.quantile(0.75)))
        rows.append(g.reset_index().assign(step=k, step_name=names[k - 1]))
    cols = keys + ["step", "step_name", "entered", "users", "conversion", "ci_low", "ci_high",
                   "median_seconds", "p75_seconds", "complete", "method"]
    if not rows or not len(u):
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True)
    out["users"] = out["users"].astype("int64")
    out["entered"] = out["entered"].astype("int64")
    out["conversion"] = out["users"] / out["entered"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["users"], out["entered"], alpha)
    out["complete"] = _complete_periods(out["period"], period, kwargs.get("window", "1D"), events, as_of, tz)
    out["method"] = f"Wilson score interval, {1 - alpha:.0%}"
    out = out[cols].sort_values(keys[:-1] + ["step", "period"], kind="stable").reset_index(drop=True)
    out.attrs.update(steps=names, period=period, excluded=u.attrs.get("excluded", {}))
    return out


def _complete_periods(periods: pd.Series, period: str, window, events, as_of, tz) -> pd.Series:
    """Whether every entrant of the period had its whole window before the data's end."""
    from .io.engine import local_time
    if as_of is not None:
        end = local_time(as_of, tz)
    else:
        t = canonical(events, "events", tz=tz, columns=["time"])
        end = pd.Timestamp(to_pandas(t.aggregate(m=t.time.max()), None)["m"].iloc[0])
    w = _parse_window(window)
    span = pd.Timedelta(days=1) if period == "D" else pd.Timedelta(weeks=1)
    last_entry = periods + span - pd.Timedelta(microseconds=1)
    if isinstance(w, pd.Timedelta):
        return (last_entry + w) <= end
    return last_entry <= end  # session or no window: at least the period itself is observed


def plot_funnel_trend(trend: pd.DataFrame, *, step: int | None = None, unit: str | None = None):
    """Two panels over the entry periods: conversion to ``step`` (default the last) with its
    Wilson band, and the median (line) and 75th percentile (dashed) time to reach it, in
    ``unit`` (``"s"``, ``"min"``, ``"h"``, ``"D"``; default: minutes below 2 hours, else hours).
    Incomplete periods are drawn hollow. Returns the Figure."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from .plotting import setup
    scale = {"s": 1.0, "min": 60.0, "h": 3600.0, "D": 86400.0}
    if unit is not None:
        _check("unit", unit, tuple(scale))
    if not len(trend):
        raise ValueError("trend is empty: nothing to draw")
    step = int(trend["step"].max()) if step is None else step
    _check("step", step, tuple(sorted(trend["step"].unique())))
    d = trend[trend["step"] == step]
    if unit is None:
        unit = "min" if d["p75_seconds"].max() < 7200 else "h"
    _check("unit", unit, tuple(scale))
    setup()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, height_ratios=[3, 2])
    groups = d.groupby("by", sort=True) if "by" in d.columns else [(None, d)]
    for name, g in groups:
        x = pd.to_datetime(g["period"])
        line, = ax1.plot(x, g["conversion"], marker="o", label=name)
        ax1.fill_between(x, g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.18, lw=0)
        hollow = ~g["complete"].astype(bool)
        ax1.scatter(x[hollow], g["conversion"][hollow], s=60, facecolor="white", edgecolor=line.get_color(), zorder=3)
        ax2.plot(x, g["median_seconds"] / scale[unit], marker="o", color=line.get_color())
        ax2.plot(x, g["p75_seconds"] / scale[unit], ls="--", color=line.get_color(), alpha=0.7)
    name = d["step_name"].iloc[0]
    ax1.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax1.set_ylim(bottom=0)
    ax1.set_ylabel(f"conversion to {name}")
    ax1.set_title(f"conversion to {name} by entry {'week' if trend.attrs.get('period', 'W') == 'W' else 'day'}"
                  " (band: Wilson interval; hollow: incomplete)")
    if "by" in d.columns:
        ax1.legend(title="by", fontsize=8)
    ax2.set_ylabel(f"time to {name} ({unit})")
    ax2.set_ylim(bottom=0)
    ax2.set_title("median (line) and 75th percentile (dashed) time from step 1", fontsize=10)
    ax2.set_xticks(sorted(pd.to_datetime(d["period"].unique())))
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    return fig


# --------------------------------------------------------------------------- dropped users
def dropped_users(events: DataLike, steps, **kwargs) -> pd.DataFrame:
    """Users whose counted attempt stopped before the last step, for targeting messages.

    Keyword arguments as :func:`funnel_users`. Returns ``user_id``, (``by``,)
    ``last_step_reached`` (1..n-1), ``last_step_name``, ``next_step_name`` (the step they did
    not reach) and ``time_reached`` (time of the last step reached), sorted by step then user.
    """
    u = funnel_users(events, steps, **kwargs)
    names = u.attrs["steps"]
    n = len(names)
    d = u[u["reached"] < n].copy()
    times = pd.Series(pd.NaT, index=d.index, dtype=d["t_1"].dtype)
    for k in range(1, n + 1):
        times = times.where(d["reached"] != k, d[f"t_{k}"])
    out = pd.DataFrame({"user_id": d["user_id"]})
    if "by" in d.columns:
        out["by"] = d["by"]
    out["last_step_reached"] = d["reached"].astype("int64")
    out["last_step_name"] = [names[k - 1] for k in d["reached"]]
    out["next_step_name"] = [names[k] for k in d["reached"]]
    out["time_reached"] = times
    out = out.sort_values(["last_step_reached", "user_id"], kind="stable").reset_index(drop=True)
    out.attrs["excluded"] = u.attrs.get("excluded", {})
    return out


# --------------------------------------------------------------------------- group comparison
def compare_groups(funnel_result: pd.DataFrame, *, correction: bool = True) -> pd.DataFrame:
    """Does step conversion differ between the breakdown groups of a :func:`funnel` result?

    For each step ``k >= 2`` a chi-square test of independence on the groups x {converted,
    dropped} table, where converted = users at step ``k`` and dropped = users at step ``k-1``
    minus users at step ``k`` (Pearson's chi-square; ``scipy.stats.chi2_contingency``, with
    Yates' continuity correction for 2x2 tables when ``correction=True``, scipy's default).
    Groups with no user at step ``k-1`` are left out of that step's table.

    Returns
    -------
    pandas.DataFrame
        ``step``, ``step_name``, ``groups``, ``n`` (users at step k-1 over groups),
        ``min_rate``, ``max_rate`` (conversion from previous across groups), ``chi2``, ``dof``,
        ``p_value``, ``min_expected`` (smallest expected count; below 5 the approximation is
        doubtful), ``method``.
    """
    from scipy.stats import chi2_contingency

    if "by" not in funnel_result.columns:
        raise ValueError("funnel_result has no 'by' column: compute the funnel with by=...")
    rows = []
    wide = funnel_result.pivot(index="by", columns="step", values="users")
    names = funnel_result.drop_duplicates("step").set_index("step")["step_name"]
    for k in sorted(wide.columns):
        if k == 1:
            continue
        prev, cur = wide[k - 1].astype(float), wide[k].astype(float)
        keep = prev > 0
        table = np.column_stack([cur[keep], prev[keep] - cur[keep]])
        row = {"step": int(k), "step_name": names[k], "groups": int(keep.sum()), "n": int(prev[keep].sum()),
               "min_rate": float((cur[keep] / prev[keep]).min()) if keep.any() else np.nan,
               "max_rate": float((cur[keep] / prev[keep]).max()) if keep.any() else np.nan,
               "chi2": np.nan, "dof": 0, "p_value": np.nan, "min_expected": np.nan,
               "method": "chi2_contingency" + (" (Yates)" if correction and table.shape == (2, 2) else "")}
        if table.shape[0] >= 2 and (table.sum(axis=0) > 0).all():
            res = chi2_contingency(table, correction=correction)
            row.update(chi2=float(res.statistic), dof=int(res.dof), p_value=float(res.pvalue),
                       min_expected=float(np.min(res.expected_freq)))
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- plots
def plot_funnel(result: pd.DataFrame, *, ax=None):
    """Bars of users per step (one colour per group with ``by``), annotated with the conversion
    from the previous step and the drop-off count. Returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import setup
    setup()
    ax = ax or plt.subplots(figsize=(8, 4.5))[1]
    hue = "by" if "by" in result.columns else None
    sns.barplot(data=result, x="step_name", y="users", hue=hue, ax=ax, errorbar=None)
    if hue is None:
        for i, r in enumerate(result.itertuples()):
            label = f"{r.users:,}" if r.step == 1 else f"{r.users:,}\n{r.conversion_from_previous:.1%} (-{r.drop_off:,})"
            ax.annotate(label, (i, r.users), ha="center", va="bottom", fontsize=9)
    else:
        for cont, (_, g) in zip(ax.containers, result.groupby("by", sort=False)):
            labels = [f"{r.conversion_from_previous:.0%}" if r.step > 1 else f"{r.users:,}" for r in g.itertuples()]
            ax.bar_label(cont, labels=labels, fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("users")
    ax.set_title("funnel: conversion from previous step (drop-off)")
    return ax


def plot_time_to_convert(per_user: pd.DataFrame, *, column: str = "seconds_from_start", unit: str = "min",
                         ax=None, bins=30):
    """Histogram of :func:`time_to_convert` ``output="per_user"`` times, one colour per step.

    ``unit`` is ``"s"``, ``"min"``, ``"h"`` or ``"D"``. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import setup
    scale = {"s": 1.0, "min": 60.0, "h": 3600.0, "D": 86400.0}
    _check("unit", unit, tuple(scale))
    if column not in ("seconds_from_start", "seconds_from_previous"):
        raise ValueError(f"column={column!r} is not allowed; use 'seconds_from_start' or 'seconds_from_previous'")
    setup()
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    d = per_user.assign(_x=per_user[column] / scale[unit])
    sns.histplot(data=d, x="_x", hue="step_name", bins=bins, ax=ax, element="step")
    ax.set_xlabel(f"{column.replace('seconds_', 'time ')} ({unit})")
    ax.set_ylabel("users")
    return ax
