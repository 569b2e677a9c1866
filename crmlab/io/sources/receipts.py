"""Vendor receipts of receipt-only channels (Kakao AlimTalk/FriendTalk, SMS/LMS) -> messages.

A receipt is one row per recipient of a send request: the phone number, when it was requested
and delivered, and a result code. These channels report no open and no click, so
``opened_time``/``clicked_time`` stay null (open rates are unknown, not zero).

Presets (option ``vendor``) follow NHN Cloud's message-query APIs:

- ``nhn_kakao``: KakaoTalk Bizmessage AlimTalk/FriendTalk "list messages" fields
  (https://docs.nhncloud.com/ko/Notification/KakaoTalk%20Bizmessage/ko/alimtalk-api-guide/):
  ``requestId``, ``recipientSeq``, ``templateCode``, ``recipientNo``, ``requestDate``,
  ``receiveDate``, ``resultCode`` (``1000`` = success);
- ``nhn_sms``: SMS API v2.2 message-list fields
  (https://docs.nhncloud.com/ko/Notification/SMS/ko/api-guide-v2.2/): ``requestId``,
  ``recipientSeq``, ``sendType`` (``0`` SMS, ``1`` LMS/MMS, ``2`` authentication SMS),
  ``recipientNo``, ``requestDate``, ``resultDate``, ``resultCode``, ``templateId``. Check the
  success code against your contract's result-code table and set ``delivered_codes`` (the
  preset assumes ``1000``).

Any other vendor: ``columns:`` renames its fields onto these roles (``request_id``,
``recipient_seq``, ``phone``, ``sent_time``, ``delivered_time``, ``result``, ``campaign``,
``channel``). Options: ``channel`` (a registered channel or alias) when the file has no channel
column, ``campaign`` (a constant when it has no campaign column), ``delivered_codes``, ``is_ad``
(AlimTalk defaults to false, being informational by Kakao's rules; others to true).
``user_id`` is the pseudonym of the phone number (salt required). A receipt whose result is not a
delivered code is kept as sent but not delivered (note ``bounced``); receipts without a phone
number are ``missing_recipient``.
"""
from __future__ import annotations

import pandas as pd

from ..errors import DataError
from . import channels, readers, times
from .base import Output, examples_from, text_ids, user_ids
from .defaults import is_ad
from .mapping import Mapping, Source

PRESETS = {
    "nhn_kakao": {"requestId": "request_id", "recipientSeq": "recipient_seq", "recipientNo": "phone",
                  "requestDate": "sent_time", "receiveDate": "delivered_time", "resultCode": "result",
                  "templateCode": "campaign"},
    "nhn_sms": {"requestId": "request_id", "recipientSeq": "recipient_seq", "recipientNo": "phone",
                "requestDate": "sent_time", "resultDate": "delivered_time", "resultCode": "result",
                "templateId": "campaign", "sendType": "channel"},
}
#: Vendor channel codes, per preset (a shop.yaml alias maps any other code).
CODES = {"nhn_sms": {"0": "sms", "1": "lms", "2": "sms"}}
_SAFE = ["request_id", "recipient_seq", "user_id", "sent_time", "result", "campaign", "channel"]


def _roles(src: Source) -> dict[str, str]:
    vendor = src.opt("vendor", "nhn_kakao")
    if vendor not in PRESETS:
        raise DataError("messages", None, f"source '{src.name}': vendor={vendor!r}: expected one of {list(PRESETS)} "
                        "(or map the columns with 'columns:')")
    return {**PRESETS[vendor], **src.opt("columns", {})}


def _channel(raw: pd.DataFrame, src: Source, ex) -> pd.Series:
    if "channel" in raw:
        codes = CODES.get(src.opt("vendor", "nhn_kakao"), {})
        ch = raw["channel"].astype("string").str.strip().map(
            lambda c: codes.get(c, channels.canonical_name(c)) if pd.notna(c) else c)
        ch = ch.map(lambda c: c.lower() if isinstance(c, str) and c.lower() in channels.names() else c)
    elif src.opt("channel"):
        ch = pd.Series(channels.canonical_name(src.opt("channel")), index=raw.index, dtype="object")
    else:
        raise DataError("messages", "channel", f"source '{src.name}': the receipts name no channel",
                        hint="add 'channel: kakao_alimtalk' (or sms, lms ...) under the source in shop.yaml")
    unknown = ch.notna() & ~ch.isin(channels.names())
    if unknown.any():
        raise DataError("messages", "channel", f"source '{src.name}': unknown channel; registered: "
                        f"{', '.join(channels.names())}", int(unknown.sum()), ex(unknown),
                        hint="declare it in shop.yaml: channels: {NAME: {alias: sms}} or {NAME: {signals: [receipt_only]}}")
    return ch.astype("object")


def adapt(src: Source, m: Mapping) -> Output:
    raw = readers.read_any(src.path, "messages").rename(columns=_roles(src))
    readers.require_columns(raw, ["phone", "sent_time", "result"], "messages", src.name, "receipt")
    raw["user_id"] = user_ids(raw["phone"], "phone", m, src, "messages", "phone")
    raw = raw.drop(columns=["phone"])
    out = Output(src.name, "receipts")
    lg = out.ledger("messages")
    lg.rows_in = len(raw)
    missing = raw["user_id"].isna()
    lg.exclude("missing_recipient", int(missing.sum()))
    r = raw[~missing].copy()
    ex = examples_from(r, _SAFE)
    ch = _channel(r, src, ex)
    if "campaign" not in r:
        if not src.opt("campaign"):
            raise DataError("messages", "campaign", f"source '{src.name}': the receipts name no campaign",
                            hint="map a column onto campaign (columns: {templateCode: campaign}) or give 'campaign: NAME'")
        r["campaign"] = src.opt("campaign")
    fmt = src.opt("date_format", m.date_format)
    sent = times.parse(r["sent_time"], m.timezone, table="messages", column="sent_time", examples=ex, fmt=fmt)
    deliv = times.parse(r.get("delivered_time", pd.Series(None, index=r.index)), m.timezone,
                        table="messages", column="delivered_time", examples=ex, fmt=fmt)
    codes = {str(c) for c in src.opt("delivered_codes", ["1000"])}
    ok = r["result"].astype("string").str.strip().isin(codes).fillna(False).astype(bool)
    lg.note("bounced", int((~ok).sum()))
    rid = text_ids(r.get("request_id", pd.Series(range(len(r)), index=r.index)))
    seq = text_ids(r.get("recipient_seq", pd.Series(range(len(r)), index=r.index)))
    default_ad = not ch.eq("kakao_alimtalk").all()
    out.tables["messages"] = pd.DataFrame({
        "message_id": f"{src.name}:" + rid.astype("string") + ":" + seq.astype("string"),
        "user_id": r["user_id"], "campaign": text_ids(r["campaign"]), "channel": ch,
        "is_ad": is_ad(r["campaign"], src.opt("is_ad"), default=default_ad),
        "sent_time": sent, "delivered_time": deliv.where(ok & deliv.notna(), sent.where(ok)),
        "opened_time": pd.Series(pd.NaT, index=r.index, dtype=sent.dtype),
        "clicked_time": pd.Series(pd.NaT, index=r.index, dtype=sent.dtype),
    }).reset_index(drop=True)
    return out
