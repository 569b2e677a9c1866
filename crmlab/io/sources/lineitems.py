"""Shop-system order exports with one row per line item (Shopify, Cafe24): from rows to orders.

Every input row ends in exactly one of: the first row of a kept order (one output row), a
further line-item row of a kept order (folded: ``line_item_row``), or a row of an excluded order
(counted under the order's reason, e.g. ``cancelled_order``, once per row).
"""
from __future__ import annotations

import pandas as pd

from . import readers
from .base import Output, examples_from


def fold(raw: pd.DataFrame, key: str, reason: pd.Series, out: Output) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first rows of the kept orders, every row of the kept orders).

    ``reason`` is a per-row exclusion code, null for rows to keep; an order is excluded when its
    first row has a reason (order-level fields sit on the first row of such exports)."""
    lg = out.ledger("orders")
    lg.rows_in = len(raw)
    missing = raw[key].isna()
    lg.exclude("missing_order_id", int(missing.sum()))
    rows = raw[~missing]
    first_reason = reason[~missing].groupby(rows[key], sort=False).transform("first")
    for code, n in first_reason.dropna().value_counts().items():
        lg.exclude(str(code), int(n))
    kept = rows[first_reason.isna()]
    firsts = kept.drop_duplicates(key, keep="first")
    lg.fold("line_item_row", len(kept) - len(firsts))
    return firsts, kept


def item_counts(firsts: pd.DataFrame, kept: pd.DataFrame, key: str, quantity: str, safe: list[str]) -> pd.Series:
    """Items per kept order (one value per row of ``firsts``): the ``quantity`` column summed over
    the order's line-item rows; non-numbers raise ``DataError`` with safe example rows."""
    qty = readers.numbers(kept[quantity], "orders", quantity, examples_from(kept, safe))
    return firsts[key].map(qty.groupby(kept[key]).sum()).round().astype("Int64")
