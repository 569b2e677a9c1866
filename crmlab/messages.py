"""Message performance and order attribution for CRM messages.

Attribution rule (what :func:`attribute` does, and :func:`message_performance` reports)
---------------------------------------------------------------------------------------
An order is credited to a message when it falls inside the message's *attribution window*:

- ``basis="receipt"`` (default): the window opens at ``delivered_time``;
- ``basis="click"``: the window opens at ``clicked_time`` — except on channels with no open
  signal (``sms``, ``lms``, ``kakao_alimtalk``, ``kakao_friendtalk``), which are always
  receipt-based (their clicks are not tracked reliably enough to be the basis).

Window edges: the window is **half-open**, ``anchor <= order_time < anchor + window``: an
order placed at the very moment of delivery (or click) counts, an order exactly ``window``
later does not. Windows are per channel (``windows={"default": "3D", "sms": "1D", ...}``).

An order is credited **at most once per campaign**: when several messages of one campaign
qualify, the latest one (largest anchor time, ties broken by the larger ``message_id``) gets
it. Between campaigns, ``share`` decides:

- ``"last_touch"`` (default): the campaign whose qualifying message is latest before the
  order gets the whole order (ties: larger ``message_id``); totals over campaigns add up to
  the attributed revenue.
- ``"every_touch"``: every qualifying campaign gets the whole order. Totals over campaigns
  then count an order several times; the result carries ``share="every_touch"`` in a column
  and in ``attrs["share"]`` to say so.

Complexity: orders are joined to messages on ``user_id`` with the range condition above, so
the work is the sum over users of (orders of the user x messages of the user) — linear in
the number of rows when per-user counts are bounded, as they are for CRM messaging. A
window function then keeps one message per (order, campaign) and, under last touch, one per
order.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .abtest.corrections import CORRECTIONS, with_family
from .abtest.frequentist import proportion_test, wilson_interval
from .io.checks import choice, duration
from .io.engine import DataLike, cut_as_of, local_time, report_exclusions, to_pandas
from .io.engine import interval as _interval  # the one interval rule
from .io.schema import DEFAULT_TZ
from .io.sources import channels
from .uplift import INCOMPLETE, INCOMPLETE_KEY, complete_windows, user_outcomes_expr
from .io.validate import canonical

#: Default attribution window for every channel.
DEFAULT_WINDOW = "3D"
BASES = ("receipt", "click")
SHARES = ("last_touch", "every_touch")
PERIODS = ("D", "W", "M")


# ----------------------------------------------------------------------------- parameters
def no_open_signal() -> list[str]:
    """Channels that report no open (receipt-only, :mod:`crmlab.io.sources.channels`, including
    channels a shop declared): open rates are NaN for them and attribution is receipt-based."""
    return [c for c in channels.names() if "open" not in channels.signals(c)]


def no_click_signal() -> list[str]:
    """Channels that report no click (receipt-only ones): their deliveries are not in a click
    rate's denominator, as an open rate leaves out channels without an open signal."""
    return [c for c in channels.names() if "click" not in channels.signals(c)]


def _reports_clicks(m, tz: str):
    """A predicate builder: is a message's channel one whose deliveries a click rate divides by?

    Channels the registry gives a click signal, and receipt-only channels on which the data
    hold clicks after all (SMS or LMS with tracked short links): their clicks count, so their
    deliveries must too. Receipt-only channels without a single click (Kakao AlimTalk receipts)
    are left out of the denominator instead of diluting it. One small query on the messages
    (before any attribution join) finds the receipt-only channels with clicks."""
    silent = no_click_signal()
    if silent:
        with_clicks = m.filter(m.clicked_time.notnull() & m.channel.isin(silent)).select("channel").distinct()
        silent = [c for c in silent if c not in set(to_pandas(with_clicks, tz)["channel"])]
    return lambda t: ~t.channel.isin(silent) if silent else ibis.literal(True)


def parse_windows(windows) -> dict[str, pd.Timedelta]:
    """Normalise ``windows`` to ``{"default": Timedelta, <channel>: Timedelta, ...}``.

    ``None`` means 3 days for every channel; a single span applies to every channel; a
    mapping may name ``"default"`` and any registered channel (:func:`crmlab.io.sources.channels.names`).
    """
    if windows is None:
        return {"default": pd.Timedelta(DEFAULT_WINDOW)}
    if not isinstance(windows, Mapping):
        return {"default": duration(windows, "windows")}
    out = {"default": pd.Timedelta(DEFAULT_WINDOW)}
    for key, val in windows.items():
        if key != "default" and key not in channels.names():
            raise ValueError(f"windows key {key!r} is not a channel; allowed: 'default', "
                             + ", ".join(channels.names()))
        out[key] = duration(val, f"windows[{key!r}]")
    return out


def _window_end(anchor: ir.TimestampValue, channel: ir.StringValue, windows: dict[str, pd.Timedelta]):
    cases = [(channel == ch, anchor + _interval(td)) for ch, td in windows.items() if ch != "default"]
    default = anchor + _interval(windows["default"])
    return ibis.cases(*cases, else_=default) if cases else default


