"""Sessions, traffic and shop KPIs from the canonical ``events`` (and ``orders``) tables.

Sessionisation
--------------
A *session* is a run of one user's events in which no gap between consecutive events exceeds
``timeout`` (default 30 minutes, the Google Analytics default session timeout). The rule, in
the engine:

1. sort the user's events by time;
2. an event starts a new session when it is the user's first, or when it is **more than**
   ``timeout`` after the previous event (a gap of exactly ``timeout`` stays in the session);
3. the session number is the running count of starts up to and including the event's
   timestamp; ``session_id = "<user_id>-<n>"`` with ``n = 1, 2, ...`` in time order.

Ties: events with equal timestamps always share a session (their gap is zero, and the running
count covers every event of the timestamp, a ``RANGE`` frame), whatever their row order, so
the result does not depend on how a backend orders ties. The work is one sort per user:
``lag`` and the running sum are window functions over the user's events in one pass, O(n log n)
in the number of events, never a self-join of a user's events and no join back.

Traffic and KPIs
----------------
:func:`traffic` and :func:`shop_kpis` first build one row per session (start, end, number of
events, page views, whether it held an add-to-cart, a checkout, a purchase) in the engine,
and aggregate those rows per period and breakdown; only the per-period aggregates come back.
A session belongs to the period in which it *started*, and to the source / medium / campaign /
device of its *first* event (Google Analytics attributes a session to the traffic source that
started it).
"""
from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .io.checks import duration
from .io.engine import DataLike, cut_as_of, report_exclusions, to_pandas
from .io.engine import interval as _interval  # the one interval rule
from .io.schema import DEFAULT_TZ
from .io.validate import canonical

__all__ = ["sessionize", "sessions_table", "traffic", "shop_kpis", "plot_traffic",
           "BY_COLUMNS", "PAGE_EVENTS", "NONE_LABEL"]

#: Breakdown columns of traffic and KPIs (session attributes of the canonical events table).
BY_COLUMNS = ("source", "medium", "campaign", "device")
#: Events that count as a page (or screen) view by default.
PAGE_EVENTS = ("page_view", "product_view")
#: Label of a missing breakdown value.
NONE_LABEL = "(none)"
_PERIODS = ("D", "W")


# --------------------------------------------------------------------------- helpers
def _cut_as_of(t: ir.Table, col: str, as_of, tz: str) -> tuple[ir.Table, int]:
    """:func:`crmlab.io.engine.cut_as_of` without the limit (the one as_of cut)."""
    return cut_as_of(t, col, as_of, tz)[:2]


def _by_list(by, allowed: Sequence[str] = BY_COLUMNS) -> list[str]:
    if by is None:
        return []
    cols = [by] if isinstance(by, str) else list(by)
    for c in cols:
        if c not in allowed:
            raise ValueError(f"by={by!r} is not allowed; use None or any of {list(allowed)}")
    return cols


def _label(col: ir.Column) -> ir.StringValue:
    """A breakdown value as text, missing values as ``"(none)"`` (so they can be joined on)."""
    return col.cast("string").fill_null(NONE_LABEL)


def _epoch_us(x: ir.TimestampValue) -> ir.IntegerValue:
    """Microseconds since 1970, exact and the same on DuckDB and Spark: whole seconds (DuckDB's
    fractional epoch floored, Spark's ``unix_timestamp``) plus the microsecond field (``%f``;
    PySpark cannot extract microseconds directly). Millisecond fields would floor each end:
    a session from 0.0008 s to 10 s would last 10.0 s."""
    return x.epoch_seconds().cast("float64").floor().cast("int64") * 1_000_000 + x.strftime("%f").cast("int64")


