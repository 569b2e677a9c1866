"""A generated Korean own-brand online shop ("달빛상점") with planted, exactly known truth.

:func:`synthetic_shop` returns a :class:`~crmlab.datasets.core.ShopData` holding the five
canonical tables (``customers``, ``events``, ``orders``, ``messages``, ``assignments``; columns
as in :mod:`crmlab.io.schema`, times tz-aware in ``tz``) and ``truth``, a dict of the facts the
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
   probability ``holdout_share`` (else ``treatment``), blocked on persona and planted
   repurchase cycle (blocks of ``floor(1 / holdout_share)`` neighbours, so the arms are balanced
   on what drives orders); holdout users never get a message. They do take part in every
   campaign they are eligible for as *virtual* participants: same eligibility, windows and
   cutting of organic purchases as the control arm, converting with ``p_control``, but no
   message and no assignment row. So the programme effect (``treatment`` minus ``holdout``) is
   exactly the campaigns' planted effects, ``truth['holdout']``, and carries no bias from the
   cutting of organic purchases (which until this version happened only to non-holdout users
   and made the messaged group look worse than the holdout).
   Campaigns (:data:`CAMPAIGNS`, one channel each, all eight channels covered) randomise
   eligible, non-holdout users to ``treatment`` (80 %) and ``control`` (20 %); the experiment
   is named after the campaign; ``assigned_time`` is the (virtual, for control) send time;
   only treated users get a message. Eligibility: first session more than a day before the
   campaign block, not churned before the block ends, channel consent (advertising
   campaigns), a targeting weight per persona. For every participant (both arms) one
   Bernoulli draw decides "at least one order in ``[send, send + window)``" and, if so, a
   campaign conversion session (``product_view`` -> ``add_to_cart`` (not for explorers:
   buy-now) -> ``begin_checkout`` -> ``purchase``) ends in exactly one order inside the
   window; organic purchases of participants around their window are suppressed (the
   purchase event of any organic session touching ``[send - 30 min, window end + 30 min)`` is
   removed; the margins cover every organic session dropped for sitting within 30 minutes of a
   conversion session, so organic orders never depend on the arm or on conversion). Windows of one
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
``holdout``
    DataFrame ``experiment, metric, abs_lift, window``: the planted programme effect per user,
    ``treatment`` minus ``holdout`` of ``global_holdout``, from each user's ``assigned_time`` to
    the end of the data, for ``conversion_rate`` (>= 1 order), ``orders_per_user`` and
    ``revenue_per_user`` (see :func:`.truth._holdout_truth`; conditional on the drawn
    eligibility and organic orders, which do not depend on the arms).
``holdout_share``, ``start``, ``end``, ``tz``, ``seed``
    The parameters as used (``start``/``end`` tz-aware Timestamps).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...io.schema import DEFAULT_TZ
from ..core import ShopData
from .constants import *  # noqa: F401,F403  (the public constants, as before the split)
from .constants import CATEGORIES
from .helpers import _Clock, _catalog, _expected_item_price, _period
from . import customers, experiments, messages, orders, sessions, tables, truth


STEPS = (customers.draw_customers, sessions.organic_sessions, experiments.participants, sessions.assemble_events,
         messages.campaign_messages, tables.customer_event_tables, orders.orders_table,
         tables.message_assignment_tables, truth.build_truth)


def synthetic_shop(n_users: int = 5_000, weeks: int = 12, seed: int = 0, end=None, tz: str = DEFAULT_TZ,
                   with_session_id: bool = True, holdout_share: float = 0.1, effect_scale: float = 1.0) -> ShopData:
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
    effect_scale : every planted campaign effect on conversion (regular campaigns, copy test, cart
        reminder) multiplied by this, in [0, 1]; 0 plants no effect anywhere (a null world: the
        programme effect in ``truth['holdout']`` is exactly 0 too), 1 the documented effects.

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
    if not (0 <= effect_scale <= 1):
        raise ValueError(f"effect_scale={effect_scale!r} is not allowed; give a number in [0, 1]")
    effect_scale = float(effect_scale)
    rng = np.random.default_rng(seed)
    start_ts, end_ts = _period(end, int(weeks), tz)
    n_days = 7 * int(weeks)
    clock = _Clock(start_ts, tz, n_days)
    span = int((end_ts - start_ts) / pd.Timedelta(milliseconds=1))
    U = int(n_users)
    K = len(CATEGORIES)
    pids, pcat, pprice, pcum, mean_c = _catalog()
    e_item = _expected_item_price(mean_c)
    s = SimpleNamespace(K=K, U=U, clock=clock, e_item=e_item, end=end, end_ts=end_ts, holdout_share=holdout_share, mean_c=mean_c, n_days=n_days, n_users=n_users, pcat=pcat, pcum=pcum, pids=pids, pprice=pprice, rng=rng, seed=seed, span=span, start_ts=start_ts, tz=tz, weeks=weeks, with_session_id=with_session_id, effect_scale=effect_scale)
    for step in STEPS:
        step(s)
    return ShopData(customers=s.customers, events=s.events, orders=s.orders, messages=s.messages,
                    assignments=s.assignments, truth=s.truth, name="synthetic")