def _filter_as_of(t: ir.Table, column: str, as_of, tz: str) -> tuple[ir.Table, int]:
    """The one as_of cut (:func:`crmlab.io.engine.cut_as_of`), without the limit."""
    return cut_as_of(t, column, as_of, tz)[:2]


# ----------------------------------------------------------------------------- attribution
def _attribution_expr(m: ir.Table, o: ir.Table, windows: dict[str, pd.Timedelta], basis: str,
                      share: str) -> ir.Table:
    """Ibis expression: one row per credited (order, message) pair (see module docstring)."""
    no_open = m.channel.isin(no_open_signal())
    if basis == "receipt":
        anchor = m.delivered_time
        row_basis = ibis.literal("receipt")
    else:
        anchor = no_open.ifelse(m.delivered_time, m.clicked_time)
        row_basis = no_open.ifelse("receipt", "click")
    mm = m.select(message_id=m.message_id, m_user=m.user_id, campaign=m.campaign, channel=m.channel,
                  variant=m.variant, anchor_time=anchor, basis=row_basis)
    mm = mm.filter(mm.anchor_time.notnull())
    mm = mm.mutate(window_end=_window_end(mm.anchor_time, mm.channel, windows))
    oo = o.select(order_id=o.order_id, user_id=o.user_id, order_time=o.time, revenue=o.revenue)
    j = oo.join(mm, [oo.user_id == mm.m_user, oo.order_time >= mm.anchor_time,
                     oo.order_time < mm.window_end])
    j = j.select("order_id", "user_id", "order_time", "revenue", "message_id", "campaign", "channel",
                 "variant", "anchor_time", "basis")
    latest = [ibis.desc(j.anchor_time), ibis.desc(j.message_id)]
    w = ibis.window(group_by=[j.order_id, j.campaign], order_by=latest)
    j = j.mutate(_rank=ibis.row_number().over(w)).filter(lambda t: t._rank == 0).drop("_rank")
    if share == "last_touch":
        w2 = ibis.window(group_by=[j.order_id], order_by=[ibis.desc(j.anchor_time), ibis.desc(j.message_id)])
        j = j.mutate(_rank=ibis.row_number().over(w2)).filter(lambda t: t._rank == 0).drop("_rank")
    return j


def _prepare(messages: DataLike, orders: DataLike, as_of, tz: str):
    m = canonical(messages, "messages", tz=tz)
    o = canonical(orders, "orders", tz=tz)
    m, m_late = _filter_as_of(m, "sent_time", as_of, tz)
    o, o_late = _filter_as_of(o, "time", as_of, tz)
    if as_of is not None:
        # A delivery, click or order after as_of is not known yet.
        limit = ibis.literal(local_time(as_of, tz))
        m = m.mutate(delivered_time=ibis.ifelse(m.delivered_time <= limit, m.delivered_time, ibis.null("timestamp")),
                     clicked_time=ibis.ifelse(m.clicked_time <= limit, m.clicked_time, ibis.null("timestamp")),
                     opened_time=ibis.ifelse(m.opened_time <= limit, m.opened_time, ibis.null("timestamp")),
                     unsubscribed_time=ibis.ifelse(m.unsubscribed_time <= limit, m.unsubscribed_time,
                                                   ibis.null("timestamp")))
    return m, o, {"messages sent after as_of": m_late, "orders after as_of": o_late}