def _derive_sessions(t: ir.Table, timeout: pd.Timedelta, text_ids: bool = True) -> ir.Table:
    """Engine part of :func:`sessionize`: ``t`` with ``session_id`` derived from gaps.

    One pass of two window functions over each user's events ordered by time: ``lag`` gives
    the previous event's time, a row starts a session when there is none or the gap exceeds
    ``timeout``, and the session number is the running count of starts over a ``RANGE``
    frame (``UNBOUNDED PRECEDING .. CURRENT ROW``), which includes every event at the same
    timestamp. Of a group of tied events only the first (in whatever order the backend puts
    ties) can start a session, the others have a zero gap; the ``RANGE`` frame gives all of
    them the same count, so ties share a session whatever their order.

    ``text_ids=False`` leaves the session number (an integer, per user) as ``session_id``:
    cheaper to group on than ``"<user_id>-<n>"`` text, for callers that never show the id."""
    keep = [c for c in t.columns if c != "session_id"]
    t = t.select(keep)  # a replaced session_id is not carried through the sort
    w = ibis.window(group_by="user_id", order_by="time")
    prev = t.time.lag().over(w)
    d = t.mutate(_start=ibis.ifelse(prev.isnull() | (t.time > prev + _interval(timeout)), 1, 0))
    n = d._start.sum().over(ibis.window(group_by="user_id", order_by="time", range=(None, 0)))
    sid = (d.user_id.cast("string").concat(ibis.literal("-"), n.cast("int64").cast("string")) if text_ids
           else n.cast("int64"))
    out = d.select(*keep, session_id=sid)
    return out.relocate("session_id", after="event") if "event" in keep else out


def _with_sessions(t: ir.Table, timeout, force: bool, text_ids: bool = True) -> tuple[ir.Table, str]:
    """``t`` with a complete ``session_id``: kept when every row has one (unless ``force``),
    derived when none has; a partly filled column raises. Returns the table and how."""
    td = duration(timeout, "timeout")
    if force:
        return _derive_sessions(t, td, text_ids), "derived"
    if t.schema()["session_id"].is_null():
        return _derive_sessions(t, td, text_ids), "derived"
    counts = t.aggregate(n=t.count(), missing=t.session_id.isnull().ifelse(1, 0).sum()).execute()
    n, missing = int(counts["n"].iloc[0]), int(counts["missing"].fillna(0).iloc[0])
    if missing == 0:
        return t, "kept"
    if missing == n:
        return _derive_sessions(t, td, text_ids), "derived"
    raise ValueError(f"session_id is missing on {missing:,} of {n:,} events; pass force=True to derive "
                     "every session from gaps (the given ids are then replaced)")


# --------------------------------------------------------------------------- sessionize
def sessionize(events: DataLike, *, timeout="30min", force: bool = False, tz: str = DEFAULT_TZ,
               out=None) -> pd.DataFrame:
    """Give every event a session: derive ``session_id`` from inactivity gaps when it is missing.

    Parameters
    ----------
    events : DataFrame, path or Ibis table
        Canonical ``events``.
    timeout : str or pd.Timedelta
        Inactivity that ends a session (default ``"30min"``, Google Analytics' default). A new
        session starts when the gap to the user's previous event is **strictly greater** than
        ``timeout``; a gap of exactly ``timeout`` continues the session.
    force : bool
        Derive sessions even when ``session_id`` is given (the given ids are replaced). Without
        it a complete ``session_id`` is kept, a missing one is derived, and one missing on some
        rows only raises ``ValueError``.
    tz : str
        Time zone of naive times.
    out : path, optional
        Write the rows to this Parquet file from the engine instead of returning them (times as
        the engine's naive local times, like the input files): for event tables too large for
        pandas (100M events need well over 8 GiB as a frame). The return value is then one row:
        ``path, rows, sessions``.

    Returns
    -------
    pandas.DataFrame
        Every input row (asserted: the row count is unchanged), sorted by ``user_id``, ``time``,
        with ``session_id`` (derived ids are ``"<user_id>-<n>"``, ``n = 1, 2, ...`` in time order
        per user). ``attrs["sessions"]`` is ``"derived"`` or ``"kept"``.

    Notes
    -----
    Events at the same timestamp always fall in the same session (their gap is zero). The
    engine sorts each user's events once (``lag`` + running count of starts, window functions
    in one pass; O(n log n), no self-join, no join back; see the module docstring) and sorts
    the result by ``user_id``, ``time`` (events at the same time in no particular order).
    """
    t = canonical(events, "events", tz=tz)
    n_in = int(t.count().execute())
    s, how = _with_sessions(t, timeout, force)
    if out is not None:  # row-level output that is the point: written by the engine, not fetched
        s.order_by(["user_id", "time"]).to_parquet(str(out))
        written = s._find_backend().read_parquet(str(out))  # counted from the file, not recomputed
        rows = int(written.count().execute())
        n_sessions = int(written.select("user_id", "session_id").distinct().count().execute())
        summary = pd.DataFrame({"path": [str(out)], "rows": [rows], "sessions": [n_sessions]})
        summary.attrs["sessions"] = how
        return report_exclusions(summary, {"rows_lost": n_in - rows}, "sessionize")
    # Sorted in the engine: cheaper than moving every column of millions of rows in pandas.
    out = to_pandas(s.order_by(["user_id", "time"]), tz)
    if len(out) != n_in:  # pragma: no cover - guarded by construction (window functions keep every row)
        raise AssertionError(f"sessionize lost rows: {n_in:,} in, {len(out):,} out")
    out.attrs["sessions"] = how
    return report_exclusions(out, {"rows_lost": n_in - len(out)}, "sessionize")


