"""Message performance and attribution: hand-built cases for windows, edges, double credit,
last versus every touch; Hillstrom's outcomes; DuckDB versus PySpark."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from crmlab.abtest import proportion_test
from crmlab.messages import (attribute, cart_reminder_by_delay, copy_test, fatigue, message_performance,
                             parse_windows, plot_fatigue, plot_send_time_heatmap, send_time_heatmap)
from conftest import assert_same_frame

T = pd.Timestamp
D0 = T("2024-03-04 10:00")  # a Monday


def msg(mid, user, campaign, channel="email", at=D0, delivered=True, opened=None, clicked=None,
        unsub=None, variant=None):
    return {"message_id": mid, "user_id": user, "campaign": campaign, "channel": channel, "variant": variant,
            "is_ad": True, "sent_time": at, "delivered_time": at if delivered else None,
            "opened_time": opened, "clicked_time": clicked, "unsubscribed_time": unsub}


def frame(rows):
    df = pd.DataFrame(rows)
    for c in ("sent_time", "delivered_time", "opened_time", "clicked_time", "unsubscribed_time"):
        if c in df:
            df[c] = pd.to_datetime(df[c])
    return df


def orders_frame(rows):
    return pd.DataFrame(rows, columns=["order_id", "user_id", "time", "revenue"]).assign(
        time=lambda d: pd.to_datetime(d["time"]))


# ----------------------------------------------------------------------------- windows and edges
def test_window_edges_are_half_open():
    msgs = frame([msg("m1", "u1", "A")])
    orders = orders_frame([
        ("before", "u1", D0 - pd.Timedelta("1s"), 1.0),
        ("at_delivery", "u1", D0, 2.0),
        ("last_second", "u1", D0 + pd.Timedelta("3D") - pd.Timedelta("1s"), 4.0),
        ("at_window_end", "u1", D0 + pd.Timedelta("3D"), 8.0),
    ])
    out = attribute(msgs, orders)
    assert sorted(out["order_id"]) == ["at_delivery", "last_second"]
    assert out["revenue"].sum() == 6.0
    assert out.attrs["excluded"]["orders in no attribution window"] == 2


def test_per_channel_windows_and_other_users():
    msgs = frame([msg("e", "u1", "A", "email"), msg("s", "u2", "B", "sms")])
    orders = orders_frame([("o1", "u1", D0 + pd.Timedelta("2D"), 10.0),
                           ("o2", "u2", D0 + pd.Timedelta("2D"), 20.0),
                           ("o3", "u3", D0 + pd.Timedelta("1h"), 40.0)])  # u3 got no message
    out = attribute(msgs, orders, windows={"default": "3D", "sms": "1D"})
    assert out["order_id"].tolist() == ["o1"]
    out = attribute(msgs, orders, windows={"sms": "2D1s"})
    assert sorted(out["order_id"]) == ["o1", "o2"]


def test_order_credited_once_per_campaign_to_the_latest_message():
    msgs = frame([msg("m1", "u1", "A", at=D0), msg("m2", "u1", "A", at=D0 + pd.Timedelta("1D"))])
    orders = orders_frame([("o1", "u1", D0 + pd.Timedelta("30h"), 100.0)])
    for share in ("last_touch", "every_touch"):
        out = attribute(msgs, orders, share=share)
        assert len(out) == 1 and out["message_id"].iloc[0] == "m2"
    perf = message_performance(msgs, orders, by=("campaign",), period=None)
    assert perf["orders"].sum() == 1 and perf["revenue"].sum() == 100.0
    assert perf["converted"].iloc[0] == 1  # one of two delivered messages converted
    assert perf["conversion_rate"].iloc[0] == 0.5


def test_last_touch_versus_every_touch():
    msgs = frame([msg("a1", "u1", "A", at=D0), msg("b1", "u1", "B", "sms", at=D0 + pd.Timedelta("2h"))])
    orders = orders_frame([("o1", "u1", D0 + pd.Timedelta("5h"), 100.0),
                           ("o2", "u1", D0 + pd.Timedelta("1h"), 7.0)])  # before B's delivery
    last = attribute(msgs, orders, share="last_touch")
    assert dict(zip(last["order_id"], last["campaign"])) == {"o1": "B", "o2": "A"}
    assert last["revenue"].sum() == 107.0  # last touch adds up to the attributed revenue
    every = attribute(msgs, orders, share="every_touch")
    assert sorted(zip(every["order_id"], every["campaign"])) == [("o1", "A"), ("o1", "B"), ("o2", "A")]
    assert (every["share"] == "every_touch").all() and every.attrs["share"] == "every_touch"
    assert every["revenue"].sum() == 207.0  # o1 counted by both campaigns
    perf = message_performance(msgs, orders, by=("campaign",), period=None, share="every_touch")
    assert perf.set_index("campaign")["revenue"].to_dict() == {"A": 107.0, "B": 100.0}


def test_click_basis_and_channels_without_open_signal():
    msgs = frame([msg("e1", "u1", "A", "email", clicked=D0 + pd.Timedelta("1D"), opened=D0 + pd.Timedelta("1D")),
                  msg("s1", "u2", "B", "sms", clicked=D0 + pd.Timedelta("2D")),
                  msg("e2", "u3", "C", "email")])  # never clicked
    orders = orders_frame([("before_click", "u1", D0 + pd.Timedelta("12h"), 1.0),
                           ("after_click", "u1", D0 + pd.Timedelta("3D12h"), 2.0),
                           ("sms_order", "u2", D0 + pd.Timedelta("1h"), 4.0),
                           ("unclicked", "u3", D0 + pd.Timedelta("1h"), 8.0)])
    receipt = attribute(msgs, orders, basis="receipt")
    assert sorted(receipt["order_id"]) == ["before_click", "sms_order", "unclicked"]
    click = attribute(msgs, orders, basis="click")
    assert sorted(click["order_id"]) == ["after_click", "sms_order"]
    assert dict(zip(click["order_id"], click["basis"])) == {"after_click": "click", "sms_order": "receipt"}
    assert click.attrs["excluded"]["messages without anchor time (undelivered, or unclicked under click basis)"] == 1


def test_undelivered_message_gets_no_credit_and_as_of():
    msgs = frame([msg("m1", "u1", "A", delivered=False), msg("m2", "u2", "A"),
                  msg("late", "u2", "A", at=D0 + pd.Timedelta("10D"))])
    orders = orders_frame([("o1", "u1", D0 + pd.Timedelta("1h"), 1.0), ("o2", "u2", D0 + pd.Timedelta("1h"), 2.0),
                           ("o3", "u2", D0 + pd.Timedelta("10D1h"), 3.0)])
    out = attribute(msgs, orders, as_of=D0 + pd.Timedelta("5D"))
    assert out["order_id"].tolist() == ["o2"]
    ex = out.attrs["excluded"]
    assert ex["messages sent after as_of"] == 1 and ex["orders after as_of"] == 1
    # Times are read in the shop's zone: a tz-aware as_of in UTC means the same instant.
    out2 = attribute(msgs, orders, as_of=(D0 + pd.Timedelta("5D")).tz_localize("Asia/Seoul").tz_convert("UTC"))
    assert out2["order_id"].tolist() == ["o2"]


def test_bad_parameters_name_themselves():
    msgs = frame([msg("m1", "u1", "A")])
    orders = orders_frame([("o1", "u1", D0, 1.0)])
    with pytest.raises(ValueError, match="basis='view'"):
        attribute(msgs, orders, basis="view")
    with pytest.raises(ValueError, match="share='linear'"):
        attribute(msgs, orders, share="linear")
    with pytest.raises(ValueError, match="windows key 'fax'"):
        parse_windows({"fax": "1D"})
    with pytest.raises(ValueError, match="must be a positive"):
        parse_windows("-1D")
    with pytest.raises(ValueError, match="period='Y'"):
        message_performance(msgs, orders, period="Y")
    with pytest.raises(ValueError, match="not columns of messages"):
        message_performance(msgs, orders, by=("nope",))


# ----------------------------------------------------------------------------- performance
def _funnel_data(extra=()):
    rows = list(extra)
    for i in range(10):  # e-mail: 10 sent, 8 delivered, 4 opened, 2 clicked (both after opening), 1 opt-out
        delivered = i < 8
        rows.append(msg(f"e{i}", f"u{i}", "A", "email", delivered=delivered,
                        opened=D0 + pd.Timedelta("1h") if i < 4 else None,
                        clicked=D0 + pd.Timedelta("2h") if i < 2 else None,
                        unsub=D0 + pd.Timedelta("3h") if i == 7 else None))
    for i in range(5):  # SMS: 5 sent and delivered, 1 clicked, no opens
        rows.append(msg(f"s{i}", f"v{i}", "A", "sms", clicked=D0 + pd.Timedelta("1h") if i == 0 else None))
    msgs = frame(rows)
    orders = orders_frame([("o1", "u0", D0 + pd.Timedelta("5h"), 30.0), ("o2", "v1", D0 + pd.Timedelta("1D"), 50.0),
                           ("o3", "u9", D0 + pd.Timedelta("1D"), 70.0)])  # u9's e-mail was not delivered
    return msgs, orders


def test_message_performance_counts_and_named_denominators():
    msgs, orders = _funnel_data()
    perf = message_performance(msgs, orders, by=("campaign", "channel"), period="W").set_index("channel")
    e, s = perf.loc["email"], perf.loc["sms"]
    assert (e["sent"], e["delivered"], e["opened"], e["clicked"], e["optouts"]) == (10, 8, 4, 2, 1)
    assert e["delivery_rate"] == 0.8 and e["open_rate"] == 4 / 8 and e["click_rate"] == 2 / 8
    assert e["click_to_open"] == 2 / 4 and e["optout_rate"] == 1 / 8
    assert e["converted"] == 1 and e["conversion_rate"] == 1 / 8 and e["revenue_per_recipient"] == 30 / 8
    assert np.isnan(s["open_rate"])  # no open signal: NaN, never 0
    assert s["click_rate"] == 1 / 5 and s["conversion_rate"] == 1 / 5 and s["revenue"] == 50.0
    assert perf["sent"].sum() == len(msgs)  # no message lost
    assert str(perf["period"].iloc[0]) == "2024-03-04 00:00:00+09:00"  # Monday-start week, local
    # Revenue in the table equals the attributed revenue (last touch adds up).
    assert perf["revenue"].sum() == attribute(msgs, orders)["revenue"].sum() == 80.0


def test_message_performance_without_orders_and_mixed_channels():
    msgs, _ = _funnel_data()
    perf = message_performance(msgs, by=("campaign",), period=None)
    row = perf.iloc[0]
    assert row["delivered"] == 13 and row["delivered_open_tracked"] == 8
    assert row["open_rate"] == 4 / 8  # SMS do not dilute the open rate
    assert np.isnan(row["conversion_rate"]) and np.isnan(row["revenue"])


# ----------------------------------------------------------------------------- Hillstrom
@pytest.fixture(scope="module")
def hillstrom():
    from crmlab.datasets import load_hillstrom
    return load_hillstrom()


def test_hillstrom_attribution_reproduces_the_outcomes_file(hillstrom):
    h = hillstrom
    out = attribute(h.messages, h.orders, windows="8D")
    conv = h.outcomes.groupby("variant")["conversion"].sum()
    spend = h.outcomes.groupby("variant")["spend"].sum()
    got = out.groupby("campaign").agg(n=("order_id", "size"), revenue=("revenue", "sum"))
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        assert got.loc[arm, "n"] == conv[arm]
        assert got.loc[arm, "revenue"] == pytest.approx(spend[arm])
    # The control arm's orders have no message: they are the unattributed ones.
    assert out.attrs["excluded"]["orders in no attribution window"] == conv["No E-Mail"] == 122
    # A shorter window than the 7-day lag of the loader credits nothing.
    assert len(attribute(h.messages, h.orders, windows="7D")) == 0
    perf = message_performance(h.messages, h.orders, by=("campaign",), period=None, windows="14D").set_index("campaign")
    n = h.outcomes.groupby("variant").size()
    assert perf.loc["Mens E-Mail", "conversion_rate"] == pytest.approx(conv["Mens E-Mail"] / n["Mens E-Mail"])
    # The file records no opens or clicks at all: the rates are unknown (NaN), not 0.
    assert np.isnan(perf.loc["Mens E-Mail", "open_rate"]) and np.isnan(perf.loc["Mens E-Mail", "click_rate"])


# ----------------------------------------------------------------------------- seeds' questions
def test_copy_test_ratios_match_statsmodels():
    rows = []
    rng = np.random.default_rng(3)
    counts = {"personalised": (400, 120, 30), "generic": (500, 100, 20)}  # delivered, opened, converted
    orders = []
    k = 0
    for var, (n, n_open, n_conv) in counts.items():
        for i in range(n):
            uid = f"{var[0]}{i}"
            rows.append(msg(f"{uid}m", uid, "copy", "app_push", variant=var,
                            opened=D0 + pd.Timedelta("1h") if i < n_open else None))
            if i >= n - n_conv:  # converters are not all openers: no shortcut in the test
                orders.append((f"o{k}", uid, (D0 + pd.Timedelta(hours=float(rng.uniform(0, 70)))).floor("s"), 10.0))
                k += 1
    msgs, orders = frame(rows), orders_frame(orders)
    res = copy_test(msgs, orders).set_index("metric")
    for metric, idx in (("open_rate", 1), ("conversion_rate", 2)):
        xt, xc = counts["personalised"][idx], counts["generic"][idx]
        ref = proportion_test(xc, 500, xt, 400)
        r = res.loc[metric]
        assert (r["successes"], r["successes_control"]) == (xt, xc)
        assert r["rel_lift"] == pytest.approx((xt / 400) / (xc / 500) - 1)
        assert (r["rel_ci_low"], r["rel_ci_high"]) == pytest.approx((ref["rel_ci_low"], ref["rel_ci_high"]),
                                                                        rel=1e-9)
        # one test, one answer: the ratio interval excludes 1 exactly when p < alpha
        assert (r["rel_ci_low"] > 0 or r["rel_ci_high"] < 0) == (r["p_value"] < 0.05)


def _cart_data():
    """One reminder per bucket. The abandonment is the earliest add_to_cart since the user's last
    order: an older cart closed by an order, a later addition to the open cart, and a cart after
    the send must all be ignored."""
    delays = {"<30 min": "10min", "30 min-2 h": "30min", "2-24 h": "23h59min", "24-48 h": "24h", ">48 h": "3D"}
    rows, events, orders, assign = [], [], [], []
    for i, (label, d) in enumerate(delays.items()):
        uid = f"u{i}"
        sent = D0 + pd.Timedelta(days=5 * i)
        cart = sent - pd.Timedelta(d)
        rows.append(msg(f"m{i}", uid, "cart_reminder", "app_push", at=sent))
        assign.append(("cart_reminder", uid, "treatment", sent))
        events += [(uid, cart, "add_to_cart"),
                   (uid, cart + pd.Timedelta("1min"), "add_to_cart"),       # same open cart
                   (uid, cart - pd.Timedelta("2h"), "add_to_cart"),         # older cart ...
                   (uid, sent + pd.Timedelta("1min"), "add_to_cart")]       # after sending
        orders.append((f"closed{i}", uid, cart - pd.Timedelta("1h"), 1.0))  # ... closed by this order
        if i % 2 == 0:
            orders.append((f"o{i}", uid, sent + pd.Timedelta("2h"), 100.0 * (i + 1)))
        # a control user with the same delay who converts in every other bucket
        cid = f"c{i}"
        assign.append(("cart_reminder", cid, "control", sent))
        events.append((cid, cart, "add_to_cart"))
        if i % 2 == 1:
            orders.append((f"co{i}", cid, sent + pd.Timedelta("1D"), 10.0))
    rows.append(msg("nocart", "w", "cart_reminder", "app_push"))
    ev = pd.DataFrame(events, columns=["user_id", "time", "event"])
    a = pd.DataFrame(assign, columns=["experiment", "user_id", "variant", "assigned_time"])
    return delays, ev, frame(rows), orders_frame(orders), a


def test_cart_reminder_buckets():
    delays, ev, msgs, orders, _ = _cart_data()
    out = cart_reminder_by_delay(ev, msgs, orders, campaign="cart_reminder").set_index("delay")
    assert out.index.tolist() == list(delays)
    assert out["n"].tolist() == [1, 1, 1, 1, 1]
    assert out["converted"].tolist() == [1, 0, 1, 0, 1]
    assert out["revenue"].tolist() == [100.0, 0.0, 300.0, 0.0, 500.0]
    lo, hi = proportion_confint(1, 1, alpha=0.05, method="wilson")
    assert (out.loc["<30 min", "ci_low"], out.loc["<30 min", "ci_high"]) == pytest.approx((lo, hi))
    assert out.attrs["excluded"]["units without a preceding add_to_cart"] == 1


def test_cart_reminder_randomised_with_virtual_send_times():
    delays, ev, msgs, orders, a = _cart_data()
    out = cart_reminder_by_delay(ev, None, orders, campaign="cart_reminder", assignments=a).set_index("delay")
    assert out["n"].tolist() == [1] * 5 and out["n_control"].tolist() == [1] * 5
    assert out["converted_control"].tolist() == [0, 1, 0, 1, 0]
    assert out["abs_lift"].tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]
    # one user per arm: no verdict, no interval, and the reason says why
    assert (out["status"] == "insufficient").all() and (out["reason"] == "empty_arm").all()
    assert out["abs_ci_low"].isna().all() and out["p_value"].isna().all()


def test_fatigue_user_weeks():
    rows = []
    # u1: 3 messages in week 1, opt-out, no order; u2: 1 message, one order the same week;
    # u3: 9 messages (pooled into 7+), an order in the following week (not counted).
    for i in range(3):
        rows.append(msg(f"a{i}", "u1", "A", at=D0 + pd.Timedelta(hours=i), unsub=D0 + pd.Timedelta("5h") if i == 2 else None))
    rows.append(msg("b0", "u2", "A"))
    for i in range(9):
        rows.append(msg(f"c{i}", "u3", "A", at=D0 + pd.Timedelta(hours=i)))
    orders = orders_frame([("o1", "u2", D0 + pd.Timedelta("2D"), 1.0), ("o2", "u3", D0 + pd.Timedelta("8D"), 1.0)])
    out = fatigue(frame(rows), orders).set_index("messages_per_period")
    assert out.index.tolist() == ["1", "3", "7+"]
    assert out["user_periods"].tolist() == [1, 1, 1] and out["messages"].tolist() == [1, 3, 9]
    assert out["optout_rate"].tolist() == [0.0, 1.0, 0.0]
    assert out["conversion_rate"].tolist() == [1.0, 0.0, 0.0]
    assert out["optouts_per_delivered_ad"].loc["3"] == pytest.approx(1 / 3)
    assert out["delivered_ads"].tolist() == [1, 3, 9]
    plot_fatigue(out.reset_index())


def test_send_time_heatmap():
    rows = [msg("m1", "u1", "A", at=T("2024-03-04 09:00"), clicked=T("2024-03-04 09:05")),  # Monday 9h
            msg("m2", "u2", "A", at=T("2024-03-04 09:30")),
            msg("m3", "u3", "A", at=T("2024-03-10 21:00"))]  # Sunday 21h
    orders = orders_frame([("o1", "u3", T("2024-03-11 08:00"), 5.0)])
    hm = send_time_heatmap(frame(rows), orders)
    assert hm[["weekday", "hour", "sent"]].values.tolist() == [[0, 9, 2], [6, 21, 1]]
    assert hm["weekday_name"].tolist() == ["월", "일"]
    assert hm["click_rate"].tolist() == [0.5, 0.0] and hm["conversion_rate"].tolist() == [0.0, 1.0]
    ax = plot_send_time_heatmap(hm, "conversion_rate")
    assert ax.get_ylabel() == "요일"
    with pytest.raises(ValueError, match="metric='ctr'"):
        plot_send_time_heatmap(hm, "ctr")


# ----------------------------------------------------------------------------- backends
def test_attribute_and_performance_same_on_every_backend(backend):
    # (built in one piece: a pd.concat'ed frame makes Spark's Arrow conversion fall back to a
    # path that turns missing strings into 'NaN')
    msgs, orders = _funnel_data([msg("x1", "u0", "B", "sms", at=D0 + pd.Timedelta("1h")),
                                 msg("x2", "u0", "B", "kakao_friendtalk", at=D0 + pd.Timedelta("2h"), variant="v")])
    for share in ("last_touch", "every_touch"):
        ref = attribute(msgs, orders, share=share, windows={"default": "3D", "sms": "1D"})
        got = attribute(backend(msgs), backend(orders), share=share, windows={"default": "3D", "sms": "1D"})
        assert_same_frame(got, ref, sort_by=["order_id", "campaign"])
    ref = message_performance(msgs, orders, basis="click")
    got = message_performance(backend(msgs), backend(orders), basis="click")
    assert_same_frame(got, ref, sort_by=["campaign", "channel", "variant"])


# ----------------------------------------------------------------------------- planted truth
@pytest.fixture(scope="module")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=20_000, weeks=12, seed=3, end=T("2025-06-02", tz="Asia/Seoul"))


def test_copy_test_recovers_planted_rates(shop):
    truth = shop.truth["copy_test"].set_index("variant")
    res = copy_test(shop.messages, shop.orders, campaign="개인화 카피 테스트", assignments=shop.assignments,
                    alpha=0.001).set_index("metric")
    for metric, col in (("open_rate", "p_open"), ("conversion_rate", "p_convert")):
        r = res.loc[metric]
        planted = truth.loc["personalised", col] / truth.loc["generic", col]
        assert r["rel_ci_low"] + 1 <= planted <= r["rel_ci_high"] + 1, (metric, r["rel_lift"], planted)
        for arm, n, x in (("personalised", "n", "successes"), ("generic", "n_control", "successes_control")):
            lo, hi = proportion_confint(r[x], r[n], alpha=0.001, method="wilson")
            assert lo <= truth.loc[arm, col] <= hi, (metric, arm)
    assert "ITT" in res.loc["conversion_rate", "method"]


@pytest.mark.parametrize("analysis", ["copy", "cart"])
def test_randomised_analyses_leave_out_windows_cut_short_by_as_of(shop, analysis):
    """With assignments, a user whose window has not ended by as_of is left out and counted;
    the users kept and the users left out add up to those assigned by as_of."""
    name = {"copy": "개인화 카피 테스트", "cart": "장바구니 리마인드"}[analysis]
    a = shop.assignments[shop.assignments["experiment"] == name]
    t = pd.to_datetime(a["assigned_time"])
    as_of = t.max() + pd.Timedelta("1D")  # the last two days of sends have not had three days yet
    arms = ["personalised", "generic"] if analysis == "copy" else ["treatment", "control"]
    by = a[(t <= as_of) & a["variant"].isin(arms)]
    cut = int((pd.to_datetime(by["assigned_time"]) > as_of - pd.Timedelta("3D") + pd.Timedelta(microseconds=1)).sum())
    assert 0 < cut < len(by)
    if analysis == "copy":
        res = copy_test(shop.messages, shop.orders, campaign=name, assignments=shop.assignments, as_of=as_of)
        kept = res.set_index("metric").loc["conversion_rate", ["n", "n_control"]].sum()
    else:
        res = cart_reminder_by_delay(shop.events, shop.messages, shop.orders, campaign=name,
                                     assignments=shop.assignments, as_of=as_of)
        kept = res["n"].sum() + res["n_control"].sum() + res.attrs["excluded"]["units without a preceding add_to_cart"]
    assert res.attrs["excluded"]["assignments whose window ends after as_of"] == cut
    assert kept + cut == len(by)


def test_cart_reminder_recovers_planted_rates(shop):
    truth = shop.truth["cart_reminder"]
    res = cart_reminder_by_delay(shop.events, shop.messages, shop.orders, campaign="장바구니 리마인드",
                                 assignments=shop.assignments, alpha=0.001)
    assert res.attrs["excluded"]["units without a preceding add_to_cart"] == 0  # every delay recovered
    assert (res["ci_low"].values <= truth["p_convert"].values).all()
    assert (truth["p_convert"].values <= res["ci_high"].values).all()
    # Earlier reminders convert better: the first bucket beats the last.
    assert res["conversion_rate"].iloc[0] > res["conversion_rate"].iloc[-1]
    planted = truth["p_convert"].values - truth["p_control"].values
    ok = (res["status"] == "ok").values
    assert ((res["abs_ci_low"].values <= planted) & (planted <= res["abs_ci_high"].values))[ok].all()
    # the fixture's control arms per delay are small: those comparisons say so instead
    assert set(res.loc[~ok, "reason"]) <= {"too_few_expected_events", "empty_arm"}


def test_fatigue_recovers_planted_unsubscribe_curve(shop):
    res = fatigue(shop.messages, shop.orders, alpha=0.001).set_index("n_messages")
    truth = shop.truth["unsubscribe"].set_index("messages_in_week")["p_unsubscribe"]
    for k in range(1, 7):
        assert res.loc[k, "ci_low"] <= truth[k] <= res.loc[k, "ci_high"], k
    assert res["messages"].sum() == len(shop.messages)  # no message lost
    assert res["optout_rate"].is_monotonic_increasing


def test_message_performance_recovers_planted_channel_rates(shop):
    msgs = shop.messages[shop.messages["campaign"] != "개인화 카피 테스트"]  # the copy test has its own open rates
    perf = message_performance(msgs, shop.orders, by=("channel",), period=None).set_index("channel")
    for ch, p in shop.truth["delivery_rate"].items():
        lo, hi = proportion_confint(perf.loc[ch, "delivered"], perf.loc[ch, "sent"], alpha=0.001, method="wilson")
        assert lo <= p <= hi, ch
    for ch, p in shop.truth["open_rate"].items():
        lo, hi = proportion_confint(perf.loc[ch, "opened"], perf.loc[ch, "delivered"], alpha=0.001, method="wilson")
        assert lo <= p <= hi, ch
    for ch in ("sms", "lms", "kakao_alimtalk", "kakao_friendtalk"):
        assert np.isnan(perf.loc[ch, "open_rate"])


def test_seed_questions_same_on_every_backend(backend):
    delays, ev, msgs, orders, a = _cart_data()
    ref = cart_reminder_by_delay(ev, None, orders, campaign="cart_reminder", assignments=a)
    got = cart_reminder_by_delay(backend(ev), None, backend(orders), campaign="cart_reminder", assignments=backend(a))
    assert_same_frame(got, ref)
    ref = cart_reminder_by_delay(ev, msgs, orders, campaign="cart_reminder")
    got = cart_reminder_by_delay(backend(ev), backend(msgs), backend(orders), campaign="cart_reminder")
    assert_same_frame(got, ref)
    fm, fo = _funnel_data()
    assert_same_frame(fatigue(backend(fm), backend(fo)), fatigue(fm, fo))
    assert_same_frame(send_time_heatmap(backend(fm), backend(fo)), send_time_heatmap(fm, fo))


def test_copy_test_and_cart_reminder_correct_their_families(shop):
    """The metrics of a copy test, and the delay buckets of a cart reminder, are families:
    p_adjusted is Holm's (statsmodels) over the tested cells and verdicts use it."""
    from statsmodels.stats.multitest import multipletests
    copy = copy_test(shop.messages, shop.orders, campaign="개인화 카피 테스트", assignments=shop.assignments)
    cart = cart_reminder_by_delay(shop.events, shop.messages, shop.orders, campaign="장바구니 리마인드",
                                  assignments=shop.assignments)
    assert copy["p_value"].notna().sum() == 2
    for res in (copy, cart):  # the fixture's cart-reminder control arms are all too small to test
        ok = res["p_value"].notna()
        if ok.any():
            np.testing.assert_allclose(res.loc[ok, "p_adjusted"],
                                       multipletests(res.loc[ok, "p_value"], method="holm")[1])
        assert (res["family"] == f"all: {int(ok.sum())} tested cells").all() and (res["correction"] == "holm").all()
        sig = res["p_adjusted"] < 0.05
        assert (res.loc[sig, "verdict"].isin(["win", "loss"])).all()
        assert (res.loc[ok & ~sig, "verdict"] == "inconclusive").all()
        assert (res.loc[~ok, "verdict"] == "insufficient").all()
    raw = copy_test(shop.messages, shop.orders, campaign="개인화 카피 테스트", assignments=shop.assignments,
                    correction="none")
    assert raw["p_adjusted"].equals(raw["p_value"])


