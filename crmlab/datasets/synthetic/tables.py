"""tables of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...io.schema import CHANNELS
from .constants import (AGE_BANDS, CAMPAIGNS, CATEGORIES, CHANNEL_SOURCE, DEVICES, EVENT_NAMES, REGIONS, SOURCES, _C_COPY)
from .helpers import (_ids, _str, _user_ids)


def customer_event_tables(s) -> None:
    """The customers and events tables."""
    U = s.U
    age = s.age
    c = s.c
    c_start = s.c_start
    ch = s.ch
    clock = s.clock
    consent = s.consent
    consent_t = s.consent_t
    crm_code = s.crm_code
    cu = s.cu
    e_skey = s.e_skey
    e_time = s.e_time
    e_type = s.e_type
    e_user = s.e_user
    gender = s.gender
    n_sess = s.n_sess
    night = s.night
    night_t = s.night_t
    pcat = s.pcat
    pids = s.pids
    pprice = s.pprice
    prod = s.prod
    region = s.region
    s_dev = s.s_dev
    s_src = s.s_src
    s_start = s.s_start
    s_user = s.s_user
    signup = s.signup
    with_session_id = s.with_session_id
    # ------------------------------------------------------------------ tables
    customers = pd.DataFrame({
        "user_id": _user_ids(np.arange(U), U),
        "signup_time": clock.to_time(signup),
        "gender": _str(gender, ("F", "M")),
        "age_band": _str(age, AGE_BANDS),
        "region": _str(region, REGIONS),
    })
    for ch in CHANNELS:
        customers[f"consent_{ch}"] = consent[ch]
        customers[f"consent_{ch}_time"] = clock.to_time(consent_t[ch], null=~consent[ch])
    customers["night_ad_consent"] = night
    customers["night_ad_consent_time"] = clock.to_time(night_t, null=~night)

    # events sorted by (time, user)
    eo = np.argsort(e_time * (1 << 20) + e_user) if U < (1 << 20) else np.lexsort((e_user, e_time))
    ev_user, ev_time, ev_type, ev_key, ev_prod = e_user[eo], e_time[eo], e_type[eo], e_skey[eo], prod[eo]
    # session ids: sessions ranked by (user, start)
    s_all_start = np.r_[s_start, c_start]
    s_all_user = np.r_[s_user, cu]
    used = np.zeros(n_sess, bool)
    used[ev_key] = True
    so = np.lexsort((s_all_start, s_all_user))
    so = so[used[so]]
    sid = np.zeros(n_sess, np.int64)
    sid[so] = np.arange(1, so.size + 1)
    src_names = [s[0] for s in SOURCES] + list(dict.fromkeys(CHANNEL_SOURCE.values()))
    med_names = ["organic", "cpc", "social", "crm"]
    camp_names = [s[2] for s in SOURCES if s[2]] + [c["name"] for c in CAMPAIGNS]
    s_src_code = np.array([src_names.index(s[0]) for s in SOURCES])[s_src]
    s_med_code = np.array([med_names.index(s[1]) if s[1] else -1 for s in SOURCES])[s_src]
    s_camp_code = np.array([camp_names.index(s[2]) if s[2] else -1 for s in SOURCES])[s_src]
    crm = crm_code >= 0
    s_src_code[crm] = np.array([src_names.index(CHANNEL_SOURCE[c["channel"]]) for c in CAMPAIGNS])[crm_code[crm]]
    s_med_code[crm] = med_names.index("crm")
    s_camp_code[crm] = np.array([camp_names.index(c["name"]) for c in CAMPAIGNS])[crm_code[crm]]
    has_prod = ev_prod >= 0
    ev_prod0 = np.maximum(ev_prod, 0)
    events = pd.DataFrame({
        "user_id": _user_ids(ev_user, U),
        "time": clock.to_time(ev_time),
        "event": _str(ev_type, EVENT_NAMES),
    })
    if with_session_id:
        events["session_id"] = sid[ev_key]
    events["product_id"] = _str(ev_prod0, pids, null=~has_prod)
    events["category"] = _str(pcat[ev_prod0], CATEGORIES, null=~has_prod)
    events["price"] = np.where(has_prod, pprice[ev_prod0], np.nan)
    sc = s_src_code[ev_key]
    mc = s_med_code[ev_key]
    cc = s_camp_code[ev_key]
    events["source"] = _str(sc, src_names)
    events["medium"] = _str(np.maximum(mc, 0), med_names, null=mc < 0)
    events["campaign"] = _str(np.maximum(cc, 0), camp_names, null=cc < 0)
    events["device"] = _str(s_dev[ev_key], DEVICES)

    s.customers = customers
    s.ev_key = ev_key
    s.ev_prod = ev_prod
    s.ev_time = ev_time
    s.ev_type = ev_type
    s.ev_user = ev_user
    s.events = events


def message_assignment_tables(s) -> None:
    """The messages and assignments tables."""
    M_arm = s.M_arm
    M_c = s.M_c
    M_ch = s.M_ch
    M_click = s.M_click
    M_cost = s.M_cost
    M_ctime = s.M_ctime
    M_deliv = s.M_deliv
    M_dtime = s.M_dtime
    M_is_ad = s.M_is_ad
    M_open = s.M_open
    M_otime = s.M_otime
    M_send = s.M_send
    M_unsub = s.M_unsub
    M_user = s.M_user
    M_utime = s.M_utime
    P = s.P
    U = s.U
    c = s.c
    clock = s.clock
    holdout = s.holdout
    n_M = s.n_M
    order = s.order
    signup = s.signup
    t_inv = s.t_inv
    texts = s.texts
    variant_names = ["personalised", "generic"]
    copy_m = _C_COPY[M_c]
    mv = np.where(copy_m, M_arm - 1, -1)[order]
    messages = pd.DataFrame({
        "message_id": _ids("M", n_M, 8),
        "user_id": _user_ids(M_user[order], U),
        "campaign": _str(M_c[order], [c["name"] for c in CAMPAIGNS]),
        "channel": _str(M_ch[order], CHANNELS),
        "variant": _str(np.maximum(mv, 0), variant_names, null=mv < 0),
        "is_ad": M_is_ad[order],
        "text": _str(t_inv[order], texts),
        "sent_time": clock.to_time(M_send[order]),
        "delivered_time": clock.to_time(M_dtime[order], null=~M_deliv[order]),
        "opened_time": clock.to_time(M_otime[order], null=~M_open[order]),
        "clicked_time": clock.to_time(M_ctime[order], null=~M_click[order]),
        "unsubscribed_time": clock.to_time(M_utime[order], null=~M_unsub[order]),
        "cost": M_cost[order],
    })

    # assignments
    exp_names = ["global_holdout"] + [c["name"] for c in CAMPAIGNS if c["kind"] != "bau"]
    var_all = ["holdout", "treatment", "control", "personalised", "generic"]
    c_exp = np.array([exp_names.index(c["name"]) if c["name"] in exp_names else -1 for c in CAMPAIGNS])
    real = ~P["virtual"]          # holdout users' virtual participations are not assignments
    a_exp = np.r_[np.zeros(U, np.int64), c_exp[P["c"][real]]].astype(np.int64)
    p_copy = _C_COPY[P["c"][real]]
    p_arm = P["arm"][real]
    p_var = np.where(p_arm == 0, 2, np.where(p_copy, p_arm + 2, 1))
    a_var = np.r_[np.where(holdout, 0, 1), p_var]
    a_user = np.r_[np.arange(U), P["user"][real]]
    a_time = np.r_[np.maximum(signup, 0), P["send"][real]]
    assignments = pd.DataFrame({
        "experiment": _str(a_exp, exp_names),
        "user_id": _user_ids(a_user, U),
        "variant": _str(a_var, var_all),
        "assigned_time": clock.to_time(a_time),
    })

    s.assignments = assignments
    s.messages = messages
