"""Report pages: the charts' scales and axes (issue 13, items 3 and 4) and the pages rendered
from findings (message performance, cohort, funnel)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crmlab.report import plots  # noqa: E402
from crmlab.report import text as T  # noqa: E402


# ------------------------------------------------------------------------------ retention heatmap
def _retention():
    # period 0 is 100 % by definition; later shares between 4 % and 30 %
    return pd.DataFrame([[1.0, 0.30, 0.12, 0.04], [1.0, 0.20, 0.10, np.nan]],
                        index=["2026-10-05", "2026-10-12"], columns=pd.Index([0, 1, 2, 3], name="period_index"))


def test_retention_colours_are_scaled_on_the_periods_after_the_first_purchase():
    """Defect: the month-0 column (always 100 %) took the darkest colour and washed out the rest."""
    ax = plots.retention_heatmap(_retention(), "en")
    mesh = ax.collections[0]
    assert mesh.norm.vmin == pytest.approx(4.0) and mesh.norm.vmax == pytest.approx(30.0)
    arr = mesh.get_array().reshape(2, 4)
    assert np.ma.getmaskarray(arr)[:, 0].all()            # period 0: no colour
    assert not np.ma.getmaskarray(arr)[0, 1:].any()
    # the largest later share gets the darkest colour of the map, not a pale one
    assert mesh.norm(30.0) == pytest.approx(1.0) and mesh.norm(4.0) == pytest.approx(0.0)
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("100") == 2                          # period 0 still shows its value
    assert ax.get_xticklabels()[0].get_text().replace("\n", " ") == T.t("period_zero", "en")
    assert [t.get_text() for t in ax.get_xticklabels()[1:]] == ["1", "2", "3"]
    plt.close(ax.figure)


def test_retention_period_zero_label_in_korean():
    ax = plots.retention_heatmap(_retention(), "ko")
    assert ax.get_xticklabels()[0].get_text().replace("\n", " ") == "0 (첫 구매)"
    plt.close(ax.figure)


# ------------------------------------------------------------------------------ send-time heatmap
def _heat():
    # messages at 9:00 and 14:00 on Monday, 9:00 on Thursday; nothing at 1:00 or any other hour
    return pd.DataFrame({"weekday": [0, 0, 3], "hour": [9, 14, 9], "delivered": [400, 12, 300],
                         "click_rate": [0.05, 0.5, 0.04]})


def test_sendtime_heatmap_shows_all_24_hours_and_7_days():
    """Defect: the hour axis skipped hours with no message at all (hour 1)."""
    rate, n = plots.sendtime_grid(_heat(), "en")
    assert list(rate.columns) == list(range(24)) and list(n.columns) == list(range(24))
    assert list(rate.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert n.loc["Mon", 1] == 0 and np.isnan(rate.loc["Mon", 1])
    assert n.loc["Mon", 9] == 400 and rate.loc["Thu", 9] == pytest.approx(0.04)
    assert int(n.to_numpy().sum()) == 712                  # nothing lost or invented
    ax = plots.sendtime_heatmap(_heat(), "en", min_count=30)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(h) for h in range(24)]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("n=0") == 7 * 24 - 3                # empty slots: grey, n=0
    assert "n=12" in texts and "5.0\nn=400" in texts        # the 12-message slot carries no rate
    mesh = ax.collections[0].get_array()
    assert np.ma.getmaskarray(mesh).sum() == 7 * 24 - 2
    plt.close(ax.figure)


def test_sendtime_grid_korean_weekdays():
    rate, _ = plots.sendtime_grid(_heat(), "ko")
    assert list(rate.index) == T.t("weekday_names", "ko").split(",")


# ------------------------------------------------------------------------------ pages from findings
from crmlab.report import facts as FACTS  # noqa: E402
from crmlab.report import findings as FND  # noqa: E402
from crmlab.report.analyses import CohortResult, FunnelResult, MessageResult  # noqa: E402


def _week():
    return pd.DataFrame({"campaign": ["x", "y"], "channel": ["sms", "email"], "sent": [100, 300],
                         "delivered": [90, 270], "clicked": [9, 27], "converted": [3, 6], "revenue": [1000.0, 5000.0],
                         "optouts": [1, 0], "conversion_rate": [3 / 90, 6 / 270]})


def _copy(rows):
    base = {"campaign": "c", "control": "generic", "n": 2000, "n_control": 2000, "status": "ok", "reason": "",
            "n_needed": float("nan"), "correction": "holm", "family": "c: 2 tested cells"}
    return pd.DataFrame([{**base, **r} for r in rows])


def _copy_row(metric, variant, est, ctl, p, p_adj, verdict, status="ok"):
    d = est - ctl
    return {"metric": metric, "variant": variant, "estimate": est, "estimate_control": ctl, "abs_lift": d,
            "abs_ci_low": d - 0.01, "abs_ci_high": d + 0.01, "rel_lift": est / ctl - 1, "p_value": p,
            "p_adjusted": p_adj, "verdict": verdict, "status": status}


CTX = {"first": "2026-11-16", "last": "2026-11-22", "prev_first": "2026-11-09", "prev_last": "2026-11-15",
       "trend_first": "2026-10-12", "windows": "3 d, sms 1 d", "basis": "receipt", "share": "last_touch",
       "min_delivered": 30}


def _messages(copy=None):
    comp = pd.DataFrame({"rule": ["ad_without_prefix"], "checked": [400], "violations": [5], "description": [""]})
    res = MessageResult(_week(), _week().assign(delivered=[50, 50], clicked=[5, 5], converted=[1, 1]), None, None,
                        None, None, comp, copy, dict(CTX))
    res.findings = FACTS.message_facts(res)
    return res


def test_message_page_states_every_copy_test_claim_losses_first():
    """Every win or loss of the copy-test table is in the summary (losses first, never
    softened); inconclusive and insufficient rows are counted, not claimed."""
    copy = _copy([_copy_row("open_rate", "personalised", 0.30, 0.25, 0.001, 0.002, "win"),
                  _copy_row("conversion_rate", "personalised", 0.010, 0.020, 0.004, 0.008, "loss"),
                  _copy_row("click_rate", "personalised", 0.051, 0.050, 0.6, 0.6, "inconclusive"),
                  _copy_row("conversion_rate", "short", 0.02, 0.01, float("nan"), float("nan"), "insufficient",
                            status="insufficient")])
    res = _messages(copy)
    for lang in ("en", "ko"):
        s = T.summary_messages(res, lang)
        tests = [f for f in res.findings if isinstance(f, FND.Finding)]
        heads = [b for b in s if b.startswith((T.verdict_name("win", lang).capitalize(),
                                                T.verdict_name("loss", lang).capitalize()))]
        assert len(heads) == sum(f.is_claim for f in tests) == 2
        assert heads[0].startswith(T.verdict_name("loss", lang).capitalize())
        assert any(T.t("sum_rest_tests", lang, k=2, n=4) == b for b in s)
    en = T.summary_messages(res, "en")
    assert "Loss: the 'personalised' copy in 'c', conversion 1.00% against 2.00% (-1.00\u00a0pp; adjusted p = 0.008)." in en
    # recommendations rest on the claims only: one per claim, none for the inconclusive/insufficient rows
    recs = [b for b in en if b.startswith("Do: use") or b.startswith("Do: keep")]
    assert recs == ["Do: use the 'personalised' copy in 'c'; it raised open rate against 'generic'.",
                    "Do: keep the 'generic' copy in 'c'; 'personalised' lowered conversion."]
    assert not any("'short'" in b for b in en)


def test_one_copy_recommendation_names_every_metric_it_rests_on():
    copy = _copy([_copy_row("open_rate", "personalised", 0.30, 0.25, 0.001, 0.002, "win"),
                  _copy_row("conversion_rate", "personalised", 0.030, 0.020, 0.004, 0.004, "win")])
    en = T.summary_messages(_messages(copy), "en")
    assert [b for b in en if b.startswith("Do: use")] == [
        "Do: use the 'personalised' copy in 'c'; it raised open rate and conversion against 'generic'."]
    table = T.copy_table([f for f in _messages(copy).findings if isinstance(f, FND.Finding)], "en")
    assert list(table.columns[:6]) == ["campaign", "metric", "variant", "control", "delivered_variant",
                                       "delivered_control"]
    assert list(table["delivered_variant"]) == ["2,000", "2,000"]


def test_no_copy_recommendation_from_an_uncorrected_win():
    copy = _copy([_copy_row("open_rate", "b", 0.30, 0.25, 0.001, 0.001, "win"),
                  _copy_row("conversion_rate", "b", 0.03, 0.02, 0.3, 0.3, "inconclusive")]).assign(correction="none")
    s = " ".join(T.summary_messages(_messages(copy), "en"))
    assert "Win:" not in s and "Do: use" not in s


def test_message_facts_carry_their_window_and_denominator():
    res = _messages()
    facts = [f for f in res.findings if isinstance(f, FND.Fact) and f.role == "fact"]
    assert facts and all(f.window and f.denominator for f in facts)
    vol = next(f for f in facts if f.key == "msg_volume")
    assert vol.value("sent") == 400 and vol.value("delivered") == 360 and vol.n == 400
    rates = next(f for f in facts if f.key == "msg_rates")
    assert rates.value("click") == pytest.approx(36 / 360) and rates.n == 360
    notes = T.counted_notes(res.findings, "en")
    assert notes[0] == ("Messages sent 2026-11-16 to 2026-11-22 (the report week): delivery per sent message (400 sent); "
                        "rates per delivered message (360 delivered); each rule checked on the week's messages it applies to "
                        "(up to 400).")
    assert any("window (3 d, sms 1 d; receipt basis, last_touch rule): rates per delivered message (360 delivered)" in n
               for n in notes)
    assert len(notes) == len({n.split(":")[0] for n in notes})  # one sentence per window
    assert len(T.counted_notes(res.findings, "ko")) == len(notes)
    # a fact is never a claim and never a recommendation
    assert not any(FND.recommendable(f) for f in res.findings)


def test_counted_numbers_use_the_shop_locale():
    res = _messages()
    res.findings = FACTS.message_facts(res)
    try:
        T.use_shop("EUR", "de_DE")
        big = MessageResult(_week().assign(sent=[1000, 3000]), None, None, None, None, None, None, None, dict(CTX))
        notes = T.counted_notes(FACTS.message_facts(big), "en")
        assert any("(4.000 sent)" in n for n in notes)
        s = T.summary_messages(big, "en")
        assert any("€" in b for b in s)
    finally:
        T.use_shop("KRW", "en")


def _groups(ps):
    return pd.DataFrame({"step": [2, 3, 4], "step_name": ["add_to_cart", "begin_checkout", "purchase"],
                         "groups": 2, "n": [1000, 400, 200], "min_rate": [0.3, 0.5, 0.6], "max_rate": [0.4, 0.55, 0.62],
                         "chi2": 1.0, "dof": 1, "p_value": ps, "min_expected": 10.0, "method": "chi2_contingency"})


def test_funnel_device_difference_is_claimed_only_after_correction():
    """Defect: 'At the add to cart step devices differ' rested on one of three uncorrected
    chi-square tests (p = 0.02; Holm over the three steps: 0.06)."""
    from crmlab.report.analyses import _holm_over_steps
    from statsmodels.stats.multitest import multipletests
    g = _holm_over_steps(_groups([0.02, 0.30, 0.50]))
    assert list(g["p_adjusted"]) == pytest.approx(list(multipletests([0.02, 0.30, 0.50], method="holm")[1]))
    res = FunnelResult(groups_test=g, week=pd.Series({"sessions": 100, "visitors": 80, "conversion_rate_per_session": 0.1,
                                                      "average_order_value": 1000.0, "orders": 10}))
    fs = FACTS.funnel_facts(res, {"first": "2026-11-16", "last": "2026-11-22", "by": "device"})
    text = " ".join(T.facts_text(fs, "en", "groups_same", "groups_diff"))
    assert "differ" not in text.replace("do not differ", "") and "p = 0.060" in text
    g2 = _holm_over_steps(_groups([0.001, 0.30, 0.50]))
    fs2 = FACTS.funnel_facts(FunnelResult(groups_test=g2, week=res.week), {"by": "device"})
    assert "At the add to cart step devices differ" in " ".join(T.facts_text(fs2, "en", "groups_diff"))
    assert any("3 steps tested, p-values corrected over them (holm)" in n for n in T.counted_notes(fs2, "en"))


def test_cohort_facts_match_their_frames():
    avg = pd.DataFrame({"period_index": [0, 1, 2], "n_cohorts": [5, 4, 3], "customers": [500, 400, 300],
                        "weighted_share": [1.0, 0.125, 0.08], "simple_share": [1.0, 0.12, 0.08]})
    rep = pd.DataFrame({"n_customers": [321], "n_repeat": [100], "rate": [100 / 321], "ci_low": [0.26],
                        "ci_high": [0.36]})
    res = CohortResult(average=avg, repurchase=rep)
    fs = FACTS.cohort_facts(res, {"as_of": "2026-11-22", "period": "M", "repurchase_days": 30})
    en = T.summary_cohort_rfm(CohortResult(average=avg, repurchase=rep, findings=fs), "en")
    assert en[0] == "On average 12.5% of a cohort buys again in the month after their first purchase, and 8.0% in month 2."
    assert en[1].startswith("31.2% of customers who first bought at least 30 days ago")
    notes = T.counted_notes(fs, "en")
    assert notes[0] == ("Customers grouped by the month of their first purchase, orders up to 2026-11-22: retention "
                        "per customer of a cohort, averaged over 4 complete cohorts weighted by size (400 customers).")
    assert "per such customer (321)" in notes[1]


def test_palive_caveat_never_calls_repeat_buyers_one_time_buyers():
    """Seen on the sample's cohort page: every segment read P(alive) 100 % (the fitted BG/NBD
    drop-out a ~ 1e-6) and the caveat called 'Champions' 'mostly one-time buyers'."""
    val = pd.DataFrame({"segment": ["Champions", "Lost", "At Risk"], "customers": [2, 2, 2],
                        "p_alive_mean": [1.0, 1.0, 0.62], "value_share": [0.5, 0.3, 0.2]})
    scores = pd.DataFrame({"user_id": list("abcdef"), "segment": ["Champions"] * 2 + ["Lost"] * 2 + ["At Risk"] * 2,
                           "frequency": [5, 7, 1, 1, 1, 3]})
    fs = FACTS.cohort_facts(CohortResult(value=val, scores=scores, value_total=100.0), {"as_of": "2026-11-22"})
    cav = T.caveats(fs, "en")
    assert len(cav) == 2
    assert "'Lost' are mostly one-time buyers" in cav[0] and "Champions" not in cav[0]
    assert cav[1].startswith("P(alive) is also about 100% for 'Champions', whose customers mostly bought more than once")
    assert not any("At Risk" in c for c in cav)           # its P(alive) is informative
    assert len(T.caveats(fs, "ko")) == 2
    assert not any(f.role == "caveat" for f in fs if f.window)  # caveats are not counted notes


def test_line_chart_from_zero_keeps_room_above_the_highest_point():
    """Seen on the funnel page: a rate between 8.9 % and 9.5 % drawn from 0 had its top marker
    cut by the frame (the margin was 5 % of the data's own range)."""
    df = pd.DataFrame({"week": ["a", "b", "c"], "rate": [0.089, 0.095, 0.090]})
    ax = plots.line_plot(df, "week", "rate", "en", percent=True)
    lo, hi = ax.get_ylim()
    assert lo == 0 and hi >= 9.5 * 1.08 - 1e-9
    plt.close(ax.figure)
