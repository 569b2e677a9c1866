"""Vendor time columns as zone-aware times of the shop's zone, or a DataError with examples.

- ISO 8601 text with an offset (``2026-11-16 10:05:12 +0900``, ``...Z``) is converted; offsets
  may differ from row to row.
- Naive ISO text (``2026-11-16 10:05:12``) is read in the shop's zone.
- Anything else (``05/01/2026``: May or January?) needs ``date_format`` in shop.yaml
  (``%d/%m/%Y %H:%M``, Python :func:`~datetime.datetime.strptime` codes); without one it is a
  DataError, never a guess per row.
- Epoch numbers take a declared ``unit`` (GA4: microseconds, Braze: seconds).
"""
from __future__ import annotations

import re

import pandas as pd

from ..errors import DataError

_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})\s*$")


def epoch(values: pd.Series, unit: str, tz: str, *, table: str, column: str, examples) -> pd.Series:
    """Epoch numbers (possibly given as text, as BigQuery's JSON export writes INT64) in ``tz``;
    a column already holding timestamps (a Parquet copy) is read as UTC when naive."""
    if pd.api.types.is_datetime64_any_dtype(values):
        s = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        return s.dt.tz_convert(tz)
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any():
        raise DataError(table, column, f"expected epoch {unit}", int(bad.sum()), examples(bad))
    return pd.to_datetime(num, unit=unit, utc=True).dt.tz_convert(tz)


def parse(values: pd.Series, tz: str, *, table: str, column: str, examples, fmt: str | None = None) -> pd.Series:
    """Text times as zone-aware times of ``tz`` (see the module docstring for the rules).

    ``examples(mask)`` returns the example rows to show (safe, pseudonymised columns only)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        s = values
        return s.dt.tz_convert(tz) if s.dt.tz is not None else s.dt.tz_localize(tz, ambiguous=False,
                                                                                 nonexistent="shift_forward")
    text = values.astype("string").str.strip()
    text = text.mask(text.eq(""))
    present = text.notna()
    out = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[us, {tz}]")
    if fmt:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        bad = parsed.isna() & present
        if bad.any():
            raise DataError(table, column, f"time does not match date_format {fmt!r}", int(bad.sum()), examples(bad))
        if parsed.dt.tz is None:
            return parsed.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").dt.as_unit("us")
        return parsed.dt.tz_convert(tz).dt.as_unit("us")
    iso = text.str.match(_ISO).fillna(False).astype(bool)
    bad = present & ~iso
    if bad.any():
        raise DataError(table, column, "times are not ISO 8601 (YYYY-MM-DD hh:mm:ss); a format such as "
                        "05/01/2026 is ambiguous", int(bad.sum()), examples(bad),
                        hint="declare the format in shop.yaml, e.g. date_format: '%d/%m/%Y %H:%M'")
    aware = present & text.str.contains(_OFFSET).fillna(False).astype(bool)
    naive = present & ~aware
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True).dt.tz_convert(tz)
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601")
        out[naive] = local.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    return out
