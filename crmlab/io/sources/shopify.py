"""Shopify orders CSV (Admin > Orders > Export) -> orders.

Follows Shopify's "Exporting orders" help page, section "Orders export CSV file format"
(https://help.shopify.com/en/manual/orders/export-orders): one row per line item; the order's
fields (``Email``, ``Financial Status``, ``Currency``, ``Subtotal``, ``Shipping``, ``Taxes``,
``Total``, ``Discount Code``, ``Discount Amount``, ``Created at``, ``Cancelled at``,
``Refunded Amount`` ...) are filled on its first row only; every row has ``Name`` (``#1001``)
and ``Lineitem quantity``/``name``/``price``. Times carry offsets (``2026-11-16 10:05:12 +0900``).

Mapping: ``order_id`` = ``Name``; ``user_id`` = the pseudonym of ``Email`` (salt required,
:mod:`crmlab.io.sources.pii`); ``time`` = ``Created at``; ``revenue`` = ``Total`` minus
``Refunded Amount`` (kept with the note ``partial_refund``); ``discount`` = ``Discount Amount``;
``coupon`` = ``Discount Code``; ``items`` = the sum of ``Lineitem quantity`` over the order's rows.
Excluded, every row counted: ``cancelled_order`` (``Cancelled at`` set), ``refunded_order``,
``voided_order``, ``unpaid_order`` (``pending``, ``expired``), ``missing_user`` (no e-mail).
A ``Currency`` other than shop.yaml's is a DataError. Names, addresses and phones are dropped.
"""
from __future__ import annotations

import pandas as pd

from ..errors import DataError
from . import readers, times
from .base import Output, examples_from, text_ids, user_ids
from .lineitems import fold, item_counts
from .mapping import Mapping, Source

REQUIRED = ["Name", "Email", "Financial Status", "Currency", "Total", "Created at", "Lineitem quantity"]
_STATUS = {"refunded": "refunded_order", "voided": "voided_order", "pending": "unpaid_order",
           "expired": "unpaid_order"}
_SAFE = ["Name", "user_id", "Financial Status", "Currency", "Total", "Refunded Amount", "Created at", "Cancelled at"]


def _reasons(raw: pd.DataFrame) -> pd.Series:
    status = raw["Financial Status"].astype("string").str.strip().str.lower()
    reason = status.map(_STATUS).astype("object")
    if "Cancelled at" in raw:
        reason = reason.mask(raw["Cancelled at"].notna(), "cancelled_order")
    first = ~raw["Name"].duplicated()
    no_user = first & raw["user_id"].isna()
    return reason.mask(reason.isna() & no_user, "missing_user").where(first)


def adapt(src: Source, m: Mapping) -> Output:
    raw = readers.read_any(src.path, "orders").rename(columns=src.opt("columns", {}))
    readers.require_columns(raw, REQUIRED, "orders", src.name, "Shopify")
    raw["Name"] = text_ids(raw["Name"])
    first_row = ~raw["Name"].duplicated()
    raw["user_id"] = user_ids(raw["Email"].where(first_row), "email", m, src, "orders", "Email")
    raw = raw.drop(columns=[c for c in raw.columns if c == "Email" or "Phone" in c or c.startswith(("Billing", "Shipping ")) and c != "Shipping"])
    out = Output(src.name, "shopify")
    firsts, kept = fold(raw, "Name", _reasons(raw), out)
    ex = examples_from(firsts, _SAFE)
    cur = firsts["Currency"].astype("string").str.upper()
    wrong = cur.notna() & cur.ne(m.currency)
    if wrong.any():
        raise DataError("orders", "Currency", f"source '{src.name}': currency differs from shop.yaml's {m.currency}",
                        int(wrong.sum()), ex(wrong), hint="crmlab does not convert currencies; export one store at a time")
    total = readers.numbers(firsts["Total"], "orders", "Total", ex)
    refunded = readers.numbers(firsts.get("Refunded Amount", pd.Series(None, index=firsts.index)).fillna("0"),
                               "orders", "Refunded Amount", ex)
    out.ledger("orders").note("partial_refund", int((refunded > 0).sum()))
    discount = firsts.get("Discount Amount")
    out.tables["orders"] = pd.DataFrame({
        "order_id": firsts["Name"], "user_id": firsts["user_id"],
        "time": times.parse(firsts["Created at"], m.timezone, table="orders", column="Created at", examples=ex,
                            fmt=src.opt("date_format", m.date_format)),
        "revenue": total - refunded,
        "discount": readers.numbers(discount, "orders", "Discount Amount", ex) if discount is not None else None,
        "coupon": firsts.get("Discount Code"),
        "items": item_counts(firsts, kept, "Name", "Lineitem quantity", _SAFE),
    }).reset_index(drop=True)
    return out
