"""The findings of the message performance, cohort and funnel pages.

Each builder turns an analysis result (:mod:`crmlab.report.analyses`) into a list of
:class:`~crmlab.report.findings.Fact` (descriptive numbers, with their window and denominator)
and, where a test was run, :class:`~crmlab.report.findings.Finding` (copy tests, with the
engine's verdict after the family's correction). The pages' summaries, sentences,
recommendations and "What is counted" notes are all rendered from these lists
(:mod:`crmlab.report.text`); no number is computed in the prose.

The rules are the weekly uplift page's: a recommendation that rests on a comparison rests on a
claim (a corrected win or loss, :func:`crmlab.report.findings.recommendable`); facts never make
claims, and the actions that rest on facts (fix compliance violations, send a win-back offer)
say what they count.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from .findings import Fact, from_copy_test


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else math.nan


def _w(key: str, **kw: Any) -> tuple:
    """A window or denominator: catalogue key and its (sorted) parameters; numbers are
    formatted in the shop's locale when the note is rendered."""
    return (key, tuple(sorted(kw.items())))


# ----------------------------------------------------------------------------- message performance
def _click_tracked(frame) -> float:
    """Deliveries on channels that report clicks (all deliveries for a frame from before the
    column existed)."""
    col = "delivered_click_tracked" if "delivered_click_tracked" in frame else "delivered"
    return float(frame[col].sum())