# --------------------------------------------------------------------------- session rows
def _event_flags(t: ir.Table, page_events, conversion_events) -> ir.Table:
    """``t`` with the 0/1 columns session rows sum (``int8``: one byte each through the sort)."""
    pages, convs = list(page_events), list(conversion_events)
    one = lambda cond: cond.ifelse(1, 0).cast("int8")  # noqa: E731
    return t.mutate(_page=one(t.event.isin(pages)), _conv=one(t.event.isin(convs)),
                    _cart=one(t.event == "add_to_cart"), _checkout=one(t.event == "begin_checkout"),
                    _purchase=one(t.event == "purchase"))


def _session_rows(ev: ir.Table, by: list[str]) -> ir.Table:
    """One row per ``(user_id, session_id)`` of flagged events (:func:`_event_flags`): start, end,
    counts and first-event attributes."""
    keys = ["user_id", "session_id"]
    agg = ev.group_by(keys).agg(
        start=ev.time.min(), end=ev.time.max(), n_events=ev.count(), page_views=ev._page.sum().cast("int64"),
        conversions=ev._conv.sum().cast("int64"), add_to_cart=ev._cart.max().cast("int64"),
        begin_checkout=ev._checkout.max().cast("int64"), purchase=ev._purchase.max().cast("int64"))
    if not by:
        return agg
    rn = ibis.row_number().over(group_by=keys, order_by=[ev.time, ev.event] + [ev[c] for c in by])
    first = ev.mutate(_rn=rn).filter(lambda x: x._rn == 0)
    first = first.select(_user_id=first.user_id, _session_id=first.session_id, **{c: _label(first[c]) for c in by})
    j = agg.join(first, [agg.user_id == first._user_id, agg.session_id == first._session_id])
    return j.select(*agg.columns, *by)


def _prepared_sessions(events, by, as_of, tz, timeout, page_events, conversion_events, text_ids: bool = True):
    t = canonical(events, "events", tz=tz)
    t, n_after = _cut_as_of(t, "time", as_of, tz)
    # Only the columns session rows need go through the window sort that derives sessions:
    # every event column carried through it held 10 GiB at 30M events (issue 14).
    # The event name becomes five one-byte flags before the sort (a name is 16 bytes a row in
    # DuckDB); it is kept only to order the tied first events of a session when ``by`` is given.
    t = _event_flags(t.select("user_id", "time", "event", "session_id", *by), page_events, conversion_events)
    t = t.select("user_id", "time", *(["event"] if by else []), "session_id", "_page", "_conv", "_cart",
                 "_checkout", "_purchase", *by)
    t, how = _with_sessions(t, timeout, False, text_ids)
    return _session_rows(t, by), n_after, how