def test_receipt_only_channels_come_from_the_registry(monkeypatch):
    """LINE (known, receipt only) and a channel a shop declares get NaN open rates, as SMS does;
    a per-channel window may name them."""
    from crmlab.io.sources import channels
    monkeypatch.setattr(channels, "_declared", {})
    channels.declare({"zalo": {"signals": ["receipt_only"]}, "talk": {"signals": ["open", "click"]}})
    t0 = pd.Timestamp("2026-03-02 10:00")
    rows = []
    for ch in ("line", "zalo", "talk"):
        for i in range(4):
            rows.append({"message_id": f"{ch}{i}", "user_id": f"u{i}", "campaign": "c", "channel": ch,
                         "is_ad": False, "sent_time": t0, "delivered_time": t0,
                         "opened_time": t0 + pd.Timedelta("1h") if ch == "talk" and i < 2 else None,
                         "clicked_time": None})
    msgs = pd.DataFrame(rows)
    perf = message_performance(msgs, by=("channel",), period=None).set_index("channel")
    assert np.isnan(perf.loc["line", "open_rate"]) and np.isnan(perf.loc["zalo", "open_rate"])
    assert perf.loc["talk", "open_rate"] == 0.5
    from crmlab.messages import parse_windows
    assert set(parse_windows({"zalo": "1D", "line": "2h"})) == {"default", "zalo", "line"}


