"""Constants of the synthetic shop: personas, funnels, catalogue, campaigns, channels, planted rates."""
from __future__ import annotations

import numpy as np

from ...io.schema import CHANNELS


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


