"""Small vectorised helpers of the synthetic shop (clock, ids, expansion of sessions into events, truth tables)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .constants import (ADD_TO_CART, BARGAIN, BEGIN_CHECKOUT, CAMPAIGNS, CATEGORIES, CATEGORY_WEIGHTS, CYCLE_DAYS, DAY, EXPLORER, EXTRA_ITEMS, FAV_SHARE, FUNNEL, OPT_OUT_APP, OPT_OUT_PHONE, ORGANIC_COUPONS, PAGE_VIEW, PERSONAS, PERSONA_SHARE, PRICE_SENSITIVE_OTHERS, PRODUCT_VIEW, PURCHASE, P_DISCOUNT, SEARCH, SEC, WINDOW, _CAT_MEDIAN, _PRODUCTS_PER_CAT)


def _period(end, weeks: int, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if end is None:
        now = pd.Timestamp.now(tz=tz)
        end_local = (now.tz_localize(None).normalize() - pd.Timedelta(days=now.weekday()))
    else:
        e = pd.Timestamp(end)
        end_local = e.tz_convert(tz).tz_localize(None) if e.tzinfo is not None else e
    start_local = end_local - pd.Timedelta(days=7 * weeks)
    return (start_local.tz_localize(tz, nonexistent="shift_forward", ambiguous=False),
            end_local.tz_localize(tz, nonexistent="shift_forward", ambiguous=False))


def _str(codes: np.ndarray, labels, null: np.ndarray | None = None) -> pd.Series:
    """A pandas ``str`` column from integer codes into ``labels`` (fast, through Arrow)."""
    dictionary = pa.array(list(labels), pa.large_string())
    idx = pa.array(np.asarray(codes, dtype=np.int64), mask=null)
    arr = dictionary.take(idx)
    return arr.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    labels = np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))
    arr = pa.array(labels, pa.large_string())
    return arr.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)


class _Clock:
    """Times are int64 milliseconds after ``start``; converts them to tz-aware pandas."""

    def __init__(self, start: pd.Timestamp, tz: str, n_days: int):
        self.start_ns = start.as_unit("ns").value
        self.tz = tz
        # local midnights from the day of ``start`` on (start itself need not be a midnight)
        mid = pd.date_range(start.normalize(), periods=n_days + 2, freq="D")
        self.day_ms = (mid.as_unit("ns").asi8 - self.start_ns) // 1_000_000
        self.weekday0 = start.weekday()

    def to_time(self, ms: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
        ns = self.start_ns + np.asarray(ms, dtype=np.int64) * 1_000_000
        if null is not None:
            ns = np.where(null, np.iinfo(np.int64).min, ns)
        idx = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(self.tz)
        return pd.Series(idx)

    def day_of(self, ms: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.day_ms, ms, side="right") - 1

    def local_hour(self, ms: np.ndarray) -> np.ndarray:
        return self.to_time(ms).dt.hour.to_numpy(np.int64)

    def iso_week(self, ms: np.ndarray) -> np.ndarray:
        return (self.day_of(ms) + self.weekday0) // 7


def _group_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``x`` within contiguous groups starting where ``first``."""
    cs = np.cumsum(x)
    starts = np.flatnonzero(first)
    base = cs[starts] - x[starts]
    grp = np.cumsum(first) - 1
    return cs - base[grp]


def _catalog():
    """Fixed product catalogue (independent of the seed): ids, category, price, popularity."""
    r = np.random.default_rng(20240601)
    K = len(CATEGORIES)
    cat = np.repeat(np.arange(K), _PRODUCTS_PER_CAT)
    med = np.asarray(_CAT_MEDIAN, float)[cat]
    price = np.maximum(np.round(med * r.lognormal(0, 0.35, cat.size), -3) - 100, 4_900).astype(np.int64)
    pop = r.pareto(1.5, cat.size) + 0.2
    w = pop / np.bincount(cat, weights=pop)[cat]
    cum = cat + np.cumsum(w) - np.repeat(np.r_[0, np.cumsum(np.bincount(cat, weights=w))[:-1]], _PRODUCTS_PER_CAT)
    cum[np.r_[np.flatnonzero(np.diff(cat)), cat.size - 1]] = np.arange(K) + 1.0  # exact category ends
    mean_c = np.bincount(cat, weights=w * price) / np.bincount(cat, weights=w)
    ids = np.char.add("P", np.char.zfill(np.arange(1, cat.size + 1).astype(str), 4))
    return ids, cat, price, cum, mean_c


