"""Documented defaults for optional vendor fields, and the "this analysis needs X" messages.

- ``messages.is_ad``: no vendor export says whether a message is advertising. An adapter's
  ``is_ad`` option gives it: ``true``/``false`` for the whole source, or a mapping of campaign
  to true/false with an optional ``default``. **Without one every message counts as
  advertising** (``true``): the conservative reading of the Korean Information and
  Communications Network Act (art. 50), under which consent and night-time rules then apply;
  compliance findings on informational messages are the cost of not declaring them. Kakao
  AlimTalk is informational by rule, so the receipts adapter defaults it to ``false``.
- ``assignments.assigned_time``: randomisation logs often hold only experiment, user and arm.
  The generic adapter's ``assigned_time`` option gives a fixed time (the experiment's start)
  for rows that lack one; without it the adapter raises a DataError saying that experiment
  readouts and uplift need the assignment time, and how to give it.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import DataError

IS_AD_DEFAULT = True


def is_ad(campaign: pd.Series, option: Any, default: bool = IS_AD_DEFAULT) -> pd.Series:
    """Per-message ``is_ad`` from an adapter's ``is_ad`` option (see the module docstring)."""
    if option is None:
        return pd.Series(default, index=campaign.index, dtype=bool)
    if isinstance(option, bool):
        return pd.Series(option, index=campaign.index, dtype=bool)
    if isinstance(option, dict):
        fallback = bool(option.get("default", default))
        return campaign.map(lambda c: bool(option.get(c, fallback))).astype(bool)
    raise DataError("messages", "is_ad", f"option is_ad={option!r}: expected true, false or a mapping "
                    "of campaign to true/false")


def assigned_time_needed(source: str, n: int) -> DataError:
    return DataError("assignments", "assigned_time",
                     f"source '{source}' gives no assignment time; experiment_readout and weekly_uplift "
                     "need it (outcome windows start there)", n,
                     hint=f"add the column, or 'assigned_time: <experiment start, e.g. 2026-11-16 09:00>' "
                          f"under sources.{source} in shop.yaml")
