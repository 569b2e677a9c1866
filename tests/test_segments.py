"""Behaviour segments on hand-built sequences (rules, edges, evidence) and on the synthetic shop
(planted membership recovered with precision and recall >= 0.95)."""
import pandas as pd
import pytest

from crmlab import segments as seg
from conftest import assert_same_frame

T0 = pd.Timestamp("2026-11-02 10:00", tz="Asia/Seoul")


def ev(rows):
    """rows: (user, minutes after T0, event[, category])"""
    out = []
    for r in rows:
        d = {"user_id": r[0], "time": T0 + pd.Timedelta(minutes=r[1]), "event": r[2]}
        if len(r) > 3:
            d["category"] = r[3]
        out.append(d)
    return pd.DataFrame(out)


def orders(rows):
    """rows: (order_id, user, days after T0, revenue[, discount, coupon])"""
    out = []
    for r in rows:
        d = {"order_id": r[0], "user_id": r[1], "time": T0 + pd.Timedelta(days=r[2]), "revenue": float(r[3])}
        if len(r) > 4:
            d["discount"] = float(r[4])
        if len(r) > 5:
            d["coupon"] = r[5]
        out.append(d)
    return pd.DataFrame(out)


def test_explorers_dwell_rule_and_evidence():
    e = ev([
        ("a", 0, "product_view"), ("a", 3, "product_view"), ("a", 4, "page_view"),  # 3 min dwell: explorer
        ("b", 0, "product_view"), ("b", 2.9, "page_view"),                         # 2.9 min: too short
        ("c", 0, "product_view"), ("c", 5, "add_to_cart"),                          # long but carted
        ("d", 0, "product_view"), ("d", 45, "page_view"),                           # next event in a new session
        ("e", 0, "product_view"),                                                   # last event: no dwell
    ])
    out = seg.explorers(e)
    assert list(out["user_id"]) == ["a"]
    row = out.iloc[0]
    assert row["long_views"] == 1 and row["product_views"] == 2
    assert row["max_dwell_seconds"] == 180
    assert row["first_long_view_time"] == T0


def test_explorers_use_given_session_ids():
    e = ev([("d", 0, "product_view"), ("d", 45, "page_view")])
    e["session_id"] = ["s1", "s1"]  # one session despite the 45-minute gap
    assert list(seg.explorers(e)["user_id"]) == ["d"]


def test_comparers_window_edges_and_undecided():
    day = 24 * 60
    e = ev([
        ("a", 0, "add_to_cart"), ("a", day, "purchase"),          # bought exactly at 24 h: not a comparer
        ("b", 0, "add_to_cart"), ("b", day + 1, "purchase"),      # one minute late: comparer
        ("c", 0, "add_to_cart"), ("c", 0, "purchase"),            # same instant: bought
        ("d", 0, "add_to_cart"), ("d", 10, "add_to_cart"), ("d", 20, "purchase"),  # both adds bought
        ("e", 2 * day, "add_to_cart"),                              # 20 h before as_of: undecided
        ("f", 0, "page_view"),
    ])
    as_of = T0 + pd.Timedelta(days=2, hours=20)
    out = seg.comparers(e, as_of=as_of)
    assert list(out["user_id"]) == ["b"]
    assert out.iloc[0]["unbought_adds"] == 1
    assert out.attrs["excluded"]["additions still inside the window"] == 1


def test_comparers_count_orders_as_purchases():
    e = ev([("a", 0, "add_to_cart")])
    o = orders([("o1", "a", 0.5, 1000)])
    assert len(seg.comparers(e, as_of=T0 + pd.Timedelta(days=3))) == 1
    assert len(seg.comparers(e, o, as_of=T0 + pd.Timedelta(days=3))) == 0


