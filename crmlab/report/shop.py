"""Shop settings of a report: currency, time zone and number-format locale.

Resolved, for each setting, from the first of:

1. the report parameter (``currency``, ``timezone``, ``locale``; empty means "not given");
2. ``shop.yaml`` beside the data: inside a Parquet folder, or in the folder of a ``.duckdb``
   file, e.g. ``currency: USD``, ``timezone: America/New_York``, ``locale: en_US``;
3. the bundled source's own settings (:data:`NAMED`: the sample shop sells in won, CDNOW and
   Hillstrom in dollars);
4. KRW and Asia/Seoul; the locale defaults to the report's language (``en``, ``ko_KR``).

Every value is checked (an ISO 4217 currency Babel knows, an IANA zone, a Babel locale): a wrong
one is a :class:`~crmlab.report.params.ParamError` naming the setting, where it came from and
what is allowed.

The same ``shop.yaml`` may also carry the adapter mapping of :mod:`crmlab.sources`
(:data:`MAPPING_KEYS`: ``sources``, ``channels``, ``events``, ``salt_env`` ...), read by
:func:`crmlab.sources.mapping.load`; :func:`resolve` ignores those keys except ``channels``,
whose custom channels it registers (:func:`crmlab.sources.channels.declare`) so that the
report's validation accepts them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import DEFAULT_TZ
from .params import ParamError, read_yaml_mapping

SETTINGS = ("currency", "timezone", "locale")
#: Keys of the adapter mapping (crmlab.sources) that may sit in the same shop.yaml.
MAPPING_KEYS = ("sources", "channels", "events", "salt", "salt_env", "date_format", "id_type")
SHOP_FILE = "shop.yaml"
#: Settings of the bundled sources (their loaders read times in Asia/Seoul).
NAMED: dict[str, dict[str, str]] = {
    "sample": {"currency": "KRW", "timezone": DEFAULT_TZ},
    "cdnow": {"currency": "USD", "timezone": DEFAULT_TZ},
    "hillstrom": {"currency": "USD", "timezone": DEFAULT_TZ},
}
LANG_LOCALE = {"en": "en", "ko": "ko_KR"}


@dataclass(frozen=True)
class Shop:
    currency: str = "KRW"
    timezone: str = DEFAULT_TZ
    locale: str = "en"


def shop_file(source: str | Path) -> Path | None:
    """``shop.yaml`` beside a data source (None for the bundled sources)."""
    text = str(source)
    if text in NAMED:
        return None
    p = Path(text).expanduser()
    return p / SHOP_FILE if p.is_dir() else p.with_name(SHOP_FILE)


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


_read_file = read_shop_file


def _declare_channels(doc: dict[str, Any], path: Path | None) -> None:
    from ..sources.channels import ChannelError, declare
    try:
        declare(doc.get("channels"))
    except ChannelError as e:
        raise ParamError(f"{path}: {e}") from None


def _check(key: str, value: Any, where: str) -> str:
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


def resolve(source: str | Path, *, currency: str = "", timezone: str = "", locale: str = "",
            lang: str = "en") -> Shop:
    """The shop settings of a report on ``source`` (see the module's docstring for the order)."""
    path = shop_file(source)
    from_file = _read_file(path)
    _declare_channels(from_file, path)
    given = {"currency": currency, "timezone": timezone, "locale": locale}
    out = {}
    for key in SETTINGS:
        if given[key]:
            out[key] = _check(key, given[key], "parameter")
        elif key in from_file:
            out[key] = _check(key, from_file[key], str(path))
        elif key in NAMED.get(str(source), {}):
            out[key] = NAMED[str(source)][key]
        else:
            out[key] = LANG_LOCALE.get(lang, "en") if key == "locale" else getattr(Shop(), key)
    return Shop(**out)
