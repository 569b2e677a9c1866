"""truth of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import (CAMPAIGNS, CART_BOUNDS_H, CART_BUCKETS, CART_P, CART_P_CONTROL, CATEGORIES, COPY_P_CONVERT, COPY_P_OPEN, COPY_VARIANTS, COST, DAY, DELIVERY_RATE, EXPLORER, OPEN_RATE, PERSONAS, UNSUB_BASE, UNSUB_MAX, UNSUB_POWER, WINDOW)
from .helpers import (_comparers, _funnel_by_persona, _funnel_truth, _str, _uplift_truth)
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
        "uplift": _uplift_truth(e_item),
        "copy_test": pd.DataFrame({"variant": list(COPY_VARIANTS), "p_open": list(COPY_P_OPEN),
                                   "p_convert": list(COPY_P_CONVERT)}),
        "cart_reminder": pd.DataFrame({"delay_bucket": list(CART_BUCKETS),
                                       "delay_from_hours": [b_[0] for b_ in CART_BOUNDS_H],
                                       "delay_to_hours": [b_[1] for b_ in CART_BOUNDS_H],
                                       "p_convert": list(CART_P), "p_control": CART_P_CONTROL}),
        "delivery_rate": dict(DELIVERY_RATE),
        "open_rate": dict(OPEN_RATE),
        "cost_per_message": dict(COST),
        "unsubscribe": pd.DataFrame({"messages_in_week": np.arange(1, 21),
                                     "p_unsubscribe": np.minimum(UNSUB_BASE * np.arange(1, 21.0) ** UNSUB_POWER,
                                                                 UNSUB_MAX)}),
        "violations": violations,
        "campaigns": pd.DataFrame(camp_rows),
        "expected_item_price": e_item,
        "holdout_share": holdout_share,
        "start": start_ts,
        "end": end_ts,
        "tz": tz,
        "seed": seed,
    }
    s.truth = truth