def message_facts(res, ctx: Mapping[str, Any] | None = None) -> list:
    """Facts and copy-test findings of a :class:`~crmlab.report.analyses.MessageResult`.

    ``ctx`` (``res.context`` by default) gives ``first``/``last`` (the week's days),
    ``prev_first``/``prev_last``, ``windows`` (attribution windows as text), ``basis``, ``share``
    and ``min_delivered``."""
    c = dict(getattr(res, "context", None) or {})
    c.update(ctx or {})
    first, last = c.get("first", ""), c.get("last", "")
    week = _w("cw_msg_week", first=first, last=last)
    attr = _w("cw_msg_attr", first=first, last=last, windows=c.get("windows", "–"), basis=c.get("basis", "receipt"),
              share=c.get("share", "last_touch"))
    w, prev = res.week, res.previous
    out: list = []
    if w is None or w.empty:
        return [Fact("messages", "no_messages", (("week", c.get("week", ""), "text"),), week, (), 0)]
    sent, delivered = float(w["sent"].sum()), float(w["delivered"].sum())
    prev_sent = float(prev["sent"].sum()) if prev is not None and not prev.empty else 0.0
    out.append(Fact("messages", "msg_volume", (("sent", sent, "int"), ("prev_sent", prev_sent, "int"),
                                               ("delivered", delivered, "int"),
                                               ("delivery", _ratio(delivered, sent), "pct")),
                    week, _w("den_sent", n=int(sent)), sent))
    # a click rate divides by the deliveries of channels that report clicks (not Kakao or SMS
    # receipts): a shop mixing push with Kakao would otherwise read a diluted click rate
    tracked = _click_tracked(w)
    click = _ratio(w["clicked"].sum(), tracked)
    conv = _ratio(w["converted"].sum(), delivered)
    den_del = _w("den_delivered", n=int(delivered))
    revenue = ("revenue", float(w["revenue"].sum()), "money")
    if tracked:
        out.append(Fact("messages", "msg_rates", (("click", click, "pct"), ("conv", conv, "pct"), revenue),
                        attr, _w("den_delivered_click", n=int(delivered), c=int(tracked)), delivered))
    else:
        out.append(Fact("messages", "msg_rates_no_click", (("conv", conv, "pct"), revenue), attr, den_del, delivered))
    if prev is not None and not prev.empty and prev["delivered"].sum():
        pd_, p_tracked = float(prev["delivered"].sum()), _click_tracked(prev)
        conv_move = ("conv_move", (conv, prev["converted"].sum() / pd_), "moved")
        prev_window = _w("cw_msg_prev", first=first, last=last, prev_first=c.get("prev_first", ""),
                         prev_last=c.get("prev_last", ""))
        den_both = _w("den_delivered_both", n=int(delivered), m=int(pd_))
        if tracked and p_tracked:
            out.append(Fact("messages", "msg_moved",
                            (("click_move", (click, prev["clicked"].sum() / p_tracked), "moved"), conv_move),
                            prev_window, den_both, delivered))
        else:
            out.append(Fact("messages", "msg_moved_conv", (conv_move,), prev_window, den_both, delivered))
    top = w.sort_values("revenue", ascending=False).iloc[0]
    out.append(Fact("messages", "msg_top", (("campaign", top["campaign"], "text"), ("channel", top["channel"], "text"),
                                            ("revenue", float(top["revenue"]), "money"),
                                            ("conv", float(top["conversion_rate"]), "pct")),
                    attr, _w("den_delivered_top", n=int(top["delivered"])) if "delivered" in top else den_del,
                    float(top.get("delivered", math.nan))))
    optouts = float(w["optouts"].sum())
    out.append(Fact("messages", "msg_optout", (("optouts", optouts, "int"), ("rate", _ratio(optouts, delivered), "pct2")),
                    week, den_del, delivered))
    comp = res.compliance
    if comp is not None:
        bad = comp[comp["violations"] > 0]
        checked = float(comp["checked"].max()) if "checked" in comp and len(comp) else math.nan
        den_chk = _w("den_checked", n=int(checked) if checked == checked else "–")
        if bad.empty:
            out.append(Fact("messages", "comp_ok", (), week, den_chk, checked))
        else:
            worst = bad.sort_values("violations", ascending=False, kind="stable").iloc[0]
            out.append(Fact("messages", "comp_bad", (("n", float(bad["violations"].sum()), "int"),
                                                     ("rule", worst["rule"], "text"),
                                                     ("k", float(worst["violations"]), "int")), week, den_chk, checked))
    fat = res.fatigue
    if fat is not None and len(fat) >= 2:
        one, hi = fat[fat["n_messages"] == 1], fat[fat["n_messages"] >= 3]
        if not one.empty and not hi.empty:
            uw = float(fat["user_periods"].sum())
            out.append(Fact("messages", "fatigue_row",
                            (("hi", 3, "int"), ("r_hi", _ratio(hi["optouts"].sum(), hi["user_periods"].sum()), "pct2"),
                             ("r_1", float(one["optout_rate"].iloc[0]), "pct2")),
                            _w("cw_msg_trend", first=c.get("trend_first", ""), last=last),
                            _w("den_user_weeks", n=int(uw)), uw))
    heat = res.heatmap
    if heat is not None and not heat.empty:
        mind = int(c.get("min_delivered", 30))
        count = "delivered_click_tracked" if "delivered_click_tracked" in heat else "delivered"
        h = heat[heat[count] >= mind].dropna(subset=["click_rate"])
        if not h.empty:
            b = h.sort_values("click_rate", ascending=False).iloc[0]
            out.append(Fact("messages", "sendtime_best", (("day", int(b["weekday"]), "weekday"),
                                                          ("hour", int(b["hour"]), "int"),
                                                          ("rate", float(b["click_rate"]), "pct"), ("min", mind, "int")),
                            _w("cw_msg_trend", first=c.get("trend_first", ""), last=last),
                            _w("den_slot", min=mind, n=int(b[count])), float(b[count])))
    out += from_copy_test(res.copy_tests, window=_w("cw_copy", last=last, windows=c.get("windows", "–"),
                                                    basis=c.get("basis", "receipt")),
                          denominator=_w("den_copy"))
    # actions resting on facts (and the copy tests' claims, added by the text's recommendations)
    if comp is not None and not comp[comp["violations"] > 0].empty:
        rules = ", ".join(comp.loc[comp["violations"] > 0, "rule"].astype(str))
        out.append(Fact("messages", "comp_do", (("rules", rules, "text"),), role="action"))
    else:
        out.append(Fact("messages", "msg_do_ok", (), role="action"))
    return out


