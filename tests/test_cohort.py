"""Tests of crmlab.cohort: hand-computed cohorts/retention, CDNOW properties, DuckDB = PySpark."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlab import cohort as C
from conftest import assert_same_frame

TZ = "Asia/Seoul"


def _orders(rows):
    """rows: (user, time, revenue[, category]) -> canonical orders frame."""
    df = pd.DataFrame(rows, columns=["user_id", "time", "revenue", "category"][: len(rows[0])])
    df.insert(0, "order_id", [f"o{i}" for i in range(len(df))])
    df["time"] = pd.to_datetime(df["time"]).dt.tz_localize(TZ)
    return df


@pytest.fixture(scope="module")
def cdnow():
    from crmlab.datasets import load_cdnow
    return load_cdnow().orders


# --------------------------------------------------------------------------- repurchase_cycle
CYCLE = _orders([
    ("u1", "2024-01-01", 10.0, "a"),
    ("u1", "2024-01-11", 20.0, "a"),
    ("u1", "2024-01-11", 5.0, "b"),   # same instant: one purchase, two orders
    ("u1", "2024-01-31", 30.0, "a"),
    ("u1", "2024-02-20", 1.0, "a"),   # after as_of below
    ("u2", "2024-02-01", 40.0, "a"),
    ("u3", "2024-01-05", 7.0, "a"),
    ("u3", "2024-01-08", 7.0, "b"),
    ("u3", "2024-01-20", 7.0, "a"),
    ("u3", "2024-02-09", 7.0, "a"),
])


def test_repurchase_cycle_by_hand():
    r = C.repurchase_cycle(CYCLE, as_of="2024-02-15").set_index("user_id")
    assert r.attrs["excluded"] == {"orders after as_of": 1}
    assert r.loc["u1", "n_orders"] == 4 and r.loc["u1", "n_purchases"] == 3
    # u1 gaps 10, 20 -> median 15 (interpolated), mean 15; next due 01-31 + 15 d = 02-15
    assert r.loc["u1", "median_gap_days"] == 15.0 and r.loc["u1", "mean_gap_days"] == 15.0
    assert r.loc["u1", "expected_next_time"] == pd.Timestamp("2024-02-15", tz=TZ)
    assert r.loc["u1", "overdue_days"] == 0.0
    # u3 gaps 3, 12, 20 -> median 12, mean 35/3; last 02-09 + 12 = 02-21 -> 6 days early
    assert r.loc["u3", "median_gap_days"] == 12.0
    assert r.loc["u3", "mean_gap_days"] == pytest.approx(35 / 3)
    assert r.loc["u3", "expected_next_time"] == pd.Timestamp("2024-02-21", tz=TZ)
    assert r.loc["u3", "overdue_days"] == -6.0
    assert r.loc["u3", "days_since_last"] == 6.0
    # one-time buyer
    assert np.isnan(r.loc["u2", "median_gap_days"]) and pd.isna(r.loc["u2", "expected_next_time"])
    assert r.loc["u2", "days_since_last"] == 14.0
    assert r.loc["u2", "first_time"] == pd.Timestamp("2024-02-01", tz=TZ)


def test_repurchase_cycle_by_category():
    r = C.repurchase_cycle(CYCLE, by="category", as_of="2024-02-15").set_index(["user_id", "category"])
    assert len(r) == 5
    # u3 category a: 01-05, 01-20, 02-09 -> gaps 15, 20
    assert r.loc[("u3", "a"), "median_gap_days"] == 17.5
    assert r.loc[("u3", "a"), "n_orders"] == 3
    assert r.loc[("u1", "a"), "median_gap_days"] == 15.0
    assert np.isnan(r.loc[("u1", "b"), "median_gap_days"])
    assert r["n_orders"].sum() == len(CYCLE) - 1  # no row lost besides the excluded one


def test_repurchase_cycle_bad_by():
    with pytest.raises(ValueError, match="by="):
        C.repurchase_cycle(CYCLE, by="colour")


def test_repurchase_cycle_cdnow(cdnow):
    r = C.repurchase_cycle(cdnow)
    assert len(r) == 23_570 and r["n_orders"].sum() == 69_659
    one_time = r["n_purchases"] == 1
    assert r.loc[one_time, "median_gap_days"].isna().all()
    assert r.loc[~one_time, "median_gap_days"].notna().all()
    assert (r.loc[~one_time, "median_gap_days"] >= 1).all()  # dates: distinct days are >= 1 day apart


def test_repurchase_cycle_backends(backend):
    ref = C.repurchase_cycle(CYCLE, by="category", as_of="2024-02-15")
    got = C.repurchase_cycle(backend(CYCLE), by="category", as_of="2024-02-15")
    assert_same_frame(ref, got, sort_by=["user_id", "category"])
    assert got.attrs["excluded"] == ref.attrs["excluded"]


# --------------------------------------------------------------------------- hand-built retention
def _hand():
    rows = [
        ("a", "2024-01-05", 10.0), ("a", "2024-01-20", 5.0), ("a", "2024-03-02", 20.0),
        ("b", "2024-01-31", 7.0),
        ("c", "2024-01-10", 3.0), ("c", "2024-02-10", 4.0),
        ("d", "2024-02-01", 8.0), ("d", "2024-03-10", 2.0),
        ("e", "2024-02-28", 6.0),
        ("h", "2024-01-31", 1.0),  # replaced below by 16:00 UTC = 02-01 01:00 in Seoul
        ("i", "2024-02-15", 5.0),
        ("f", "2024-03-15", 9.0),  # exactly at as_of A: included
        ("g", "2024-04-05", 100.0),  # after both as_of: excluded
    ]
    df = _orders(rows)
    df.loc[df["user_id"] == "h", "time"] = pd.Timestamp("2024-01-31 16:00", tz="UTC").tz_convert(TZ)
    return df


HAND = _hand()
AS_OF_A = "2024-03-15"   # Jan k2, Feb k1, Mar k0 still running
AS_OF_B = "2024-04-01"   # Jan..Mar complete up to March; April (k3/k2/k1) running, empty
JAN, FEB, MAR = (pd.Timestamp(f"2024-0{m}-01", tz=TZ) for m in (1, 2, 3))


def _cells(long, col="value"):
    return {(c.month, int(k)): v for c, k, v in zip(long["cohort"], long["period_index"], long[col])}


def test_cohorts_by_hand():
    c = C.cohorts(HAND, as_of=AS_OF_A).set_index("user_id")
    assert c.attrs["excluded"] == {"orders after as_of": 1}
    assert len(c) == 8 and "g" not in c.index
    assert c.loc["h", "cohort"] == FEB  # 2024-01-31 16:00 UTC is February 1st in Seoul
    assert c.loc["b", "cohort"] == JAN and c.loc["f", "cohort"] == MAR
    w = C.cohorts(HAND, period="W", as_of=AS_OF_A).set_index("user_id")
    assert w.loc["a", "cohort"] == pd.Timestamp("2024-01-01", tz=TZ)  # Fri 01-05 -> Mon 01-01
    assert w.loc["h", "cohort"] == pd.Timestamp("2024-01-29", tz=TZ)  # Thu 02-01 -> Mon 01-29
    d = C.cohorts(HAND, period="D").set_index("user_id")
    assert d.loc["h", "cohort"] == pd.Timestamp("2024-02-01", tz=TZ)
    assert d.attrs["excluded"] == {"orders after as_of": 0}


def test_cohorts_from_events():
    ev = pd.DataFrame({
        "user_id": ["x", "x", "y", "y", "z"],
        "time": pd.to_datetime(["2024-01-30", "2024-02-03", "2024-02-20", "2024-03-01", "2024-01-02"]).tz_localize(TZ),
        "event": ["page_view", "purchase", "page_view", "page_view", "page_view"],
    })
    c = C.cohorts(ev, event="purchase").set_index("user_id")
    assert list(c.index) == ["x"] and c.loc["x", "cohort"] == FEB
    v = C.cohorts(ev, event="page_view").set_index("user_id")
    assert v["cohort"].to_dict() == {"z": JAN, "x": JAN, "y": FEB}
    r = C.retention(ev, event="page_view", as_of="2024-03-31")
    assert _cells(r) == {(1, 0): 2, (1, 1): 0, (1, 2): 0, (2, 0): 1, (2, 1): 1}  # x's Feb event is a purchase: not a page view
    with pytest.raises(ValueError, match="metric"):
        C.retention(ev, event="page_view", metric="profit")


def test_retention_users_on_by_hand():
    r = C.retention(HAND, as_of=AS_OF_A)
    assert r.attrs["excluded"] == {"orders after as_of": 1}
    assert _cells(r) == {(1, 0): 3, (1, 1): 1, (1, 2): 1, (2, 0): 4, (2, 1): 1, (3, 0): 1}
    assert _cells(r, "share") == pytest.approx({(1, 0): 1, (1, 1): 1 / 3, (1, 2): 1 / 3,
                                                (2, 0): 1, (2, 1): 0.25, (3, 0): 1})
    assert _cells(r, "complete") == {(1, 0): True, (1, 1): True, (1, 2): False,
                                     (2, 0): True, (2, 1): False, (3, 0): False}
    assert _cells(r, "cohort_size") == {(1, 0): 3, (1, 1): 3, (1, 2): 3, (2, 0): 4, (2, 1): 4, (3, 0): 1}
    jan2 = r.loc[(r["cohort"] == JAN) & (r["period_index"] == 2), "period_start"].iloc[0]
    assert jan2 == MAR


def test_retention_on_or_after_by_hand():
    r = C.retention(HAND, as_of=AS_OF_A, mode="on_or_after")
    # Jan: a (last active k2), b (k0), c (k1) -> 3, 2, 1
    assert _cells(r) == {(1, 0): 3, (1, 1): 2, (1, 2): 1, (2, 0): 4, (2, 1): 1, (3, 0): 1}


def test_retention_orders_revenue_by_hand():
    o = C.retention(HAND, as_of=AS_OF_A, metric="orders")
    assert _cells(o) == {(1, 0): 4, (1, 1): 1, (1, 2): 1, (2, 0): 4, (2, 1): 1, (3, 0): 1}
    rv = C.retention(HAND, as_of=AS_OF_A, metric="revenue")
    assert _cells(rv) == pytest.approx({(1, 0): 25, (1, 1): 4, (1, 2): 20, (2, 0): 20, (2, 1): 2, (3, 0): 9})
    assert _cells(rv, "share") == pytest.approx({(1, 0): 25 / 3, (1, 1): 4 / 3, (1, 2): 20 / 3,
                                                 (2, 0): 5, (2, 1): 0.5, (3, 0): 9})
    assert rv["value"].sum() == pytest.approx(80.0)  # all orders up to as_of, none lost
    ra = C.retention(HAND, as_of=AS_OF_A, metric="revenue", mode="on_or_after")
    assert _cells(ra) == pytest.approx({(1, 0): 49, (1, 1): 24, (1, 2): 20, (2, 0): 22, (2, 1): 2, (3, 0): 9})
    rn = C.retention(HAND, as_of=AS_OF_A, metric="revenue", normalize=True)
    assert _cells(rn, "share") == pytest.approx({(1, 0): 1, (1, 1): 0.16, (1, 2): 0.8,
                                                 (2, 0): 1, (2, 1): 0.1, (3, 0): 1})


def test_retention_as_of_at_period_start():
    r = C.retention(HAND, as_of=AS_OF_B)  # midnight April 1st: April exists, is running, is empty
    assert r.attrs["excluded"] == {"orders after as_of": 1}
    assert _cells(r) == {(1, 0): 3, (1, 1): 1, (1, 2): 1, (1, 3): 0,
                         (2, 0): 4, (2, 1): 1, (2, 2): 0, (3, 0): 1, (3, 1): 0}
    assert _cells(r, "complete") == {(1, 0): True, (1, 1): True, (1, 2): True, (1, 3): False,
                                     (2, 0): True, (2, 1): True, (2, 2): False, (3, 0): True, (3, 1): False}
    # the month is complete once as_of reaches its last second
    almost = C.retention(HAND, as_of="2024-03-31 23:59:58")
    done = C.retention(HAND, as_of="2024-03-31 23:59:59")
    assert not almost.loc[almost["period_start"] == MAR, "complete"].any()
    assert done.loc[done["period_start"] == MAR, "complete"].all() and len(done) == 6
    m = C.retention_matrix(r)
    assert m.shape == (3, 4) and np.isnan(m.loc[MAR, 2])
    assert m.attrs["complete"].loc[JAN, 3] == False  # noqa: E712
    mc = C.retention_matrix(r, complete_only=True)
    assert np.isnan(mc.loc[JAN, 3]) and mc.loc[JAN, 2] == pytest.approx(1 / 3)


def test_retention_average_by_hand():
    avg = C.retention_average(C.retention(HAND, as_of=AS_OF_B)).set_index("period_index")
    assert list(avg.index) == [0, 1, 2]  # k=3 has no complete cohort
    assert list(avg["n_cohorts"]) == [3, 2, 1] and list(avg["customers"]) == [8, 7, 3]
    assert avg.loc[0, "weighted_share"] == 1 and avg.loc[0, "simple_share"] == 1
    # k=1: Jan 1/3 (n=3), Feb 1/4 (n=4); the incomplete Mar k1 (0 %) is NOT averaged in
    assert avg.loc[1, "weighted_share"] == pytest.approx(2 / 7)
    assert avg.loc[1, "simple_share"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert avg.loc[2, "weighted_share"] == pytest.approx(1 / 3)


def test_retention_bad_parameters():
    with pytest.raises(ValueError, match="period='Q'"):
        C.retention(HAND, period="Q")
    with pytest.raises(ValueError, match="mode='after'"):
        C.retention(HAND, mode="after")
    with pytest.raises(ValueError, match="window="):
        C.repurchase_rate(HAND, window="soon")


def test_ltv_curves_by_hand():
    l = C.ltv_curves(HAND, as_of=AS_OF_A)
    assert _cells(l, "ltv") == pytest.approx({(1, 0): 25 / 3, (1, 1): 29 / 3, (1, 2): 49 / 3,
                                              (2, 0): 5, (2, 1): 5.5, (3, 0): 9})
    assert _cells(l, "complete")[(1, 2)] == False  # noqa: E712


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_repurchase_rate_by_hand():
    r = C.repurchase_rate(HAND, as_of=AS_OF_A)
    assert r.loc[0, "n_customers"] == 8 and r.loc[0, "n_repeat"] == 3  # a, c, d
    assert r.loc[0, "rate"] == pytest.approx(3 / 8)
    assert (r.loc[0, "ci_low"], r.loc[0, "ci_high"]) == pytest.approx(_wilson(3, 8))
    w = C.repurchase_rate(HAND, as_of=AS_OF_A, window="20D")
    # window must have ended: first purchase <= 02-24 -> e (02-28) and f (03-15) cannot be judged
    assert w.attrs["excluded"] == {"orders after as_of": 1, "customers with unfinished window": 2}
    assert w.loc[0, "n_customers"] == 6 and w.loc[0, "n_repeat"] == 1  # only a (15 days)
    by = C.repurchase_rate(HAND, as_of=AS_OF_A, period="M").set_index("cohort")
    assert by["n_repeat"].to_dict() == {JAN: 2, FEB: 1, MAR: 0}
    assert by["n_customers"].sum() == 8


def test_time_to_second_purchase_by_hand():
    per, s = C.time_to_second_purchase(HAND, as_of=AS_OF_A)
    per = per.set_index("user_id")
    assert per["days_to_second"].dropna().to_dict() == {"a": 15.0, "c": 31.0, "d": 38.0}  # 2024 is a leap year
    assert per.loc["b", "observed_days"] == 44.0
    assert s.loc[0, "n_customers"] == 8 and s.loc[0, "n_repeat"] == 3
    assert s.loc[0, "median_days"] == 31.0
    # Kaplan-Meier by hand: events 15 (7 at risk), 31 (4 at risk), 38 (3 at risk):
    # S = 6/7 * 3/4 * 2/3 = 0.43 <= 0.5 first at 38
    assert s.loc[0, "km_median_days"] == 38.0
    assert s.attrs["excluded"] == {"orders after as_of": 1}


# --------------------------------------------------------------------------- CDNOW properties
CDNOW_END = "1998-06-30 23:59:59"  # the last day of the data, whole


@pytest.fixture(scope="module")
def cdnow_users(cdnow):
    return {mode: C.retention(cdnow, as_of=CDNOW_END, mode=mode) for mode in ("on", "on_or_after")}


def test_cdnow_cohorts(cdnow):
    c = C.cohorts(cdnow)
    assert len(c) == 23_570 and c["user_id"].is_unique
    sizes = c.groupby("cohort").size()
    # CDNOW followed the customers who first bought in the first quarter of 1997
    assert list(sizes.index) == [pd.Timestamp(f"1997-0{m}-01", tz=TZ) for m in (1, 2, 3)]
    assert sizes.sum() == 23_570


def test_cdnow_user_retention_properties(cdnow_users):
    on, after = cdnow_users["on"], cdnow_users["on_or_after"]
    assert on.groupby("cohort")["cohort_size"].first().sum() == 23_570
    assert (on.loc[on["period_index"] == 0, "share"] == 1.0).all()
    assert (after.loc[after["period_index"] == 0, "share"] == 1.0).all()
    key = ["cohort", "period_index"]
    m = on.merge(after, on=key, suffixes=("_on", "_after"))
    assert len(m) == len(on) == len(after)
    assert (m["value_after"] >= m["value_on"]).all()
    assert (after.sort_values(key).groupby("cohort")["value"].diff().dropna() <= 0).all()
    # as_of at the very end of June 1998: every period is complete; 1997-01 has k = 0..17
    assert on["complete"].all()
    assert on.loc[on["cohort"] == pd.Timestamp("1997-01-01", tz=TZ), "period_index"].max() == 17
    # the pooled average really is sum(value) / sum(size) over complete cells
    avg = C.retention_average(on).set_index("period_index")
    k1 = on.loc[on["period_index"] == 1]
    assert avg.loc[1, "weighted_share"] == pytest.approx(k1["value"].sum() / k1["cohort_size"].sum())
    assert avg.loc[1, "simple_share"] == pytest.approx(k1["share"].mean())


def test_cdnow_default_as_of_marks_last_month_incomplete(cdnow):
    r = C.retention(cdnow)  # default as_of = latest order, 1998-06-30 00:00: June not finished
    last = r.loc[r["period_start"] == pd.Timestamp("1998-06-01", tz=TZ)]
    assert len(last) == 3 and not last["complete"].any()
    assert r.loc[r["period_start"] < pd.Timestamp("1998-06-01", tz=TZ), "complete"].all()


def test_cdnow_no_row_lost(cdnow):
    as_of = "1998-03-31 23:59:59"
    kept = cdnow.loc[cdnow["time"] <= pd.Timestamp(as_of, tz=TZ)]
    rev = C.retention(cdnow, metric="revenue", as_of=as_of)
    assert rev.attrs["excluded"]["orders after as_of"] == len(cdnow) - len(kept)
    assert rev["value"].sum() == pytest.approx(kept["revenue"].sum(), rel=1e-12)
    orders = C.retention(cdnow, metric="orders", as_of=as_of)
    assert orders["value"].sum() == len(kept)
    ltv = C.ltv_curves(cdnow, as_of=as_of)
    last = ltv.sort_values("period_index").groupby("cohort").last()
    assert (last["ltv"] * last["cohort_size"]).sum() == pytest.approx(kept["revenue"].sum(), rel=1e-12)
    rw = C.retention(cdnow, period="W", metric="revenue", as_of=as_of)
    assert rw["value"].sum() == pytest.approx(kept["revenue"].sum(), rel=1e-12)


def test_cdnow_repurchase_consistency(cdnow):
    cyc = C.repurchase_cycle(cdnow)
    rate = C.repurchase_rate(cdnow)
    assert rate.loc[0, "n_customers"] == 23_570
    assert rate.loc[0, "n_repeat"] == (cyc["n_purchases"] >= 2).sum()
    per, s = C.time_to_second_purchase(cdnow)
    assert s.loc[0, "n_repeat"] == rate.loc[0, "n_repeat"]
    # the gap to the 2nd purchase is never shorter than the customer's smallest gap, and for
    # two-purchase customers it is their only gap (= median)
    two = cyc.loc[cyc["n_purchases"] == 2].set_index("user_id")["median_gap_days"]
    assert (per.set_index("user_id").loc[two.index, "days_to_second"] == two).all()


# --------------------------------------------------------------------------- DuckDB = PySpark
def _random_orders(n_users=150, n_orders=700, seed=7):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz=TZ)
    secs = np.sort(rng.integers(0, 200 * 86_400, n_orders))
    df = pd.DataFrame({
        "order_id": [f"r{i}" for i in range(n_orders)],
        "user_id": rng.integers(0, n_users, n_orders).astype(str),
        "time": start + pd.to_timedelta(secs, unit="s"),
        "revenue": rng.gamma(2.0, 20.0, n_orders).round(2),
        "category": rng.choice(["food", "beauty"], n_orders),
    })
    return df


RANDOM = _random_orders()


def test_cohort_functions_backends(backend):
    as_of = "2024-06-15 12:00"
    for data in (HAND, RANDOM):
        t = backend(data)
        assert_same_frame(C.cohorts(data, period="W", as_of=as_of), C.cohorts(t, period="W", as_of=as_of),
                          sort_by=["user_id"])
        for period, metric, mode in (("M", "users", "on"), ("W", "users", "on_or_after"),
                                     ("D", "revenue", "on"), ("M", "orders", "on_or_after")):
            ref = C.retention(data, period=period, metric=metric, mode=mode, as_of=as_of)
            got = C.retention(t, period=period, metric=metric, mode=mode, as_of=as_of)
            assert_same_frame(ref, got, sort_by=["cohort", "period_index"])
            assert got.attrs["excluded"] == ref.attrs["excluded"]
        assert_same_frame(C.repurchase_cycle(data, as_of=as_of), C.repurchase_cycle(t, as_of=as_of),
                          sort_by=["user_id"])
        # default as_of (latest order) read back from the backend
        assert_same_frame(C.ltv_curves(data, period="W"), C.ltv_curves(t, period="W"),
                          sort_by=["cohort", "period_index"])
        assert_same_frame(C.repurchase_rate(data, as_of=as_of, window="30D", period="M"),
                          C.repurchase_rate(t, as_of=as_of, window="30D", period="M"), sort_by=["cohort"])
        p1, s1 = C.time_to_second_purchase(data, as_of=as_of)
        p2, s2 = C.time_to_second_purchase(t, as_of=as_of)
        assert_same_frame(p1, p2, sort_by=["user_id"])
        assert_same_frame(s1, s2)


# --------------------------------------------------------------------------- plots
def _glyph_warnings(records):
    return [str(w.message) for w in records if "glyph" in str(w.message).lower()
            or "missing from" in str(w.message).lower()]


def test_heatmap_korean_and_hatching():
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    r = C.retention(HAND, as_of=AS_OF_A)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ax = C.plot_retention_heatmap(r, title="코호트별 재구매 리텐션", xlabel="경과 개월", ylabel="첫 구매 월")
        ax.figure.canvas.draw()
    assert _glyph_warnings(rec) == []
    assert ax.get_title() == "코호트별 재구매 리텐션"
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == (~r["complete"]).sum() == 3
    # complete cells annotated as percentages; Feb k1 (25 % so far) is running: blank, hatched
    assert sorted(t.get_text() for t in ax.texts) == ["100%", "100%", "33%"]
    assert ax.get_yticklabels()[0].get_text() == "2024-01 (n=3)"
    plt.close(ax.figure)


def test_ltv_plot_korean():
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curves = C.ltv_curves(HAND, as_of=AS_OF_A)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ax = C.plot_ltv_curves(curves, title="코호트별 누적 고객당 매출", ylabel="누적 매출(원)")
        ax.figure.canvas.draw()
    assert _glyph_warnings(rec) == []
    solid = [l for l in ax.lines if l.get_linestyle() == "-"]
    assert len(solid) == 3  # one line per cohort (Mar has no complete point but an empty line)
    jan = solid[0]
    assert list(jan.get_ydata()) == pytest.approx([25 / 3, 29 / 3])  # complete points only
    plt.close(ax.figure)


def test_heatmap_counts_from_matrix():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = C.retention_matrix(C.retention(HAND, as_of=AS_OF_B), values="value")
    ax = C.plot_retention_heatmap(m, title="고객 수")
    # complete cells only, as whole numbers: Jan 3,1,1; Feb 4,1; Mar 1
    assert sorted(t.get_text() for t in ax.texts) == sorted(["3", "1", "1", "4", "1", "1"])
    assert len([p for p in ax.patches if p.get_hatch()]) == 3  # the running April cells
    plt.close(ax.figure)


# --------------------------------------------------------------------------- planted truth
def test_repurchase_cycle_recovers_planted_cycles():
    """Synthetic shop: measured gaps follow the planted per-customer cycle (2 years of data)."""
    from scipy.stats import spearmanr
    try:
        from crmlab.datasets import synthetic_shop
        shop = synthetic_shop(n_users=2_000, weeks=104, seed=1)
    except ImportError:  # pragma: no cover - generator written elsewhere
        pytest.skip("synthetic_shop not available")
    cyc = C.repurchase_cycle(shop.orders)
    m = cyc.merge(shop.truth["segments"], on="user_id")
    m = m.loc[m["repurchase_cycle_days"].notna() & m["mean_gap_days"].notna()]
    rho = spearmanr(m["mean_gap_days"], m["repurchase_cycle_days"]).statistic
    assert rho > 0.5, rho
    by = m.groupby("persona")["median_gap_days"].median()
    assert by["loyal"] < by["comparer"]  # planted mean cycles 40 vs 120 days
