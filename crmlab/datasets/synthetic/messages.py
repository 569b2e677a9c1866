"""messages of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np

from ...io.schema import CHANNELS
from .constants import (CAMPAIGNS, COPY_P_OPEN, COST, DELIVERY_RATE, HOUR, MIN, OPEN_CHANNELS, OPEN_RATE, SEC, UNSUB_BASE, UNSUB_MAX, UNSUB_POWER, _C_COPY, _P_LONG_SMS, _P_NO_OPTOUT, _P_NO_PREFIX)
from .helpers import (_text)


def campaign_messages(s) -> None:
    """Step 4 (continued): messages of campaigns and of the BAU recommendations, with delivery, opens, clicks, fatigue and texts."""
    C = s.C
    K = s.K
    P = s.P
    S = s.S
    U = s.U
    c = s.c
    c_start = s.c_start
    ch = s.ch
    cidx = s.cidx
    clock = s.clock
    consent = s.consent
    conv = s.conv
    converted = s.converted
    delivered = s.delivered
    fav = s.fav
    holdout = s.holdout
    n_days = s.n_days
    n_p = s.n_p
    n_sess = s.n_sess
    p_chan = s.p_chan
    rng = s.rng
    signup = s.signup
    span = s.span
    treated = s.treated
    user_end = s.user_end
    # ------------------------------------------------------------------ messages (campaigns)
    m_idx = np.flatnonzero(treated)
    mu = P["user"][m_idx]
    m_c = P["c"][m_idx]
    m_ch = p_chan[m_idx]
    m_send = P["send"][m_idx]
    m_deliv = delivered[m_idx]
    m_conv = converted[m_idx]
    n_m = m_idx.size
    conv_pos = np.full(n_p, -1)
    conv_pos[conv] = np.arange(C)
    m_cstart = np.where(m_conv, c_start[np.maximum(conv_pos[m_idx], 0)], 0)
    ch_names = np.array(CHANNELS)
    has_open = np.isin(ch_names[m_ch], OPEN_CHANNELS)
    open_rate = np.array([OPEN_RATE.get(ch, 0.0) for ch in CHANNELS])[m_ch]
    is_copy = _C_COPY[m_c]
    m_arm = P["arm"][m_idx]
    open_rate = np.where(is_copy, np.asarray(COPY_P_OPEN[:2] + (0.0,))[np.clip(m_arm - 1, 0, 2)], open_rate)
    email = ch_names[m_ch] == "email"
    d_time = m_send + np.where(email, rng.integers(10 * SEC, 5 * MIN, n_m), rng.integers(1 * SEC, 60 * SEC, n_m))
    opened = m_deliv & has_open & (rng.random(n_m) < open_rate)
    u = rng.random(n_m)
    clicked = np.where(m_conv, np.where(has_open, opened & (u < 0.8), m_deliv & (u < 0.6)),
                       np.where(has_open, opened & (u < 0.1), m_deliv & (u < 0.03)))
    click_t = np.where(m_conv, m_cstart - rng.integers(5 * SEC, 60 * SEC, n_m),
                       d_time + rng.exponential(2 * HOUR, n_m).astype(np.int64) + 10 * SEC)
    open_t = np.where(clicked, d_time + ((click_t - d_time) * rng.uniform(0.1, 0.9, n_m)).astype(np.int64),
                      d_time + rng.exponential(2 * HOUR, n_m).astype(np.int64) + SEC)
    # conversion sessions of clicking converters carry the campaign's UTM
    clicked_conv = m_conv & clicked
    crm_sess = S + conv_pos[m_idx][clicked_conv]
    crm_code = np.full(n_sess, -1)
    crm_code[crm_sess] = m_c[clicked_conv]

    # BAU recommendations
    bau = CAMPAIGNS[cidx["데일리 추천"]]
    bau_u = np.flatnonzero(~holdout & consent["app_push"] & (rng.random(U) < 0.4))
    active_from = np.maximum(clock.day_of(np.maximum(signup[bau_u], 0)) + 1, 1)
    active_to = np.minimum(clock.day_of(user_end[bau_u] - 1) + 1, n_days)
    n_act = np.maximum(active_to - active_from, 0)
    rate = rng.gamma(1.5, 1.2 / 1.5, bau_u.size) / 7.0
    n_bau = rng.poisson(rate * n_act)
    bu = np.repeat(bau_u, n_bau)
    b_day = np.repeat(active_from, n_bau) + (rng.random(bu.size) * np.repeat(n_act, n_bau)).astype(np.int64)
    b_send = clock.day_ms[b_day] + (9 * HOUR + rng.random(bu.size) * 12 * HOUR).astype(np.int64)
    inside = (b_send >= 0) & (b_send < span)
    bu, b_send = bu[inside], b_send[inside]
    n_b = bu.size
    b_deliv = rng.random(n_b) < DELIVERY_RATE["app_push"]
    b_dtime = b_send + rng.integers(SEC, 60 * SEC, n_b)
    b_open = b_deliv & (rng.random(n_b) < OPEN_RATE["app_push"])
    b_otime = b_dtime + rng.exponential(2 * HOUR, n_b).astype(np.int64) + SEC
    b_click = b_open & (rng.random(n_b) < 0.1)
    b_ctime = b_otime + rng.integers(5 * SEC, 10 * MIN, n_b)

    # all messages
    M_user = np.concatenate([mu, bu])
    M_c = np.concatenate([m_c, np.full(n_b, cidx["데일리 추천"])])
    M_ch = np.concatenate([m_ch, np.full(n_b, CHANNELS.index("app_push"))])
    M_arm = np.concatenate([m_arm, np.zeros(n_b, np.int64)])
    M_send = np.concatenate([m_send, b_send])
    M_deliv = np.concatenate([m_deliv, b_deliv])
    M_dtime = np.concatenate([d_time, b_dtime])
    M_open = np.concatenate([opened, b_open])
    M_otime = np.concatenate([open_t, b_otime])
    M_click = np.concatenate([clicked, b_click])
    M_ctime = np.concatenate([click_t, b_ctime])
    n_M = M_user.size
    M_is_ad = np.array([c["is_ad"] for c in CAMPAIGNS])[M_c]
    # fatigue: unsubscribe probability rises with messages sent to the user that ISO week
    wk = clock.iso_week(M_send)
    wkey = M_user.astype(np.int64) * (n_days // 7 + 2) + wk
    k_week = np.bincount(wkey)[wkey]
    p_unsub = np.minimum(UNSUB_BASE * k_week.astype(float) ** UNSUB_POWER, UNSUB_MAX)
    M_unsub = M_deliv & M_is_ad & (rng.random(n_M) < p_unsub)
    M_utime = M_dtime + rng.integers(MIN, 2 * HOUR, n_M)
    # text: template code per message
    tmpl_flags = np.zeros(n_M, np.int64)
    tmpl_flags |= np.where(M_is_ad & (rng.random(n_M) < _P_NO_PREFIX), 1, 0)
    tmpl_flags |= np.where(M_is_ad & (rng.random(n_M) < _P_NO_OPTOUT), 2, 0)
    sms_c = np.array([c.get("long_text") is not None for c in CAMPAIGNS])[M_c]
    tmpl_flags |= np.where(sms_c & (rng.random(n_M) < _P_LONG_SMS), 4, 0)
    M_cat = fav[M_user]
    code = ((M_c * 3 + M_arm) * K + M_cat) * 8 + tmpl_flags
    uniq, t_inv = np.unique(code, return_inverse=True)
    texts = [_text(int(x), K) for x in uniq]
    M_cost = np.array([COST[ch] for ch in CHANNELS])[M_ch]
    order = np.lexsort((M_user, M_send))

    s.M_arm = M_arm
    s.M_c = M_c
    s.M_ch = M_ch
    s.M_click = M_click
    s.M_cost = M_cost
    s.M_ctime = M_ctime
    s.M_deliv = M_deliv
    s.M_dtime = M_dtime
    s.M_is_ad = M_is_ad
    s.M_open = M_open
    s.M_otime = M_otime
    s.M_send = M_send
    s.M_unsub = M_unsub
    s.M_user = M_user
    s.M_utime = M_utime
    s.b_send = b_send
    s.bau = bau
    s.bau_u = bau_u
    s.crm_code = crm_code
    s.n_M = n_M
    s.n_b = n_b
    s.order = order
    s.t_inv = t_inv
    s.texts = texts
