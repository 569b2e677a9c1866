"""Cafe24 order export (쇼핑몰 관리자 > 주문관리 > 엑셀 다운로드) -> orders.

Cafe24 publishes no fixed column list: the order download is built from a template the shop
designs (쇼핑몰 관리자 > 주문관리 > 엑셀 다운로드 > 다운로드 양식관리; Cafe24's notice on the
template's items: https://shopnotice.cafe24.com/view?bbs_no=12&no=338674). crmlab reads these
commonly chosen items, in Korean, one row per 품목 (line item), the order's fields repeated on
each row (check them against your template, and rename others with ``columns:``): ``주문번호`` (e.g. ``20261116-0000012``), ``주문일시`` (naive local time),
``회원아이디`` (blank for a guest), ``주문자 휴대전화``, ``결제금액`` (amount paid for the order),
``할인금액``, ``쿠폰명``, ``주문상태``, ``상품번호``, ``상품명``, ``수량``. Files are CP949 (Excel's
Korean default) or UTF-8 with a BOM; both are detected. Other template names are mapped with
``columns:`` in shop.yaml (``{주문자ID: 회원아이디}``).

Mapping: ``order_id`` = ``주문번호``; ``user_id`` = ``회원아이디`` (option ``user_id: phone``: the
pseudonym of ``주문자 휴대전화`` for every order, salt required); ``time`` = ``주문일시``;
``revenue`` = ``결제금액``; ``discount`` = ``할인금액``; ``coupon`` = ``쿠폰명``; ``items`` = sum of
``수량``. Excluded, every row counted: ``cancelled_order`` (주문상태 holds 취소),
``returned_order`` (반품, 환불), ``unpaid_order`` (입금전), ``guest_order`` (no 회원아이디).
Names and phone numbers are dropped.
"""
from __future__ import annotations

import pandas as pd

from . import readers, times
from .base import Output, examples_from, text_ids, user_ids
from .lineitems import fold, item_counts
from .mapping import Mapping, Source

REQUIRED = ["주문번호", "주문일시", "회원아이디", "결제금액", "주문상태", "수량"]
_STATUS = (("취소", "cancelled_order"), ("반품", "returned_order"), ("환불", "returned_order"),
           ("입금전", "unpaid_order"))
_PII = ("주문자명", "주문자 휴대전화", "수령인", "수령인 휴대전화", "수령인 주소", "주문자 이메일")
_SAFE = ["주문번호", "user_id", "주문일시", "결제금액", "주문상태", "상품명", "수량"]


def _reasons(raw: pd.DataFrame) -> pd.Series:
    status = raw["주문상태"].astype("string").fillna("")
    reason = pd.Series(None, index=raw.index, dtype="object")
    for word, code in reversed(_STATUS):
        reason = reason.mask(status.str.contains(word), code)
    return reason.mask(reason.isna() & raw["user_id"].isna(), "guest_order")


def adapt(src: Source, m: Mapping) -> Output:
    raw = readers.read_any(src.path, "orders").rename(columns=src.opt("columns", {}))
    readers.require_columns(raw, REQUIRED, "orders", src.name, "Cafe24")
    raw["주문번호"] = text_ids(raw["주문번호"])
    if src.opt("user_id") == "phone":
        readers.require_columns(raw, ["주문자 휴대전화"], "orders", src.name, "Cafe24")
        raw["user_id"] = user_ids(raw["주문자 휴대전화"], "phone", m, src, "orders", "주문자 휴대전화")
    else:
        raw["user_id"] = user_ids(raw["회원아이디"], None, m, src, "orders", "회원아이디")
    raw = raw.drop(columns=[c for c in _PII if c in raw.columns])
    out = Output(src.name, "cafe24")
    firsts, kept = fold(raw, "주문번호", _reasons(raw), out)
    ex = examples_from(firsts, _SAFE)
    disc = firsts.get("할인금액")
    out.tables["orders"] = pd.DataFrame({
        "order_id": firsts["주문번호"], "user_id": firsts["user_id"],
        "time": times.parse(firsts["주문일시"], m.timezone, table="orders", column="주문일시", examples=ex,
                            fmt=src.opt("date_format", m.date_format)),
        "revenue": readers.numbers(firsts["결제금액"], "orders", "결제금액", ex),
        "discount": readers.numbers(disc, "orders", "할인금액", ex) if disc is not None else None,
        "coupon": firsts.get("쿠폰명"),
        "items": item_counts(firsts, kept, "주문번호", "수량", _SAFE),
    }).reset_index(drop=True)
    return out
