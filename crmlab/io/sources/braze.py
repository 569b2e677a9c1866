"""Braze Currents message engagement events -> messages (one row per send).

Follows Braze's "Message engagement events" glossary for Currents' flat-file (data warehouse
storage) schemas (https://www.braze.com/docs/user_guide/data/distribution/braze_currents/event_glossary/message_engagement_events):
event types ``users.messages.<channel>.<Action>`` and the fields ``id``, ``user_id`` (Braze's
id), ``external_user_id``, ``time`` (unix seconds), ``campaign_id``/``campaign_name``,
``message_variation_name``, ``canvas_id``/``canvas_name``/``canvas_variation_name``,
``canvas_step_name``, ``dispatch_id``, ``send_id``, ``platform`` (``ios``, ``android``, ``web``
...). Currents writes one folder per event type (``.../event_type=users.messages.email.Send/``);
crmlab reads an ``event_type`` column, or else takes it from that folder name.

One message is (channel, ``dispatch_id``, user). Read: ``Send`` (the row; ``Impression`` for
in-app), ``email.Delivery``/``sms.Delivery`` (delivered), ``Open`` (opened; a push ``Open`` is the
tap, so it also sets the click), ``email.Click``/``inappmessage.Click`` (clicked),
``email.Unsubscribe``, and ``Bounce``/``sms.DeliveryFailure``/``sms.Rejection`` (not delivered:
note ``bounced``). Push reports no delivery: a push is taken as delivered when sent unless it
bounced; a message opened or clicked without a delivery event counts as delivered when sent
(note ``delivery_inferred_from_engagement``), since a click implies a delivery. Channel: ``pushnotification`` by ``platform`` -> ``ios_push``, ``android_push``,
``web_push`` (others ``app_push``), ``email``, ``sms``, ``inappmessage`` -> ``in_app``.

Options: ``user_id: email`` when ``external_user_id`` holds e-mail addresses (Braze's Shopify
integration can use the e-mail as external id): they are pseudonymised like Shopify's ``Email``;
``is_ad`` (default ``true``, see :mod:`crmlab.io.sources.defaults`), or a mapping of campaign to
true/false with ``default``. Engagements whose send is not in the export are
``engagement_without_send``; repeated sends ``duplicate_send``; other event types
``unmapped_event_type``. ``email_address`` and phone fields are dropped.
"""
from __future__ import annotations

import pandas as pd

from . import readers, times
from .base import Output, examples_from, text_ids, user_ids
from .defaults import is_ad
from .mapping import Mapping, Source

ROLES = {
    ("pushnotification", "Send"): "send", ("pushnotification", "Open"): "tap",
    ("pushnotification", "Bounce"): "bounce",
    ("email", "Send"): "send", ("email", "Delivery"): "deliver", ("email", "Open"): "open",
    ("email", "Click"): "click", ("email", "Bounce"): "bounce", ("email", "SoftBounce"): "none",
    ("email", "Unsubscribe"): "unsub",
    ("sms", "Send"): "send", ("sms", "Delivery"): "deliver", ("sms", "DeliveryFailure"): "bounce",
    ("sms", "Rejection"): "bounce",
    ("inappmessage", "Impression"): "send", ("inappmessage", "Click"): "click",
}
_PUSH = {"ios": "ios_push", "android": "android_push", "web": "web_push"}
_SAFE = ["event_type", "id", "external_user_id_pseudonym", "dispatch_id", "campaign_name", "time"]
_PII = ("email_address", "to_phone_number", "from_phone_number", "phone_number")


def _event_types(raw: pd.DataFrame) -> pd.Series:
    if "event_type" in raw:
        return raw["event_type"].astype("string")
    return raw["_file"].astype("string").str.extract(r"event_type=([\w.]+)")[0]


def _channel(family: pd.Series, platform: pd.Series) -> pd.Series:
    push = platform.map(lambda p: _PUSH.get(str(p).lower(), "app_push"))
    return family.map({"email": "email", "sms": "sms", "inappmessage": "in_app"}).fillna(push)


def _first(ev: pd.DataFrame, role: str, keys: pd.Series) -> pd.Series:
    """For each of ``keys``, the first time of an engagement of ``role`` (NaT if none)."""
    firsts = ev[ev["role"] == role].groupby("key")["t"].min()
    out = firsts.reindex(keys.to_numpy()).set_axis(keys.index)
    return out if len(firsts) else pd.Series(pd.NaT, index=keys.index, dtype=ev["t"].dtype)


