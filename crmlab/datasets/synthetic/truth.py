"""truth of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import (CAMPAIGNS, CART_BOUNDS_H, CART_BUCKETS, CART_P, CART_P_CONTROL, CATEGORIES, COPY_P_CONVERT,
                        COPY_P_OPEN, COPY_VARIANTS, COST, DAY, DELIVERY_RATE, EXPLORER, EXTRA_ITEMS, FAV_SHARE,
                        OPEN_RATE, ORGANIC_COUPONS, P_DISCOUNT, PERSONAS, UNSUB_BASE, UNSUB_MAX, UNSUB_POWER, WINDOW)
from .helpers import (_campaign_p, _comparers, _scaled, _funnel_by_persona, _funnel_truth, _str, _uplift_truth)
from .compliance import _violations


def build_truth(s) -> None:
    """The truth dict (step 5, the compliance violations, is counted here too)."""
    M_ch = s.M_ch
    M_is_ad = s.M_is_ad
    M_send = s.M_send
    M_user = s.M_user
    U = s.U
    b_send = s.b_send
    bau = s.bau
    bau_u = s.bau_u
    c = s.c
    churn_t = s.churn_t
    churned = s.churned
    clock = s.clock
    consent = s.consent
    consent_t = s.consent_t
    customers = s.customers
    cycle = s.cycle
    e_item = s.e_item
    end_ts = s.end_ts
    ev_time = s.ev_time
    ev_type = s.ev_type
    ev_user = s.ev_user
    fav = s.fav
    holdout_share = s.holdout_share
    n_b = s.n_b
    night = s.night
    night_t = s.night_t
    o_user = s.o_user
    parts = s.parts
    persona = s.persona
    price_sensitive = s.price_sensitive
    seed = s.seed
    start_ts = s.start_ts
    t_inv = s.t_inv
    texts = s.texts
    tz = s.tz
    # ------------------------------------------------------------------ truth
    n_orders_user = np.bincount(o_user, minlength=U)
    rep = np.where((n_orders_user >= 2) & (persona != EXPLORER), cycle, np.nan)
    comparer = _comparers(ev_user, ev_time, ev_type, U)
    segments = pd.DataFrame({
        "user_id": customers["user_id"],
        "persona": _str(persona, PERSONAS),
        "explorer": persona == EXPLORER,
        "comparer": comparer,
        "price_sensitive": price_sensitive,
        "favourite_category": _str(fav, CATEGORIES),
        "repurchase_cycle_days": rep,
        "churned": churned,
        "churn_time": clock.to_time(churn_t, null=~churned),
    })
    violations = _violations(M_user, M_ch, M_send, M_is_ad, texts, t_inv,
                             consent, consent_t, night, night_t, clock, start_ts, tz)
    camp_rows = []
    for p in parts:
        c = CAMPAIGNS[p["c"]]
        p = {k: (v[~p["virtual"]] if isinstance(v, np.ndarray) else v) for k, v in p.items()}
        camp_rows.append(dict(campaign=c["name"], channel=c["channel"], kind=c["kind"], is_ad=c["is_ad"],
                              experiment=c["name"], coupon=c["coupon"], discount_pct=c["pct"],
                              window_days=WINDOW / DAY,
                              first_send=clock.to_time(np.array([p["send"].min() if p["send"].size else 0]))[0],
                              last_send=clock.to_time(np.array([p["send"].max() if p["send"].size else 0]))[0],
                              participants=int(p["user"].size), treated=int((p["arm"] > 0).sum())))
    camp_rows.append(dict(campaign=bau["name"], channel=bau["channel"], kind="bau", is_ad=True, experiment=None,
                          coupon=None, discount_pct=0, window_days=np.nan,
                          first_send=clock.to_time(np.array([b_send.min() if n_b else 0]))[0],
                          last_send=clock.to_time(np.array([b_send.max() if n_b else 0]))[0],
                          participants=int(bau_u.size), treated=int(bau_u.size)))
    truth = {
        "segments": segments,
        "funnel": _funnel_truth(),
        "funnel_by_persona": _funnel_by_persona(),
        "uplift": _uplift_truth(e_item, s.effect_scale),
        "copy_test": pd.DataFrame({"variant": list(COPY_VARIANTS), "p_open": list(COPY_P_OPEN),
                                   "p_convert": list(_scaled(COPY_P_CONVERT[2], np.asarray(COPY_P_CONVERT),
                                                             s.effect_scale))}),
        "cart_reminder": pd.DataFrame({"delay_bucket": list(CART_BUCKETS),
                                       "delay_from_hours": [b_[0] for b_ in CART_BOUNDS_H],
                                       "delay_to_hours": [b_[1] for b_ in CART_BOUNDS_H],
                                       "p_convert": list(_scaled(CART_P_CONTROL, np.asarray(CART_P),
                                                                 s.effect_scale)),
                                       "p_control": CART_P_CONTROL}),
        "delivery_rate": dict(DELIVERY_RATE),
        "open_rate": dict(OPEN_RATE),
        "cost_per_message": dict(COST),
        "unsubscribe": pd.DataFrame({"messages_in_week": np.arange(1, 21),
                                     "p_unsubscribe": np.minimum(UNSUB_BASE * np.arange(1, 21.0) ** UNSUB_POWER,
                                                                 UNSUB_MAX)}),
        "violations": violations,
        "campaigns": pd.DataFrame(camp_rows),
        "expected_item_price": e_item,
        "holdout": _holdout_truth(s),
        "holdout_share": holdout_share,
        "start": start_ts,
        "end": end_ts,
        "tz": tz,
        "seed": seed,
    }
    s.truth = truth


def _holdout_truth(s) -> pd.DataFrame:
    """The planted programme effect: ``treatment`` minus ``holdout`` of the ``global_holdout``
    experiment per user, from each user's assignment up to the end of the data.

    Every user (holdout or not) takes part in the campaigns he is eligible for, the holdout users
    virtually (control-like, never messaged), and organic orders do not depend on the arm or on
    conversion (see :mod:`.experiments`). So per participation i the expected ITT difference is
    ``q_i - p_c,i`` with ``q_i`` the arm-averaged rate (0.8 treated; the copy test's variants
    50/50), and averaging over all users (both groups have the same eligibility distribution):

    * ``orders_per_user``: mean over users of the sum of ``q_i - p_c,i``;
    * ``revenue_per_user``: the same with each order's expected revenue, ``1.6 * E[item price |
      favourite category] * (1 - P(discount | user) * rate)``, rate the campaign coupon's for
      treated users of couponed campaigns, else the mean organic 12.5 % (up to the rounding of
      discounts to whole won);
    * ``conversion_rate`` (>= 1 order): mean over users without organic orders of
      ``prod(1 - p_c,i) - prod(1 - q_i)``, times their share.

    The effect is conditional on the drawn eligibility and organic orders (not on the arms).
    """
    P, U = s.P, s.U
    c = P["c"]
    kinds = np.array([x["kind"] for x in CAMPAIGNS])[c]
    pct = np.array([x["pct"] for x in CAMPAIGNS], float)[c] / 100
    p_c = P["p_c"].astype(float)
    k = s.effect_scale
    p_pers, p_gen = _scaled(COPY_P_CONVERT[2], np.asarray(COPY_P_CONVERT[:2]), k)
    # arm-averaged treatment rate of a non-holdout participant (p_t of a drawn arm is not used)
    reg_pt = np.zeros(p_c.size)
    for i, x in enumerate(CAMPAIGNS):
        if x["kind"] == "regular":
            p0, p1 = _campaign_p(x, k)
            m = c == i
            reg_pt[m] = p1[s.persona[P["user"][m]]]
    cart_pt = _scaled(CART_P_CONTROL, np.asarray(CART_P), k)[np.maximum(P["bucket"], 0)]
    p_t = np.where(kinds == "copy", 0.5 * (p_pers + p_gen), np.where(kinds == "cart", cart_pt, reg_pt))
    q = 0.8 * p_t + 0.2 * p_c
    u = P["user"]
    # expected order revenue per user: expected item price given the favourite category
    K = len(CATEGORIES)
    mean_c = np.asarray(s.mean_c, float)
    e_fav = FAV_SHARE * mean_c + (1 - FAV_SHARE) * (mean_c.sum() - mean_c) / (K - 1)
    aov = (1 + EXTRA_ITEMS) * e_fav[s.fav[u]]
    d = np.where(s.price_sensitive[u], P_DISCOUNT[1], P_DISCOUNT[0])
    r_org = np.mean(sorted(ORGANIC_COUPONS)) / 100
    r_treat = np.where((pct > 0) & (k > 0), pct, r_org)
    rev_t = 0.8 * p_t * aov * (1 - d * r_treat) + 0.2 * p_c * aov * (1 - d * r_org)
    rev_h = p_c * aov * (1 - d * r_org)
    organic = np.bincount(s.o_user[~s.o_is_conv], minlength=U)
    no_org = organic == 0
    log_h = np.bincount(u, weights=np.log1p(-p_c), minlength=U)
    log_t = np.bincount(u, weights=np.log1p(-q), minlength=U)
    conv = float(np.sum(np.where(no_org, np.exp(log_h) - np.exp(log_t), 0.0)) / U)
    return pd.DataFrame({
        "experiment": "global_holdout", "metric": ["conversion_rate", "orders_per_user", "revenue_per_user"],
        "abs_lift": [conv, float(np.sum(q - p_c) / U), float(np.sum(rev_t - rev_h) / U)],
        "window": "assigned_time to end",
    })