# ----------------------------------------------------------------------------- cohorts, RFM, CLV
def cohort_facts(res, ctx: Mapping[str, Any] | None = None) -> list[Fact]:
    """Facts of a :class:`~crmlab.report.analyses.CohortResult`. ``ctx`` gives ``as_of`` (a
    day), ``period`` (``W``/``M``/``D``), ``repurchase_days`` and ``horizon_weeks``."""
    c = dict(getattr(res, "context", None) or {})
    c.update(ctx or {})
    as_of, period = c.get("as_of", ""), c.get("period", "W")
    out: list[Fact] = []
    avg = res.average
    if avg is not None and len(avg) > 1:
        k = int(min(4, avg["period_index"].max()))
        r1 = float(avg.loc[avg["period_index"] == 1, "weighted_share"].iloc[0])
        rk = float(avg.loc[avg["period_index"] == k, "weighted_share"].iloc[0])
        customers = float(avg.loc[avg["period_index"] == 1, "customers"].iloc[0])
        cohorts = int(avg.loc[avg["period_index"] == 1, "n_cohorts"].iloc[0])
        win = _w(f"cw_cohort_{period}", as_of=as_of)
        out.append(Fact("cohort", "ret_avg", (("r1", r1, "pct"), ("rk", rk, "pct"), ("k", k, "int"),
                                              ("period_name", period, "period")),
                        win, _w("den_cohorts", n=int(customers), k=cohorts), customers))
        long = res.retention
        if long is not None:
            done = long[(long["period_index"] == 1) & long["complete"]]
            if not done.empty:
                lastc = done.sort_values("cohort").iloc[-1]
                d = float(lastc["share"]) - r1
                size = float(lastc["cohort_size"]) if "cohort_size" in lastc else math.nan
                out.append(Fact("cohort", "ret_latest",
                                (("cohort", pd.Timestamp(lastc["cohort"]).strftime("%Y-%m-%d"), "text"),
                                 ("latest", float(lastc["share"]), "pct"),
                                 ("move", "ret_same" if abs(d) < 0.005 else "ret_above" if d > 0 else "ret_below", "key"),
                                 ("period_name", period, "period")),
                                win, _w("den_cohort", n=int(size) if size == size else "–"), size))
    rep = res.repurchase
    if rep is not None and not rep.empty:
        r = rep.iloc[0]
        days = c.get("repurchase_days", 30)
        out.append(Fact("cohort", "rep_rate", (("rate", float(r["rate"]), "pct"), ("days", days, "g"),
                                               ("lo", float(r["ci_low"]), "pct"), ("hi", float(r["ci_high"]), "pct")),
                        _w("cw_repurchase", as_of=as_of, days=f"{float(days):g}"),
                        _w("den_first_buyers", n=int(r["n_customers"])), float(r["n_customers"])))
    sec = res.second
    if sec is not None and not sec.empty:
        s0 = sec.iloc[0]
        km = s0.get("km_median_days", math.nan)
        repeat = s0.get("n_repeat", s0.get("repeat_buyers", math.nan))
        vals = (("median", float(s0["median_days"]), "int"),) + (() if pd.isna(km) else (("km", float(km), "int"),))
        out.append(Fact("cohort", "second_time_nokm" if pd.isna(km) else "second_time", vals,
                        _w("cw_rfm", as_of=as_of), _w("den_second"), float(repeat) if not pd.isna(repeat) else math.nan))
    seg = res.segments
    if seg is not None and not seg.empty and seg["customers"].sum():
        buyers = float(seg["customers"].sum())
        win, den = _w("cw_rfm", as_of=as_of), _w("den_buyers", n=int(buyers))
        top = seg.sort_values("revenue_share", ascending=False).iloc[0]
        out.append(Fact("cohort", "rfm_top", (("segment", top["segment"], "segment"), ("share", float(top["share"]), "pct"),
                                              ("rev_share", float(top["revenue_share"]), "pct")), win, den, buyers))
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"]) & (seg["customers"] > 0)]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            out.append(Fact("cohort", "rfm_risk", (("segment", rk_["segment"], "segment"),
                                                   ("n", float(rk_["customers"]), "int"),
                                                   ("share", float(rk_["share"]), "pct"),
                                                   ("days", float(rk_["recency_mean"]), "int")), win, den, buyers))
    val = res.value
    if val is not None and not val.empty and not math.isnan(res.value_total):
        v = val.sort_values("value_share", ascending=False).iloc[0]
        h = c.get("horizon_weeks", 12)
        n = float(val["customers"].sum()) if "customers" in val else math.nan
        out.append(Fact("cohort", "clv_total", (("total", float(res.value_total), "money"), ("h", h, "g"),
                                                ("segment", v["segment"], "segment"),
                                                ("share", float(v["value_share"]), "pct")),
                        _w("cw_clv", as_of=as_of, h=f"{float(h):g}"), _w("den_customers", n=int(n) if n == n else "–"), n))
    out += _palive_caveats(res)
    if seg is not None and not seg.empty:
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"]) & (seg["customers"] > 0)]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            top = seg.sort_values("revenue_share", ascending=False).iloc[0]
            out.append(Fact("cohort", "rfm_do", (("segment", rk_["segment"], "segment"), ("n", float(rk_["customers"]), "int"),
                                                 ("top", top["segment"], "segment")), role="action"))
    return out


