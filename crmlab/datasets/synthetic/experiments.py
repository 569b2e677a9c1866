"""experiments of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import math

import numpy as np

from ...io.schema import CHANNELS
from .constants import (ADD_TO_CART, BEGIN_CHECKOUT, CAMPAIGNS, CART_BOUNDS_H, CART_BUCKETS, CART_P, CART_P_CONTROL, COPY_P_CONVERT, DAY, DELIVERY_RATE, EXPLORER, HOUR, MIN, MIN_GAP, PURCHASE, WINDOW, _C_CHAN, _N_BLOCKS, _P_FRIENDTALK_20, _P_NIGHT_SEND, _P_NO_CONSENT)
from .helpers import (_campaign_p, _expand, _scaled)


def participants(s) -> None:
    """Step 4 of the generative process: campaign schedule, participants, arms, conversion draws, conversion sessions and the cutting of organic purchases inside windows."""
    S = s.S
    U = s.U
    c = s.c
    ch = s.ch
    clock = s.clock
    consent = s.consent
    consent_t = s.consent_t
    depth = s.depth
    ev_off = s.ev_off
    ev_s = s.ev_s
    ev_t = s.ev_t
    extra = s.extra
    first_end = s.first_end
    first_t = s.first_t
    holdout = s.holdout
    n_days = s.n_days
    n_pre = s.n_pre
    n_pv = s.n_pv
    persona = s.persona
    rng = s.rng
    s_end = s.s_end
    s_ev_first = s.s_ev_first
    s_first_idx = s.s_first_idx
    s_keep = s.s_keep
    s_start = s.s_start
    s_user = s.s_user
    span = s.span
    user_end = s.user_end
    # ------------------------------------------------------------------ campaign schedule
    d0 = int(math.ceil(0.25 * n_days))
    L = (n_days - 1 - d0) // _N_BLOCKS
    spread = max(1, L - 4)
    block_start_day = {}
    b = 0
    for c in CAMPAIGNS:
        if c["kind"] in ("regular", "copy"):
            block_start_day[c["name"]] = d0 + b * L
            b += 1
    first_block_ms = int(clock.day_ms[d0])

    parts = []        # one dict of arrays per campaign: its participants
    cidx = {c["name"]: i for i, c in enumerate(CAMPAIGNS)}

    # cart reminder: abandoned cart in the first session
    fs_depth = depth[s_first_idx]
    ca = CAMPAIGNS[cidx["장바구니 리마인드"]]
    atc_ev = s_ev_first[s_first_idx] + n_pre[s_first_idx] + n_pv[s_first_idx]
    atc_t = first_t + ev_off[np.minimum(atc_ev, ev_off.size - 1)]
    bucket = rng.integers(0, len(CART_BUCKETS), U)
    bl = np.array([b_[0] for b_ in CART_BOUNDS_H])[bucket]
    bh = np.array([b_[1] for b_ in CART_BOUNDS_H])[bucket]
    delay = ((bl + rng.random(U) * (bh - bl)) * HOUR).astype(np.int64)
    c_send = atc_t + delay
    c_wend = c_send + WINDOW
    ok_consent = consent[ca["channel"]] & (consent_t[ca["channel"]] <= atc_t)
    # Holdout users take part too, as *virtual* participants: same eligibility, same window and
    # the same cutting of organic purchases, always converting like the control arm, but never
    # messaged and not in the campaign's assignments. The global holdout comparison is then free
    # of the suppression asymmetry, and its effect is exactly the campaigns' (truth['holdout']).
    cart_part = ((fs_depth == 2) | (fs_depth == 3)) & (c_wend < first_block_ms - 12 * HOUR) \
        & (user_end > c_wend + DAY) & (ok_consent | (rng.random(U) < _P_NO_CONSENT))
    ids = np.flatnonzero(cart_part)
    virtual = holdout[ids]
    treat = (rng.random(ids.size) < 0.8) & ~virtual
    p_t = _scaled(CART_P_CONTROL, np.asarray(CART_P)[bucket[ids]], s.effect_scale)
    parts.append(dict(c=cidx[ca["name"]], user=ids, arm=np.where(treat, 1, 0), virtual=virtual, send=c_send[ids],
                      supp=atc_t[ids], wend=c_wend[ids], p_t=p_t, p_c=np.full(ids.size, CART_P_CONTROL),
                      min_start=first_end[ids] + MIN_GAP, bucket=bucket[ids]))

    for c in CAMPAIGNS:
        if c["kind"] not in ("regular", "copy"):
            continue
        i_c = cidx[c["name"]]
        bd = block_start_day[c["name"]]
        b0 = int(clock.day_ms[bd])
        b1 = int(clock.day_ms[bd + L])
        day = bd + rng.integers(0, spread, U)
        hour_ms = (c["hour"] * HOUR + rng.random(U) * HOUR).astype(np.int64)
        night_pick = rng.random(U) < _P_NIGHT_SEND
        night_ms = np.where(rng.random(U) < 0.5, 21 * HOUR + rng.random(U) * 2.9 * HOUR,
                            rng.random(U) * 7.9 * HOUR).astype(np.int64)
        hour_ms = np.where(night_pick, night_ms, hour_ms)
        if c["channel"] == "kakao_friendtalk":
            at20 = (20 * HOUR + rng.random(U) * 0.9 * HOUR).astype(np.int64)
            hour_ms = np.where(rng.random(U) < _P_FRIENDTALK_20, at20, hour_ms)
        send = clock.day_ms[day] + hour_ms
        ch = c["channel"]
        ok_consent = (consent[ch] & (consent_t[ch] <= send)) if c["is_ad"] else np.ones(U, bool)
        ok_consent |= rng.random(U) < _P_NO_CONSENT
        target = np.asarray(c["target"])[persona]
        elig = (first_end < b0 - DAY) & (user_end >= b1 + DAY) & ok_consent & (rng.random(U) < target)
        ids = np.flatnonzero(elig)
        virtual = holdout[ids]
        treat = (rng.random(ids.size) < 0.8) & ~virtual
        g = persona[ids]
        if c["kind"] == "copy":
            var = np.where(treat, np.where(rng.random(ids.size) < 0.5, 0, 1), 2)  # personalised, generic, control
            p_t = _scaled(COPY_P_CONVERT[2], np.asarray(COPY_P_CONVERT)[var], s.effect_scale)
            p_c = np.full(ids.size, COPY_P_CONVERT[2])
            arm = np.where(var == 2, 0, var + 1)        # 0 control, 1 personalised, 2 generic
        else:
            p0, p1 = _campaign_p(c, s.effect_scale)
            p_t, p_c = p1[g], p0[g]
            arm = treat.astype(np.int64)
        parts.append(dict(c=i_c, user=ids, arm=arm, virtual=virtual, send=send[ids], supp=send[ids], wend=send[ids] + WINDOW,
                          p_t=p_t, p_c=p_c, min_start=np.zeros(ids.size, np.int64),
                          bucket=np.full(ids.size, -1)))

    P = {k: np.concatenate([p[k] for p in parts]) if k != "c" else
         np.concatenate([np.full(p["user"].size, p["c"]) for p in parts]) for k in parts[0]}
    n_p = P["user"].size
    p_chan = _C_CHAN[P["c"]]
    d_rate = np.array([DELIVERY_RATE[ch] for ch in CHANNELS])[p_chan]
    treated = P["arm"] > 0
    delivered = treated & (rng.random(n_p) < d_rate)
    p_deliv = (P["p_t"] - (1 - d_rate) * P["p_c"]) / d_rate
    p_eff = np.where(~treated, P["p_c"], np.where(delivered, p_deliv, P["p_c"]))
    converted = rng.random(n_p) < p_eff

    # ------------------------------------------------------------------ conversion sessions
    conv = np.flatnonzero(converted)
    C = conv.size
    cu = P["user"][conv]
    c_start = P["send"][conv] + 2 * MIN + (rng.beta(0.8, 2.5, C) * (WINDOW - 65 * MIN)).astype(np.int64)
    c_start = np.maximum(c_start, P["min_start"][conv])
    c_pv = 1 + np.minimum(rng.poisson(0.5, C), 4)
    c_skip = (persona[cu] == EXPLORER).astype(np.int64)
    cev_s, cev_t, cev_off, c_dur, _ = _expand(rng, np.zeros(C, np.int64), c_pv, np.full(C, 4), c_skip,
                                               np.zeros(C, np.int64))
    c_end = c_start + c_dur

    # drop later organic sessions that would sit within 30 min of a conversion session
    if C:
        o = np.lexsort((c_start, cu))
        k_cs = cu[o].astype(np.int64) * (1 << 40) + c_start[o] + (1 << 39)
        key_e = s_user.astype(np.int64) * (1 << 40) + s_end + MIN_GAP + (1 << 39)
        j = np.searchsorted(k_cs, key_e, side="right") - 1
        jj = np.maximum(j, 0)
        clash = (j >= 0) & (cu[o][jj] == s_user) & (c_end[o][jj] > s_start - MIN_GAP)
        s_keep &= ~(clash & extra)

    # cut organic purchases of sessions touching [supp - 30 min, window end + 30 min) of a participant
    # (both arms and the virtual holdout participants alike). The 30-minute margins cover every
    # session the clash rule above can drop, so organic orders never depend on the arm or on
    # conversion. Cut abandoned carts near the end.
    w_order = np.lexsort((P["supp"], P["user"]))
    k_ws = P["user"][w_order].astype(np.int64) * (1 << 40) + P["supp"][w_order] - MIN_GAP + (1 << 39)
    key_e = s_user.astype(np.int64) * (1 << 40) + s_end + (1 << 39)
    j = np.searchsorted(k_ws, key_e, side="right") - 1
    jj = np.maximum(j, 0)
    in_window = (j >= 0) & (P["user"][w_order][jj] == s_user) & (P["wend"][w_order][jj] + MIN_GAP > s_start)
    cut_level = np.full(S, 9)
    cut_level[in_window & (depth == 4)] = 3
    near_end = (s_end > span - 48 * HOUR) & ((depth == 2) | (depth == 3))
    near_end |= in_window & (s_end > span - 48 * HOUR) & (depth == 4)
    cut_level[near_end] = 1
    # events kept: session kept and step within the cut level
    ev_level = np.select([ev_t == ADD_TO_CART, ev_t == BEGIN_CHECKOUT, ev_t == PURCHASE], [2, 3, 4], 1)
    ev_keep = s_keep[ev_s] & (ev_level <= cut_level[ev_s])

    s.C = C
    s.P = P
    s.c = c
    s.c_start = c_start
    s.cev_off = cev_off
    s.cev_s = cev_s
    s.cev_t = cev_t
    s.ch = ch
    s.cidx = cidx
    s.conv = conv
    s.converted = converted
    s.cu = cu
    s.delivered = delivered
    s.ev_keep = ev_keep
    s.n_p = n_p
    s.p_chan = p_chan
    s.parts = parts
    s.treated = treated