def test_churn_risk_own_cycle_and_fixed_lapse():
    o = orders([
        ("1", "a", 0, 10), ("2", "a", 10, 10), ("3", "a", 20, 10),   # 10-day cycle, last order day 20
        ("4", "b", 0, 10), ("5", "b", 30, 10),                         # 30-day cycle, last order day 30
        ("6", "c", 0, 10),                                             # one-time buyer
        ("7", "d", 40, 10),                                            # one-time, recent
    ])
    as_of = T0 + pd.Timedelta(days=61)
    out = seg.churn_risk(o, as_of=as_of, lapse_days=60).set_index("user_id")
    # a: 41 days inactive > 10; b: 31 > 30; c: 61 > 60; d: 21 < 60
    assert set(out.index) == {"a", "b", "c"}
    assert out.loc["a", "overdue_days"] == pytest.approx(31)
    assert out.loc["b", "threshold_days"] == pytest.approx(30)
    assert out.loc["c", "rule"] == "fixed lapse"
    # a visit resets inactivity: b visited on day 50
    e = ev([("b", 50 * 24 * 60, "page_view")])
    out2 = seg.churn_risk(o, e, as_of=as_of).set_index("user_id")
    assert "b" not in out2.index and out2.loc["a", "days_inactive"] == pytest.approx(41)


def test_lifecycle_stages_each_customer_once():
    o = orders([
        ("1", "new", 95, 1),                                   # first order 5 days before as_of
        ("2", "act", 0, 1), ("3", "act", 80, 1),               # last order 20 days ago
        ("4", "risk", 10, 1),                                  # 90 days ago
        ("5", "gone", -100, 1),                                # 200 days ago
        ("6", "back", -100, 1), ("7", "back", 90, 1),          # 190-day gap, ordered 10 days ago
    ])
    as_of = T0 + pd.Timedelta(days=100)
    out = seg.lifecycle(o, as_of=as_of).set_index("user_id")
    assert out["stage"].astype(str).to_dict() == {"act": "active", "back": "reactivated", "gone": "churned",
                                                  "new": "new", "risk": "at risk"}
    assert out.loc["back", "longest_gap_days"] == pytest.approx(190)


def test_cart_abandonment_stage():
    day = 24 * 60
    e = ev([
        ("a", 0, "add_to_cart"),                                         # left at cart
        ("b", 0, "add_to_cart"), ("b", 5, "begin_checkout"),             # left at checkout
        ("c", 0, "add_to_cart"), ("c", 5, "begin_checkout"), ("c", 9, "purchase"),  # bought
        ("d", 0, "begin_checkout"), ("d", 10, "add_to_cart"),            # re-added after checkout: cart
        ("e", 3 * day, "add_to_cart"),                                   # undecided at as_of
    ])
    out = seg.cart_abandonment(e, as_of=T0 + pd.Timedelta(days=3, hours=1)).set_index("user_id")
    assert out["stage"].to_dict() == {"a": "cart", "b": "checkout", "d": "cart"}
    assert out.attrs["excluded"]["carts still inside the window"] == 1


def test_price_sensitivity_shares():
    o = orders([("1", "a", 0, 10, 1.0), ("2", "a", 1, 10, 0.0, "WELCOME"), ("3", "a", 2, 10, 0.0),
                ("4", "b", 0, 10, 0.0), ("5", "b", 1, 10, 0.0), ("6", "c", 0, 10, 5.0)])
    out = seg.price_sensitivity(o, threshold=0.5).set_index("user_id")
    assert out.loc["a", "discount_share"] == pytest.approx(2 / 3)
    assert out["price_sensitive"].to_dict() == {"a": True, "b": False, "c": False}  # c: one order only
    assert out["orders"].sum() == 6  # no order lost