def attribute(messages: DataLike, orders: DataLike, *, windows=None, basis: str = "receipt",
              share: str = "last_touch", as_of=None, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Credit orders to the CRM messages that preceded them.

    Parameters
    ----------
    messages, orders : DataFrame, path or Ibis table
        Canonical ``messages`` and ``orders`` tables.
    windows : str, Timedelta or mapping, default ``{"default": "3D"}``
        Attribution window; a mapping gives per-channel windows, e.g.
        ``{"default": "3D", "sms": "1D", "email": "7D"}``.
    basis : {"receipt", "click"}
        Window opens at delivery (default) or at the click. Channels with no open signal
        (SMS, LMS, Kakao) are always receipt-based.
    share : {"last_touch", "every_touch"}
        How an order is shared between campaigns (see module docstring). Within one campaign
        an order is credited once, to the campaign's latest qualifying message.
    as_of : time, optional
        Messages sent and orders placed after ``as_of`` are left out (counted in
        ``attrs["excluded"]``); deliveries and clicks after ``as_of`` are treated as unknown.
    tz : time zone of naive times.

    Returns
    -------
    DataFrame
        One row per credited (order, campaign): ``order_id, user_id, order_time, revenue,
        message_id, campaign, channel, variant, anchor_time, basis, lag, share``. The window
        is half-open: ``anchor_time <= order_time < anchor_time + window``.
        ``attrs["excluded"]`` counts messages and orders after ``as_of``, messages without
        an anchor time (not delivered, or not clicked under click basis) and orders that fell
        in no window; ``attrs["share"]`` repeats ``share``.

    Notes
    -----
    Rule-based (not causal) attribution, as in the "view-through / click-through" windows of
    marketing analytics tools; for the causal effect of a campaign use
    :func:`crmlab.uplift.campaign_uplift` on its randomised control group.

    Complexity: an equi-join on ``user_id`` with the range condition, so
    O(sum over users of orders x messages of the user) — linear in the rows for bounded
    per-user counts — plus two window functions over the matched pairs.
    """
    basis = choice(basis, "basis", BASES)
    share = choice(share, "share", SHARES)
    win = parse_windows(windows)
    m, o, excluded = _prepare(messages, orders, as_of, tz)
    expr = _attribution_expr(m, o, win, basis, share)
    out = to_pandas(expr.order_by(["order_time", "order_id", "campaign"]), tz)
    out["lag"] = out["order_time"] - out["anchor_time"]
    out["share"] = share
    no_open = m.channel.isin(no_open_signal())
    anchor = m.delivered_time if basis == "receipt" else no_open.ifelse(m.delivered_time, m.clicked_time)
    counts = m.aggregate(no_anchor=anchor.isnull().ifelse(1, 0).sum()).execute()
    n_orders = int(o.count().execute())
    excluded["messages without anchor time (undelivered, or unclicked under click basis)"] = \
        int(counts["no_anchor"].fillna(0).iloc[0])
    excluded["orders in no attribution window"] = n_orders - int(out["order_id"].nunique())
    out.attrs["share"] = share
    return report_exclusions(out, excluded, "attribute")


# ----------------------------------------------------------------------------- performance
def _credits_per_message(m, o, win, basis, share):
    a = _attribution_expr(m, o, win, basis, share)
    return a.group_by(c_message_id=a.message_id).agg(c_orders=a.count(), c_revenue=a.revenue.sum())


def _rates(df: pd.DataFrame) -> pd.DataFrame:
    def div(a, b):
        a = df[a].astype(float)
        b = df[b].astype(float)
        return (a / b).where(b > 0)
    df["delivery_rate"] = div("delivered", "sent")
    df["open_rate"] = div("opened", "delivered_open_tracked")
    df["click_rate"] = div("clicked", "delivered_click_tracked")
    df["click_to_open"] = div("clicked_after_open", "opened")
    df["conversion_rate"] = div("converted", "delivered")
    df["revenue_per_recipient"] = div("revenue", "delivered")
    df["optout_rate"] = div("optouts", "delivered")
    return df


def message_performance(messages: DataLike, orders: DataLike | None = None, *,
                        by: Sequence[str] = ("campaign", "channel", "variant"), period: str | None = "W",
                        windows=None, basis: str = "receipt", share: str = "last_touch",
                        as_of=None, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Funnel of CRM messages per campaign, channel, variant and week, with named denominators.

    Parameters
    ----------
    messages : canonical ``messages`` table.
    orders : canonical ``orders`` table, optional
        When given, orders are attributed with :func:`attribute` (``windows``,
        ``basis``, ``share``) and conversions and revenue are filled in.
    by : columns of ``messages`` to break down by.
    period : {"D", "W", "M"} or None
        Period of ``sent_time`` (weeks start on Monday, local time); None for no breakdown.
    as_of : time, optional
        Messages sent after it are left out and reported in ``attrs["excluded"]``.

    Returns
    -------
    DataFrame
        ``by`` columns, ``period``, then counts — ``sent``, ``delivered``,
        ``delivered_open_tracked`` (delivered on channels that report opens),
        ``delivered_click_tracked`` (delivered on channels that report clicks: the registry's, and
        receipt-only ones on which the data hold clicks), ``recipients``
        (distinct users), ``opened`` (messages with an open, each counted once: unique opens),
        ``clicked`` (unique clicks), ``clicked_after_open``, ``converted`` (delivered messages
        credited with at least one order — the converting recipients when a user gets one
        message per campaign and period), ``orders``, ``revenue``, ``optouts`` — and rates:

        - ``delivery_rate`` = delivered / sent
        - ``open_rate`` = opened / delivered_open_tracked; NaN (never 0) where no delivered
          message has an open signal (SMS, LMS, Kakao AlimTalk/FriendTalk)
        - ``click_rate`` = clicked / delivered_click_tracked; NaN where no delivered message can
          report a click (receipt-only channels: SMS, LMS, Kakao), so a shop mixing push with
          Kakao does not read a diluted click rate
        - ``click_to_open`` = clicked_after_open / opened
        - ``conversion_rate`` = converted / delivered
        - ``revenue_per_recipient`` = revenue / delivered
        - ``optout_rate`` = optouts / delivered

        When the data hold no open (no click) at all, open and click-to-open rates (click
        rates) are NaN: the signal is missing, not zero. Without ``orders`` the conversion
        columns are NaN. ``attrs["share"]`` records the
        sharing rule: under ``"every_touch"`` revenue summed over campaigns double-counts.
    """
    basis = choice(basis, "basis", BASES)
    share = choice(share, "share", SHARES)
    if period is not None:
        choice(period, "period", PERIODS)
    win = parse_windows(windows)
    by = [by] if isinstance(by, str) else list(by)
    if orders is not None:
        m, o, excluded = _prepare(messages, orders, as_of, tz)
    else:
        m = canonical(messages, "messages", tz=tz)
        m, late = _filter_as_of(m, "sent_time", as_of, tz)
        excluded = {"messages sent after as_of": late}
        o = None
    bad = [c for c in by if c not in m.columns]
    if bad:
        raise ValueError(f"by={by!r}: {bad} not columns of messages; available: {list(m.columns)}")
    click_tracked = _reports_clicks(m, tz)
    if o is not None:
        cr = _credits_per_message(m, o, win, basis, share)
        m = m.left_join(cr, m.message_id == cr.c_message_id)
        m = m.mutate(c_orders=m.c_orders.fill_null(0), c_revenue=m.c_revenue.fill_null(0.0))
    else:
        m = m.mutate(c_orders=ibis.literal(0), c_revenue=ibis.literal(0.0))
    c_orders, c_revenue = m.c_orders, m.c_revenue
    keys = {c: m[c] for c in by}
    if period is not None:
        keys["period"] = m.sent_time.truncate(period)
    delivered = m.delivered_time.notnull()
    tracked = ~m.channel.isin(no_open_signal())
    opened = m.opened_time.notnull() & tracked
    clicked = m.clicked_time.notnull()

    def n(pred):
        return pred.ifelse(1, 0).sum()

    agg = m.group_by(**keys).agg(
        sent=m.count(),
        delivered=n(delivered),
        delivered_open_tracked=n(delivered & tracked),
        delivered_click_tracked=n(delivered & click_tracked(m)),
        recipients=m.user_id.nunique(),
        opened=n(opened),
        clicked=n(clicked),
        clicked_after_open=n(clicked & opened),
        converted=n(delivered & (c_orders > 0)),
        orders=c_orders.sum(),
        revenue=c_revenue.sum(),
        optouts=n(m.unsubscribed_time.notnull()),
        # every open and click signal, for the data-wide check below (summed over the groups:
        # one scan, instead of a second query that would redo the attribution join)
        _opens=m.opened_time.count(),
        _clicks=m.clicked_time.count(),
    )
    order = list(keys)
    df = to_pandas(agg.order_by(order), tz).reset_index(drop=True)
    signals = {"opens": int(df.pop("_opens").fillna(0).sum()), "clicks": int(df.pop("_clicks").fillna(0).sum())}
    for c in ("sent", "delivered", "delivered_open_tracked", "delivered_click_tracked", "recipients", "opened", "clicked",
              "clicked_after_open", "converted", "orders", "optouts"):
        df[c] = df[c].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0).astype(float)
    if o is None:
        for c in ("converted", "orders", "revenue"):
            df[c] = np.nan
    df = _rates(df)
    if int(signals["opens"]) == 0:  # the data hold no opens at all: unknown, not zero
        df["open_rate"] = np.nan
        df["click_to_open"] = np.nan
    if int(signals["clicks"]) == 0:
        df["click_rate"] = np.nan
        df["click_to_open"] = np.nan
    df.attrs["share"] = share
    df.attrs["basis"] = basis
    df.attrs["signals"] = signals  # data-wide opens and clicks (a roll-up of this frame needs them)
    return report_exclusions(df, excluded, "message_performance")


