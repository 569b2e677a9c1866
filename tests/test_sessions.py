"""Sessionisation, traffic and shop KPIs: hand-counted data, the synthetic shop's true session ids,
totals that must add up, and DuckDB-vs-PySpark identity."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from crmlab.sessions import KPI_RATES, plot_traffic, sessionize, sessions_table, shop_kpis, traffic
from conftest import assert_same_frame

TZ = "Asia/Seoul"
T = pd.Timestamp


def ev(rows):
    cols = ["user_id", "time", "event", "device"]
    df = pd.DataFrame([r + (None,) * (4 - len(r)) for r in rows], columns=cols)
    df["time"] = pd.to_datetime(df["time"], format="ISO8601")
    return df


HAND = ev([
    ("a", "2024-03-04 10:00:00", "page_view", "mobile"),
    ("a", "2024-03-04 10:30:00", "product_view", "desktop"),  # gap exactly 30 min: same session
    ("a", "2024-03-04 11:00:01", "page_view", "app"),         # gap 30 min 1 s: new session
    ("a", "2024-03-04 11:00:01", "add_to_cart", "app"),       # tie: same session
    ("a", "2024-03-05 09:00:00", "page_view", "app"),         # next day, bounce
    ("b", "2024-03-04 10:00:00", "page_view", "mobile"),
    ("b", "2024-03-04 10:00:05", "purchase", "mobile"),
])


# --------------------------------------------------------------------------- sessionize
def test_sessionize_hand_counted():
    s = sessionize(HAND)
    assert len(s) == len(HAND)
    assert s["session_id"].tolist() == ["a-1", "a-1", "a-2", "a-2", "a-3", "b-1", "b-1"]
    assert s.groupby("session_id").size().to_dict() == {"a-1": 2, "a-2": 2, "a-3": 1, "b-1": 2}
    assert s.attrs["sessions"] == "derived"


def test_sessionize_timeout_and_row_order():
    shuffled = HAND.sample(frac=1, random_state=3)
    a = sessionize(HAND).sort_values(["user_id", "time", "event"]).reset_index(drop=True)
    b = sessionize(shuffled).sort_values(["user_id", "time", "event"]).reset_index(drop=True)
    assert a["session_id"].tolist() == b["session_id"].tolist()  # ties and row order do not matter
    one = sessionize(HAND, timeout="1h")
    assert one.groupby("user_id")["session_id"].nunique().to_dict() == {"a": 2, "b": 1}


def test_sessionize_keeps_given_ids_unless_forced():
    given = HAND.assign(session_id=["s1", "s1", "s1", "s1", "s1", "s9", "s9"])
    kept = sessionize(given)
    assert kept.attrs["sessions"] == "kept" and set(kept["session_id"]) == {"s1", "s9"}
    forced = sessionize(given, force=True)
    assert forced["session_id"].nunique() == 4
    partial = given.assign(session_id=["s1", None, "s1", "s1", "s1", "s9", "s9"])
    with pytest.raises(ValueError, match="missing on 1 of 7"):
        sessionize(partial)
    with pytest.raises(ValueError, match="timeout="):
        sessionize(HAND, timeout="soon")


@pytest.fixture(scope="module")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=2000, weeks=6, seed=5, end="2025-06-02")


def test_sessionize_recovers_true_sessions(shop):
    true = shop.events.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    derived = sessionize(true.drop(columns="session_id").rename(columns={"_row": "row_key"}))
    assert len(derived) == len(true)  # no row lost
    pair = derived[["row_key", "session_id"]].merge(true[["_row", "session_id"]], left_on="row_key",
                                                     right_on="_row", suffixes=("_derived", "_true"))
    assert len(pair) == len(true)
    # the two partitions are the same: a bijection between derived and true ids
    assert (pair.groupby("session_id_derived")["session_id_true"].nunique() == 1).all()
    assert (pair.groupby("session_id_true")["session_id_derived"].nunique() == 1).all()
    assert pair["session_id_derived"].nunique() == true["session_id"].nunique()


# --------------------------------------------------------------------------- traffic
def test_traffic_hand_counted():
    d = traffic(HAND, period="D").set_index("period")
    day1 = d.loc[T("2024-03-04", tz=TZ)]
    assert day1["sessions"] == 3 and day1["unique_visitors"] == 2 and day1["visitors"] == 2
    assert day1["page_views"] == 4
    # durations: a-1 1800 s, a-2 0 s, b-1 5 s
    assert day1["avg_session_duration_s"] == pytest.approx((1800 + 0 + 5) / 3)
    assert day1["bounces"] == 0  # a-2 has a page view and an add_to_cart; b-1 a purchase
    # engaged: a-1 (>= 10 s and 2 page views), b-1 (conversion); a-2 lasted 0 s with 1 page view
    assert day1["engaged_sessions"] == 2 and day1["engagement_rate"] == pytest.approx(2 / 3)
    day2 = d.loc[T("2024-03-05", tz=TZ)]
    assert day2["sessions"] == 1 and day2["bounces"] == 1 and day2["bounce_rate"] == 1.0
    w = traffic(HAND, period="W")
    assert len(w) == 1
    assert w.loc[0, "visitors"] == 3 and w.loc[0, "unique_visitors"] == 2  # a on two days counts twice
    assert w.loc[0, "period"] == T("2024-03-04", tz=TZ)  # ISO week starts Monday


def test_traffic_breakdown_uses_first_event_and_adds_up():
    d = traffic(HAND, period="W", by="device")
    got = dict(zip(d["device"], d["sessions"]))
    assert got == {"mobile": 2, "app": 2}  # a-1 starts on mobile (then desktop), a-2 / a-3 on app
    assert d["page_views"].sum() == traffic(HAND, period="W")["page_views"].sum()


def test_traffic_as_of_and_bad_parameters():
    d = traffic(HAND, as_of=T("2024-03-04 23:59", tz=TZ))
    assert d["sessions"].sum() == 3 and d.attrs["excluded"]["events after as_of"] == 1
    with pytest.raises(ValueError, match="period='M'"):
        traffic(HAND, period="M")
    with pytest.raises(ValueError, match="by="):
        traffic(HAND, by="region")


def test_traffic_totals_on_synthetic(shop):
    e = shop.events
    d = traffic(e.drop(columns="session_id"), period="W", by=["medium", "device"])
    assert d["sessions"].sum() == e["session_id"].nunique()
    assert d["page_views"].sum() == e["event"].isin(["page_view", "product_view"]).sum()
    overall = traffic(e, period="W")
    # a session counts in the week in which it started (true session ids, pandas)
    starts = e.groupby("session_id").agg(user_id=("user_id", "first"), start=("time", "min"))
    week = starts["start"].dt.tz_localize(None).dt.to_period("W").dt.start_time
    assert overall["unique_visitors"].tolist() == starts.groupby(week)["user_id"].nunique().tolist()
    day = starts["start"].dt.tz_localize(None).dt.floor("D")
    user_days = starts.assign(day=day, week=week).drop_duplicates(["user_id", "day"]).groupby("week").size()
    assert overall["visitors"].tolist() == user_days.tolist()
    s = sessions_table(e)
    assert len(s) == e["session_id"].nunique()
    assert np.allclose(s["duration_s"], (s["end"] - s["start"]).dt.total_seconds(), atol=1e-3)  # ms precision
    assert (s.loc[s["bounce"] == 1, "engaged"] == 0).all()  # a bounce (one page view, 0 s) is never engaged
    assert (s["end"] - s["start"] < pd.Timedelta("30min") * s["n_events"]).all()  # gaps < 30 min inside


# --------------------------------------------------------------------------- shop KPIs
ORDERS = pd.DataFrame({"order_id": ["o1", "o2", "o3"], "user_id": ["b", "a", "a"],
                       "time": pd.to_datetime(["2024-03-04 10:00:05", "2024-03-04 09:00:00", "2024-03-04 11:10:00"]),
                       "revenue": [100.0, 50.0, 30.0]})


def test_shop_kpis_hand_counted():
    k = shop_kpis(HAND, ORDERS).iloc[0]
    assert k["sessions"] == 4 and k["visitors"] == 2
    assert k["sessions_with_purchase"] == 1 and k["purchasers"] == 1
    assert k["conversion_rate_per_session"] == pytest.approx(1 / 4)
    assert k["conversion_rate_per_user"] == pytest.approx(1 / 2)
    assert k["add_to_cart_rate"] == pytest.approx(1 / 4)
    assert np.isnan(k["checkout_completion_rate"])  # no checkout: zero denominator
    assert k["orders"] == 3 and k["revenue"] == 180.0
    assert k["average_order_value"] == pytest.approx(60.0)
    assert k["revenue_per_visitor"] == pytest.approx(90.0)


def test_shop_kpis_order_attribution():
    d = shop_kpis(HAND, ORDERS, by="device").set_index("device")
    # o1 (b, 10:00:05) -> b-1 (mobile); o2 (a, 09:00) before any session -> (none);
    # o3 (a, 11:10) -> a-2 started 11:00:01 on app
    assert d.loc["mobile", "orders"] == 1 and d.loc["mobile", "revenue"] == 100.0
    assert d.loc["(none)", "orders"] == 1 and d.loc["(none)", "sessions"] == 0
    assert d.loc["app", "revenue"] == 30.0
    assert d["orders"].sum() == 3


def test_shop_kpis_rates_name_denominators(shop):
    k = shop_kpis(shop.events, shop.orders, period="W", by="device")
    assert set(k.attrs["denominators"]) == set(KPI_RATES)
    for rate, (num, den) in KPI_RATES.items():
        ok = k[den] > 0
        assert np.allclose(k.loc[ok, rate], k.loc[ok, num] / k.loc[ok, den])
    assert k["orders"].sum() == len(shop.orders)
    assert k["revenue"].sum() == pytest.approx(shop.orders["revenue"].sum())
    # every order is one purchase event at the same time, so it is attributed to its own session
    assert (k["orders"] == k["sessions_with_purchase"]).all()


def test_plot_traffic():
    import matplotlib.pyplot as plt
    d = traffic(HAND, by="device")
    ax = plot_traffic(d, "sessions")
    assert ax.get_title() == "sessions"
    fig = plot_traffic(d, ["sessions", "bounce_rate"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="metrics="):
        plot_traffic(d, "nope")
    plt.close("all")


# --------------------------------------------------------------------------- backends
def test_backends_agree(backend, shop):
    e = shop.events.drop(columns="session_id")
    users = sorted(e["user_id"].unique())[:300]
    e = e[e["user_id"].isin(users)].reset_index(drop=True)
    o = shop.orders[shop.orders["user_id"].isin(users)].reset_index(drop=True)
    cols = ["user_id", "time", "event", "session_id"]
    assert_same_frame(sessionize(backend(e))[cols], sessionize(e)[cols], sort_by=["user_id", "time", "event"])
    assert_same_frame(traffic(backend(e), period="W", by="device"), traffic(e, period="W", by="device"))
    assert_same_frame(shop_kpis(backend(e), backend(o), by="medium"), shop_kpis(e, o, by="medium"))


def test_ties_at_a_session_start_share_the_session_in_any_row_order():
    """Several events at the timestamp that opens a new session (and at the one before it):
    every row order gives them one session; the running count covers all tied rows."""
    rows = [("u", "2024-03-04 10:00:00", "page_view")] * 3 + [("u", "2024-03-04 11:00:00", e)
                                                              for e in ("page_view", "product_view", "add_to_cart",
                                                                        "purchase", "search")]
    rows += [("u", "2024-03-04 11:10:00", "page_view"), ("u", "2024-03-04 12:00:00", "page_view")] * 2
    base = ev(rows)
    rng = np.random.default_rng(11)
    for _ in range(5):
        s = sessionize(base.sample(frac=1, random_state=int(rng.integers(1 << 30))))
        by_time = s.groupby("time")["session_id"].agg(set)
        assert by_time.map(len).max() == 1  # tied events share a session
        assert s.groupby("time")["session_id"].first().tolist() == ["u-1", "u-2", "u-2", "u-3"]
        assert s["time"].is_monotonic_increasing and len(s) == len(base)


# --------------------------------------------------------------------------- GA4 boundaries
GA4_EDGES = ev([
    # duration exactly 10 s: GA4 needs *more than* 10 s -> not engaged, a GA4 bounce
    ("u10", "2024-03-04 10:00:00", "search"), ("u10", "2024-03-04 10:00:10", "search"),
    # 9.9992 s (starts 0.8 ms after the second): must not be floored to 10 s
    ("u9", "2024-03-04 10:00:00.000800", "search"), ("u9", "2024-03-04 10:00:10", "search"),
    # 10.001 s: engaged
    ("u11", "2024-03-04 10:00:00", "search"), ("u11", "2024-03-04 10:00:10.001", "search"),
    # a lone search: not a UA bounce (no page view), not engaged, a GA4 bounce
    ("s1", "2024-03-04 10:00:00", "search"),
    # a lone page view: a bounce in both definitions
    ("p1", "2024-03-04 10:00:00", "page_view"),
    # 2 page views in 1 s, and a lone purchase (key event): engaged
    ("p2", "2024-03-04 10:00:00", "page_view"), ("p2", "2024-03-04 10:00:01", "product_view"),
    ("k1", "2024-03-04 10:00:00", "purchase"),
])
GA4_EXPECTED = {  # user: (duration_s, UA bounce, engaged, GA4 bounce)
    "u10": (10.0, 0, 0, 1), "u9": (9.9992, 0, 0, 1), "u11": (10.001, 0, 1, 0), "s1": (0.0, 0, 0, 1),
    "p1": (0.0, 1, 0, 1), "p2": (1.0, 0, 1, 0), "k1": (0.0, 0, 1, 0),
}


def test_ga4_engagement_boundaries_per_session():
    s = sessions_table(GA4_EDGES).set_index("user_id")
    for user, (dur, ua, engaged, ga4) in GA4_EXPECTED.items():
        row = s.loc[user]
        assert row["duration_s"] == pytest.approx(dur, abs=1e-9), user
        assert (row["bounce"], row["engaged"], row["ga4_bounce"]) == (ua, engaged, ga4), user


def test_ga4_bounce_and_engagement_add_up_ua_bounce_need_not():
    d = traffic(GA4_EDGES, period="D").iloc[0]
    assert d["sessions"] == 7 and d["engaged_sessions"] == 3 and d["ga4_bounces"] == 4 and d["bounces"] == 1
    assert d["ga4_bounce_rate"] + d["engagement_rate"] == pytest.approx(1.0)
    assert d["bounce_rate"] + d["engagement_rate"] == pytest.approx(4 / 7)  # the lone search and the ties
    lone = traffic(GA4_EDGES[GA4_EDGES["user_id"] == "s1"]).iloc[0]
    assert (lone["bounce_rate"], lone["engagement_rate"], lone["ga4_bounce_rate"]) == (0.0, 0.0, 1.0)
    # engaged_seconds is a strict bound too: 9.9992 s is engaged above 9.9991 s, not above 9.9992 s
    assert traffic(GA4_EDGES[GA4_EDGES["user_id"] == "u9"], engaged_seconds=9.9991).iloc[0]["engaged_sessions"] == 1
    assert traffic(GA4_EDGES[GA4_EDGES["user_id"] == "u9"], engaged_seconds=9.9992).iloc[0]["engaged_sessions"] == 0


def test_ga4_boundaries_backends_agree(backend):
    got = sessions_table(backend(GA4_EDGES))
    assert_same_frame(got, sessions_table(GA4_EDGES), sort_by="user_id", rtol=0)
    assert got.set_index("user_id").loc["u9", "duration_s"] == pytest.approx(9.9992, abs=1e-9)


# --------------------------------------------------------------------------- issue 14: out of core
def test_derived_sessions_stay_in_the_engine_and_carry_only_the_columns_they_need(monkeypatch):
    """traffic on events without session_id: the window sort that derives sessions carries only
    user, time, event and the breakdown (not every event column: 10 GiB at 30M events), and
    nothing but the per-period aggregates comes back to pandas."""
    import ibis
    import crmlab.sessions as S
    rng = np.random.default_rng(0)
    n = 400
    events = pd.DataFrame({"user_id": rng.choice([f"u{i}" for i in range(40)], n),
                           "time": pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 7 * 86400, n), "s"),
                           "event": rng.choice(["page_view", "product_view", "add_to_cart", "purchase"], n),
                           "product_id": "p1", "category": "shoes", "price": 1.0, "device": "mobile"})
    s, _, how = S._prepared_sessions(events, ["device"], None, "Asia/Seoul", "30min", S.PAGE_EVENTS, ("purchase",))
    assert how == "derived"
    sql = ibis.to_sql(s)
    for col in ("category", "product_id", "price"):
        assert f'"{col}"' not in sql, col
    fetched = []
    real = S.to_pandas
    monkeypatch.setattr(S, "to_pandas", lambda e, *a, **k: (lambda df: (fetched.append(len(df)), df)[1])(real(e, *a, **k)))
    out = traffic(events, period="D", by="device")
    assert out["sessions"].sum() > 0 and max(fetched) <= len(out)  # only aggregates travel