def test_category_affinity_ties_and_shares():
    e = ev([("a", 0, "product_view", "신발"), ("a", 1, "product_view", "가방"), ("a", 2, "product_view", "신발"),
            ("a", 3, "purchase", "가방"), ("b", 0, "product_view", "모자"), ("b", 1, "product_view", "가방"),
            ("b", 2, "product_view")])
    out = seg.category_affinity(e).set_index("user_id")
    assert out.loc["a", "top_view_category"] == "신발" and out.loc["a", "view_share"] == pytest.approx(2 / 3)
    assert out.loc["a", "top_purchase_category"] == "가방"
    assert out.loc["b", "top_view_category"] == min("모자", "가방")  # tie: alphabetical first
    assert out.attrs["excluded"]["views or purchases without category"] == 1


def test_bad_parameters():
    e = ev([("a", 0, "product_view")])
    with pytest.raises(ValueError, match="min_dwell"):
        seg.explorers(e, min_dwell="soon")
    with pytest.raises(ValueError, match="threshold"):
        seg.price_sensitivity(orders([("1", "a", 0, 1)]), threshold=2)
    for bad in ({"active_days": -5, "churn_days": 10}, {"active_days": 90, "churn_days": 60}, {"new_days": 0}):
        with pytest.raises(ValueError, match="active_days"):
            seg.lifecycle(orders([("1", "a", 0, 1)]), **bad)


@pytest.mark.spark
def test_segments_identical_on_spark(spark_con):
    from conftest import to_spark
    day = 24 * 60
    e = ev([("a", 0, "product_view"), ("a", 3, "product_view"), ("a", 4, "page_view"),
            ("b", 0, "add_to_cart"), ("b", day + 1, "purchase"), ("c", 0, "add_to_cart"),
            ("c", 5, "begin_checkout"), ("d", 0, "product_view", "신발"), ("d", 1, "add_to_cart")])
    e["session_id"] = None
    as_of = T0 + pd.Timedelta(days=3)
    for fn in (seg.explorers, seg.comparers, seg.cart_abandonment, seg.category_affinity):
        kw = {} if fn is seg.explorers else {"as_of": as_of}
        a = fn(e, **kw)
        b = fn(to_spark(spark_con, e), **kw)
        assert_same_frame(a, b, sort_by="user_id")


@pytest.fixture(scope="module")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=3000, weeks=8, seed=7, end="2026-11-23")


def _precision_recall(found: set, truth: set) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / max(len(found), 1), tp / max(len(truth), 1)


def test_planted_explorers_recovered(shop):
    truth = set(shop.truth["segments"].query("explorer")["user_id"])
    assert len(truth) > 50  # enough planted explorers for the rates to mean something
    ev = shop.events.drop(columns="session_id")  # sessions must be derived, not read
    found = set(seg.explorers(ev)["user_id"])
    precision, recall = _precision_recall(found, truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_planted_comparers_recovered(shop):
    truth = set(shop.truth["segments"].query("comparer")["user_id"])
    assert len(truth) > 50
    found = set(seg.comparers(shop.events, as_of=shop.truth["end"])["user_id"])
    precision, recall = _precision_recall(found, truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_planted_price_sensitivity_recovered(shop):
    # planted as a probability (0.8 vs 0.1 of orders discounted), so the rule is not
    # deterministic: require a clear separation rather than 0.95
    truth = shop.truth["segments"].set_index("user_id")["price_sensitive"]
    ps = seg.price_sensitivity(shop.orders, threshold=0.5, min_orders=3).set_index("user_id")
    ps = ps[ps["orders"] >= 3]
    share_true = ps.loc[truth.reindex(ps.index).fillna(False).astype(bool), "discount_share"].mean()
    share_false = ps.loc[~truth.reindex(ps.index).fillna(False).astype(bool), "discount_share"].mean()
    assert share_true > 0.6 and share_false < 0.25, (share_true, share_false)


def test_planted_favourite_category_recovered(shop):
    truth = shop.truth["segments"].set_index("user_id")["favourite_category"]
    aff = seg.category_affinity(shop.events).set_index("user_id")
    aff = aff[aff["views"] >= 10]
    hit = (aff["top_view_category"] == truth.reindex(aff.index)).mean()
    assert hit >= 0.9, hit
