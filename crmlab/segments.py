"""Behaviour segments: who is exploring, comparing, lapsing, abandoning carts, hunting discounts.

Each function returns **one row per user** with the evidence (times, counts) that put the user
in the segment, so a message can be targeted and an analyst can check why. Thresholds are
parameters. Heavy work runs in the engine (Ibis), one pass of window functions per user's
events: no step compares a user's events pairwise.

| segment | rule (defaults) |
|---|---|
| explorer | viewed a product for at least ``min_dwell`` (3 min; dwell = time to the next event in the same session) and never added to cart |
| comparer | an ``add_to_cart`` not followed by a purchase within ``window`` (24 h) |
| churn risk | no visit or purchase for longer than the customer's own repurchase cycle (median gap, times ``factor``); one-time buyers: a fixed lapse (60 days) |
| lifecycle | new, active, at risk, churned, reactivated (see :func:`lifecycle`) |
| cart abandonment | last add-to-cart or checkout not followed by a purchase: left at ``cart`` or at ``checkout`` |
| price sensitivity | share of orders with a discount or coupon |
| category affinity | top category by views and by purchases |
"""
from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .io.checks import duration
from .io.engine import DataLike, cut_as_of, report_exclusions, to_pandas, zoned_time
from .io.schema import DEFAULT_TZ
from .io.validate import canonical


def _seconds(a: ir.TimestampValue, b: ir.TimestampValue) -> ir.FloatingValue:
    """b - a in seconds, portable across backends."""
    return (b.epoch_seconds() - a.epoch_seconds()).cast("float64")


def _cut(t: ir.Table, col: str, as_of, tz: str) -> tuple[ir.Table, int, pd.Timestamp]:
    """:func:`crmlab.io.engine.cut_as_of`, with the latest time as the default ``as_of``."""
    t, n_after, limit = cut_as_of(t, col, as_of, tz)
    if limit is None:
        limit = pd.Timestamp(t[col].max().execute())
    return t, n_after, limit


def _with_sessions(events: ir.Table, timeout: pd.Timedelta) -> ir.Table:
    """Events with a ``_session`` key: the given session_id where every event has one, else
    derived from inactivity exactly as :func:`crmlab.sessions.sessionize` does."""
    from .sessions import _derive_sessions
    n_missing = int(events.filter(events.session_id.isnull()).count().execute())
    e = events if n_missing == 0 else _derive_sessions(events, timeout)
    return e.mutate(_session=e.session_id.cast("string"))