def sessions_table(events: DataLike, *, by=None, as_of=None, timeout="30min",
                   page_events: Sequence[str] = PAGE_EVENTS, conversion_events: Sequence[str] = ("purchase",),
                   tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """One row per session (see :func:`traffic` for the definitions), sessionising when needed.

    Columns: ``user_id``, ``session_id``, ``start``, ``end``, ``duration_s`` (end minus start,
    seconds), ``n_events``, ``page_views``, ``conversions``, ``add_to_cart``,
    ``begin_checkout``, ``purchase`` (0/1: the session holds such an event), ``bounce``
    (Universal Analytics), ``engaged`` and ``ga4_bounce = 1 - engaged`` (GA4) and the ``by``
    columns (value of the session's first event).
    """
    cols = _by_list(by)
    s, n_after, _ = _prepared_sessions(events, cols, as_of, tz, timeout, page_events, conversion_events)
    s = _flags(s)
    out = to_pandas(s, tz).sort_values(["user_id", "start"], kind="stable").reset_index(drop=True)
    return report_exclusions(out, {"events after as_of": n_after}, "sessions_table")


def _flags(s: ir.Table, engaged_seconds: float = 10.0) -> ir.Table:
    """Duration (exact to the microsecond, never floored), UA bounce, GA4 engagement and bounce."""
    s = s.mutate(duration_s=(_epoch_us(s.end) - _epoch_us(s.start)).cast("float64") / 1e6)
    # GA4: engaged when the session lasts *more than* 10 s (not "at least"), or has a key event,
    # or 2+ page views; GA4's bounce is a session that is not engaged.
    engaged = (s.duration_s > engaged_seconds) | (s.page_views >= 2) | (s.conversions > 0)
    return s.mutate(bounce=((s.n_events == 1) & (s.page_views == 1)).ifelse(1, 0),
                    engaged=engaged.ifelse(1, 0), ga4_bounce=engaged.ifelse(0, 1))


def _period_col(s: ir.Table, period: str | None, col: str = "start"):
    if period is None:
        return None
    return s[col].truncate(period).name("period")


# --------------------------------------------------------------------------- traffic
def traffic(events: DataLike, *, period: str = "D", by=None, as_of=None, timeout="30min",
            page_events: Sequence[str] = PAGE_EVENTS, conversion_events: Sequence[str] = ("purchase",),
            engaged_seconds: float = 10.0, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Visitors, page views, sessions, session duration, bounce and engagement rate per period.

    Parameters
    ----------
    events : DataFrame, path or Ibis table
        Canonical ``events``; sessions are derived (30 minutes of inactivity, see
        :func:`sessionize`) when ``session_id`` is missing.
    period : {"D", "W"}
        Day, or ISO week starting on Monday, in the shop's zone; a session counts in the period
        in which it started.
    by : None, str or list of {"source", "medium", "campaign", "device"}
        Breakdown; a session takes the value of its first event (GA's session source). Missing
        values are labelled ``"(none)"``.
    as_of : time, optional
        Events after ``as_of`` are excluded (``attrs["excluded"]["events after as_of"]``).
    timeout : inactivity ending a derived session.
    page_events : event names counted as page/screen views (default page_view, product_view).
    conversion_events : event names that are conversions (GA4 "key events"), default purchase.
    engaged_seconds : a session lasting *more than* this is engaged (default 10 s, GA4's).
    tz : time zone.

    Returns
    -------
    pandas.DataFrame
        One row per ``period`` (x ``by``), columns:

        - ``visitors``: user-days with a session, i.e. the sum over the days of the period of
          the day's distinct visitors (the "방문자수" of Korean shop dashboards). Equals
          ``unique_visitors`` when ``period="D"``.
        - ``unique_visitors``: distinct users with a session in the period.
        - ``page_views``: events in ``page_events``.
        - ``sessions``; ``pages_per_session = page_views / sessions``.
        - ``avg_session_duration_s``: mean over sessions of last minus first event time, in
          seconds (a single-event session lasts 0 s; the time spent on the last page is not
          observed, as in Universal Analytics).
        - ``bounce_rate = bounces / sessions`` (Universal Analytics): a bounce is a session with
          exactly one event, a page view (UA's single-page session; Google Analytics Help,
          "Bounce rate", UA definition). A session of one non-page event (a lone ``search``)
          is not a UA bounce; add such events to ``page_events`` to count them as pages.
        - ``engagement_rate = engaged_sessions / sessions`` (Google Analytics 4): an engaged
          session lasted **more than** ``engaged_seconds`` (GA4: "lasts longer than 10
          seconds"; exactly 10 s is not engaged; GA4 measures foreground time, here last minus
          first event, exact to the microsecond, not floored), **or** had at least 2
          page/screen views, **or** a conversion (key event) (Google Analytics Help,
          "Engagement rate and bounce rate").
        - ``ga4_bounces = sessions - engaged_sessions`` and ``ga4_bounce_rate = 1 -
          engagement_rate`` (GA4's bounce rate, same source): every session is either engaged
          or a GA4 bounce, so the two rates add up to 1, which UA's ``bounce_rate`` need not.
    """
    if period not in _PERIODS:
        raise ValueError(f"period={period!r} is not allowed; use one of {list(_PERIODS)}")
    if not (isinstance(engaged_seconds, (int, float)) and engaged_seconds >= 0):
        raise ValueError(f"engaged_seconds={engaged_seconds!r} is not allowed; use a non-negative number")
    cols = _by_list(by)
    s, n_after, how = _prepared_sessions(events, cols, as_of, tz, timeout, page_events, conversion_events,
                                         text_ids=False)
    s = _flags(s, engaged_seconds)
    s = s.mutate(period=s.start.truncate(period), _day=s.start.truncate("D"))
    keys = ["period", *cols]
    main = s.group_by(keys).agg(
        unique_visitors=s.user_id.nunique(), page_views=s.page_views.sum(), sessions=s.count(),
        avg_session_duration_s=s.duration_s.mean(), bounces=s.bounce.sum(),
        engaged_sessions=s.engaged.sum(), ga4_bounces=s.ga4_bounce.sum())
    ud = s.select(*keys, "user_id", "_day").distinct()
    ud = ud.group_by(keys).agg(visitors=ud.count())
    df = to_pandas(main, tz).merge(to_pandas(ud, tz), on=keys, how="left")
    for c in ("unique_visitors", "page_views", "sessions", "bounces", "engaged_sessions", "ga4_bounces", "visitors"):
        df[c] = df[c].fillna(0).astype("int64")
    df["avg_session_duration_s"] = df["avg_session_duration_s"].astype(float)
    df["pages_per_session"] = df["page_views"] / df["sessions"]
    df["bounce_rate"] = df["bounces"] / df["sessions"]
    df["engagement_rate"] = df["engaged_sessions"] / df["sessions"]
    df["ga4_bounce_rate"] = df["ga4_bounces"] / df["sessions"]
    df = df[keys + ["visitors", "unique_visitors", "page_views", "sessions", "pages_per_session",
                    "avg_session_duration_s", "bounces", "bounce_rate", "engaged_sessions",
                    "engagement_rate", "ga4_bounces", "ga4_bounce_rate"]]
    df = df.sort_values(keys, kind="stable").reset_index(drop=True)
    df.attrs["sessions"] = how
    df.attrs["denominators"] = {"bounce_rate": "sessions", "engagement_rate": "sessions", "ga4_bounce_rate": "sessions",
                                "pages_per_session": "sessions"}
    return report_exclusions(df, {"events after as_of": n_after}, "traffic")


# --------------------------------------------------------------------------- shop KPIs
#: Each rate of :func:`shop_kpis`: (numerator column, denominator column).
KPI_RATES = {
    "conversion_rate_per_session": ("sessions_with_purchase", "sessions"),
    "conversion_rate_per_user": ("purchasers", "visitors"),
    "add_to_cart_rate": ("sessions_with_add_to_cart", "sessions"),
    "checkout_completion_rate": ("checkout_sessions_with_purchase", "sessions_with_checkout"),
    "average_order_value": ("revenue", "orders"),
    "revenue_per_visitor": ("revenue", "visitors"),
}


def shop_kpis(events: DataLike, orders: DataLike, *, period: str | None = None, by=None, as_of=None,
              timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Shop KPIs: conversion per session and per user, add-to-cart and checkout completion rate,
    average order value and revenue per visitor.

    Parameters
    ----------
    events, orders : DataFrame, path or Ibis table
        Canonical ``events`` (sessionised when ``session_id`` is missing) and ``orders``.
    period : None, "D" or "W"
        None: one row for the whole data; else per day / ISO week (sessions by start time,
        orders by order time).
    by : None, str or list of {"source", "medium", "campaign", "device"}
        Breakdown by the session's first-event value. An order is attributed to the user's
        latest session that started at or before the order time (a session starting at the
        same instant counts); orders with no earlier session get ``"(none)"``.
    as_of : time, optional
        Events and orders after it are excluded and counted in ``attrs["excluded"]``.
    timeout, tz : see :func:`sessionize`.

    Returns
    -------
    pandas.DataFrame
        Counts, then rates; every rate is ``numerator / denominator`` of two columns of the
        frame, listed in :data:`KPI_RATES` and ``attrs["denominators"]``:

        - ``conversion_rate_per_session = sessions_with_purchase / sessions`` (sessions holding
          a ``purchase`` event);
        - ``conversion_rate_per_user = purchasers / visitors`` (distinct users with a purchase
          event / distinct users with a session);
        - ``add_to_cart_rate = sessions_with_add_to_cart / sessions``;
        - ``checkout_completion_rate = checkout_sessions_with_purchase / sessions_with_checkout``
          (sessions with a ``begin_checkout`` that also hold a ``purchase``);
        - ``average_order_value = revenue / orders`` (from ``orders``);
        - ``revenue_per_visitor = revenue / visitors``.

        Rates with a zero denominator are NaN.
    """
    if period is not None and period not in _PERIODS:
        raise ValueError(f"period={period!r} is not allowed; use None or one of {list(_PERIODS)}")
    cols = _by_list(by)
    s, n_after, how = _prepared_sessions(events, cols, as_of, tz, timeout, PAGE_EVENTS, ("purchase",),
                                         text_ids=False)
    o = canonical(orders, "orders", tz=tz)
    o, n_orders_after = _cut_as_of(o, "time", as_of, tz)
    keys = (["period"] if period else []) + cols
    if period:
        s = s.mutate(period=s.start.truncate(period))
    sm = (s.group_by(keys) if keys else s).agg(
        sessions=s.count(), visitors=s.user_id.nunique(),
        sessions_with_add_to_cart=s.add_to_cart.sum(), sessions_with_checkout=s.begin_checkout.sum(),
        sessions_with_purchase=s.purchase.sum(),
        checkout_sessions_with_purchase=(s.begin_checkout * s.purchase).sum(),
        purchasers=s.user_id.nunique(where=s.purchase == 1))
    oo = _attribute_orders(s, o, cols) if cols else o
    if period:
        oo = oo.mutate(period=oo.time.truncate(period))
    om = (oo.group_by(keys) if keys else oo).agg(orders=oo.count(), revenue=oo.revenue.sum(),
                                                 buyers=oo.user_id.nunique())
    sdf, odf = to_pandas(sm, tz), to_pandas(om, tz)
    if keys:
        df = sdf.merge(odf, on=keys, how="outer")
    else:
        df = pd.concat([sdf, odf], axis=1)
    counts = ["sessions", "visitors", "sessions_with_add_to_cart", "sessions_with_checkout",
              "sessions_with_purchase", "checkout_sessions_with_purchase", "purchasers", "orders", "buyers"]
    for c in counts:
        df[c] = df[c].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].astype(float).fillna(0.0)
    for rate, (num, den) in KPI_RATES.items():
        d = df[den].astype(float)
        df[rate] = np.where(d > 0, df[num].astype(float) / d.where(d > 0, 1.0), np.nan)
    df = df[keys + counts + ["revenue"] + list(KPI_RATES)]
    if keys:
        df = df.sort_values(keys, kind="stable").reset_index(drop=True)
    df.attrs["sessions"] = how
    df.attrs["denominators"] = {k: v[1] for k, v in KPI_RATES.items()}
    return report_exclusions(df, {"events after as_of": n_after, "orders after as_of": n_orders_after},
                             "shop_kpis")


def _attribute_orders(s: ir.Table, o: ir.Table, cols: list[str]) -> ir.Table:
    """Orders with the ``cols`` of the user's latest session started at or before the order.

    As-of logic with window functions: sessions and orders of a user in one stream sorted by
    time (a session before an order at the same instant); the running maximum of the session
    number gives the latest session, joined back on ``(user, number)``. O(n log n), no range join.
    """
    ss = s.mutate(_snum=ibis.row_number().over(group_by="user_id", order_by=[s.start, s.session_id]) + 1)
    sess_stream = ss.select(_uid=ss.user_id.cast("string"), _ts=ss.start, _kind=ibis.literal(0),
                            _snum=ss._snum.cast("int64"), _oid=ibis.null("string"), _rev=ibis.null("float64"))
    ord_stream = o.select(_uid=o.user_id.cast("string"), _ts=o.time, _kind=ibis.literal(1),
                          _snum=ibis.null("int64"), _oid=o.order_id.cast("string"),
                          _rev=o.revenue.cast("float64"))
    u = sess_stream.union(ord_stream)
    w = ibis.window(group_by="_uid", order_by=["_ts", "_kind", "_snum"], rows=(None, 0))
    u = u.mutate(_last=u._snum.max().over(w)).filter(lambda x: x._kind == 1)
    attrs = ss.select(_a_uid=ss.user_id.cast("string"), _a_snum=ss._snum.cast("int64"), *cols)
    j = u.left_join(attrs, [u._uid == attrs._a_uid, u._last == attrs._a_snum])
    return j.select(user_id=j._uid, time=j._ts, order_id=j._oid, revenue=j._rev,
                    **{c: j[c].fill_null(NONE_LABEL) for c in cols})


# --------------------------------------------------------------------------- plot
def plot_traffic(result: pd.DataFrame, metrics: str | Sequence[str] = ("sessions", "unique_visitors"), *,
                 by: str | None = None, ax=None):
    """Trend lines of :func:`traffic` (or :func:`shop_kpis` with a period) metrics.

    One Axes per metric (a Figure is returned when several metrics are drawn, else the Axes);
    with a breakdown column in the frame (or ``by``) one line per group.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import setup
    setup()
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in result.columns:
            raise ValueError(f"metrics={m!r} is not a column of the result; columns are {list(result.columns)}")
    if "period" not in result.columns:
        raise ValueError("result has no 'period' column: compute it with period='D' or 'W'")
    hue = by or next((c for c in BY_COLUMNS if c in result.columns), None)
    if len(metrics) == 1:
        ax = ax or plt.subplots(figsize=(8, 4))[1]
        sns.lineplot(data=result, x="period", y=metrics[0], hue=hue, marker="o", ax=ax)
        ax.set_title(metrics[0])
        ax.tick_params(axis="x", rotation=30)
        return ax
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 3 * len(metrics)), sharex=True, squeeze=False)
    for m, a in zip(metrics, axes[:, 0]):
        sns.lineplot(data=result, x="period", y=m, hue=hue, marker="o", ax=a)
        a.set_title(m)
    axes[-1, 0].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
