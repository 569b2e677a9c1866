"""The open channel registry: every channel crmlab knows, with the signals it reports.

A *signal* is what a channel tells the sender about one message: ``delivery`` (a receipt),
``open`` and ``click``. Receipt-only channels (SMS, LMS, Kakao AlimTalk/FriendTalk, LINE) report
delivery and nothing else, so their ``opened_time``/``clicked_time`` stay null and open rates
are unknown rather than zero.

Known channels come with their signals (:data:`KNOWN`). A shop declares others, and aliases of
known ones, in ``shop.yaml``::

    channels:
      zalo: {signals: [receipt_only]}       # a custom channel
      naver_talktalk: {signals: [open, click]}
      AT: {alias: kakao_alimtalk}            # a vendor's code for a known channel

:func:`declare` registers them for the process (``crmlab.report.shop.resolve`` does so for the
``shop.yaml`` beside a report's data), and validation of ``messages.channel`` accepts every
registered name (:func:`names`). This module imports nothing from crmlab, so ``validate`` and
``report.shop`` can use it without an import circle.
"""
from __future__ import annotations

from typing import Any, Mapping

SIGNALS = ("delivery", "open", "click")
_FULL = frozenset(SIGNALS)
_RECEIPT = frozenset({"delivery"})

#: Channel -> signals it reports per message.
KNOWN: dict[str, frozenset[str]] = {
    "app_push": _FULL, "push": _FULL, "ios_push": _FULL, "android_push": _FULL, "web_push": _FULL,
    "email": _FULL, "in_app": _FULL,
    "sms": _RECEIPT, "lms": _RECEIPT, "mms": _RECEIPT,
    "kakao_alimtalk": _RECEIPT, "kakao_friendtalk": _RECEIPT, "line": _RECEIPT,
}

_declared: dict[str, frozenset[str]] = {}
_aliases: dict[str, str] = {}


class ChannelError(ValueError):
    """A ``channels:`` entry of shop.yaml is malformed."""


def _signals(name: str, given: Any) -> frozenset[str]:
    items = [given] if isinstance(given, str) else list(given or [])
    if items == ["receipt_only"]:
        return _RECEIPT
    bad = [s for s in items if s not in ("open", "click")]
    if bad or not items:
        raise ChannelError(f"channels.{name}.signals={given!r}: expected [receipt_only] or a list of open, click")
    return frozenset({"delivery", *items})


def parse(entries: Mapping[str, Any] | None) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """``shop.yaml``'s ``channels:`` mapping as (custom channels with signals, aliases)."""
    custom: dict[str, frozenset[str]] = {}
    aliases: dict[str, str] = {}
    for name, entry in (entries or {}).items():
        if not isinstance(entry, Mapping) or len(entry) != 1 or next(iter(entry)) not in ("alias", "signals"):
            raise ChannelError(f"channels.{name}: expected {{signals: [...]}} or {{alias: <known channel>}}")
        if "alias" in entry:
            target = entry["alias"]
            if target not in KNOWN and target not in custom and target not in _declared:
                raise ChannelError(f"channels.{name}.alias={target!r}: not a channel; known: {sorted(KNOWN)}")
            aliases[str(name)] = target
        else:
            if not str(name).isidentifier() or str(name) != str(name).lower():
                raise ChannelError(f"channels.{name}: a custom channel's name is snake_case, e.g. naver_talktalk")
            custom[str(name)] = _signals(name, entry["signals"])
    return custom, aliases


def declare(entries: Mapping[str, Any] | None) -> None:
    """Register the custom channels and aliases of a ``channels:`` mapping (idempotent)."""
    custom, aliases = parse(entries)
    _declared.update(custom)
    _aliases.update(aliases)


def names() -> tuple[str, ...]:
    """Every channel validation accepts: the known ones and those declared."""
    return tuple(sorted({*KNOWN, *_declared}))


def signals(channel: str) -> frozenset[str]:
    """The signals of ``channel`` (KeyError for an unregistered one)."""
    ch = canonical_name(channel)
    if ch in KNOWN:
        return KNOWN[ch]
    return _declared[ch]


def canonical_name(raw: str) -> str:
    """A vendor's name for a channel (an alias) as the registered one; others unchanged."""
    return _aliases.get(raw, raw)


def receipt_only(channel: str) -> bool:
    return signals(channel) == _RECEIPT


def _reset() -> None:  # tests
    _declared.clear()
    _aliases.clear()


def _check_schema_list() -> None:  # the schema's documented list names exactly the known channels
    from ..schema import _REGISTERED
    assert set(_REGISTERED) == set(KNOWN), set(_REGISTERED) ^ set(KNOWN)