# ---------------------------------------------------------------------------- explorers
def explorers(events: DataLike, *, min_dwell="3min", timeout="30min", as_of=None,
              tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Users who look long at products but never add to cart.

    Dwell of an event is the time to the user's next event in the same session; the last
    event of a session has no dwell (unknown, never counted as long). An explorer has at
    least one ``product_view`` with dwell >= ``min_dwell`` and no ``add_to_cart`` up to
    ``as_of``.

    Returns one row per explorer: ``user_id``, ``long_views`` (product views with a long
    dwell), ``product_views``, ``max_dwell_seconds``, ``first_long_view_time``,
    ``last_long_view_time``. ``attrs['excluded']`` counts events after ``as_of``.
    """
    dwell_min = duration(min_dwell, "min_dwell").total_seconds()
    e = canonical(events, "events", tz=tz)
    e, n_after, _ = _cut(e, "time", as_of, tz)
    e = _with_sessions(e, duration(timeout, "timeout"))
    w = ibis.window(group_by=[e.user_id, e._session], order_by=[e.time])
    e = e.mutate(_dwell=_seconds(e.time, e.time.lead().over(w)))
    long_view = (e.event == "product_view") & (e._dwell >= dwell_min)
    per_user = e.group_by("user_id").aggregate(
        long_views=long_view.ifelse(1, 0).sum(),
        product_views=(e.event == "product_view").ifelse(1, 0).sum(),
        carts=(e.event == "add_to_cart").ifelse(1, 0).sum(),
        max_dwell_seconds=(e.event == "product_view").ifelse(e._dwell, ibis.null()).max(),
        first_long_view_time=long_view.ifelse(e.time, ibis.null()).min(),
        last_long_view_time=long_view.ifelse(e.time, ibis.null()).max(),
    )
    res = per_user.filter((per_user.long_views > 0) & (per_user.carts == 0)).drop("carts")
    out = to_pandas(res.order_by("user_id"), tz)
    return report_exclusions(out.reset_index(drop=True), {"events after as_of": n_after}, "explorers")


# ---------------------------------------------------------------------------- comparers
def _purchase_times(events: ir.Table, orders: DataLike | None, tz: str) -> ir.Table:
    p = events.filter(events.event == "purchase").select("user_id", "time")
    if orders is not None:
        o = canonical(orders, "orders", tz=tz).select("user_id", "time")
        p = p.union(o, distinct=True)
    return p


def comparers(events: DataLike, orders: DataLike | None = None, *, window="24h", as_of=None,
              tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Users who added to cart and did not buy within ``window`` (24 h) of the addition.

    A purchase is a ``purchase`` event, or an order when ``orders`` is given. An addition
    counts when no purchase falls in ``[add time, add time + window]``. Additions less than
    ``window`` before ``as_of`` are undecided (the user may still buy): they are excluded and
    counted in ``attrs['excluded']``.

    Implementation: the next purchase after each addition is found with one ordered window
    over the user's additions and purchases (a forward "next purchase time"), not a join.

    Returns one row per comparer: ``user_id``, ``adds`` (decided additions),
    ``unbought_adds``, ``first_unbought_add_time``, ``last_unbought_add_time``.
    """
    span = duration(window, "window").total_seconds()
    e = canonical(events, "events", tz=tz)
    e, n_after, limit = _cut(e, "time", as_of, tz)
    purchases = _purchase_times(e, orders, tz)
    if orders is not None:
        purchases = purchases.filter(purchases.time <= ibis.literal(limit))
    adds = e.filter(e.event == "add_to_cart").select("user_id", "time")
    both = adds.mutate(_add=ibis.literal(1)).union(purchases.mutate(_add=ibis.literal(0)))
    # Next purchase at or after each addition: minimum purchase time over the rows that follow
    # in time order; at the same instant additions sort first, so a purchase at the very
    # instant of the addition counts as following it.
    w = ibis.window(group_by=both.user_id, order_by=[both.time, ibis.desc(both._add)], following=(0, None))
    both = both.mutate(_next_purchase=(both._add == 0).ifelse(both.time, ibis.null()).min().over(w))
    a = both.filter(both._add == 1)
    a = a.mutate(_gap=_seconds(a.time, a._next_purchase))
    decided = _seconds(a.time, ibis.literal(limit)) >= span
    undecided = int(a.filter(~decided & (a._gap.isnull() | (a._gap > span))).count().execute())
    a = a.filter(decided | (a._gap <= span))
    unbought = a._gap.isnull() | (a._gap > span)
    per_user = a.group_by("user_id").aggregate(
        adds=a.count(),
        unbought_adds=unbought.ifelse(1, 0).sum(),
        first_unbought_add_time=unbought.ifelse(a.time, ibis.null()).min(),
        last_unbought_add_time=unbought.ifelse(a.time, ibis.null()).max(),
    )
    out = to_pandas(per_user.filter(per_user.unbought_adds > 0).order_by("user_id"), tz)
    return report_exclusions(out.reset_index(drop=True),
                             {"events after as_of": n_after, "additions still inside the window": undecided},
                             "comparers")


# ---------------------------------------------------------------------------- churn risk
def churn_risk(orders: DataLike, events: DataLike | None = None, *, as_of=None, factor: float = 1.0,
               lapse_days: float = 60, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Customers who stayed away longer than their own repurchase cycle.

    A repeat buyer is at risk when the days since the last visit or purchase exceed
    ``factor`` × their median gap between purchases (:func:`crmlab.cohort.repurchase_cycle`);
    a one-time buyer when they exceed ``lapse_days``. A visit is any event. Customers without
    orders are not scored (they have no cycle) and are counted in ``attrs['excluded']``
    when events are given.

    Returns one row per customer at risk: ``user_id``, ``n_purchases``, ``last_order_time``,
    ``last_visit_time``, ``days_inactive``, ``cycle_days`` (NaN for one-time buyers),
    ``threshold_days``, ``overdue_days`` (days_inactive - threshold_days), ``rule``
    (``own cycle`` or ``fixed lapse``).
    """
    if factor <= 0 or lapse_days <= 0:
        raise ValueError(f"factor={factor} and lapse_days={lapse_days} must be positive")
    from .cohort import repurchase_cycle
    cyc = repurchase_cycle(orders, as_of=as_of, tz=tz)
    now = cyc.attrs["as_of"]
    excluded = dict(cyc.attrs.get("excluded", {}))
    cyc = cyc.rename(columns={"last_time": "last_order_time"})
    cyc["last_visit_time"] = pd.NaT
    if events is not None:
        e = canonical(events, "events", tz=tz)
        e, n_after, _ = _cut(e, "time", now, tz)
        excluded["events after as_of"] = n_after
        visits = to_pandas(e.group_by("user_id").aggregate(last_visit_time=e.time.max()), tz)
        excluded["visitors without orders"] = int((~visits["user_id"].isin(cyc["user_id"])).sum())
        cyc = cyc.drop(columns="last_visit_time").merge(visits, on="user_id", how="left")
    last = cyc[["last_order_time", "last_visit_time"]].max(axis=1)
    cyc["days_inactive"] = (now - last) / pd.Timedelta(days=1)
    cyc["cycle_days"] = cyc["median_gap_days"]
    own = cyc["cycle_days"].notna() & (cyc["cycle_days"] > 0)
    cyc["threshold_days"] = np.where(own, factor * cyc["cycle_days"], lapse_days)
    cyc["overdue_days"] = cyc["days_inactive"] - cyc["threshold_days"]
    cyc["rule"] = np.where(own, "own cycle", "fixed lapse")
    out = cyc.loc[cyc["overdue_days"] > 0, ["user_id", "n_purchases", "last_order_time", "last_visit_time",
                                            "days_inactive", "cycle_days", "threshold_days", "overdue_days", "rule"]]
    out = out.sort_values("overdue_days", ascending=False).reset_index(drop=True)
    out.attrs["as_of"] = now
    return report_exclusions(out, excluded, "churn_risk")


# ---------------------------------------------------------------------------- lifecycle
LIFECYCLE_STAGES = ("new", "active", "reactivated", "at risk", "churned")


def lifecycle(orders: DataLike, *, as_of=None, new_days: float = 30, active_days: float = 60,
              churn_days: float = 120, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Lifecycle stage of every customer with an order, at ``as_of``.

    Rules, checked in this order (each customer gets exactly one stage):

    - ``new``: first order within the last ``new_days``;
    - ``reactivated``: ordered within the last ``active_days`` after a gap of more than
      ``churn_days`` between two consecutive orders (came back after having churned);
    - ``active``: last order within the last ``active_days``;
    - ``at risk``: last order between ``active_days`` and ``churn_days`` ago;
    - ``churned``: last order more than ``churn_days`` ago.

    Returns ``user_id``, ``stage``, ``first_order_time``, ``last_order_time``,
    ``days_since_last``, ``longest_gap_days`` (largest gap between consecutive orders ending
    within the last ``active_days``), ``n_orders``.
    """
    if not (0 < new_days and 0 < active_days < churn_days):
        raise ValueError(f"need 0 < new_days and 0 < active_days < churn_days; got new_days={new_days}, "
                         f"active_days={active_days}, churn_days={churn_days}")
    o = canonical(orders, "orders", tz=tz)
    o, n_after, limit = _cut(o, "time", as_of, tz)
    now = ibis.literal(limit)
    w = ibis.window(group_by=o.user_id, order_by=o.time)
    o = o.mutate(_gap=_seconds(o.time.lag().over(w), o.time) / 86400.0,
                 _age=_seconds(o.time, now) / 86400.0)
    recent_gap = (o._age <= active_days).ifelse(o._gap, ibis.null())
    per = o.group_by("user_id").aggregate(
        first_order_time=o.time.min(), last_order_time=o.time.max(), n_orders=o.count(),
        longest_gap_days=recent_gap.max())
    out = to_pandas(per.order_by("user_id"), tz)
    now_ts = zoned_time(limit, tz)
    out["days_since_last"] = (now_ts - out["last_order_time"]) / pd.Timedelta(days=1)
    first_age = (now_ts - out["first_order_time"]) / pd.Timedelta(days=1)
    stage = np.select(
        [first_age <= new_days,
         (out["days_since_last"] <= active_days) & (out["longest_gap_days"] > churn_days),
         out["days_since_last"] <= active_days,
         out["days_since_last"] <= churn_days],
        ["new", "reactivated", "active", "at risk"], default="churned")
    out.insert(1, "stage", pd.Categorical(stage, categories=LIFECYCLE_STAGES))
    out = out[["user_id", "stage", "first_order_time", "last_order_time", "days_since_last",
               "longest_gap_days", "n_orders"]]
    out.attrs["as_of"] = now_ts
    return report_exclusions(out, {"orders after as_of": n_after}, "lifecycle")


# ---------------------------------------------------------------------------- cart abandonment
def cart_abandonment(events: DataLike, orders: DataLike | None = None, *, window="24h", as_of=None,
                     tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Where users left: at the cart or at checkout.

    For each user the latest ``add_to_cart`` or ``begin_checkout`` is looked at. If no
    purchase follows it within ``window``, the user abandoned: ``stage`` is ``checkout`` when a
    ``begin_checkout`` happened at or after their latest ``add_to_cart``, else ``cart``. Users
    whose latest cart action is less than ``window`` before ``as_of`` are undecided, excluded
    and counted.

    Returns one row per abandoner: ``user_id``, ``stage``, ``abandoned_time`` (the latest
    cart or checkout action), ``last_add_time``, ``last_checkout_time``, ``adds``.
    """
    span = duration(window, "window").total_seconds()
    e = canonical(events, "events", tz=tz)
    e, n_after, limit = _cut(e, "time", as_of, tz)
    is_add = e.event == "add_to_cart"
    is_co = e.event == "begin_checkout"
    cart = e.group_by("user_id").aggregate(
        last_add_time=is_add.ifelse(e.time, ibis.null()).max(),
        last_checkout_time=is_co.ifelse(e.time, ibis.null()).max(),
        adds=is_add.ifelse(1, 0).sum())
    cart = cart.filter(cart.last_add_time.notnull() | cart.last_checkout_time.notnull())
    cart = cart.mutate(abandoned_time=ibis.greatest(cart.last_add_time, cart.last_checkout_time))
    p = _purchase_times(e, orders, tz)
    p = p.filter(p.time <= ibis.literal(limit))
    j = cart.left_join(p, [cart.user_id == p.user_id, p.time >= cart.abandoned_time])
    j = j.group_by([cart.user_id, "abandoned_time", "last_add_time", "last_checkout_time", "adds"]).aggregate(
        _next_purchase=j.time.min())
    j = j.mutate(_gap=_seconds(j.abandoned_time, j._next_purchase),
                 _room=_seconds(j.abandoned_time, ibis.literal(limit)))
    bought = j._gap.notnull() & (j._gap <= span)
    undecided = int(j.filter(~bought & (j._room < span)).count().execute())
    ab = j.filter(~bought & (j._room >= span))
    ab = ab.mutate(stage=(ab.last_checkout_time.notnull()
                          & (ab.last_add_time.isnull() | (ab.last_checkout_time >= ab.last_add_time)))
                   .ifelse("checkout", "cart"))
    out = to_pandas(ab.select("user_id", "stage", "abandoned_time", "last_add_time", "last_checkout_time", "adds")
                    .order_by("user_id"), tz)
    return report_exclusions(out.reset_index(drop=True),
                             {"events after as_of": n_after, "carts still inside the window": undecided},
                             "cart_abandonment")


# ---------------------------------------------------------------------------- price sensitivity
def price_sensitivity(orders: DataLike, *, threshold: float = 0.5, min_orders: int = 2, as_of=None,
                      tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Share of each customer's orders bought with a discount (> 0) or a coupon.

    ``price_sensitive`` is true when the share is at least ``threshold`` and the customer has
    at least ``min_orders`` orders (fewer orders say too little; they get a share but
    ``price_sensitive`` false). Returns ``user_id``, ``orders``, ``discounted_orders``,
    ``discount_share``, ``mean_discount``, ``price_sensitive``, for every customer.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold} must be in (0, 1]")
    o = canonical(orders, "orders", tz=tz)
    o, n_after, _ = _cut(o, "time", as_of, tz)
    disc = (o.discount.fill_null(0) > 0) | (o.coupon.notnull() & (o.coupon.cast("string") != ""))
    per = o.group_by("user_id").aggregate(
        orders=o.count(), discounted_orders=disc.ifelse(1, 0).sum(),
        mean_discount=o.discount.fill_null(0).mean())
    out = to_pandas(per.order_by("user_id"), tz)
    out["discount_share"] = out["discounted_orders"] / out["orders"]
    out["price_sensitive"] = (out["discount_share"] >= threshold) & (out["orders"] >= min_orders)
    out = out[["user_id", "orders", "discounted_orders", "discount_share", "mean_discount", "price_sensitive"]]
    return report_exclusions(out, {"orders after as_of": n_after}, "price_sensitivity")


# ---------------------------------------------------------------------------- category affinity
def category_affinity(events: DataLike, orders: DataLike | None = None, *, as_of=None,
                      tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Each user's top category by product views and by purchases.

    Views are ``product_view`` events with a category; purchases are ``purchase`` events with
    a category, or order rows with a ``category`` when ``orders`` is given. Ties go to the
    alphabetically first category (stated so results are reproducible). Returns ``user_id``,
    ``top_view_category``, ``view_share`` (its share of the user's categorised views),
    ``views``, ``top_purchase_category``, ``purchase_share``, ``purchases``.
    Events without a category are counted in ``attrs['excluded']``.
    """
    e = canonical(events, "events", tz=tz)
    e, n_after, limit = _cut(e, "time", as_of, tz)
    n_nocat = int(e.filter(e.event.isin(["product_view", "purchase"]) & e.category.isnull()).count().execute())

    def top(t: ir.Table, prefix: str, count_name: str) -> ir.Table:
        c = t.group_by(["user_id", "category"]).aggregate(_n=t.count())
        w = ibis.window(group_by=c.user_id, order_by=[ibis.desc(c._n), c.category])
        c = c.mutate(_rank=ibis.row_number().over(w), _total=c._n.sum().over(ibis.window(group_by=c.user_id)))
        c = c.filter(c._rank == 0)
        return c.select("user_id", **{f"top_{prefix}_category": c.category,
                                      f"{prefix}_share": c._n.cast("float64") / c._total,
                                      count_name: c._total})

    views = e.filter((e.event == "product_view") & e.category.notnull())
    if orders is not None:
        o = canonical(orders, "orders", tz=tz)
        buys = o.filter((o.time <= ibis.literal(limit)) & o.category.notnull()).select("user_id", "category")
    else:
        buys = e.filter((e.event == "purchase") & e.category.notnull()).select("user_id", "category")
    tv = top(views.select("user_id", "category"), "view", "views")
    tp = top(buys, "purchase", "purchases")
    j = tv.outer_join(tp, tv.user_id == tp.user_id)
    j = j.select(user_id=ibis.coalesce(j.user_id, j.user_id_right),
                 top_view_category=j.top_view_category, view_share=j.view_share, views=j.views,
                 top_purchase_category=j.top_purchase_category, purchase_share=j.purchase_share,
                 purchases=j.purchases)
    out = to_pandas(j.order_by("user_id"), tz)
    for c in ("views", "purchases"):
        out[c] = out[c].fillna(0).astype("int64")
    return report_exclusions(out, {"events after as_of": n_after, "views or purchases without category": n_nocat},
                             "category_affinity")