def test_click_rate_leaves_out_channels_that_report_no_clicks(monkeypatch):
    """A shop mixing app push with Kakao AlimTalk: the click rate divides the push clicks by the
    push deliveries, not by every delivery (which read 5 % instead of 10 % before); a week of
    receipt-only channels has no click rate at all, and the page says so instead of "0.0% were clicked"."""
    from crmlab.report import facts as FACTS, text as T
    from crmlab.report.analyses import MessageResult
    t0 = pd.Timestamp("2026-03-02 10:00")
    rows = []
    for ch in ("app_push", "kakao_alimtalk"):
        for i in range(20):
            rows.append({"message_id": f"{ch}{i}", "user_id": f"u{i}", "campaign": "c", "channel": ch,
                         "is_ad": False, "sent_time": t0, "delivered_time": t0, "opened_time": None,
                         "clicked_time": t0 + pd.Timedelta("1h") if ch == "app_push" and i < 2 else None})
    msgs = pd.DataFrame(rows)
    by_channel = message_performance(msgs, by=("channel",), period=None).set_index("channel")
    assert by_channel.loc["app_push", "click_rate"] == 0.1
    assert np.isnan(by_channel.loc["kakao_alimtalk", "click_rate"])
    both = message_performance(msgs, by=("campaign",), period=None).iloc[0]
    assert (both["delivered"], both["delivered_click_tracked"], both["clicked"]) == (40, 20, 2)
    assert both["click_rate"] == 0.1
    heat = send_time_heatmap(msgs).iloc[0]
    assert heat["click_rate"] == 0.1 and heat["delivered_click_tracked"] == 20
    # the page's sentence: from the same frame
    week = message_performance(msgs, by=("campaign", "channel"), period=None)
    ctx = {"first": "2026-03-02", "last": "2026-03-08", "windows": "3 d", "basis": "receipt", "share": "last_touch"}
    rates = next(f for f in FACTS.message_facts(MessageResult(week, None, None, None, None, None, None, None, ctx))
                 if f.key.startswith("msg_rates"))
    assert rates.key == "msg_rates" and rates.value("click") == pytest.approx(0.1)
    kakao = week[week["channel"] == "kakao_alimtalk"]
    only = next(f for f in FACTS.message_facts(MessageResult(kakao, None, None, None, None, None, None, None, ctx))
                if f.key.startswith("msg_rates"))
    assert only.key == "msg_rates_no_click"
    sentence = T.fact_sentence(only, "en")
    assert "no click rate" in sentence and "were clicked" not in sentence