def _palive_caveats(res) -> list[Fact]:
    """Where the CLV table's P(alive) reads 100 %, why (a caveat that changes the reading):

    * segments of mostly one-time buyers: BG/NBD lets a customer drop out only after a repeat
      purchase, so P(alive) = 1 for a customer with none (Fader, Hardie & Lee 2005, eq. 11 with
      x = 0);
    * segments of mostly repeat buyers: the fitted drop-out probability is about zero (BG/NBD
      ``a`` -> 0), so the model sees no churn in these data and P(alive) separates nobody.
    """
    val, scores = res.value, res.scores
    if val is None or val.empty or "p_alive_mean" not in val:
        return []
    certain = val[val["p_alive_mean"] >= 0.995]
    if certain.empty:
        return []
    one_time = pd.Series(dtype=float)
    if scores is not None and {"segment", "frequency"} <= set(scores.columns):
        one_time = (scores["frequency"] <= 1).groupby(scores["segment"].astype(str)).mean()
    names = certain["segment"].astype(str)
    once = [s_ for s_ in names if one_time.get(s_, 1.0) >= 0.5]
    repeat = [s_ for s_ in names if one_time.get(s_, 1.0) < 0.5]
    out = []
    if once:
        out.append(Fact("cohort", "clv_palive_note", (("segments", tuple(once), "segments"),), role="caveat"))
    if repeat:
        out.append(Fact("cohort", "clv_palive_flat", (("segments", tuple(repeat), "segments"),), role="caveat"))
    return out


