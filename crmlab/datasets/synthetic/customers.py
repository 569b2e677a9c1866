"""customers of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np

from ...io.schema import CHANNELS
from .constants import (AGE_BANDS, AGE_WEIGHTS, BARGAIN, BROWSE_SHARE, CATEGORY_WEIGHTS, CONSENT_RATE, CYCLE_DAYS, DAY, DEVICES, DEVICE_WEIGHTS, EXPLORER, FUNNEL, LAPSING, MIN, NEW, PERSONAS, PERSONA_SHARE, PRICE_SENSITIVE_OTHERS, REGIONS, REGION_WEIGHTS, _P_OLD_CONSENT)


def draw_customers(s) -> None:
    """Step 1 of the generative process: customers, personas, consents and repurchase cycles."""
    K = s.K
    U = s.U
    holdout_share = s.holdout_share
    rng = s.rng
    span = s.span
    # ------------------------------------------------------------------ users
    persona = rng.choice(len(PERSONAS), size=U, p=PERSONA_SHARE)
    is_new = persona == NEW
    signup = np.where(is_new, (rng.random(U) * (span - 14 * DAY)).astype(np.int64),
                      -(DAY + (rng.random(U) * 4 * 365 * DAY).astype(np.int64)))
    first_t = np.where(is_new, signup + rng.integers(0, 5 * MIN, U),
                       (rng.exponential(4 * DAY, U) % (0.2 * span)).astype(np.int64))
    lo = np.maximum(first_t + 10 * DAY, int(0.35 * span))
    hi = span - 3 * DAY
    churned = (persona == LAPSING) & (lo < hi)
    churn_t = np.where(churned, lo + (rng.random(U) * np.maximum(hi - lo, 0)).astype(np.int64), span)
    user_end = churn_t
    fav = rng.choice(K, size=U, p=np.asarray(CATEGORY_WEIGHTS) / sum(CATEGORY_WEIGHTS))
    price_sensitive = (persona == BARGAIN) | (rng.random(U) < PRICE_SENSITIVE_OTHERS)
    device = rng.choice(len(DEVICES), size=U, p=DEVICE_WEIGHTS)
    gender = np.where(rng.random(U) < 0.66, 0, 1)
    age = rng.choice(len(AGE_BANDS), size=U, p=AGE_WEIGHTS)
    region = rng.choice(len(REGIONS), size=U, p=np.asarray(REGION_WEIGHTS) / sum(REGION_WEIGHTS))
    h_rank = rng.random(U)           # the holdout is drawn below, blocked on persona and cycle
    consent = {}
    consent_t = {}
    for ch in CHANNELS:
        c = rng.random(U) < CONSENT_RATE[ch] * (1.25 if (ch == "in_app") else 1.0)
        base = np.maximum(signup, -(rng.random(U) * 600 * DAY).astype(np.int64))
        old = c & (rng.random(U) < _P_OLD_CONSENT)
        base = np.where(old, np.maximum(signup, -(740 * DAY + (rng.random(U) * 300 * DAY).astype(np.int64))), base)
        consent[ch] = c
        consent_t[ch] = base
    consent["in_app"] &= device == 1
    night = rng.random(U) < 0.25
    night_t = np.maximum(signup, -(rng.random(U) * 600 * DAY).astype(np.int64))

    pf = np.array([FUNNEL[p] for p in PERSONAS], float)
    q = np.nan_to_num(pf[:, 0] * pf[:, 1] * pf[:, 2])
    cyc_mean = np.array([CYCLE_DAYS[p] for p in PERSONAS])
    cycle = cyc_mean[persona] * rng.gamma(4.0, 0.25, U)
    gap_days = np.where(persona == EXPLORER, cycle, cycle * BROWSE_SHARE * q[persona])
    gap_ms = gap_days * DAY
    holdout = _blocked_holdout(rng, persona, cycle, h_rank, holdout_share)

    s.age = age
    s.c = c
    s.ch = ch
    s.churn_t = churn_t
    s.churned = churned
    s.consent = consent
    s.consent_t = consent_t
    s.cycle = cycle
    s.device = device
    s.fav = fav
    s.first_t = first_t
    s.gap_ms = gap_ms
    s.gender = gender
    s.holdout = holdout
    s.night = night
    s.night_t = night_t
    s.persona = persona
    s.price_sensitive = price_sensitive
    s.region = region
    s.signup = signup
    s.user_end = user_end


def _blocked_holdout(rng, persona, cycle, h_rank, share: float):
    """Global holdout membership, blocked: users sorted by persona and planted repurchase cycle
    fall into blocks of ``B = floor(1 / share)`` neighbours (within a persona); in each block the
    user with the smallest ``h_rank`` is held out with probability ``share * B``. Every user is
    held out with probability ``share``, and the two arms are balanced on what drives orders and
    revenue, so the programme effect in ``truth['holdout']`` is not masked by a chance imbalance."""
    U = persona.size
    if share <= 0:
        return np.zeros(U, bool)
    B = max(1, int(np.floor(1 / share + 1e-9)))
    order = np.lexsort((cycle, persona))
    p_sorted = persona[order]
    first = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    start_idx = np.maximum.accumulate(np.where(first, np.arange(U), 0))
    block = np.cumsum(np.r_[True, ((np.arange(1, U) - start_idx[1:]) % B == 0) | first[1:]]) - 1
    r = h_rank[order]
    best = np.lexsort((r, block))                 # by block, then h_rank
    lead = np.r_[True, block[best][1:] != block[best][:-1]]
    take = rng.random(int(block.max()) + 1) < share * B
    held = np.zeros(U, bool)
    chosen = best[lead]
    held[order[chosen]] = take[block[chosen]]
    return held
