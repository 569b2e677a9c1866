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

The same ``shop.yaml`` may also carry the adapter mapping of :mod:`crmlab.io.sources`
(:data:`MAPPING_KEYS`: ``sources``, ``channels``, ``events``, ``salt_env`` ...), read by
:func:`crmlab.io.sources.mapping.load`; :func:`resolve` ignores those keys except ``channels``,
whose custom channels it registers (:func:`crmlab.io.sources.channels.declare`) so that the
report's validation accepts them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.schema import DEFAULT_TZ
from ..io.errors import ParamError
from ..io.shopfile import MAPPING_KEYS, SETTINGS, SHOP_FILE, check_setting, read_shop_file  # noqa: F401

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
    if text.lower().startswith("pyspark://"):  # a Parquet folder read by Spark: its shop.yaml; a catalog: none
        from urllib.parse import unquote, urlsplit
        folder = unquote(urlsplit(text).path)
        return Path(folder) / SHOP_FILE if folder not in ("", "/") else None
    p = Path(text).expanduser()
    return p / SHOP_FILE if p.is_dir() else p.with_name(SHOP_FILE)


_read_file = read_shop_file


def _declare_channels(doc: dict[str, Any], path: Path | None) -> None:
    from ..io.sources.channels import ChannelError, declare
    try:
        declare(doc.get("channels"))
    except ChannelError as e:
        raise ParamError(f"{path}: {e}") from None


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
            out[key] = check_setting(key, given[key], "parameter")
        elif key in from_file:
            out[key] = check_setting(key, from_file[key], str(path))
        elif key in NAMED.get(str(source), {}):
            out[key] = NAMED[str(source)][key]
        else:
            out[key] = LANG_LOCALE.get(lang, "en") if key == "locale" else getattr(Shop(), key)
    return Shop(**out)
