"""Reading ``shop.yaml``: the one file holding a shop's settings and its adapter mapping.

The report's shop settings (:mod:`crmlab.report.shop`: currency, time zone, locale) and the
adapters' mapping (:mod:`crmlab.io.sources.mapping`: sources, channels, events, salt ...) both
come from this reader, so a key unknown to both is an error in one place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ParamError

SHOP_FILE = "shop.yaml"
#: The report's settings in shop.yaml.
SETTINGS = ("currency", "timezone", "locale")
#: Keys of the adapter mapping (crmlab.io.sources) that may sit in the same shop.yaml.
MAPPING_KEYS = ("sources", "channels", "events", "salt", "salt_env", "date_format", "id_type")


def read_yaml_mapping(path: Path, label: str, keys: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (empty file: ``{}``); one-line ``ParamError``
    naming ``label`` otherwise."""
    import yaml
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ParamError(f"{label}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(doc, dict):
        raise ParamError(f"{label}: expected a mapping of {keys} to values")
    return doc


def read_shop_file(path: Path | None) -> dict[str, Any]:
    """The mapping held by a ``shop.yaml`` (``{}`` when there is none); unknown keys are a ParamError."""
    if path is None or not path.exists():
        return {}
    allowed = SETTINGS + MAPPING_KEYS
    doc = read_yaml_mapping(path, str(path), str(list(allowed)))
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise ParamError(f"{path}: unknown setting(s) {unknown}; allowed: {list(allowed)}")
    return doc


def check_setting(key: str, value: Any, where: str) -> str:
    """``value`` if it is a valid ``currency`` (ISO 4217, known to Babel), ``timezone`` (IANA) or
    ``locale`` (Babel); a one-line ParamError naming ``where`` it came from otherwise."""
    if not isinstance(value, str) or not value:
        raise ParamError(f"{where}: {key}={value!r}: expected a non-empty string")
    if key == "currency":
        from babel.numbers import is_currency
        if not is_currency(value):
            raise ParamError(f"{where}: currency={value!r}: not an ISO 4217 currency code such as 'KRW' or 'USD'")
    elif key == "timezone":
        from zoneinfo import ZoneInfo
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):
            raise ParamError(f"{where}: timezone={value!r}: not an IANA time zone such as 'Asia/Seoul'") from None
    else:
        from babel import Locale, UnknownLocaleError
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError):
            raise ParamError(f"{where}: locale={value!r}: not a locale such as 'ko_KR' or 'en_US'") from None
    return value
