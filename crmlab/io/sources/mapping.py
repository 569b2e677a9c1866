"""``shop.yaml`` as an adapter mapping: which export each adapter reads and how.

Read through :func:`crmlab.io.shopfile.read_shop_file` (one reader for the report settings
and the mapping). A complete example, every key optional except ``sources``::

    currency: KRW
    timezone: Asia/Seoul
    salt_env: CRMLAB_SALT            # env variable holding the pseudonymisation salt
    date_format: '%Y-%m-%d %H:%M:%S' # only for text times that are not ISO 8601
    id_type: text                    # the only one: ids become NFC text at the boundary
    events: {view_promotion: promo_view}   # event-name map, on top of the adapter's own
    channels:
      AT: {alias: kakao_alimtalk}
      zalo: {signals: [receipt_only]}
    sources:
      web:      {adapter: ga4, path: ga4/, orders: false}
      shop:     {adapter: shopify, path: shopify_orders.csv}
      braze:    {adapter: braze, path: braze/, user_id: email, is_ad: true}
      alimtalk: {adapter: receipts, path: kakao.csv, vendor: nhn_kakao, channel: kakao_alimtalk}
      tests:    {adapter: generic, table: assignments, path: assignments.csv,
                 columns: {exp: experiment, member_email: user_id}, pii: {user_id: email}}

Paths are relative to the SOURCE folder given to ``crmlab check`` / ``crmlab import``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParamError
from ..shopfile import SHOP_FILE, check_setting, read_shop_file
from ..schema import DEFAULT_TZ

ADAPTERS = ("ga4", "shopify", "cafe24", "braze", "receipts", "generic")


class MappingError(ParamError):
    """``shop.yaml`` does not describe the sources (exit code 2, like a bad parameter)."""


@dataclass(frozen=True)
class Source:
    name: str
    adapter: str
    path: Path
    options: dict[str, Any] = field(default_factory=dict)

    def opt(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class Mapping:
    file: Path
    root: Path
    sources: tuple[Source, ...]
    currency: str = "KRW"
    timezone: str = DEFAULT_TZ
    salt: bytes | None = None
    events: dict[str, str] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    date_format: str | None = None

    def settings(self) -> dict[str, Any]:
        """What a canonical folder's own shop.yaml keeps (no salt, no sources)."""
        out: dict[str, Any] = {"currency": self.currency, "timezone": self.timezone}
        if self.channels:
            out["channels"] = self.channels
        return out


def _salt(doc: dict[str, Any], where: str) -> bytes | None:
    if "salt_env" in doc:
        value = os.environ.get(str(doc["salt_env"]), "")
        if not value:
            raise MappingError(f"{where}: salt_env={doc['salt_env']!r} but that environment variable is not set")
        return value.encode("utf-8")
    value = doc.get("salt")
    return str(value).encode("utf-8") if value else None


def _source(name: str, entry: Any, root: Path, where: str) -> Source:
    if not isinstance(entry, dict) or "adapter" not in entry or "path" not in entry:
        raise MappingError(f"{where}: sources.{name}: expected a mapping with 'adapter' and 'path'")
    adapter = entry["adapter"]
    if adapter not in ADAPTERS:
        raise MappingError(f"{where}: sources.{name}.adapter={adapter!r}: expected one of {list(ADAPTERS)}")
    opts = {k: v for k, v in entry.items() if k not in ("adapter", "path")}
    for key in ("columns", "values", "pii"):
        if key in opts and not isinstance(opts[key], dict):
            raise MappingError(f"{where}: sources.{name}.{key}: expected a mapping, got {opts[key]!r}")
    bad = {c: k for c, k in (opts.get("pii") or {}).items() if k not in ("email", "phone")}
    if bad:
        raise MappingError(f"{where}: sources.{name}.pii: {bad}: each column is 'email' or 'phone'")
    return Source(str(name), adapter, (root / str(entry["path"])).resolve(), opts)


def load(path: str | Path, root: str | Path | None = None) -> Mapping:
    """The mapping in ``path`` (a shop.yaml, or a folder holding one); paths relative to ``root``
    (default: the file's folder)."""
    p = Path(path)
    p = p / SHOP_FILE if p.is_dir() else p
    if not p.exists():
        raise MappingError(f"--mapping {str(path)!r}: file not found")
    doc = read_shop_file(p)
    where = str(p)
    entries = doc.get("sources")
    if not isinstance(entries, dict) or not entries:
        raise MappingError(f"{where}: no 'sources:' mapping; name at least one export and its adapter "
                           f"({', '.join(ADAPTERS)})")
    base = Path(root) if root is not None else p.parent
    events = doc.get("events") or {}
    if not isinstance(events, dict):
        raise MappingError(f"{where}: events: expected a mapping of vendor event name to canonical name")
    from .channels import ChannelError, declare
    try:
        declare(doc.get("channels"))
    except ChannelError as e:
        raise MappingError(f"{where}: {e}") from None
    if doc.get("id_type", "text") != "text":
        raise MappingError(f"{where}: id_type={doc['id_type']!r}: ids are always text at the boundary "
                           "(Unicode NFC, trimmed, zero-width characters removed), so that integer and text "
                           "ids, and pseudonyms, join; use id_type: text or leave it out")
    return Mapping(
        file=p, root=base, sources=tuple(_source(n, e, base, where) for n, e in entries.items()),
        currency=check_setting("currency", doc["currency"], where) if "currency" in doc else "KRW",
        timezone=check_setting("timezone", doc["timezone"], where) if "timezone" in doc else DEFAULT_TZ,
        salt=_salt(doc, where), events={str(k): str(v) for k, v in events.items()},
        channels=dict(doc.get("channels") or {}), date_format=doc.get("date_format"))
