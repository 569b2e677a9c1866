"""A generated Korean own-brand online shop ("달빛상점") with planted, exactly known truth.

:func:`synthetic_shop` returns a :class:`~crmlab.datasets.core.ShopData` holding the five
canonical tables (``customers``, ``events``, ``orders``, ``messages``, ``assignments``; columns
as in :mod:`crmlab.schema`, times tz-aware in ``tz``) and ``truth``, a dict of the facts the
generator planted. Everything is vectorised numpy and deterministic given ``(seed, end)``.

Time frame
----------
``end`` is the exclusive end of the data (default: Monday 00:00 local of the current ISO
week, so the last week of the data is the last complete week); ``start = end - weeks``.
Campaigns are scheduled in seven consecutive blocks covering the last ~75 % of the period;
``weeks`` must be at least 6.

Generative process
------------------
1. **Customers.** Each user gets a behaviour *persona* drawn with probabilities
   :data:`PERSONA_SHARE` (``loyal, explorer, comparer, bargain_hunter, lapsing, new``),
   a favourite category (weights :data:`CATEGORY_WEIGHTS`), a primary device, gender,
   age band, region (Korean provinces), a price-sensitivity flag (every bargain hunter, 15 %
   of others) and per-channel consents. ``new`` users sign up inside the period, the others
   up to four years before it. Consent times lie within ~600 days before the start (or at
   signup); 2 % of consents are planted older (given more than two years before ``start``).
   25 % of users hold night-time advertising consent.
2. **Sessions.** Every user's first session (at signup for ``new`` users, within the first
   20 % of the period for the others) is a browsing session. Later sessions form a Poisson
   process with a user mean gap; 25 % are bounces (``page_view`` and maybe ``search``). A
   browsing session has optional ``page_view``/``search`` landing events, then 1+ ``product_view``
   and then the funnel: ``add_to_cart`` with p1, ``begin_checkout`` with p2, ``purchase`` with
   p3 (per persona, :data:`FUNNEL`; explorers p1 = 0). Gaps inside a session are < 30 min,
   gaps between sessions of a user > 30 min (``session_id`` is therefore recovered exactly
   by 30-minute inactivity sessionisation). Product views pick the favourite category with
   probability 0.6 (else uniformly one of the others), the product by popularity within it.
   Dwell (time to the next event in the session) of a product view is < 3 min, except: an
   explorer's views are long (>= 3 min) with probability 0.35 and the first view of an
   explorer's first session is always long; for other personas only the product view right
   before an ``add_to_cart`` may be long (probability 0.25). Churned users (the ``lapsing``
   persona, when the churn time fits in the period) have no activity after ``churn_time``.
   Abandoned carts (sessions reaching ``add_to_cart`` without ``purchase``) never occur in
   the last 48 hours of data: such sessions are cut after their last product view there, so
   whether each addition was bought within 24 h is decided for any ``as_of`` >= end - 24 h.
3. **Orders.** Every ``purchase`` event is one order at the same time: main item = the
   carted product (its id, category and unit price are on the event), plus Poisson(0.6)
   more items drawn like views; ``revenue = gross - discount``. Every order (organic or
   campaign) of a price-sensitive user is discounted with probability 0.8, of others 0.1;
   the discount is 5, 10, 15 or 20 % of gross (uniformly; half of these with a coupon code),
   except that a discounted order of a treated user of a couponed campaign uses the
   campaign's coupon and rate.
4. **Experiments and messages.** ``global_holdout``: every user is ``holdout`` with
   probability ``holdout_share`` (else ``treatment``); holdout users never get a message.
   Campaigns (:data:`CAMPAIGNS`, one channel each, all eight channels covered) randomise
   eligible, non-holdout users to ``treatment`` (80 %) and ``control`` (20 %); the experiment
   is named after the campaign; ``assigned_time`` is the (virtual, for control) send time;
   only treated users get a message. Eligibility: first session more than a day before the
   campaign block, not churned before the block ends, channel consent (advertising
   campaigns), a targeting weight per persona. For every participant (both arms) one
   Bernoulli draw decides "at least one order in ``[send, send + window)``" and, if so, a
   campaign conversion session (``product_view`` -> ``add_to_cart`` (not for explorers:
   buy-now) -> ``begin_checkout`` -> ``purchase``) ends in exactly one order inside the
   window; organic purchases of participants inside their window are suppressed (the
   purchase event of any organic session touching the window is removed). Windows of one
   user never overlap. Hence the analyst's treatment-control difference of "converted
   within the window" has expectation exactly ``p_treatment - p_control``. Treated users
   whose message was not delivered convert with ``p_control``; delivered ones with
   ``(p_treatment - (1 - d) p_control) / d`` so the intention-to-treat rate is
   ``p_treatment``. Conversion orders have 1 + Poisson(0.6) items drawn like views (expected
   gross ``1.6 * truth['expected_item_price']``) and discounts as in 3. Converting treated
   users click with high probability just before the conversion session (which then carries
   ``source`` = the channel, ``medium = 'crm'``, ``campaign`` = the campaign).

   * ``장바구니 리마인드`` (web_push) is triggered by an abandoned cart in a user's first
     session, sent after a delay drawn uniformly among five buckets (<30 min, 30 min-2 h,
     2-24 h, 24-48 h, >48 h), at any hour of the day (a source of night-time violations);
     purchases are suppressed from the addition until the window end. Conversion per
     bucket: ``truth['cart_reminder']``.
   * ``개인화 카피 테스트`` (app_push) is an A/B/control test of copy: treated users get
     variant ``personalised`` or ``generic`` (50/50; assignments variant is
     personalised/generic/control). Open and conversion rates: ``truth['copy_test']``.
   * ``데일리 추천`` (app_push) is business-as-usual: repeated recommendations to 40 % of
     consenting treatment users at a user rate ~ Gamma (mean 1.2/week); it has no experiment
     and no planted effect (its clicks create no sessions). It makes weekly message counts
     vary, which drives fatigue.

   Message columns: ``delivered_time`` with probability ``truth['delivery_rate'][channel]``;
   ``opened_time`` only for channels with an open signal (app_push, web_push, email, in_app);
   ``clicked_time`` for any channel; ``unsubscribed_time`` for delivered advertising messages
   with probability ``truth['unsubscribe']`` as a function of the number of messages the user
   was sent in that local ISO week (fatigue); ``is_ad`` False only for the informational
   Kakao AlimTalk campaign; Korean ``text`` (ads start with "(광고)" and carry opt-out
   text "무료수신거부 080-123-4567" or "수신거부: 설정>알림"); ``cost`` per channel
   (``truth['cost_per_message']``, KRW).
5. **Compliance violations** are planted in small numbers (0.4 % of campaign sends at night,
   0.4 % of participants without channel consent, 0.2 % of ad texts without "(광고)" and
   0.2 % without opt-out text, 3 % of birthday SMS over 90 bytes, 1 % of FriendTalk at
   20:xx, 2 % of consents older than two years) and counted exactly on the generated tables
   with the rules of :func:`crmlab.compliance.check_compliance`.

Scale: numpy throughout, no loop over users, events or messages (only over the handful of
campaigns, channels and text templates). Defaults (5,000 users) take ~0.5 s; 270,000 users
(~10 M events, 1 M messages) ~20 s of CPU and ~5 GB of memory.

Truth keys
----------
``segments``
    DataFrame, one row per user: ``user_id``, ``persona``, ``explorer`` (bool: has a
    ``product_view`` with dwell >= 180 s and never an ``add_to_cart``; equals
    ``persona == 'explorer'``), ``comparer`` (bool: some ``add_to_cart`` at time t has no
    ``purchase`` in [t, t + 24 h]; computed exactly on the generated events; every such
    addition is at least 48 h before ``end``; orders coincide with ``purchase`` events, so
    counting orders as purchases gives the same flag), ``price_sensitive`` (bool; each order
    discounted with probability 0.8 vs 0.1), ``favourite_category`` (str; 60 % of views and
    items), ``repurchase_cycle_days`` (float: planted mean gap in days between organic
    orders: sessions are a Poisson process with mean gap ``cycle * 0.75 * p1 p2 p3``, so
    inter-order times are exponential with mean ``cycle`` before suppression in campaign
    windows and truncation at churn/end; NaN for users with fewer than two orders in the
    data and for explorers), ``churned`` (bool: the user has no event or order at or after
    ``churn_time``), ``churn_time`` (tz-aware; NaT if not churned).
``funnel``
    DataFrame ``step, event, p``: steps 1-4 product_view, add_to_cart, begin_checkout,
    purchase; p of step 1 is NaN, p of step k the probability of reaching k given k-1 within
    a session, for a user's *first* session with a ``product_view`` (population mixture of
    the personas' funnels, exact for iid personas).
``funnel_by_persona``
    DataFrame ``persona, step, event, p`` (per-persona funnels; explorers p = 0 at step 2 and
    NaN after).
``uplift``
    DataFrame ``campaign, persona, channel, window_days, p_control, p_treatment, uplift,
    revenue_per_user_control, revenue_per_user_treatment, revenue_uplift`` for the six
    regular campaigns. Probabilities are of >= 1 order in ``[assigned_time, assigned_time +
    window_days)``; revenue per user is the expected revenue of orders in that window per
    assigned user (intention to treat): ``p * 1.6 * expected_item_price * (1 - P(discount |
    persona) * rate)`` with rate the campaign's coupon rate for treated users of couponed
    campaigns, else the mean organic rate 12.5 %.
``copy_test``
    DataFrame ``variant, p_open, p_convert`` (personalised, generic, control); ``p_open`` is
    the probability a *delivered* message is opened; ``p_convert`` the ITT probability of an
    order within the window (3 days).
``cart_reminder``
    DataFrame ``delay_bucket, delay_from_hours, delay_to_hours, p_convert, p_control``: ITT
    conversion within 3 days of the (virtual) reminder by delay bucket.
``delivery_rate``, ``open_rate``, ``cost_per_message``
    dicts channel -> planted value (``open_rate`` of delivered messages, channels with an
    open signal only; the copy test uses ``copy_test.p_open`` instead).
``unsubscribe``
    DataFrame ``messages_in_week, p_unsubscribe`` (per delivered ad message).
``violations``
    dict rule -> number of messages breaking it (names as in :mod:`crmlab.compliance`):
    ``night_ad_without_consent``, ``ad_without_channel_consent``, ``ad_without_prefix``,
    ``ad_without_optout``, ``sms_over_90_bytes``, ``consent_not_reconfirmed`` (ad sent after
    consent time + 24 months), ``friendtalk_night``.
``campaigns``
    DataFrame ``campaign, channel, kind, is_ad, experiment, coupon, discount_pct,
    window_days, first_send, last_send, participants, treated``.
``expected_item_price``
    float: expected unit price of an item drawn like a view (KRW), over users.
``holdout_share``, ``start``, ``end``, ``tz``, ``seed``
    The parameters as used (``start``/``end`` tz-aware Timestamps).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from ..schema import CHANNELS, DEFAULT_TZ
from .core import ShopData

# ---------------------------------------------------------------------------- constants
SEC = 1_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
MIN_GAP = 30 * MIN + SEC          # smallest gap between two sessions of a user
WINDOW = 3 * DAY                  # campaign conversion window

PERSONAS = ("loyal", "explorer", "comparer", "bargain_hunter", "lapsing", "new")
PERSONA_SHARE = (0.15, 0.10, 0.15, 0.15, 0.20, 0.25)
LOYAL, EXPLORER, COMPARER, BARGAIN, LAPSING, NEW = range(6)

#: Per-persona funnel: P(add_to_cart | view), P(checkout | cart), P(purchase | checkout).
FUNNEL = {
    "loyal": (0.35, 0.70, 0.85),
    "explorer": (0.0, np.nan, np.nan),
    "comparer": (0.45, 0.35, 0.60),
    "bargain_hunter": (0.30, 0.55, 0.75),
    "lapsing": (0.20, 0.55, 0.75),
    "new": (0.25, 0.60, 0.80),
}
#: Mean days between organic orders, per persona (explorers: mean days between sessions).
CYCLE_DAYS = {"loyal": 40.0, "explorer": 10.0, "comparer": 120.0, "bargain_hunter": 100.0,
              "lapsing": 150.0, "new": 90.0}
BROWSE_SHARE = 0.75               # share of non-first sessions that are browsing (not bounces)
FAV_SHARE = 0.6
EXTRA_ITEMS = 0.6                 # Poisson mean of items beyond the first
PRICE_SENSITIVE_OTHERS = 0.15     # share of price-sensitive users outside the bargain hunters
P_DISCOUNT = (0.1, 0.8)           # P(order discounted) for not / price-sensitive users

CATEGORIES = ("상의", "하의", "아우터", "원피스", "신발", "가방", "액세서리", "홈리빙")
CATEGORY_WEIGHTS = (0.22, 0.16, 0.10, 0.12, 0.12, 0.08, 0.12, 0.08)
_CAT_MEDIAN = (29_000, 39_000, 119_000, 59_000, 79_000, 69_000, 19_000, 25_000)
_PRODUCTS_PER_CAT = 30

REGIONS = ("서울특별시", "경기도", "인천광역시", "부산광역시", "대구광역시", "광주광역시", "대전광역시",
           "울산광역시", "세종특별자치시", "강원특별자치도", "충청북도", "충청남도", "전북특별자치도",
           "전라남도", "경상북도", "경상남도", "제주특별자치도")
REGION_WEIGHTS = (0.19, 0.26, 0.06, 0.065, 0.045, 0.028, 0.028, 0.022, 0.008, 0.03, 0.032, 0.042,
                  0.034, 0.035, 0.05, 0.064, 0.013)
AGE_BANDS = ("10s", "20s", "30s", "40s", "50s", "60s+")
AGE_WEIGHTS = (0.05, 0.30, 0.30, 0.20, 0.10, 0.05)
DEVICES = ("mobile", "app", "desktop")
DEVICE_WEIGHTS = (0.55, 0.30, 0.15)

EVENT_NAMES = ("page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
               "begin_checkout", "purchase")
PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD_TO_CART, _REMOVE, BEGIN_CHECKOUT, PURCHASE = range(7)

#: Organic traffic sources: (source, medium, campaign, weight).
SOURCES = (("direct", None, None, 0.30), ("naver", "organic", None, 0.18),
           ("naver", "cpc", "브랜드검색", 0.14), ("google", "organic", None, 0.07),
           ("google", "cpc", "쇼핑_검색광고", 0.06), ("instagram", "social", "인스타_릴스", 0.13),
           ("kakao", "social", "카카오채널_소식", 0.12))
CHANNEL_SOURCE = {"app_push": "app_push", "web_push": "web_push", "sms": "sms", "lms": "lms",
                  "kakao_alimtalk": "kakao", "kakao_friendtalk": "kakao", "email": "email",
                  "in_app": "app"}

CONSENT_RATE = {"app_push": 0.60, "web_push": 0.35, "sms": 0.55, "lms": 0.55, "kakao_alimtalk": 0.50,
                "kakao_friendtalk": 0.45, "email": 0.50, "in_app": 0.70}
DELIVERY_RATE = {"app_push": 0.92, "web_push": 0.90, "sms": 0.98, "lms": 0.97, "kakao_alimtalk": 0.96,
                 "kakao_friendtalk": 0.95, "email": 0.97, "in_app": 0.99}
OPEN_CHANNELS = ("app_push", "web_push", "email", "in_app")
OPEN_RATE = {"app_push": 0.08, "web_push": 0.05, "email": 0.18, "in_app": 0.35}
COST = {"app_push": 0.2, "web_push": 0.2, "sms": 9.9, "lms": 29.0, "kakao_alimtalk": 7.5,
        "kakao_friendtalk": 15.0, "email": 0.5, "in_app": 0.0}
UNSUB_BASE, UNSUB_POWER, UNSUB_MAX = 0.002, 1.5, 0.2

ORGANIC_COUPONS = {5: "APP5", 10: "WELCOME10", 15: "SALE15", 20: "VIP20"}

CART_BUCKETS = ("<30m", "30m-2h", "2h-24h", "24h-48h", ">48h")
CART_BOUNDS_H = ((5 / 60, 0.5), (0.5, 2.0), (2.0, 24.0), (24.0, 48.0), (48.0, 96.0))
CART_P = (0.20, 0.16, 0.11, 0.08, 0.06)
CART_P_CONTROL = 0.05

COPY_VARIANTS = ("personalised", "generic", "control")
COPY_P_OPEN = (0.14, 0.09, np.nan)
COPY_P_CONVERT = (0.055, 0.04, 0.03)

OPT_OUT_PHONE = "무료수신거부 080-123-4567"
OPT_OUT_APP = "수신거부: 설정>알림"

#: Campaigns in time order. ``uplift``: additive treatment effect per persona (PERSONAS order);
#: ``target``: selection weight per persona among eligible users.
CAMPAIGNS = (
    dict(name="장바구니 리마인드", channel="web_push", kind="cart", is_ad=True, coupon=None, pct=0,
         text="(광고)[달빛상점] 장바구니에 담은 {cat} 상품, 잊지 않으셨죠? 품절 전에 확인하세요. " + OPT_OUT_APP),
    dict(name="적립금 소멸 안내", channel="kakao_alimtalk", kind="regular", is_ad=False, coupon=None, pct=0,
         hour=10, target=(0.6,) * 6, uplift=(0.02, 0.005, 0.02, 0.04, 0.01, 0.015),
         text="[달빛상점] 고객님의 적립금 3,000원이 이번 달 말일에 소멸될 예정입니다. 마이페이지에서 확인해 주세요."),
    dict(name="휴면 고객 윈백", channel="lms", kind="regular", is_ad=True, coupon="COMEBACK20", pct=20,
         hour=11, target=(0.05, 0.2, 0.2, 0.2, 0.9, 0.1), uplift=(0.0, 0.005, 0.02, 0.03, 0.04, 0.02),
         text="(광고)[달빛상점] 오랜만이에요! 다시 찾아주신 고객님께 20% 할인 쿠폰(COMEBACK20)을 드려요. "
              "이번 주 안에 사용해 보세요. " + OPT_OUT_PHONE),
    dict(name="신상품 알림", channel="email", kind="regular", is_ad=True, coupon=None, pct=0,
         hour=9, target=(0.7,) * 6, uplift=(0.03, 0.01, 0.01, 0.0, -0.005, 0.02),
         text="(광고)[달빛상점] 이번 주 {cat} 신상품이 도착했어요. 지금 가장 먼저 만나보세요! " + OPT_OUT_PHONE),
    dict(name="주말 특가", channel="kakao_friendtalk", kind="regular", is_ad=True, coupon="WEEKEND15", pct=15,
         hour=12, target=(0.6,) * 6, uplift=(0.005, 0.005, 0.03, 0.06, 0.01, 0.02),
         text="(광고)[달빛상점] 주말 특가! {cat} 최대 15% 할인 쿠폰 WEEKEND15 지금 받으세요. " + OPT_OUT_PHONE),
    dict(name="개인화 카피 테스트", channel="app_push", kind="copy", is_ad=True, coupon=None, pct=0,
         hour=19, target=(0.5,) * 6,
         text={"personalised": "(광고) 회원님이 좋아하는 {cat}, 지금 인기 상품만 모아봤어요. " + OPT_OUT_APP,
               "generic": "(광고) 달빛상점 이번 주 인기 상품을 확인해 보세요. " + OPT_OUT_APP}),
    dict(name="생일 쿠폰", channel="sms", kind="regular", is_ad=True, coupon="BIRTHDAY20", pct=20,
         hour=10, target=(0.25,) * 6, uplift=(0.04, 0.01, 0.03, 0.05, 0.02, 0.03),
         text="(광고)달빛상점 생일 축하해요! 20% 쿠폰 발급 " + OPT_OUT_PHONE,
         long_text="(광고)[달빛상점] 고객님의 생일을 진심으로 축하드립니다! 생일 기념 20% 할인 쿠폰이 "
                   "발급되었어요. 이번 달 안에 꼭 사용하세요. " + OPT_OUT_PHONE),
    dict(name="앱 전용 쿠폰", channel="in_app", kind="regular", is_ad=True, coupon="APP10", pct=10,
         hour=20, target=(0.7,) * 6, uplift=(0.02, 0.005, 0.025, 0.04, 0.01, 0.03),
         text="(광고) 앱에서만 쓰는 10% 쿠폰 APP10이 도착했어요. " + OPT_OUT_APP),
    dict(name="데일리 추천", channel="app_push", kind="bau", is_ad=True, coupon=None, pct=0,
         text="(광고) 오늘의 {cat} 추천 상품을 확인하세요. " + OPT_OUT_APP),
)
_N_BLOCKS = sum(c["kind"] in ("regular", "copy") for c in CAMPAIGNS)
_C_CHAN = np.array([CHANNELS.index(c["channel"]) for c in CAMPAIGNS])
_C_COPY = np.array([c["kind"] == "copy" for c in CAMPAIGNS])

# planted violation rates
_P_NIGHT_SEND = 0.004
_P_FRIENDTALK_20 = 0.01
_P_NO_CONSENT = 0.004
_P_NO_PREFIX = 0.002
_P_NO_OPTOUT = 0.002
_P_LONG_SMS = 0.03
_P_OLD_CONSENT = 0.02


# ---------------------------------------------------------------------------- helpers
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


# ---------------------------------------------------------------------------- generator
def synthetic_shop(n_users: int = 5_000, weeks: int = 12, seed: int = 0, end=None, tz: str = DEFAULT_TZ,
                   with_session_id: bool = True, holdout_share: float = 0.1) -> ShopData:
    """Generate a Korean own-brand online shop with planted truth (see the module docstring).

    Parameters
    ----------
    n_users : number of customers (>= 100).
    weeks : length of the data in weeks (>= 6); the data covers ``[end - weeks, end)``.
    seed : random seed; the output is deterministic given ``(seed, end)``.
    end : exclusive end of the data (time; naive times are read in ``tz``). Default: Monday
        00:00 (``tz``) of the current ISO week.
    tz : time zone of all times.
    with_session_id : keep the true ``session_id`` column in ``events``.
    holdout_share : share of users in the global holdout (never messaged), in [0, 1).

    Returns
    -------
    ShopData with ``customers, events, orders, messages, assignments`` and ``truth``.
    """
    if not isinstance(n_users, (int, np.integer)) or n_users < 100:
        raise ValueError(f"n_users={n_users!r} is not allowed; give an integer >= 100")
    if not isinstance(weeks, (int, np.integer)) or weeks < 6:
        raise ValueError(f"weeks={weeks!r} is not allowed; give an integer >= 6")
    if not (0 <= holdout_share < 1):
        raise ValueError(f"holdout_share={holdout_share!r} is not allowed; give a number in [0, 1)")
    rng = np.random.default_rng(seed)
    start_ts, end_ts = _period(end, int(weeks), tz)
    n_days = 7 * int(weeks)
    clock = _Clock(start_ts, tz, n_days)
    span = int((end_ts - start_ts) / pd.Timedelta(milliseconds=1))
    U = int(n_users)
    K = len(CATEGORIES)
    pids, pcat, pprice, pcum, mean_c = _catalog()
    e_item = _expected_item_price(mean_c)

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
    holdout = rng.random(U) < holdout_share
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
    cart_part = ((fs_depth == 2) | (fs_depth == 3)) & ~holdout & (c_wend < first_block_ms - 12 * HOUR) \
        & (user_end > c_wend + DAY) & (ok_consent | (rng.random(U) < _P_NO_CONSENT))
    ids = np.flatnonzero(cart_part)
    treat = rng.random(ids.size) < 0.8
    p_t = np.asarray(CART_P)[bucket[ids]]
    parts.append(dict(c=cidx[ca["name"]], user=ids, arm=np.where(treat, 1, 0), send=c_send[ids],
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
        elig = ~holdout & (first_end < b0 - DAY) & (user_end >= b1 + DAY) & ok_consent & (rng.random(U) < target)
        ids = np.flatnonzero(elig)
        treat = rng.random(ids.size) < 0.8
        g = persona[ids]
        if c["kind"] == "copy":
            var = np.where(treat, np.where(rng.random(ids.size) < 0.5, 0, 1), 2)  # personalised, generic, control
            p_t = np.asarray(COPY_P_CONVERT)[var]
            p_c = np.full(ids.size, COPY_P_CONVERT[2])
            arm = np.where(var == 2, 0, var + 1)        # 0 control, 1 personalised, 2 generic
        else:
            p0, p1 = _campaign_p(c)
            p_t, p_c = p1[g], p0[g]
            arm = treat.astype(np.int64)
        parts.append(dict(c=i_c, user=ids, arm=arm, send=send[ids], supp=send[ids], wend=send[ids] + WINDOW,
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

    # cut organic purchases touching a participant's window; cut abandoned carts near the end
    w_order = np.lexsort((P["supp"], P["user"]))
    k_ws = P["user"][w_order].astype(np.int64) * (1 << 40) + P["supp"][w_order] + (1 << 39)
    key_e = s_user.astype(np.int64) * (1 << 40) + s_end + (1 << 39)
    j = np.searchsorted(k_ws, key_e, side="right") - 1
    jj = np.maximum(j, 0)
    in_window = (j >= 0) & (P["user"][w_order][jj] == s_user) & (P["wend"][w_order][jj] > s_start)
    cut_level = np.full(S, 9)
    cut_level[in_window & (depth == 4)] = 3
    near_end = (s_end > span - 48 * HOUR) & ((depth == 2) | (depth == 3))
    near_end |= in_window & (s_end > span - 48 * HOUR) & (depth == 4)
    cut_level[near_end] = 1
    # events kept: session kept and step within the cut level
    ev_level = np.select([ev_t == ADD_TO_CART, ev_t == BEGIN_CHECKOUT, ev_t == PURCHASE], [2, 3, 4], 1)
    ev_keep = s_keep[ev_s] & (ev_level <= cut_level[ev_s])

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
    use_camp = is_conv & (p_arm > 0) & (camp_pct > 0) & disc_on
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
    a_exp = np.r_[np.zeros(U, np.int64), c_exp[P["c"]]].astype(np.int64)
    p_copy = _C_COPY[P["c"]]
    p_var = np.where(P["arm"] == 0, 2, np.where(p_copy, P["arm"] + 2, 1))
    a_var = np.r_[np.where(holdout, 0, 1), p_var]
    a_user = np.r_[np.arange(U), P["user"]]
    a_time = np.r_[np.maximum(signup, 0), P["send"]]
    assignments = pd.DataFrame({
        "experiment": _str(a_exp, exp_names),
        "user_id": _user_ids(a_user, U),
        "variant": _str(a_var, var_all),
        "assigned_time": clock.to_time(a_time),
    })

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
    return ShopData(customers=customers, events=events, orders=orders, messages=messages,
                    assignments=assignments, truth=truth, name="synthetic")


# ---------------------------------------------------------------------------- pieces
def _user_ids(codes: np.ndarray, n_users: int) -> pd.Series:
    width = max(6, len(str(n_users)))
    labels = np.char.add("U", np.char.zfill(np.arange(1, n_users + 1).astype(str), width))
    return _str(codes, labels)


def _campaign_p(c: dict) -> tuple[np.ndarray, np.ndarray]:
    """Control and treatment probability of >= 1 order in the window, per persona."""
    cyc = np.array([CYCLE_DAYS[p] for p in PERSONAS])
    p0 = np.round(1 - np.exp(-(WINDOW / DAY) / cyc), 3)
    p0[EXPLORER] = 0.005
    p1 = np.clip(p0 + np.asarray(c["uplift"]), 0.0, 1.0)
    return p0, p1


def _uplift_truth(e_item: float) -> pd.DataFrame:
    rows = []
    aov = (1 + EXTRA_ITEMS) * e_item
    mean_pct = np.mean(sorted(ORGANIC_COUPONS)) / 100
    for c in CAMPAIGNS:
        if c["kind"] != "regular":
            continue
        p0, p1 = _campaign_p(c)
        for g, name in enumerate(PERSONAS):
            d = _discount_probability(g)
            r0 = p0[g] * aov * (1 - d * mean_pct)
            r1 = p1[g] * aov * (1 - d * (c["pct"] / 100 if c["pct"] else mean_pct))
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


def _violations(user, ch, send, is_ad, texts, t_inv, consent, consent_t, night, night_t, clock, start_ts, tz) -> dict:
    """Count compliance violations exactly as :func:`crmlab.compliance.check_compliance` defines them."""
    import re
    chn = np.array(CHANNELS)[ch]
    has = np.zeros(user.size, bool)
    ctime = np.zeros(user.size, np.int64)
    for i, name in enumerate(CHANNELS):
        m = ch == i
        has[m] = consent[name][user[m]] & (consent_t[name][user[m]] <= send[m])
        ctime[m] = consent_t[name][user[m]]
    hour = clock.local_hour(send)
    night_hour = (hour >= 21) | (hour < 8)
    night_ok = night[user] & (night_t[user] <= send)
    pat = re.compile(r"수신\s*(거부|차단|해지|철회)|채널\s*차단|unsubscribe")
    prefix = np.array([t.lstrip().startswith("(광고)") for t in texts] + [False], bool)[t_inv]
    opt = np.array([bool(pat.search(t)) for t in texts] + [False], bool)[t_inv]
    nbytes = np.array([len(t.encode("cp949")) for t in texts] + [0])[t_inv]
    # consent + 24 months, in local wall-clock time (as the engine compares)
    held = is_ad & has
    sent_local = clock.to_time(send[held]).dt.tz_localize(None)
    c_local = clock.to_time(ctime[held]).dt.tz_localize(None)
    old = (sent_local.values > (c_local + pd.DateOffset(months=24)).values)
    return {
        "night_ad_without_consent": int((is_ad & night_hour & ~night_ok).sum()),
        "ad_without_channel_consent": int((is_ad & ~has).sum()),
        "ad_without_prefix": int((is_ad & ~prefix).sum()),
        "ad_without_optout": int((is_ad & ~opt).sum()),
        "sms_over_90_bytes": int(((chn == "sms") & (nbytes > 90)).sum()),
        "consent_not_reconfirmed": int(old.sum()),
        "friendtalk_night": int(((chn == "kakao_friendtalk") & ((hour >= 20) | (hour < 8))).sum()),
    }