# ----------------------------------------------------------------------------- funnel
def funnel_facts(res, ctx: Mapping[str, Any] | None = None) -> list[Fact]:
    """Facts of a :class:`~crmlab.report.analyses.FunnelResult`. ``ctx`` gives ``first``,
    ``last`` (the week's days), ``prev_first``, ``prev_last``, ``hours`` (the ordered funnel's
    window), ``by`` and ``alpha``."""
    c = dict(getattr(res, "context", None) or {})
    c.update(ctx or {})
    first, last = c.get("first", ""), c.get("last", "")
    week = _w("cw_funnel_week", first=first, last=last)
    wk, p = res.week, res.previous
    if wk is None:
        return [Fact("funnel", "no_data_week", (("what", "events", "text"), ("week", c.get("week", ""), "text"),
                                                ("first", "–", "text"), ("last", "–", "text")), week)]
    sessions = float(wk["sessions"])
    den_s = _w("den_sessions", n=int(sessions))
    out: list[Fact] = []
    move = (sessions / float(p["sessions"]) - 1) if p is not None and p["sessions"] else math.nan
    out.append(Fact("funnel", "kpi_sessions", (("sessions", sessions, "int"), ("visitors", float(wk["visitors"]), "int"),
                                               ("move", move, "rel")),
                    _w("cw_funnel_prev", first=first, last=last, prev_first=c.get("prev_first", ""),
                       prev_last=c.get("prev_last", "")), den_s, sessions))
    conv_move = ((float(wk["conversion_rate_per_session"]), float(p["conversion_rate_per_session"]))
                 if p is not None else (math.nan, math.nan))
    orders = float(wk.get("orders", math.nan)) if hasattr(wk, "get") else math.nan
    out.append(Fact("funnel", "kpi_conv", (("conv", float(wk["conversion_rate_per_session"]), "pct"),
                                           ("move", conv_move, "moved"),
                                           ("aov", float(wk["average_order_value"]), "money")),
                    week, _w("den_sessions_orders", n=int(sessions), m=int(orders) if orders == orders else "–"),
                    sessions))
    steps = res.steps
    if steps is not None:
        s = steps.dropna(subset=["from_previous"])
        if not s.empty:
            i = s["from_previous"].idxmin()
            a = steps.loc[i - 1, "step"] if i - 1 in steps.index else steps.iloc[0]["step"]
            base = float(steps.loc[i - 1, "sessions"]) if i - 1 in steps.index else sessions
            out.append(Fact("funnel", "funnel_drop", (("a", a, "step"), ("b", steps.loc[i, "step"], "step"),
                                                      ("rate", float(steps.loc[i, "from_previous"]), "pct")),
                            week, _w("den_step_sessions", n=int(base)), base))
    by = c.get("by", "device")
    dev = res.by_device
    if dev is not None and len(dev) >= 2 and by in dev.columns:
        d = dev.dropna(subset=["conversion_rate_per_session"]).sort_values("conversion_rate_per_session")
        if len(d) >= 2:
            out.append(Fact("funnel", "device_best", (("best", d.iloc[-1][by], "text"),
                                                      ("best_rate", float(d.iloc[-1]["conversion_rate_per_session"]), "pct"),
                                                      ("worst", d.iloc[0][by], "text"),
                                                      ("worst_rate", float(d.iloc[0]["conversion_rate_per_session"]), "pct")),
                            week, _w("den_sessions_by", by=by, n=int(d["sessions"].sum())), float(d["sessions"].sum())))
    hours = c.get("hours", 24)
    ordw = _w("cw_ordered", first=first, last=last, hours=f"{float(hours):g}")
    o = res.ordered
    if o is not None and not o.empty:
        f0, fl = o.iloc[0], o.iloc[-1]
        den_u = _w("den_users_first", n=int(f0["users"]))
        out.append(Fact("funnel", "ordered_row", (("n", float(f0["users"]), "int"), ("first", f0["step_name"], "step"),
                                                  ("last", fl["step_name"], "step"),
                                                  ("rate", float(fl["conversion_from_start"]), "pct"),
                                                  ("hours", hours, "g")), ordw, den_u, float(f0["users"])))
        rest = o.iloc[1:]
        if not rest.empty:
            w_ = rest.loc[rest["drop_off"].idxmax()]
            prev = o.loc[o["step"] == w_["step"] - 1].iloc[0]
            out.append(Fact("funnel", "ordered_drop", (("a", prev["step_name"], "step"), ("b", w_["step_name"], "step"),
                                                       ("drop", float(w_["drop_off"]), "int"),
                                                       ("rate", 1 - float(w_["conversion_from_previous"]), "pct")),
                            ordw, _w("den_users_step", n=int(prev["users"])), float(prev["users"])))
    g = res.groups_test
    if g is not None and not g.empty and g["p_value"].notna().any():
        alpha = float(c.get("alpha", 0.05))
        col = "p_adjusted" if "p_adjusted" in g.columns else "p_value"
        tested = g.dropna(subset=[col])
        sig = tested[tested[col] < alpha]
        den_g = _w("den_groups", by=by, k=len(tested), correction=str(g.get("correction", pd.Series(["none"])).iloc[0]))
        if sig.empty:
            r = tested.sort_values(col).iloc[0]
            out.append(Fact("funnel", "groups_same", (("p", float(r[col]), "p"),), ordw, den_g, float(r["n"]),
                            p_value=float(r["p_value"]), p_adjusted=float(r[col])))
        else:
            r = sig.sort_values(col).iloc[0]
            out.append(Fact("funnel", "groups_diff", (("step", r["step_name"], "step"), ("min", float(r["min_rate"]), "pct"),
                                                      ("max", float(r["max_rate"]), "pct"), ("p", float(r[col]), "p_eq")),
                            ordw, den_g, float(r["n"]), p_value=float(r["p_value"]), p_adjusted=float(r[col])))
    t = res.time_to_convert
    if t is not None and not t.empty and o is not None and not o.empty:
        lt = t.iloc[-1]
        out.append(Fact("funnel", "ttc_row", (("m", float(lt["median_seconds"]) / 60, "int"),
                                              ("first", o.iloc[0]["step_name"], "step"),
                                              ("last", lt["step_name"], "step")),
                        ordw, _w("den_buyers_funnel", n=int(lt["n"]))))
    b = res.behaviour
    if b is not None and not b.empty:
        for seg_, n in b.itertuples(index=False):
            out.append(Fact("funnel", "behaviour_row", (("n", float(n), "int"), ("segment", seg_, "behaviour")),
                            _w("cw_behaviour", first=first, last=last), _w("den_users"), float(n)))
        ab = float(b.loc[b["segment"].str.startswith("abandoned"), "users"].sum())
        ex = float(b.loc[b["segment"] == "explorers", "users"].sum())
        out.append(Fact("funnel", "funnel_do", (("n", ab, "int"), ("m", ex, "int")), role="action"))
    elif steps is not None:
        s = steps.dropna(subset=["from_previous"])
        if not s.empty:
            out.append(Fact("funnel", "funnel_do_plain", (("a", s.loc[s["from_previous"].idxmin(), "step"], "step"),),
                            role="action"))
    return out
