"""orders of the synthetic shop (see the package docstring for the generative process)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import (CAMPAIGNS, CATEGORIES, EXTRA_ITEMS, ORGANIC_COUPONS, PURCHASE, P_DISCOUNT)
from .helpers import (_draw_products, _ids, _str, _user_ids)


def orders_table(s) -> None:
    """Step 3 of the generative process: one order per purchase event, items, discounts and coupons."""
    C = s.C
    P = s.P
    S = s.S
    U = s.U
    c = s.c
    clock = s.clock
    conv = s.conv
    ev_key = s.ev_key
    ev_prod = s.ev_prod
    ev_time = s.ev_time
    ev_type = s.ev_type
    ev_user = s.ev_user
    fav = s.fav
    n_sess = s.n_sess
    pcat = s.pcat
    pcum = s.pcum
    pprice = s.pprice
    price_sensitive = s.price_sensitive
    rng = s.rng
    # orders: one per purchase event
    pe = np.flatnonzero(ev_type == PURCHASE)
    n_o = pe.size
    o_user = ev_user[pe]
    o_time = ev_time[pe]
    o_main = ev_prod[pe]
    n_extra = rng.poisson(EXTRA_ITEMS, n_o)
    xu = np.repeat(np.arange(n_o), n_extra)
    x_prod = _draw_products(rng, fav[o_user[xu]], pcum)
    gross = pprice[o_main] + np.bincount(xu, weights=pprice[x_prod], minlength=n_o).astype(np.int64)
    # organic discounts
    ps = price_sensitive[o_user]
    disc_on = rng.random(n_o) < np.where(ps, P_DISCOUNT[1], P_DISCOUNT[0])
    pct_choices = np.array(sorted(ORGANIC_COUPONS))
    pct = np.where(disc_on, pct_choices[rng.integers(0, pct_choices.size, n_o)], 0)
    with_code = disc_on & (rng.random(n_o) < 0.5)
    coupon_names = [ORGANIC_COUPONS[k] for k in pct_choices] + [c["coupon"] for c in CAMPAIGNS if c["coupon"]]
    cp_code = np.where(with_code, np.searchsorted(pct_choices, pct), -1)
    # conversion orders of treated users of couponed campaigns: the campaign coupon when discounted
    conv_of_sess = np.full(n_sess, -1)
    conv_of_sess[S + np.arange(C)] = conv
    pidx = conv_of_sess[ev_key[pe]]
    is_conv = pidx >= 0
    pc = np.where(is_conv, P["c"][np.maximum(pidx, 0)], 0)
    p_arm = np.where(is_conv, P["arm"][np.maximum(pidx, 0)], 0)
    camp_pct = np.array([c["pct"] for c in CAMPAIGNS])[pc]
    camp_cp = np.array([coupon_names.index(c["coupon"]) if c["coupon"] else -1 for c in CAMPAIGNS])[pc]
    # (in a null world, effect_scale = 0, campaign coupons do not apply either: no effect at all)
    use_camp = is_conv & (p_arm > 0) & (camp_pct > 0) & disc_on & (s.effect_scale > 0)
    pct = np.where(use_camp, camp_pct, pct)
    cp_code = np.where(use_camp, camp_cp, cp_code)
    discount = gross * pct // 100
    o_sort = np.lexsort((o_user, o_time))
    orders = pd.DataFrame({
        "order_id": _ids("O", n_o, 8),
        "user_id": _user_ids(o_user[o_sort], U),
        "time": clock.to_time(o_time[o_sort]),
        "revenue": (gross - discount)[o_sort].astype(float),
        "discount": discount[o_sort].astype(float),
        "coupon": _str(np.maximum(cp_code, 0)[o_sort], coupon_names, null=(cp_code < 0)[o_sort]),
        "items": (1 + n_extra)[o_sort],
        "category": _str(pcat[o_main][o_sort], CATEGORIES),
    })

    s.o_user = o_user
    s.o_is_conv = is_conv
    s.orders = orders