# ----------------------------------------------------------------------------- seeds' questions
def copy_test(messages: DataLike, orders: DataLike | None = None, *, campaign: str | Sequence[str] | None = None,
              variant: str = "personalised", control: str = "generic", assignments: DataLike | None = None,
              windows=None, basis: str = "receipt", alpha: float = 0.05, correction: str = "holm",
              as_of=None, incomplete: str = "exclude", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Compare two copy variants of a message: open rate and conversion rate, as ratios.

    Parameters
    ----------
    messages : canonical ``messages`` table; rows whose ``variant`` is ``variant`` or
        ``control`` (and whose campaign is in ``campaign``, when given) form the test.
    orders : canonical ``orders``, optional; needed for the conversion rate. Orders are
        attributed among the test's messages only (other campaigns do not compete for them),
        with ``windows`` and ``basis`` as in :func:`attribute`.
    variant, control : the variant compared and the reference (ratio = variant / control).
    assignments : canonical ``assignments``, optional
        When the copy variants were randomised (experiment named ``campaign``, arms
        ``variant`` and ``control``), the conversion rate is computed per *assigned user*
        from the assignments (intention to treat: an order in ``[assigned_time,
        assigned_time + window)``, undelivered messages included), which is the causal
        comparison; ``windows`` must then be a single span (default 3 days).
    alpha : significance level.
    incomplete : {"exclude", "keep"}, default "exclude"
        With ``assignments`` and ``as_of``: assigned users whose window has not ended by
        ``as_of`` are left out and counted (see :func:`crmlab.uplift.complete_windows`), or
        kept with the part of their window observed so far.

    Returns
    -------
    DataFrame with one row per metric (``open_rate`` = opened / delivered on channels with an
    open signal; ``conversion_rate`` = converted / delivered): ``metric, variant, control, n,
    n_control, successes, successes_control, estimate, estimate_control, abs_lift, abs_ci_low,
    abs_ci_high, rel_lift, rel_ci_low, rel_ci_high, p_value, status, reason, n_needed,
    family, correction, p_adjusted, verdict, method`` (``rel_lift`` is ``variant / control -
    1``, the name :class:`crmlab.abtest.Comparison` uses). The metrics are one family,
    corrected with ``correction`` (Holm by default; :func:`crmlab.abtest.with_family`).

    Notes
    -----
    Message-level two-proportion z-test (pooled p-value, unpooled Wald interval of the
    difference) and Katz's log interval for the ratio (Katz et al. 1978),
    :func:`crmlab.abtest.frequentist.proportion_test`. Open rate is not available (NaN row)
    when the test ran only on channels without open signal.
    """
    basis = choice(basis, "basis", BASES)
    incomplete = choice(incomplete, "incomplete", INCOMPLETE)
    choice(correction, "correction", CORRECTIONS)
    if not (0 < float(alpha) < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    m = canonical(messages, "messages", tz=tz)
    m, late = _filter_as_of(m, "sent_time", as_of, tz)
    sel = m.variant.isin([variant, control])
    if campaign is not None:
        sel &= m.campaign.isin([campaign] if isinstance(campaign, str) else list(campaign))
    m = m.filter(sel)
    perf = message_performance(m, orders, by=("variant",), period=None, windows=windows, basis=basis,
                               share="every_touch", as_of=as_of, tz=tz)
    arms = {r["variant"]: r for r in perf.to_dict("records")}
    for name, label in ((variant, "variant"), (control, "control")):
        if name not in arms:
            raise ValueError(f"{label}={name!r}: no such message variant; found {sorted(arms)}")
    t, c = arms[variant], arms[control]
    rows = []
    a_late = a_other = a_cut = None
    if assignments is not None and orders is not None:
        if not isinstance(campaign, str):
            raise ValueError(f"campaign={campaign!r}: name the experiment (one campaign) when assignments are given")
        win = parse_windows(windows)
        if len(win) > 1:
            raise ValueError(f"windows={windows!r}: give one span with assignments")
        a = canonical(assignments, "assignments", tz=tz)
        a, a_late = _filter_as_of(a, "assigned_time", as_of, tz)
        a = a.filter(a.experiment == campaign)
        a_other = int(a.filter(~a.variant.isin([variant, control])).count().execute())
        a = a.filter(a.variant.isin([variant, control]))
        o = canonical(orders, "orders", tz=tz)
        limit = local_time(as_of, tz) if as_of is not None else None
        if incomplete == "exclude":
            a, a_cut = complete_windows(a, win["default"], limit)
        pu = user_outcomes_expr(a.select("experiment", "user_id", "variant", "assigned_time"), o, win["default"],
                                limit)
        itt = to_pandas(pu.group_by("variant").agg(n=pu.count(), conv=pu.converted.sum()), tz)
        itt = {r["variant"]: r for r in itt.to_dict("records")}
        if variant in itt and control in itt:
            t = dict(t, itt_converted=itt[variant]["conv"], itt_n=itt[variant]["n"])
            c = dict(c, itt_converted=itt[control]["conv"], itt_n=itt[control]["n"])
    conv_cols = ("itt_converted", "itt_n") if "itt_n" in t else ("converted", "delivered")
    for metric, x, n in (("open_rate", "opened", "delivered_open_tracked"), ("conversion_rate",) + conv_cols):
        if orders is None and metric == "conversion_rate":
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            res = proportion_test(c[x], c[n], t[x], t[n], alpha=alpha)
        rows.append({"metric": metric, "variant": variant, "control": control, "n": int(t[n]),
                     "n_control": int(c[n]), "successes": int(t[x]), "successes_control": int(c[x]),
                     "estimate": float(res["estimate"]), "estimate_control": float(res["estimate_control"]),
                     "abs_lift": float(res["abs_lift"]), "abs_ci_low": float(res["abs_ci_low"]),
                     "abs_ci_high": float(res["abs_ci_high"]), "rel_lift": float(res["rel_lift"]),
                     "rel_ci_low": float(res["rel_ci_low"]), "rel_ci_high": float(res["rel_ci_high"]),
                     "p_value": float(res["p_value"]), "status": res["status"].item(),
                     "reason": res["reason"].item(), "n_needed": float(res["n_needed"]),
                     "method": "skewness-corrected z (Hall 1992); dual intervals"
                               + ("; per assigned user (ITT)" if n == "itt_n" else "; per delivered message")})
    # the test's metrics form one family: a verdict on either is corrected for both
    out = with_family(pd.DataFrame(rows), [], correction=correction, alpha=alpha)
    excluded = dict(perf.attrs.get("excluded", {}))
    excluded["messages sent after as_of"] = late
    if a_late is not None:
        excluded["assignments after as_of"] = a_late
        excluded["assignments to other arms"] = a_other
        if a_cut is not None:
            excluded[INCOMPLETE_KEY] = a_cut
    return report_exclusions(out, excluded, "copy_test")


#: Delay buckets of :func:`cart_reminder_by_delay`: (label, lower bound inclusive, upper exclusive).
DELAY_BUCKETS = (("<30 min", "0min", "30min"), ("30 min-2 h", "30min", "2h"), ("2-24 h", "2h", "24h"),
                 ("24-48 h", "24h", "48h"), (">48 h", "48h", None))


def cart_reminder_by_delay(events: DataLike, messages: DataLike | None, orders: DataLike, *,
                           campaign: str, assignments: DataLike | None = None, treatment: str = "treatment",
                           control: str = "control", event: str = "add_to_cart", window="3D",
                           alpha: float = 0.05, correction: str = "holm", as_of=None, incomplete: str = "exclude",
                           tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Conversion and revenue of cart reminders by delay after the abandonment.

    The *abandonment time* of a reminder is the start of the user's open cart: the earliest
    ``event`` (``add_to_cart``) at or before the send that follows the user's last order
    before the send. The delay (send minus abandonment) falls in :data:`DELAY_BUCKETS`
    (<30 min, 30 min-2 h, 2-24 h, 24-48 h, >48 h; lower bounds inclusive).

    Two modes:

    - ``assignments`` given (recommended, causal): units are the users randomised in the
      experiment named ``campaign``; the send is ``assigned_time`` (virtual for control
      users) and a unit converts with an order in ``[assigned_time, assigned_time + window)``
      (intention to treat). Per bucket the treatment and control rates and their difference
      are reported — the uplift of a reminder sent with that delay.
    - otherwise units are the campaign's messages; the delay is measured to ``sent_time`` and
      a message converts with an order of the user in ``[delivered_time, delivered_time +
      window)`` (undelivered messages count as not converted).

    With assignments and ``as_of``, users whose window has not ended by ``as_of`` are left out
    and counted (``incomplete="exclude"``, default; :func:`crmlab.uplift.complete_windows`) or
    kept with the part of the window observed so far (``"keep"``).

    Returns
    -------
    DataFrame per bucket: ``delay, n, converted, conversion_rate`` (= converted / n) with
    Wilson ``ci_low, ci_high`` (Wilson 1927; :func:`crmlab.abtest.frequentist.wilson_interval`), ``revenue``,
    ``revenue_per_unit``; with assignments also ``n_control, converted_control,
    conversion_rate_control, abs_lift, abs_ci_low, abs_ci_high`` (Newcombe's hybrid score
    interval, Newcombe 1998) and ``p_value`` (pooled two-proportion z-test,
    :func:`crmlab.abtest.frequentist.proportion_test`), ``status``, ``reason``, and, with the
    delay buckets as one family corrected with ``correction`` (Holm by default), ``family,
    correction, p_adjusted, verdict``. Units without a preceding cart event are counted in
    ``attrs["excluded"]``.
    """
    incomplete = choice(incomplete, "incomplete", INCOMPLETE)
    choice(correction, "correction", CORRECTIONS)
    if not (0 < float(alpha) < 1):
        raise ValueError(f"alpha={alpha!r}: must be between 0 and 1")
    win = duration(window, "window")
    o = canonical(orders, "orders", tz=tz)
    o, o_late = _filter_as_of(o, "time", as_of, tz)
    excluded = {"orders after as_of": o_late}
    if assignments is not None:
        a = canonical(assignments, "assignments", tz=tz)
        a, late = _filter_as_of(a, "assigned_time", as_of, tz)
        excluded["assignments after as_of"] = late
        a = a.filter(a.experiment == campaign)
        excluded["assignments to other arms"] = int(a.filter(~a.variant.isin([treatment, control])).count().execute())
        a = a.filter(a.variant.isin([treatment, control]))
        if incomplete == "exclude":
            a, excluded[INCOMPLETE_KEY] = complete_windows(a, win, None if as_of is None else local_time(as_of, tz))
        u = a.select(unit=a.user_id.cast("string"), u_user=a.user_id, arm=a.variant, send=a.assigned_time,
                     start=a.assigned_time)
    else:
        if messages is None:
            raise ValueError("messages=None: give messages, or assignments for the randomised analysis")
        m = canonical(messages, "messages", tz=tz)
        m, late = _filter_as_of(m, "sent_time", as_of, tz)
        excluded["messages sent after as_of"] = late
        m = m.filter(m.campaign == campaign)
        u = m.select(unit=m.message_id.cast("string"), u_user=m.user_id, arm=ibis.literal(treatment),
                     send=m.sent_time, start=m.delivered_time)
    if as_of is not None:
        u = u.mutate(start=ibis.ifelse(u.start <= ibis.literal(local_time(as_of, tz)), u.start,
                                       ibis.null("timestamp")))
    # the user's last order before the send, then the earliest cart event after it
    ob = o.select(b_user=o.user_id, b_time=o.time)
    jb = u.join(ob, [u.u_user == ob.b_user, ob.b_time <= u.send])
    last_buy = jb.group_by(lb_unit=jb.unit).agg(last_buy=jb.b_time.max())
    u2 = u.left_join(last_buy, u.unit == last_buy.lb_unit).drop("lb_unit")
    e = canonical(events, "events", tz=tz)
    e = e.filter(e.event == event).select(e_user=e.user_id, e_time=e.time)
    je = u2.join(e, [u2.u_user == e.e_user, e.e_time <= u2.send,
                     u2.last_buy.isnull() | (e.e_time > u2.last_buy)])
    cart = je.group_by(c_unit=je.unit).agg(abandoned_time=je.e_time.min())
    # conversion in [start, start + window)
    oc = o.select(k_user=o.user_id, k_time=o.time, k_revenue=o.revenue)
    jo = u.join(oc, [u.u_user == oc.k_user, oc.k_time >= u.start,
                     oc.k_time < u.start + _interval(win)])
    conv = jo.group_by(v_unit=jo.unit).agg(v_orders=jo.k_time.count(), v_revenue=jo.k_revenue.sum())
    uu = u.left_join(cart, u.unit == cart.c_unit).drop("c_unit")
    uu = uu.left_join(conv, uu.unit == conv.v_unit).drop("v_unit")
    secs = uu.send.epoch_seconds() - uu.abandoned_time.epoch_seconds()
    cases = []
    for label, lo, hi in DELAY_BUCKETS:
        cond = secs >= int(pd.Timedelta(lo).total_seconds())
        if hi is not None:
            cond &= secs < int(pd.Timedelta(hi).total_seconds())
        cases.append((cond, ibis.literal(label)))
    uu = uu.mutate(delay=ibis.cases(*cases, else_=ibis.null("string")))
    agg = uu.group_by(["delay", "arm"]).agg(
        n=uu.count(), converted=(uu.v_orders.fill_null(0) > 0).ifelse(1, 0).sum(),
        revenue=uu.v_revenue.fill_null(0.0).sum())
    df = to_pandas(agg, tz)
    excluded[f"units without a preceding {event}"] = int(df.loc[df["delay"].isna(), "n"].sum())
    df = df[df["delay"].notna()]
    labels = [b[0] for b in DELAY_BUCKETS]

    def arm_frame(name):
        f = df[df["arm"] == name].set_index("delay")[["n", "converted", "revenue"]]
        f = f.reindex(labels).fillna(0)
        f[["n", "converted"]] = f[["n", "converted"]].astype("int64")
        return f

    out = arm_frame(treatment)
    nn = out["n"].astype(float)
    out["conversion_rate"] = (out["converted"] / nn).where(nn > 0)
    out["ci_low"], out["ci_high"] = wilson_interval(out["converted"], out["n"], alpha)
    out["revenue_per_unit"] = (out["revenue"] / nn).where(nn > 0)
    out = out[["n", "converted", "conversion_rate", "ci_low", "ci_high", "revenue", "revenue_per_unit"]]
    if assignments is not None:
        ctl = arm_frame(control)
        out["n_control"] = ctl["n"]
        out["converted_control"] = ctl["converted"]
        out["conversion_rate_control"] = (ctl["converted"] / ctl["n"].astype(float)).where(ctl["n"] > 0)
        out["abs_lift"] = out["conversion_rate"] - out["conversion_rate_control"]
        res = proportion_test(ctl["converted"], ctl["n"], out["converted"], out["n"], alpha=alpha)
        out["abs_ci_low"], out["abs_ci_high"], out["p_value"] = res["abs_ci_low"], res["abs_ci_high"], res["p_value"]
        out["status"], out["reason"] = res["status"], res["reason"]
        out = with_family(out, [], correction=correction, alpha=alpha)
    out = out.rename_axis("delay").reset_index()
    return report_exclusions(out, excluded, "cart_reminder_by_delay")


def fatigue(messages: DataLike, orders: DataLike | None = None, *, period: str = "W", max_messages: int = 7,
            alpha: float = 0.05, as_of=None, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Message pressure versus opt-outs and purchases.

    For every user and period (Monday-start local weeks by default) with at least one
    message: how many messages were *sent* to the user (all campaigns, advertising or not),
    how many opt-outs they caused, and whether the user ordered in that period.

    Parameters
    ----------
    period : {"D", "W", "M"}
    max_messages : counts at or above it are pooled into one row ("7+").
    alpha : level of the Wilson intervals of ``optouts_per_delivered_ad``.

    Returns
    -------
    DataFrame per messages-per-period count: ``messages_per_period`` (label), ``n_messages``
    (its lower bound), ``user_periods``, ``messages`` (sent), ``delivered_ads`` (delivered
    advertising messages), ``optouts`` (messages with an opt-out), ``optout_rate`` (=
    user-periods with an opt-out / user_periods), ``optouts_per_delivered_ad`` (= optouts /
    delivered_ads, with Wilson ``ci_low, ci_high``; Wilson 1927, statsmodels
    ``proportion_confint``), ``buyers`` (user-periods with an order placed in the period) and
    ``conversion_rate`` (= buyers / user_periods; NaN without orders). Descriptive, not
    causal: heavy buyers also get more messages.
    """
    choice(period, "period", PERIODS)
    if int(max_messages) < 2:
        raise ValueError(f"max_messages={max_messages!r}: must be at least 2")
    if orders is not None:
        m, o, excluded = _prepare(messages, orders, as_of, tz)
    else:
        m = canonical(messages, "messages", tz=tz)
        m, late = _filter_as_of(m, "sent_time", as_of, tz)
        o, excluded = None, {"messages sent after as_of": late}
    m = m.mutate(_p=m.sent_time.truncate(period))
    delivered_ad = m.delivered_time.notnull() & m.is_ad.fill_null(False)
    uw = m.group_by(["user_id", "_p"]).agg(
        n_messages=m.count(), delivered_ads=delivered_ad.ifelse(1, 0).sum(),
        optouts=(m.unsubscribed_time.notnull() & delivered_ad).ifelse(1, 0).sum())
    if o is not None:
        ob = o.group_by(b_user=o.user_id, b_p=o.time.truncate(period)).agg(_orders=o.count())
        uw = uw.left_join(ob, [uw.user_id == ob.b_user, uw._p == ob.b_p])
        uw = uw.mutate(bought=(uw._orders.fill_null(0) > 0).ifelse(1, 0))
    else:
        uw = uw.mutate(bought=ibis.literal(0))
    cap = int(max_messages)
    uw = uw.mutate(bucket=ibis.least(uw.n_messages, cap))
    agg = uw.group_by("bucket").agg(user_periods=uw.count(), messages=uw.n_messages.sum(),
                                    delivered_ads=uw.delivered_ads.sum(), optouts=uw.optouts.sum(),
                                    opted_out=(uw.optouts > 0).ifelse(1, 0).sum(), buyers=uw.bought.sum())
    df = to_pandas(agg.order_by("bucket"), tz).rename(columns={"bucket": "n_messages"})
    df["messages_per_period"] = [f"{k}+" if k >= cap else str(k) for k in df["n_messages"]]
    up = df["user_periods"].astype(float)
    da = df["delivered_ads"].astype(float)
    df["optout_rate"] = df["opted_out"] / up
    df["optouts_per_delivered_ad"] = (df["optouts"] / da).where(da > 0)
    df["ci_low"], df["ci_high"] = wilson_interval(df["optouts"], df["delivered_ads"], alpha)
    df["conversion_rate"] = df["buyers"] / up if o is not None else np.nan
    if o is None:
        df["buyers"] = np.nan
    df = df[["messages_per_period", "n_messages", "user_periods", "messages", "delivered_ads", "optouts",
             "optout_rate", "optouts_per_delivered_ad", "ci_low", "ci_high", "buyers", "conversion_rate"]]
    return report_exclusions(df, excluded, "fatigue")


WEEKDAYS_KO = ("월", "화", "수", "목", "금", "토", "일")


def send_time_heatmap(messages: DataLike, orders: DataLike | None = None, *, windows=None,
                      basis: str = "receipt", share: str = "last_touch", as_of=None,
                      tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Click and conversion rates by local send hour and weekday.

    Returns
    -------
    DataFrame per (``weekday`` 0=Monday..6, ``weekday_name`` 월..일, ``hour`` 0-23) with at
    least one message: ``sent, delivered, delivered_click_tracked, clicked, click_rate``
    (= clicked / delivered_click_tracked, NaN where no delivered message can report a click),
    ``converted, conversion_rate`` (= converted / delivered; attribution as in
    :func:`message_performance`).
    """
    choice(basis, "basis", BASES)
    choice(share, "share", SHARES)
    m_perf = canonical(messages, "messages", tz=tz)
    m_perf = m_perf.mutate(weekday=m_perf.sent_time.day_of_week.index(), hour=m_perf.sent_time.hour())
    perf = message_performance(m_perf, orders, by=("weekday", "hour"), period=None, windows=windows,
                               basis=basis, share=share, as_of=as_of, tz=tz)
    perf.insert(1, "weekday_name", [WEEKDAYS_KO[int(w)] for w in perf["weekday"]])
    cols = ["weekday", "weekday_name", "hour", "sent", "delivered", "delivered_click_tracked", "clicked",
            "click_rate", "converted", "conversion_rate"]
    out = perf[cols].sort_values(["weekday", "hour"]).reset_index(drop=True)
    out.attrs = perf.attrs
    return out


def plot_send_time_heatmap(heatmap: pd.DataFrame, metric: str = "click_rate", ax=None):
    """Heatmap of ``metric`` (a column of :func:`send_time_heatmap`) by weekday and hour."""
    if metric not in heatmap.columns:
        raise ValueError(f"metric={metric!r}: not a column; available: {list(heatmap.columns)}")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from .plotting import setup
    setup()
    grid = heatmap.pivot_table(index="weekday", columns="hour", values=metric, aggfunc="first")
    grid = grid.reindex(index=range(7), columns=range(24))
    grid.index = list(WEEKDAYS_KO)
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.8))
    sns.heatmap(grid, ax=ax, cmap="viridis", cbar_kws={"label": metric})
    ax.set_xlabel("발송 시각 (hour)")
    ax.set_ylabel("요일")
    ax.set_title(f"{metric} by send time")
    return ax


def plot_fatigue(frame: pd.DataFrame, ax=None):
    """Opt-out and conversion rate against messages per period (frame from :func:`fatigue`)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from .plotting import setup
    setup()
    long = frame.melt(id_vars="messages_per_period", value_vars=["optout_rate", "conversion_rate"],
                      var_name="rate", value_name="value")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=long, x="messages_per_period", y="value", hue="rate", marker="o", ax=ax, sort=False)
    ax.set_xlabel("messages per user per period")
    ax.set_ylabel("rate")
    return ax
