"""The report notebooks: their group, the data each one needs, and the ranges of their parameters.

This module imports nothing from the rest of :mod:`crmlab.report`, so the runner, the index and
the preflight check can all read it without an import circle.

A notebook's :class:`Needs` is checked by :mod:`crmlab.report.preflight` before any kernel starts:
the tables and columns must exist, the ``covers`` tables must reach the report week's end (minus
a stated tolerance), and the parameters listed in ``names`` must name something present in the
data (an arm, an experiment, a column, an event).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Needs:
    """What one report notebook reads.

    Attributes
    ----------
    tables : mapping of table name to the columns the notebook reads (beyond none: an empty
        tuple means the table must exist, with the data model's required columns).
    covers : tables whose latest time must reach the week's end minus the tolerance (streams
        that flow every day, such as orders and events; not assignments, which stop between
        campaigns).
    alternatives : ``{table: other}``: ``table`` is not needed when ``other`` is present
        (Hillstrom brings per-user ``outcomes`` instead of orders to measure on).
    """
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    covers: tuple[str, ...] = ()
    alternatives: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    group: str  # "weekly" (stakeholders, every Monday) or "analyst"
    needs: Needs


_ORDERS = ("user_id", "time", "revenue")
_ASSIGN = ("experiment", "user_id", "variant", "assigned_time")
_MESSAGES = ("user_id", "campaign", "channel", "sent_time")

#: Every report notebook, in the order reports are run and listed.
REGISTRY: dict[str, Entry] = {
    "weekly_uplift": Entry("weekly", Needs(
        tables={"assignments": _ASSIGN, "orders": _ORDERS, "messages": _MESSAGES},
        covers=("orders",))),
    "message_performance": Entry("weekly", Needs(
        tables={"messages": _MESSAGES, "orders": _ORDERS},
        covers=("messages", "orders"))),
    "cohort_rfm": Entry("analyst", Needs(tables={"orders": _ORDERS}, covers=("orders",))),
    "funnel": Entry("analyst", Needs(tables={"events": ("user_id", "time", "event")}, covers=("events",))),
    "experiment_readout": Entry("analyst", Needs(
        tables={"assignments": _ASSIGN, "orders": _ORDERS}, covers=("orders",),
        alternatives={"orders": "outcomes"})),
}

#: Notebook name -> group (the runner's selection of ``weekly`` / ``all``).
NOTEBOOKS: dict[str, str] = {name: e.group for name, e in REGISTRY.items()}
GROUPS = ("weekly", "all")

#: Allowed ranges of numeric parameters, by name (a name means the same in every notebook):
#: ``(low, high, low_inclusive)``; ``None`` leaves a side open. A zero-week trend or look-back
#: would make an empty page that looks like "nothing happened", so those start at 1.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "lookback_weeks": (1, 52, True),
    "trend_weeks": (1, 104, True),
    "window_days": (0, 365, False),
    "window_hours": (0, 24 * 90, False),
    "new_days": (0, None, False),
    "active_days": (0, None, False),
    "churn_days": (0, None, False),
    "repurchase_days": (0, None, False),
    "clv_horizon_weeks": (0, 520, False),
    "max_cohorts": (1, None, True),
    "rfm_bins": (2, 10, True),
    "min_delivered": (0, None, True),
    "srm_alpha": (0, 1, False),
}
#: Parameters holding a mapping of channel to days: every value must be in ``window_days``' range.
DAY_MAPS = ("channel_windows",)


def needs(name: str) -> Needs:
    """The declared needs of notebook ``name`` (no needs for a notebook outside the registry)."""
    entry = REGISTRY.get(name)
    return entry.needs if entry else Needs()


def order_key(name: str) -> tuple[int, str]:
    """Sort key: registry order first, then any other notebook by name."""
    names = list(REGISTRY)
    return (names.index(name) if name in names else len(names), name)