def _expected_item_price(mean_c: np.ndarray) -> float:
    """E[price of one item] over users: favourite category with 0.6, else uniform other."""
    K = len(mean_c)
    pf = np.asarray(CATEGORY_WEIGHTS, float)
    pf = pf / pf.sum()
    per_fav = FAV_SHARE * mean_c + (1 - FAV_SHARE) * (mean_c.sum() - mean_c) / (K - 1)
    return float(pf @ per_fav)


def _draw_products(rng, fav: np.ndarray, cum: np.ndarray) -> np.ndarray:
    K = len(CATEGORIES)
    n = fav.size
    other = rng.integers(0, K - 1, n)
    other = other + (other >= fav)
    cat = np.where(rng.random(n) < FAV_SHARE, fav, other)
    pid = np.searchsorted(cum, cat + rng.random(n), side="right")
    return np.minimum(pid, cum.size - 1)


def _funnel_depth(rng, persona: np.ndarray) -> np.ndarray:
    """1 = product_view only, 2 = add_to_cart, 3 = begin_checkout, 4 = purchase."""
    f = np.nan_to_num(np.array([FUNNEL[p] for p in PERSONAS], float))[persona]
    u = rng.random((persona.size, 3))
    ok = u < f
    return 1 + ok[:, 0] + (ok[:, 0] & ok[:, 1]) + (ok[:, 0] & ok[:, 1] & ok[:, 2])


def _expand(rng, n_pre, n_pv, depth, skip_atc, long_mode):
    """Events of sessions (relative times).

    long_mode per session: 0 short dwells only, 1 explorer (each view long w.p. 0.35),
    2 explorer first session (first view long too), 3 may be long before add_to_cart.
    Returns (sess, etype, offset_ms, duration_ms per session, first event index per session).
    """
    n_steps = np.where(depth >= 2, depth - 1 - skip_atc, 0)
    n_ev = n_pre + n_pv + n_steps
    S = n_ev.size
    E = int(n_ev.sum())
    # small per-session counts travel to event level as int8 (less memory traffic)
    n_pre, n_pv, depth, skip_atc, long_mode = (np.asarray(x).astype(np.int8)
                                               for x in (n_pre, n_pv, depth, skip_atc, long_mode))
    sess = np.repeat(np.arange(S, dtype=np.int64), n_ev)
    first = (np.cumsum(n_ev) - n_ev).astype(np.int64)
    pos = (np.arange(E, dtype=np.int64) - first[sess]).astype(np.int16)
    pre = n_pre[sess]
    pv = n_pv[sess]
    et = np.empty(E, np.int8)
    is_pre = pos < pre
    et[is_pre] = np.where(pos[is_pre] == 0, PAGE_VIEW, SEARCH)
    is_pv = ~is_pre & (pos < pre + pv)
    et[is_pv] = PRODUCT_VIEW
    rest = ~is_pre & ~is_pv
    step = (pos - pre - pv + skip_atc[sess])[rest]
    et[rest] = np.array([ADD_TO_CART, BEGIN_CHECKOUT, PURCHASE], np.int8)[step]
    u = rng.random(E)
    gap = np.zeros(E)
    gap[is_pre] = 5 * SEC + u[is_pre] * 115 * SEC
    lm = long_mode[sess]
    want_long = ((lm == 1) | (lm == 2)) & (u < 0.35)
    want_long |= (lm == 2) & (pos == pre)
    before_atc = (pos == pre + pv - 1) & (depth[sess] >= 2) & (skip_atc[sess] == 0)
    want_long |= (lm == 3) & before_atc & (u < 0.25)
    pv_idx = np.flatnonzero(is_pv)
    lg = want_long[pv_idx]
    ex = rng.exponential(1.0, pv_idx.size)
    gap[pv_idx] = np.where(lg, 181 * SEC + np.minimum(ex * 240 * SEC, 1_500 * SEC),
                           3 * SEC + np.minimum(ex * 40 * SEC, 175 * SEC))
    r_idx = np.flatnonzero(rest)
    et_r = et[r_idx]
    gap[r_idx] = np.where(et_r == ADD_TO_CART, 10 * SEC + u[r_idx] * 290 * SEC,
                          np.where(et_r == BEGIN_CHECKOUT, 20 * SEC + u[r_idx] * 580 * SEC, 0.0))
    last = first + n_ev - 1
    gap[last] = 0
    gap = gap.astype(np.int64)
    is_first = np.zeros(E, bool)
    is_first[first] = True
    off = _group_cumsum(gap, is_first) - gap
    dur = off[last]
    return sess, et, off, dur, first




def _user_ids(codes: np.ndarray, n_users: int) -> pd.Series:
    width = max(6, len(str(n_users)))
    labels = np.char.add("U", np.char.zfill(np.arange(1, n_users + 1).astype(str), width))
    return _str(codes, labels)


