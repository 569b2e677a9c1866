"""sessions of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np

from .constants import (ADD_TO_CART, BEGIN_CHECKOUT, BROWSE_SHARE, EXPLORER, HOUR, MIN_GAP, PRODUCT_VIEW, PURCHASE, SOURCES)
from .helpers import (_draw_products, _expand, _funnel_depth, _group_cumsum)


def organic_sessions(s) -> None:
    """Step 2 of the generative process: organic sessions (events inside them, their placement in time)."""
    U = s.U
    first_t = s.first_t
    gap_ms = s.gap_ms
    persona = s.persona
    rng = s.rng
    user_end = s.user_end
    # ------------------------------------------------------------------ organic sessions
    avail = np.maximum(user_end - first_t - 2 * HOUR, 0)
    M = rng.poisson(avail / gap_ms)
    n_s = 1 + M
    s_user = np.repeat(np.arange(U), n_s)
    S = s_user.size
    s_first_idx = np.r_[0, np.cumsum(n_s)[:-1]]
    s_is_first = np.zeros(S, bool)
    s_is_first[s_first_idx] = True
    s_persona = persona[s_user]
    browse = s_is_first | (rng.random(S) < BROWSE_SHARE)
    n_pre = np.where(browse, rng.choice(3, S, p=(0.35, 0.45, 0.20)), 1 + (rng.random(S) < 0.4))
    n_pv = np.where(browse, np.where(s_is_first, 2 + np.minimum(rng.poisson(1.0, S), 6),
                                     1 + np.minimum(rng.poisson(1.2, S), 7)), 0)
    depth = np.where(browse, _funnel_depth(rng, s_persona), 0)
    s_expl = s_persona == EXPLORER
    long_mode = np.where(s_expl, np.where(s_is_first, 2, 1), 3)
    skip0 = np.zeros(S, np.int64)
    ev_s, ev_t, ev_off, s_dur, s_ev_first = _expand(rng, n_pre, n_pv, depth, skip0, long_mode)

    # place later sessions: conditional Poisson process with minimum gaps
    first_end = first_t + s_dur[s_first_idx]
    extra = ~s_is_first
    sum_dur = np.bincount(s_user[extra], weights=s_dur[extra], minlength=U)
    F = (user_end - first_end - M * MIN_GAP - sum_dur).astype(float)
    e_slot = rng.exponential(1.0, S)
    e_tail = rng.exponential(1.0, U)
    e_sum = np.bincount(s_user[extra], weights=e_slot[extra], minlength=U) + e_tail
    f = np.where(extra, np.maximum(F, 0)[s_user] * e_slot / e_sum[s_user], 0.0)
    step = np.where(extra, MIN_GAP + f + s_dur, 0.0)
    s_start = (first_end[s_user] + _group_cumsum(step, s_is_first) - np.where(extra, s_dur, 0)).astype(np.int64)
    s_start[s_first_idx] = first_t
    s_keep = s_is_first | (F[s_user] > 0)
    s_end = s_start + s_dur

    s.S = S
    s.depth = depth
    s.ev_off = ev_off
    s.ev_s = ev_s
    s.ev_t = ev_t
    s.extra = extra
    s.first_end = first_end
    s.n_pre = n_pre
    s.n_pv = n_pv
    s.s_end = s_end
    s.s_ev_first = s_ev_first
    s.s_first_idx = s_first_idx
    s.s_keep = s_keep
    s.s_start = s_start
    s.s_user = s_user


def assemble_events(s) -> None:
    """Step 2 (continued): all events of organic and conversion sessions, their products and session attributes."""
    C = s.C
    S = s.S
    c_start = s.c_start
    cev_off = s.cev_off
    cev_s = s.cev_s
    cev_t = s.cev_t
    cu = s.cu
    device = s.device
    ev_keep = s.ev_keep
    ev_off = s.ev_off
    ev_s = s.ev_s
    ev_t = s.ev_t
    fav = s.fav
    pcum = s.pcum
    rng = s.rng
    s_start = s.s_start
    s_user = s.s_user
    # ------------------------------------------------------------------ all events
    o_sess = ev_s[ev_keep]
    e_user = np.concatenate([s_user[o_sess], cu[cev_s]])
    e_time = np.concatenate([s_start[o_sess] + ev_off[ev_keep], c_start[cev_s] + cev_off])
    e_type = np.concatenate([ev_t[ev_keep], cev_t])
    # session keys: organic sessions 0..S-1, conversion sessions S..S+C-1
    e_skey = np.concatenate([o_sess, S + cev_s])
    # products: each product view draws one; cart/checkout/purchase take the last view's
    n_e = e_user.size
    prod = np.full(n_e, -1, np.int64)
    is_pv = e_type == PRODUCT_VIEW
    prod[is_pv] = _draw_products(rng, fav[e_user[is_pv]], pcum)
    # forward fill within session (events of a session are contiguous, in order)
    has = prod >= 0
    idx = np.where(has, np.arange(n_e), 0)
    np.maximum.accumulate(idx, out=idx)
    is_step = (e_type == ADD_TO_CART) | (e_type == BEGIN_CHECKOUT) | (e_type == PURCHASE)
    prod[is_step] = prod[idx[is_step]]

    # session-level attributes: source/medium/campaign and device
    n_sess = S + C
    src_w = np.array([s[3] for s in SOURCES])
    s_src = rng.choice(len(SOURCES), n_sess, p=src_w / src_w.sum())
    s_dev = np.where(rng.random(n_sess) < 0.85, device[np.r_[s_user, cu]], rng.choice(3, n_sess))

    s.e_skey = e_skey
    s.e_time = e_time
    s.e_type = e_type
    s.e_user = e_user
    s.n_sess = n_sess
    s.prod = prod
    s.s_dev = s_dev
    s.s_src = s_src