def _events(src: Source, m: Mapping) -> pd.DataFrame:
    """The export's rows with ``user`` (id or pseudonym), ``role``, ``channel``, ``t`` and ``key``."""
    raw = readers.read_any(src.path, "messages").rename(columns=src.opt("columns", {}))
    raw["event_type"] = _event_types(raw)
    readers.require_columns(raw, ["event_type", "external_user_id", "time", "dispatch_id"], "messages", src.name,
                            "Braze Currents")
    kind = "email" if src.opt("user_id") == "email" else None
    raw["user"] = user_ids(raw["external_user_id"], kind, m, src, "messages", "external_user_id")
    raw = raw.drop(columns=[c for c in _PII if c in raw] + (["external_user_id"] if kind else []))
    raw["external_user_id_pseudonym"] = raw["user"]
    ex = examples_from(raw, _SAFE)
    parts = raw["event_type"].str.extract(r"^users\.messages\.(\w+)\.(\w+)$")
    raw["role"] = [ROLES.get((f, a)) for f, a in zip(parts[0], parts[1])]
    raw["channel"] = _channel(parts[0], raw.get("platform", pd.Series(None, index=raw.index)))
    raw["t"] = times.epoch(raw["time"], "s", m.timezone, table="messages", column="time", examples=ex)
    dispatch = text_ids(raw["dispatch_id"]).fillna(text_ids(raw.get("send_id", pd.Series(None, index=raw.index))))
    raw["key"] = raw["channel"].astype("string") + ":" + dispatch.astype("string") + ":" + raw["user"].astype("string")
    return raw


def _split(raw: pd.DataFrame, lg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first send of each message, engagements of those messages); the rest counted in ``lg``."""
    lg.rows_in = len(raw)
    unmapped = raw["role"].isna()
    lg.exclude("unmapped_event_type", int(unmapped.sum()))
    no_user = ~unmapped & raw["user"].isna()
    lg.exclude("missing_user", int(no_user.sum()))
    ev = raw[~unmapped & ~no_user].sort_values("t", kind="stable")
    sends = ev[ev["role"] == "send"]
    dup = sends["key"].duplicated()
    lg.exclude("duplicate_send", int(dup.sum()))
    sends = sends[~dup]
    eng = ev[ev["role"] != "send"]
    matched = eng["key"].isin(sends["key"])
    lg.exclude("engagement_without_send", int((~matched).sum()))
    lg.fold("engagement_event", int(matched.sum()))
    return sends, eng[matched]


def adapt(src: Source, m: Mapping) -> Output:
    out = Output(src.name, "braze")
    lg = out.ledger("messages")
    sends, eng = _split(_events(src, m), lg)
    out.tables["messages"] = _messages(sends, eng, src, lg)
    return out


def _messages(sends: pd.DataFrame, eng: pd.DataFrame, src: Source, lg) -> pd.DataFrame:
    k = sends["key"]
    bounced = k.isin(eng.loc[eng["role"] == "bounce", "key"])
    lg.note("bounced", int(bounced.sum()))
    delivered = _first(eng, "deliver", k)
    assumed = sends["channel"].isin(["ios_push", "android_push", "web_push", "app_push", "in_app"])
    delivered = delivered.where(~assumed, sends["t"]).where(~bounced)
    tap = _first(eng, "tap", k)
    opened = _first(eng, "open", k).fillna(tap)
    clicked = _first(eng, "click", k).fillna(tap)
    proven = delivered.isna() & (opened.notna() | clicked.notna())  # an open or click proves delivery
    lg.note("delivery_inferred_from_engagement", int(proven.sum()))
    delivered = delivered.where(~proven, sends["t"])
    if "in_app" in set(sends["channel"]):
        opened = opened.where(sends["channel"] != "in_app", sends["t"])
    campaign = sends.get("campaign_name", pd.Series(None, index=sends.index))
    for alt in ("canvas_name", "campaign_id", "canvas_id"):
        if alt in sends:
            campaign = campaign.fillna(sends[alt])
    variant = sends.get("message_variation_name", pd.Series(None, index=sends.index))
    if "canvas_variation_name" in sends:
        variant = variant.fillna(sends["canvas_variation_name"])
    return pd.DataFrame({
        "message_id": "braze:" + k, "user_id": sends["user"], "campaign": campaign,
        "channel": sends["channel"], "variant": variant, "is_ad": is_ad(campaign, src.opt("is_ad")),
        "sent_time": sends["t"], "delivered_time": delivered, "opened_time": opened,
        "clicked_time": clicked, "unsubscribed_time": _first(eng, "unsub", k),
    }).reset_index(drop=True)
