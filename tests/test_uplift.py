"""Campaign uplift: virtual send times, reference statistics (statsmodels/scipy), Hillstrom's
e-mail test, segments and costs, Qini curves against scikit-uplift's formulas, DuckDB vs
PySpark."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmlab.abtest import SampleStats, mean_test, proportion_test
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from conftest import assert_same_frame
from crmlab.uplift import (campaign_uplift, holdout_uplift, plot_qini, plot_uplift, qini_auc, qini_curve,
                           uplift_at_k, uplift_curve)

T = pd.Timestamp
D0 = T("2024-05-06 10:00")


def assignments_frame(rows):
    return pd.DataFrame(rows, columns=["experiment", "user_id", "variant", "assigned_time"]).assign(
        assigned_time=lambda d: pd.to_datetime(d["assigned_time"]))


def orders_frame(rows):
    return pd.DataFrame(rows, columns=["order_id", "user_id", "time", "revenue"]).assign(
        time=lambda d: pd.to_datetime(d["time"]))


def test_control_window_starts_at_the_virtual_send_time():
    a = assignments_frame([
        ("camp", "t1", "treatment", D0), ("camp", "t2", "treatment", D0 + pd.Timedelta("1D")),
        ("camp", "c1", "control", D0 + pd.Timedelta("2D")), ("camp", "c2", "control", D0 + pd.Timedelta("2D")),
        ("camp", "c3", "control", D0),
    ])
    o = orders_frame([
        ("o1", "t1", D0 + pd.Timedelta("1h"), 10.0),          # in t1's window
        ("o2", "t2", D0 + pd.Timedelta("12h"), 99.0),         # before t2's send: not counted
        ("o3", "c1", D0 + pd.Timedelta("1D"), 99.0),          # before c1's virtual send: not counted
        ("o4", "c2", D0 + pd.Timedelta("2D1h"), 20.0),        # after c2's virtual send: counted
        ("o5", "c2", D0 + pd.Timedelta("2D2h"), 5.0),         # second order of c2: revenue adds up
        ("o6", "c3", D0 + pd.Timedelta("3D"), 99.0),          # exactly at the window end: not counted
    ])
    res = campaign_uplift(a, o, window="3D").set_index("metric")
    conv, rev = res.loc["conversion_rate"], res.loc["revenue_per_user"]
    assert (conv["n_treatment"], conv["n_control"]) == (2, 3)
    assert conv["estimate"] == 0.5 and conv["estimate_control"] == pytest.approx(1 / 3)
    assert rev["estimate"] == 5.0 and rev["estimate_control"] == pytest.approx(25 / 3)
    assert conv["incremental"] == pytest.approx((0.5 - 1 / 3) * 2)
    assert res.attrs["excluded"]["assignments to other arms"] == 0


def test_windows_cut_short_by_as_of_are_left_out_and_counted():
    """A user whose window has not ended by as_of has had less time to convert: left out and
    counted by default; ``incomplete="keep"`` keeps them with the part observed so far."""
    a = assignments_frame([
        ("camp", "t1", "treatment", D0), ("camp", "c1", "control", D0),
        # window ends exactly one microsecond after as_of: complete (every order it covers is <= as_of)
        ("camp", "t2", "treatment", D0 + pd.Timedelta("1D")),
        ("camp", "t3", "treatment", D0 + pd.Timedelta("2D")),  # window ends a day after as_of
        ("camp", "c2", "control", D0 + pd.Timedelta("2D")),
    ])
    o = orders_frame([("o1", "t1", D0 + pd.Timedelta("1h"), 10.0), ("o2", "t3", D0 + pd.Timedelta("2D1h"), 7.0),
                      ("o3", "t2", D0 + pd.Timedelta("3D23h"), 4.0)])
    as_of = D0 + pd.Timedelta("4D") - pd.Timedelta(microseconds=1)
    res = campaign_uplift(a, o, window="3D", as_of=as_of).set_index("metric")
    conv = res.loc["conversion_rate"]
    assert (conv["n_treatment"], conv["n_control"]) == (2, 1)
    assert conv["estimate"] == 1.0 and conv["estimate_control"] == 0.0
    assert res.attrs["excluded"]["assignments whose window ends after as_of"] == 2
    kept = campaign_uplift(a, o, window="3D", as_of=as_of, incomplete="keep").set_index("metric")
    assert (kept.loc["conversion_rate", "n_treatment"], kept.loc["conversion_rate", "n_control"]) == (3, 2)
    assert "assignments whose window ends after as_of" not in kept.attrs["excluded"]
    # Without as_of, or with an open window, nothing is cut.
    assert campaign_uplift(a, o, window="3D").loc[0, "n_treatment"] == 3
    assert holdout_uplift(a, o, experiment="camp", control="control", as_of=as_of).loc[0, "n_treatment"] == 3
    with pytest.raises(ValueError, match="incomplete='drop'"):
        campaign_uplift(a, o, window="3D", as_of=as_of, incomplete="drop")


def _simulated(seed=7, n=4000):
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n)]
    variant = np.where(rng.random(n) < 0.5, "treatment", "control")
    seg = np.where(rng.random(n) < 0.3, "vip", "regular")
    p = np.where(variant == "treatment", 0.12, 0.08) + np.where(seg == "vip", 0.05, 0)
    buys = rng.random(n) < p
    spend = rng.lognormal(3, 1, n)
    a = assignments_frame([("camp", u, v, D0) for u, v in zip(users, variant)])
    o = orders_frame([(f"o{i}", users[i], D0 + pd.Timedelta(hours=int(rng.integers(0, 72))), float(round(spend[i], 2)))
                      for i in np.nonzero(buys)[0]])
    segments = pd.DataFrame({"user_id": users, "tier": seg})
    return a, o, segments, pd.DataFrame({"user_id": users, "variant": variant, "tier": seg})


def test_statistics_match_statsmodels_and_scipy():
    a, o, _, truth = _simulated()
    y = truth.merge(o.groupby("user_id")["revenue"].sum().rename("rev").reset_index(), how="left").fillna({"rev": 0})
    y["conv"] = (y["rev"] > 0).astype(int)
    t, c = y[y.variant == "treatment"], y[y.variant == "control"]
    # method="previous": pooled z, Newcombe interval, Katz log ratio; Welch for revenue
    prev = campaign_uplift(a, o, method="previous").set_index("metric")
    conv = prev.loc["conversion_rate"]
    nlo, nhi = confint_proportions_2indep(t.conv.sum(), len(t), c.conv.sum(), len(c), method="newcomb", compare="diff")
    assert (conv["abs_ci_low"], conv["abs_ci_high"]) == pytest.approx((nlo, nhi), rel=1e-9)
    _, p = proportions_ztest([t.conv.sum(), c.conv.sum()], [len(t), len(c)])
    assert conv["p_value"] == pytest.approx(p, rel=1e-9)
    rlo, rhi = confint_proportions_2indep(t.conv.sum(), len(t), c.conv.sum(), len(c), method="log", compare="ratio")
    assert (conv["rel_ci_low"] + 1, conv["rel_ci_high"] + 1) == pytest.approx((rlo, rhi), rel=1e-9)
    rev = prev.loc["revenue_per_user"]
    welch = stats.ttest_ind(t.rev, c.rev, equal_var=False)
    assert rev["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    ci = welch.confidence_interval(0.95)
    assert (rev["abs_ci_low"], rev["abs_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-6)
    # default: the A/B engine's default comparison on the same per-user values
    res = campaign_uplift(a, o).set_index("metric")
    ref = mean_test(SampleStats.from_values(c.rev), SampleStats.from_values(t.rev))
    rev = res.loc["revenue_per_user"]
    assert rev["status"] == ref["status"].item()
    assert rev["abs_lift"] == pytest.approx(t.rev.mean() - c.rev.mean(), rel=1e-9)
    np.testing.assert_allclose([rev["p_value"], rev["abs_ci_low"], rev["abs_ci_high"]],
                               [ref["p_value"], ref["abs_ci_low"], ref["abs_ci_high"]], rtol=1e-9)
    pc = proportion_test(c.conv.sum(), len(c), t.conv.sum(), len(t))
    np.testing.assert_allclose(res.loc["conversion_rate", ["p_value", "abs_ci_low", "abs_ci_high"]].astype(float),
                               [pc["p_value"], pc["abs_ci_low"], pc["abs_ci_high"]], rtol=1e-9)
    assert rev["incremental"] == pytest.approx((t.rev.mean() - c.rev.mean()) * len(t))


def test_segments_partition_the_users_and_costs():
    a, o, segments, truth = _simulated()
    seg = segments.iloc[:-10]  # 10 users without a segment
    msgs = a[a.variant == "treatment"].assign(
        message_id=lambda d: "m" + d["user_id"], campaign="camp", channel="sms", is_ad=True,
        sent_time=D0, delivered_time=D0)[["message_id", "user_id", "campaign", "channel", "is_ad", "sent_time",
                                           "delivered_time"]]
    res = campaign_uplift(a, o, segments=seg, messages=msgs, costs={"sms": 10.0})
    conv = res[res.metric == "conversion_rate"].set_index("segment")
    assert conv["n_treatment"].sum() + conv["n_control"].sum() == len(a) - 10
    assert res.attrs["excluded"]["assigned users without a segment"] == 10
    treated = truth.iloc[:-10].query("variant == 'treatment'").groupby("tier").size()
    for tier in ("vip", "regular"):
        assert conv.loc[tier, "cost"] == pytest.approx(10.0 * treated[tier])
        assert conv.loc[tier, "cost_per_incremental"] == pytest.approx(
            conv.loc[tier, "cost"] / conv.loc[tier, "incremental"])
    # The message table's own cost column wins over the per-channel rate.
    res2 = campaign_uplift(a, o, messages=msgs.assign(cost=1.0), costs="default")
    assert res2.loc[res2.metric == "conversion_rate", "cost"].iloc[0] == pytest.approx(len(msgs))


def test_bad_parameters():
    a, o, seg, _ = _simulated(n=200)
    with pytest.raises(ValueError, match="window='soon'"):
        campaign_uplift(a, o, window="soon")
    with pytest.raises(ValueError, match="alpha=2"):
        campaign_uplift(a, o, alpha=2)
    with pytest.raises(ValueError, match="no experiment has both arms"):
        campaign_uplift(a, o, control="holdout")
    with pytest.raises(ValueError, match="segment=None is ambiguous"):
        campaign_uplift(a, o, segments=seg.assign(x=1))
    msgs = pd.DataFrame({"message_id": ["m1"], "user_id": [a["user_id"].iloc[0]], "campaign": [a["experiment"].iloc[0]],
                         "channel": ["sms"], "is_ad": [True], "sent_time": [D0]})
    for bad in (-9.0, float("inf")):
        with pytest.raises(ValueError, match="cost per message must be a finite number >= 0"):
            campaign_uplift(a, o, messages=msgs, costs={"sms": bad})


# ----------------------------------------------------------------------------- Hillstrom
@pytest.fixture(scope="module")
def hillstrom():
    from crmlab.datasets import load_hillstrom
    return load_hillstrom()


def test_hillstrom_uplift_of_each_email_matches_the_outcomes_file(hillstrom):
    h = hillstrom
    out = h.outcomes
    ctrl = out[out.variant == "No E-Mail"]
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        res = campaign_uplift(h.assignments, h.orders, experiment="hillstrom_email", treatment=arm,
                              control="No E-Mail", window="14D", events=h.events, event="page_view",
                              method="previous")
        res = res.set_index("metric")
        tr = out[out.variant == arm]
        for metric, col in (("visit_rate", "visit"), ("conversion_rate", "conversion")):
            r = res.loc[metric]
            assert r["abs_lift"] == pytest.approx(tr[col].mean() - ctrl[col].mean(), rel=1e-12)
            _, p = proportions_ztest([tr[col].sum(), ctrl[col].sum()], [len(tr), len(ctrl)])
            assert r["p_value"] == pytest.approx(p, rel=1e-9)
        r = res.loc["revenue_per_user"]
        welch = stats.ttest_ind(tr.spend, ctrl.spend, equal_var=False)
        assert r["abs_lift"] == pytest.approx(tr.spend.mean() - ctrl.spend.mean(), rel=1e-9)
        assert r["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    # The data set's well-known headline: the men's e-mail lifts visits from 10.6 % to 18.3 %
    # (+7.7 points), conversion from 0.57 % to 1.25 % (+0.68 points), spend by $0.77 per customer.
    mens = campaign_uplift(h.assignments, h.orders, experiment="hillstrom_email", treatment="Mens E-Mail",
                           control="No E-Mail", window="14D", events=h.events).set_index("metric")
    assert mens.loc["visit_rate", "abs_lift"] == pytest.approx(0.0766, abs=5e-4)
    assert mens.loc["conversion_rate", "abs_lift"] == pytest.approx(0.0068, abs=5e-5)
    assert mens.loc["revenue_per_user", "abs_lift"] == pytest.approx(0.770, abs=5e-3)


def test_holdout_uplift_uses_an_open_window():
    a = assignments_frame([("global_holdout", "t1", "treatment", D0), ("global_holdout", "h1", "holdout", D0),
                           ("global_holdout", "t2", "treatment", D0), ("global_holdout", "h2", "holdout", D0)])
    o = orders_frame([("o1", "t1", D0 + pd.Timedelta("40D"), 10.0), ("o2", "h1", D0 + pd.Timedelta("20D"), 4.0),
                      ("o3", "t2", D0 + pd.Timedelta("70D"), 8.0)])
    res = holdout_uplift(a, o, as_of=D0 + pd.Timedelta("60D")).set_index("metric")
    assert res.loc["revenue_per_user", "estimate"] == 5.0  # o3 is after as_of
    assert res.loc["revenue_per_user", "estimate_control"] == 2.0
    assert res.loc["conversion_rate", "abs_lift"] == 0.0


def test_holdout_uplift_passes_incomplete_on():
    """The defect: holdout_uplift accepted incomplete= and never passed it on."""
    a = assignments_frame([("global_holdout", "t1", "treatment", D0), ("global_holdout", "h1", "holdout", D0),
                           ("global_holdout", "t2", "treatment", D0 + pd.Timedelta("10D")),
                           ("global_holdout", "h2", "holdout", D0 + pd.Timedelta("10D"))])
    o = orders_frame([("o1", "t1", D0 + pd.Timedelta("2D"), 10.0), ("o2", "t2", D0 + pd.Timedelta("11D"), 4.0)])
    kw = dict(window="7D", as_of=D0 + pd.Timedelta("12D"))
    cut = holdout_uplift(a, o, incomplete="exclude", **kw)
    kept = holdout_uplift(a, o, incomplete="keep", **kw)
    assert cut.attrs["excluded"]["assignments whose window ends after as_of"] == 2
    assert (cut["n_treatment"] == 1).all() and (kept["n_treatment"] == 2).all()
    with pytest.raises(ValueError, match="incomplete='half'"):
        holdout_uplift(a, o, incomplete="half", **kw)


# ----------------------------------------------------------------------------- Qini
def _reference_curves(y, t, s):
    """scikit-uplift's qini_curve / uplift_curve (sklift.metrics, v0.5), re-derived with a
    plain loop over distinct score thresholds: an independent implementation."""
    xs, qs, us = [0.0], [0.0], [0.0]
    for thr in sorted(set(s), reverse=True):
        top = s >= thr
        nt, nc = t[top].sum(), (1 - t[top]).sum()
        yt, yc = (y * t)[top].sum(), (y * (1 - t))[top].sum()
        xs.append(float(top.sum()))
        qs.append(yt - (yc * nt / nc if nc else 0.0))
        us.append(((yt / nt if nt else 0.0) - (yc / nc if nc else 0.0)) * top.sum())
    return np.array(xs), np.array(qs), np.array(us)


def test_qini_and_uplift_curves_against_reference():
    rng = np.random.default_rng(11)
    n = 500
    t = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n), 1)  # ties on purpose
    y = (rng.random(n) < 0.1 + 0.1 * t * (s > 0)).astype(int)
    df = pd.DataFrame({"treatment": t, "outcome": y, "score": s})
    x_ref, q_ref, u_ref = _reference_curves(y, t, s)
    q = qini_curve(df)
    u = uplift_curve(df)
    np.testing.assert_allclose(q["n"], x_ref)
    np.testing.assert_allclose(q["qini"], q_ref, atol=1e-9)
    np.testing.assert_allclose(u["uplift"], u_ref, atol=1e-9)
    assert q["fraction"].iloc[-1] == 1.0
    # Total Qini = treated responders - control responders scaled to the treated group's size.
    assert q["qini"].iloc[-1] == pytest.approx(y[t == 1].sum() - y[t == 0].sum() * (t == 1).sum() / (t == 0).sum())
    plot_qini(df)


def test_qini_auc_bounds_and_hand_example():
    # Hand example: 4 users, score ranks a treated responder first, a control responder last.
    df = pd.DataFrame({"treatment": [1, 0, 1, 0], "outcome": [1, 0, 0, 1], "score": [4, 3, 2, 1]})
    q = qini_curve(df)
    # n=1: 1 - 0 = 1 (no control yet); n=2: 1 - 0*1/1 = 1; n=3: 1 - 0*2/1 = 1; n=4: 1 - 1*2/2 = 0
    assert q["qini"].tolist() == [0, 1, 1, 1, 0]
    assert qini_auc(df) == pytest.approx(1.0)  # the perfect ordering
    # Perfect curve of this data is this curve; reversed scores give a negative coefficient.
    assert qini_auc(df.assign(score=-df["score"])) < 0
    rng = np.random.default_rng(5)
    n = 20000
    big = pd.DataFrame({"treatment": rng.integers(0, 2, n), "score": rng.random(n)})
    big["outcome"] = (rng.random(n) < 0.1 + 0.05 * big["treatment"]).astype(int)
    assert abs(qini_auc(big)) < 0.1  # a random score is near 0
    good = big.assign(score=big["outcome"] * big["treatment"] - big["outcome"] * (1 - big["treatment"]))
    assert qini_auc(good) == pytest.approx(1.0)


def test_uplift_at_k():
    df = pd.DataFrame({"treatment": [1, 0, 1, 0, 1, 0], "outcome": [1, 0, 1, 1, 0, 0],
                       "score": [6, 5, 4, 3, 2, 1]})
    # top half overall: users 1-3 -> treated mean (1+1)/2 = 1, control mean 0/1 = 0
    assert uplift_at_k(df, 0.5) == 1.0
    # by group: top ceil(3*0.5)=2 treated (1, 1) and top 2 control (0, 1)
    assert uplift_at_k(df, 0.5, strategy="by_group") == 0.5
    assert uplift_at_k(df, 6) == pytest.approx(2 / 3 - 1 / 3)
    with pytest.raises(ValueError, match="strategy='top'"):
        uplift_at_k(df, 0.5, strategy="top")
    with pytest.raises(ValueError, match="k=0"):
        uplift_at_k(df, 0)


def test_uplift_at_k_groups_ties_as_the_qini_curve_does():
    """The defect: ties were broken by row order, so reordering rows changed the answer."""
    df = pd.DataFrame({"treatment": [1, 0, 1, 0, 1, 0], "outcome": [1, 1, 0, 0, 1, 0],
                       "score": [5, 3, 3, 3, 3, 1]})
    # top 2 cuts inside the tie at score 3: the whole tie enters (users 1-5), as in qini_curve
    expected = np.mean([1, 0, 1]) - np.mean([1, 0])
    assert uplift_at_k(df, 2) == pytest.approx(expected)
    q = qini_curve(df).set_index("n")
    assert 2 not in q.index and 5 in q.index  # the curve has no point inside a tie either
    rng = np.random.default_rng(9)
    for _ in range(5):
        shuffled = df.sample(frac=1, random_state=int(rng.integers(1 << 30)))
        assert uplift_at_k(shuffled, 2) == pytest.approx(expected)
        assert uplift_at_k(shuffled, 0.5, strategy="by_group") == uplift_at_k(df, 0.5, strategy="by_group")


# ----------------------------------------------------------------------------- backends
def test_campaign_uplift_same_on_every_backend(backend):
    a, o, seg, _ = _simulated(n=600)
    ref = campaign_uplift(a, o, segments=seg)
    got = campaign_uplift(backend(a), backend(o), segments=seg)
    assert_same_frame(got, ref, sort_by=["segment", "metric"], rtol=1e-7)


# ----------------------------------------------------------------------------- planted truth
END = T("2025-06-02", tz="Asia/Seoul")


def _prefixed(shop, p):
    a = shop.assignments.assign(user_id=p + shop.assignments["user_id"], experiment=p + shop.assignments["experiment"])
    o = shop.orders.assign(user_id=p + shop.orders["user_id"], order_id=p + shop.orders["order_id"])
    seg = shop.truth["segments"][["user_id", "persona"]].assign(user_id=lambda d: p + d["user_id"])
    truth = shop.truth["uplift"].assign(experiment=lambda d: p + d["campaign"])
    return a, o, seg, truth


def test_recovers_planted_campaign_uplift():
    from crmlab.datasets import synthetic_shop
    shop = synthetic_shop(n_users=20_000, weeks=12, seed=4, end=END)
    truth = shop.truth["uplift"]
    camps = sorted(truth["campaign"].unique())
    seg = shop.truth["segments"][["user_id", "persona"]]
    # per campaign: the planted expectation given the arms' persona mix
    res = campaign_uplift(shop.assignments, shop.orders, experiment=camps, alpha=0.001).set_index(["experiment", "metric"])
    mix = shop.assignments.merge(seg, on="user_id").groupby(["experiment", "variant", "persona"]).size()
    for camp in camps:
        tr = truth[truth.campaign == camp].set_index("persona")
        w_t = mix[camp]["treatment"] / mix[camp]["treatment"].sum()
        w_c = mix[camp]["control"] / mix[camp]["control"].sum()
        for metric, pt, pc in (("conversion_rate", "p_treatment", "p_control"),
                               ("revenue_per_user", "revenue_per_user_treatment", "revenue_per_user_control")):
            planted = (w_t * tr[pt]).sum() - (w_c * tr[pc]).sum()
            r = res.loc[(camp, metric)]
            if r["status"] == "insufficient":  # no interval is claimed; the rule says why
                assert np.isnan(r["abs_ci_low"]) and r["n_needed"] > r["n_control"], (camp, metric)
                continue
            assert r["abs_ci_low"] <= planted <= r["abs_ci_high"], (camp, metric, r["abs_lift"], planted)
    # per campaign x persona (99.9 % intervals: all 36 should hold)
    cells = campaign_uplift(shop.assignments, shop.orders, experiment=camps, segments=seg, alpha=0.001)
    cells = cells[cells.metric == "conversion_rate"].merge(truth, left_on=["experiment", "segment"],
                                                           right_on=["campaign", "persona"])
    assert len(cells) == len(truth)
    # a campaign x persona cell holds a few dozen control users: most are too small for a
    # verdict (fewer than 10 expected converters in the smaller arm) and say so
    ok = cells.status == "ok"
    assert ((cells.abs_ci_low <= cells.uplift) & (cells.uplift <= cells.abs_ci_high))[ok].all()
    small = cells[~ok]
    assert (small.reason == "too_few_expected_events").all()
    assert ((small.n_needed > small.n_control) | small.n_needed.isna()).all()  # NaN: no converter at all
    ax = plot_uplift(cells)
    assert len(ax.get_yticklabels()) == len(cells)


@pytest.mark.slow
def test_interval_coverage_over_50_seeds():
    """Across 50 generated shops, the planted uplift of each campaign x persona falls in the
    reported 95 % interval about 95 % of the time, wherever an interval is reported."""
    from crmlab.datasets import synthetic_shop
    parts = [_prefixed(synthetic_shop(n_users=20_000, weeks=12, seed=seed, end=END), f"s{seed}_")
             for seed in range(50)]
    a, o, seg, truth = (pd.concat(x, ignore_index=True) for x in zip(*parts))
    exps = sorted(truth["experiment"].unique())
    res = campaign_uplift(a, o, experiment=exps, segments=seg, segment="persona")
    cells = res[res.metric == "conversion_rate"].merge(truth, left_on=["experiment", "segment"],
                                                       right_on=["experiment", "persona"])
    res = res.merge(truth, left_on=["experiment", "segment"], right_on=["experiment", "persona"])
    assert len(res) == 2 * len(truth) == 2 * 50 * 36
    cov = {}
    for metric, planted in (("conversion_rate", "uplift"), ("revenue_per_user", "revenue_uplift")):
        cells = res[(res.metric == metric) & (res.status == "ok")]
        cov[metric] = ((cells.abs_ci_low <= cells[planted]) & (cells[planted] <= cells.abs_ci_high)).mean()
        cov[metric + " cells"] = len(cells)
    # Conversion cells with a verdict cover the planted truth at the nominal rate (within one
    # point); the rest (fewer than 10 expected converters in the smaller arm) say insufficient.
    assert cov["conversion_rate"] >= 0.94 and cov["conversion_rate cells"] >= 300, cov
    # Revenue per user in a campaign x persona cell (median 118 control users, ~6 buyers):
    # the previous Welch intervals covered 92.2 %; no normal-based interval is calibrated with
    # so few buyers (docs/calibration.md), so nearly every cell says so, with the size needed.
    rev = res[res.metric == "revenue_per_user"]
    small = rev[rev.status == "insufficient"]
    assert len(small) >= 0.99 * len(rev), cov
    assert set(small.reason) <= {"too_few_effective_users", "too_few_expected_events", "empty_arm"}
    assert ((small.n_needed > small.n_control) | small.n_needed.isna()).all()


def test_a_user_in_two_segments_is_refused():
    import pandas as pd
    from crmlab.uplift import _segments_table
    seg = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "seg": ["x", "y", "z", "z"]})
    with pytest.raises(ValueError, match="1 user\\(s\\) are in more than one 'seg' segment"):
        _segments_table(seg, "seg")
    t, name = _segments_table(seg.iloc[2:], "seg")  # identical duplicates are one row
    assert name == "seg" and int(t.count().execute()) == 1


def _many_campaigns(seed=3, n=6000):
    """Four campaigns of 6,000 users at 80/20, two segments, planted conversion lifts."""
    rng = np.random.default_rng(seed)
    rows, orders = [], []
    for k, lift in enumerate([0.0, 0.0, 0.025, 0.04]):
        for i in range(n):
            u = f"c{k}u{i}"
            arm = "treatment" if rng.random() < 0.8 else "control"
            rows.append((f"camp{k}", u, arm, D0))
            if rng.random() < 0.10 + (lift if arm == "treatment" else 0.0):
                orders.append((f"o{k}-{i}", u, D0 + pd.Timedelta("1h"), float(rng.lognormal(3, 1))))
    a = assignments_frame(rows)
    seg = pd.DataFrame({"user_id": a["user_id"], "segment": np.where(np.arange(len(a)) % 2, "new", "loyal")})
    return a, orders_frame(orders), seg


def test_holm_family_across_campaigns_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests
    a, o, seg = _many_campaigns()
    for kw, keys in [({}, ["metric"]), ({"segments": seg, "family": "experiment"}, ["experiment", "metric"]),
                     ({"segments": seg}, ["metric"])]:
        res = campaign_uplift(a, o, window="3D", **kw)
        for _, g in res.groupby(keys):
            ok = g["p_value"].notna()
            ref = multipletests(g.loc[ok, "p_value"], method="holm")[1]
            np.testing.assert_allclose(g.loc[ok, "p_adjusted"], ref, rtol=1e-12)
            assert g.loc[~ok, "p_adjusted"].isna().all()
            assert (g["family"].str.endswith(f": {int(ok.sum())} tested cells")).all()
        # verdicts follow the adjusted p-value, never the raw one
        sig = res["p_adjusted"] < 0.05
        assert (res.loc[sig & (res["abs_lift"] > 0), "verdict"] == "win").all()
        assert (res.loc[~sig & (res["status"] == "ok"), "verdict"] == "inconclusive").all()
        assert (res.loc[res["status"] == "insufficient", "verdict"] == "insufficient").all()
    raw = campaign_uplift(a, o, window="3D", family="none")
    assert raw["p_adjusted"].equals(raw["p_value"].astype(float)) and (raw["correction"] == "none").all()
    # the correction changes some verdict on this data (raw p < 0.05 > adjusted), so the test can fail
    holm = campaign_uplift(a, o, window="3D", segments=seg)
    assert ((holm["p_value"] < 0.05) & (holm["p_adjusted"] >= 0.05)).any()


def test_nothing_left_out_silently():
    a, o, seg = _many_campaigns()
    one_arm = assignments_frame([("solo", f"s{i}", "treatment", D0) for i in range(7)])
    a2 = pd.concat([a, one_arm], ignore_index=True)
    res = campaign_uplift(a2, o, window="3D")
    assert res.attrs["excluded"]["assignments of experiments without both arms"] == 7
    with pytest.raises(ValueError, match=r"camp9.*not in assignments"):
        campaign_uplift(a2, o, experiment=["camp1", "camp9"], window="3D")
    with pytest.raises(ValueError, match="solo.*lacks the arm"):
        campaign_uplift(a2, o, experiment="solo", window="3D")
    # a segment in which one campaign has treated users only
    seg2 = seg.copy()
    ctrl = a.loc[(a["experiment"] == "camp0") & (a["variant"] == "control"), "user_id"]
    seg2.loc[seg2["user_id"].isin(a.loc[a["experiment"] == "camp0", "user_id"]), "segment"] = "loyal"
    only_t = a.loc[(a["experiment"] == "camp0") & (a["variant"] == "treatment"), "user_id"].iloc[:9]
    seg2.loc[seg2["user_id"].isin(only_t), "segment"] = "vip"
    res = campaign_uplift(a, o, window="3D", segments=seg2)
    assert res.attrs["excluded"]["assigned users in a segment cell with one arm only"] == 9
    assert len(ctrl) > 0 and not ((res["experiment"] == "camp0") & (res["segment"] == "vip")).any()
    assert res.groupby("metric")[["n_treatment", "n_control"]].sum().sum(axis=1).iloc[0] + 9 == len(a)


@pytest.mark.slow
def test_per_segment_revenue_coverage_on_a_shop_large_enough_for_verdicts():
    """Per campaign x persona revenue intervals cover the planted truth at the nominal rate
    where cells are large enough for a verdict (200,000 users: a cell holds ~1,200 control
    users). At the 20,000-user sample size nearly every revenue cell says insufficient (test
    above). Seeds 0-10 measured on 2026-12-01: 234 of 247 revenue cells covered (94.7 %;
    conversion 306 of 323, 94.7 %). This test runs 5 seeds and rejects coverage significantly below 95 % (one-sided binomial, 1 %)."""
    from scipy.stats import binomtest

    from crmlab.datasets import synthetic_shop
    covered = tested = 0
    for seed in range(5):
        shop = synthetic_shop(n_users=200_000, weeks=12, seed=seed, end=END)
        truth = shop.truth["uplift"]
        seg = shop.truth["segments"][["user_id", "persona"]]
        res = campaign_uplift(shop.assignments, shop.orders, experiment=sorted(truth["campaign"].unique()),
                              segments=seg, segment="persona", family="none")
        cells = res[(res.metric == "revenue_per_user") & (res.status == "ok")].merge(
            truth, left_on=["experiment", "segment"], right_on=["campaign", "persona"])
        tested += len(cells)
        covered += int(((cells.abs_ci_low <= cells.revenue_uplift) & (cells.revenue_uplift <= cells.abs_ci_high)).sum())
    assert tested >= 90  # most revenue cells get a verdict at this size
    assert binomtest(covered, tested, 0.95, alternative="less").pvalue > 0.01, (covered, tested)
