"""Checks of CRM messages against Korean rules for advertising messages.

Sources
-------
- 정보통신망 이용촉진 및 정보보호 등에 관한 법률 (Act on Promotion of Information and
  Communications Network Utilization and Information Protection, "정보통신망법") art. 50:
  (1) advertising needs the recipient's prior consent, per channel; (3) advertising sent
  between 21:00 and 08:00 needs a separate night-time consent; (4) the message must show
  that it is an advertisement and how to refuse further messages — Enforcement Decree
  art. 61 and the KCC guideline ("불법 스팸 방지를 위한 정보통신망법 안내서"): text starts with
  "(광고)" and carries free opt-out instructions ("무료수신거부 080-..."); (8) the sender must
  confirm the recipient's consent every two years (Enforcement Decree art. 62-3).
- Carrier SMS limit: an SMS holds 90 bytes in EUC-KR/CP949 (Hangul 2 bytes, ASCII 1 byte);
  longer text must go as LMS.
- Kakao's operating policy for 친구톡 (FriendTalk): no sending from 20:00 to 08:00.

All times are local wall-clock times of ``tz`` (default Asia/Seoul): hours are read from
``sent_time`` in that zone. Checks run as Ibis expressions in the engine; only counts and
five example message ids per rule come back.
"""
from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from .io.engine import DataLike, local_time, report_exclusions, to_pandas
from .io.schema import CHANNELS, DEFAULT_TZ
from .io.validate import canonical

#: Phrases accepted as opt-out instructions (regular expression, searched in the text).
OPTOUT_PATTERN = r"수신\s*(거부|차단|해지|철회)|채널\s*차단|unsubscribe"
AD_PREFIX = "(광고)"
SMS_MAX_BYTES = 90
NIGHT_START, NIGHT_END = 21, 8          # art. 50(3): 21:00 - 08:00
FRIENDTALK_START, FRIENDTALK_END = 20, 8  # Kakao FriendTalk block: 20:00 - 08:00
RECONFIRM_MONTHS = 24                   # art. 50(8): reconfirm consent every two years

RULES = {
    "night_ad_without_consent": (
        "Advertising sent 21:00-08:00 local time to a user without night-time consent "
        "(정보통신망법 제50조 제3항)"),
    "ad_without_channel_consent": (
        "Advertising sent on a channel the user has not consented to (at send time) "
        "(정보통신망법 제50조 제1항)"),
    "ad_without_prefix": (
        "Advertising text not starting with '(광고)' (정보통신망법 제50조 제4항, 시행령 제61조)"),
    "ad_without_optout": (
        "Advertising text without opt-out instructions such as '무료수신거부 080-...' "
        "(정보통신망법 제50조 제4항, 시행령 제61조)"),
    "sms_over_90_bytes": (
        "SMS text longer than 90 bytes in EUC-KR/CP949: send it as LMS"),
    "consent_not_reconfirmed": (
        "Advertising sent on a consent given or last reconfirmed more than two years earlier "
        "(정보통신망법 제50조 제8항, 시행령 제62조의3)"),
    "friendtalk_night": (
        "Kakao FriendTalk sent inside Kakao's 20:00-08:00 block"),
}


def _night(hour: ir.IntegerValue, start: int, end: int) -> ir.BooleanValue:
    return (hour >= start) | (hour < end)


def cp949_bytes(text: ir.StringValue) -> ir.IntegerValue:
    """Length of ``text`` in EUC-KR/CP949 bytes: 1 per ASCII character, 2 per other character.

    Characters outside CP949 (emoji) also count 2; strictly, they cannot be sent by SMS.
    """
    return text.length() + text.re_replace(r"[\x00-\x7F]", "").length()