def _scaled(p_c, p_t, scale: float):
    """``p_t`` with its effect over ``p_c`` multiplied by ``scale`` (exactly ``p_t`` at 1)."""
    return p_t if scale == 1.0 else np.asarray(p_c, float) + scale * (np.asarray(p_t, float) - np.asarray(p_c, float))


def _campaign_p(c: dict, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Control and treatment probability of >= 1 order in the window, per persona (the planted
    effect multiplied by ``scale``)."""
    cyc = np.array([CYCLE_DAYS[p] for p in PERSONAS])
    p0 = np.round(1 - np.exp(-(WINDOW / DAY) / cyc), 3)
    p0[EXPLORER] = 0.005
    p1 = np.clip(p0 + np.asarray(c["uplift"]), 0.0, 1.0)
    return p0, _scaled(p0, p1, scale)


def _uplift_truth(e_item: float, scale: float = 1.0) -> pd.DataFrame:
    rows = []
    aov = (1 + EXTRA_ITEMS) * e_item
    mean_pct = np.mean(sorted(ORGANIC_COUPONS)) / 100
    for c in CAMPAIGNS:
        if c["kind"] != "regular":
            continue
        p0, p1 = _campaign_p(c, scale)
        for g, name in enumerate(PERSONAS):
            d = _discount_probability(g)
            r0 = p0[g] * aov * (1 - d * mean_pct)
            r1 = p1[g] * aov * (1 - d * (c["pct"] / 100 if c["pct"] and scale > 0 else mean_pct))
            rows.append(dict(campaign=c["name"], persona=name, channel=c["channel"], window_days=WINDOW / DAY,
                             p_control=p0[g], p_treatment=p1[g], uplift=p1[g] - p0[g],
                             revenue_per_user_control=r0, revenue_per_user_treatment=r1,
                             revenue_uplift=r1 - r0))
    return pd.DataFrame(rows)


def _discount_probability(g: int) -> float:
    """P(an order of a persona-g user is discounted): 0.8 for price-sensitive users, else 0.1."""
    share_ps = 1.0 if g == BARGAIN else PRICE_SENSITIVE_OTHERS
    return P_DISCOUNT[1] * share_ps + P_DISCOUNT[0] * (1 - share_ps)


def _funnel_by_persona() -> pd.DataFrame:
    rows = []
    for name in PERSONAS:
        p = FUNNEL[name]
        for k, ev in enumerate(("product_view", "add_to_cart", "begin_checkout", "purchase")):
            rows.append(dict(persona=name, step=k + 1, event=ev, p=np.nan if k == 0 else p[k - 1]))
    return pd.DataFrame(rows)


def _funnel_truth() -> pd.DataFrame:
    w = np.asarray(PERSONA_SHARE, float)
    f = np.nan_to_num(np.array([FUNNEL[p] for p in PERSONAS], float))
    reach = [w.sum(), (w * f[:, 0]).sum(), (w * f[:, 0] * f[:, 1]).sum(), (w * f[:, 0] * f[:, 1] * f[:, 2]).sum()]
    p = [np.nan] + [reach[k] / reach[k - 1] for k in range(1, 4)]
    return pd.DataFrame({"step": [1, 2, 3, 4],
                         "event": ["product_view", "add_to_cart", "begin_checkout", "purchase"], "p": p})


def _text(code: int, K: int) -> str:
    flags = code % 8
    rest = code // 8
    cat = CATEGORIES[rest % K]
    rest //= K
    arm = rest % 3
    c = CAMPAIGNS[rest // 3]
    t = c["text"]
    if isinstance(t, dict):
        t = t["personalised" if arm == 1 else "generic"]
    if flags & 4 and c.get("long_text"):
        t = c["long_text"]
    t = t.format(cat=cat)
    if flags & 1:
        t = t.replace("(광고)", "").lstrip()
    if flags & 2:
        t = t.replace(OPT_OUT_PHONE, "").replace(OPT_OUT_APP, "").rstrip()
    return t


def _comparers(user, time, etype, U) -> np.ndarray:
    """Users with an add_to_cart at t and no purchase in [t, t + 24 h] (vectorised)."""
    a = etype == ADD_TO_CART
    p = etype == PURCHASE
    pk = user[p].astype(np.int64) * (1 << 40) + time[p] + (1 << 39)
    pk.sort()
    ak = user[a].astype(np.int64) * (1 << 40) + time[a] + (1 << 39)
    j = np.searchsorted(pk, ak, side="left")
    nxt = pk[np.minimum(j, pk.size - 1)] if pk.size else np.zeros_like(ak)
    bought = (j < pk.size) & (nxt - ak <= DAY)
    out = np.zeros(U, bool)
    out[user[a][~bought]] = True
    return out