def check_compliance(messages: DataLike, customers: DataLike, *, tz: str = DEFAULT_TZ, as_of=None,
                     optout_pattern: str = OPTOUT_PATTERN, examples: int = 5) -> pd.DataFrame:
    """Count messages breaking each rule for Korean advertising messages.

    Parameters
    ----------
    messages : canonical ``messages`` table (``is_ad``, ``channel``, ``sent_time``, optional
        ``text``).
    customers : canonical ``customers`` table with ``consent_<channel>``,
        ``consent_<channel>_time``, ``night_ad_consent`` and ``night_ad_consent_time``.
        A missing consent flag means no consent; a consent whose time is after the send did
        not exist yet at send time.
    tz : zone of local time (hours are local hours of ``tz``).
    as_of : messages sent after it are left out and counted in ``attrs["excluded"]``.
    optout_pattern : regular expression for opt-out instructions.
    examples : how many example message ids to list per rule.

    Returns
    -------
    DataFrame, one row per rule: ``rule, description, checked`` (messages the rule applies
    to), ``violations`` and ``example_message_ids`` (up to ``examples`` ids, smallest first).
    Rules on text (``ad_without_prefix``, ``ad_without_optout``, ``sms_over_90_bytes``) only
    check messages whose text is given; ``checked`` is 0 when no text is available.

    Rules
    -----
    - ``night_ad_without_consent``: ``is_ad`` and local hour of ``sent_time`` >= 21 or < 8,
      without night-time consent held at send time.
    - ``ad_without_channel_consent``: ``is_ad`` without ``consent_<channel>`` held at send time.
    - ``ad_without_prefix``: ``is_ad`` and the text (leading spaces ignored) does not start
      with "(광고)".
    - ``ad_without_optout``: ``is_ad`` and the text does not match ``optout_pattern``.
    - ``sms_over_90_bytes``: channel ``sms`` and the text is over 90 CP949 bytes
      (:func:`cp949_bytes`).
    - ``consent_not_reconfirmed``: ``is_ad``, channel consent held, and ``sent_time`` is
      later than ``consent_<channel>_time`` + 24 months.
    - ``friendtalk_night``: channel ``kakao_friendtalk`` and local hour >= 20 or < 8.
    """
    m = canonical(messages, "messages", tz=tz)
    c = canonical(customers, "customers", tz=tz)
    excluded = {"messages sent after as_of": 0}
    if as_of is not None:
        limit = ibis.literal(local_time(as_of, tz))
        excluded["messages sent after as_of"] = int(m.filter(m.sent_time > limit).count().execute())
        m = m.filter(m.sent_time <= limit)
    consent_cols = [f"consent_{ch}" for ch in CHANNELS] + [f"consent_{ch}_time" for ch in CHANNELS]
    cc = c.select("user_id", *consent_cols, "night_ad_consent", "night_ad_consent_time")
    cc = cc.rename(c_user="user_id")
    j = m.left_join(cc, m.user_id == cc.c_user)
    unknown = int(j.filter(j.c_user.isnull()).count().execute())
    excluded["messages to users missing from customers (treated as no consent)"] = unknown
    consent_flag = ibis.cases(*[(j.channel == ch, j[f"consent_{ch}"].fill_null(False)) for ch in CHANNELS],
                              else_=False)
    consent_time = ibis.cases(*[(j.channel == ch, j[f"consent_{ch}_time"]) for ch in CHANNELS],
                              else_=ibis.null("timestamp"))
    j = j.mutate(_consent=consent_flag, _consent_time=consent_time, _hour=j.sent_time.hour(),
                 _ad=j.is_ad.fill_null(False), _has_text=j.text.notnull())
    has_consent = j._consent & (j._consent_time.isnull() | (j._consent_time <= j.sent_time))
    night_ok = j.night_ad_consent.fill_null(False) & (
        j.night_ad_consent_time.isnull() | (j.night_ad_consent_time <= j.sent_time))
    text = j.text.fill_null("")
    scope = {
        "night_ad_without_consent": j._ad,
        "ad_without_channel_consent": j._ad,
        "ad_without_prefix": j._ad & j._has_text,
        "ad_without_optout": j._ad & j._has_text,
        "sms_over_90_bytes": (j.channel == "sms") & j._has_text,
        "consent_not_reconfirmed": j._ad & has_consent & j._consent_time.notnull(),
        "friendtalk_night": j.channel == "kakao_friendtalk",
    }
    broken = {
        "night_ad_without_consent": _night(j._hour, NIGHT_START, NIGHT_END) & ~night_ok,
        "ad_without_channel_consent": ~has_consent,
        "ad_without_prefix": ~text.lstrip().startswith(AD_PREFIX),
        "ad_without_optout": ~text.re_search(optout_pattern),
        "sms_over_90_bytes": cp949_bytes(text) > SMS_MAX_BYTES,
        "consent_not_reconfirmed": j.sent_time > j._consent_time + ibis.interval(months=RECONFIRM_MONTHS),
        "friendtalk_night": _night(j._hour, FRIENDTALK_START, FRIENDTALK_END),
    }
    aggs = {}
    for rule in RULES:
        aggs[f"{rule}__checked"] = scope[rule].ifelse(1, 0).sum()
        aggs[f"{rule}__violations"] = (scope[rule] & broken[rule]).ifelse(1, 0).sum()
    counts = j.aggregate(**aggs).execute().iloc[0]
    rows = []
    for rule, description in RULES.items():
        n_bad = int(counts[f"{rule}__violations"] or 0)
        ids: list = []
        if n_bad and examples > 0:
            ex = j.filter(scope[rule] & broken[rule]).select("message_id").order_by("message_id").limit(examples)
            ids = to_pandas(ex, tz)["message_id"].tolist()
        rows.append({"rule": rule, "description": description,
                     "checked": int(counts[f"{rule}__checked"] or 0), "violations": n_bad,
                     "example_message_ids": ids})
    out = pd.DataFrame(rows, columns=["rule", "description", "checked", "violations", "example_message_ids"])
    return report_exclusions(out, excluded, "check_compliance")
