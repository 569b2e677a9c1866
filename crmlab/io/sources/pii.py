"""Personal data out: e-mail addresses and phone numbers become salted pseudonymous ids.

The pseudonym of a value is ``"u_"`` + the first 20 hex digits of HMAC-SHA256(salt, normalised
value) (RFC 2104; Python's :mod:`hmac`). The same salt gives the same pseudonym in every export
(Shopify's ``Email``, a Braze ``external_user_id`` holding e-mails, a receipt's phone number), so
the tables still join; without the salt the ids cannot be reversed by hashing guesses.

The salt comes from ``shop.yaml``: ``salt_env: CRMLAB_SALT`` names an environment variable
(recommended: the salt then never sits in a file that may be committed), or ``salt: ...``.
An adapter that meets a PII column without a salt refuses to run (:func:`require_salt`), and
no error message shows the raw values: examples are built from pseudonymised columns only.
Ids that are not declared personal data but look like e-mail addresses or Korean mobile
numbers (a forgotten ``user_id: email``) are refused too (:func:`refuse_plain`).
"""
from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd

from ..errors import DataError

KINDS = ("email", "phone")
_DIGITS = re.compile(r"\D+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?(82[-\s]?)?0?1[016789][-\s]?\d{3,4}[-\s]?\d{4}$")


def normalise(value: str, kind: str) -> str:
    """The form that is hashed: e-mails trimmed and lower-cased; phones as digits, a Korean
    ``+82 10-...`` as ``010...``."""
    text = str(value).strip()
    if kind == "email":
        return text.lower()
    digits = _DIGITS.sub("", text)
    if digits.startswith("82") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits


def pseudonym(value: str, salt: bytes, kind: str) -> str:
    mac = hmac.new(salt, normalise(value, kind).encode("utf-8"), hashlib.sha256)
    return "u_" + mac.hexdigest()[:20]


def pseudonymise(values: pd.Series, salt: bytes, kind: str) -> pd.Series:
    """``values`` as pseudonyms (nulls and blanks stay null)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    blank = values.isna() | values.astype("string").str.strip().eq("")
    out = pd.Series(pd.NA, index=values.index, dtype="object")
    uniq = {v: pseudonym(v, salt, kind) for v in values[~blank].unique()}
    out[~blank] = values[~blank].map(uniq)
    return out


def require_salt(salt: bytes | None, table: str, column: str, source: str) -> bytes:
    """``salt``, or a DataError saying that personal data needs one (the values are not shown)."""
    if salt:
        return salt
    raise DataError(table, column, f"source '{source}' holds personal data (e-mail addresses or phone "
                    "numbers) and shop.yaml gives no salt to pseudonymise them",
                    hint="add 'salt_env: CRMLAB_SALT' to shop.yaml and set CRMLAB_SALT to a long random "
                         "secret kept outside the repository (e.g. `openssl rand -hex 32`)")


def refuse_plain(values: pd.Series, table: str, column: str, source: str) -> None:
    """A DataError when ids that should be pseudonymous look like e-mail addresses or Korean mobile
    numbers (the values are counted, never shown): declare the column as personal data instead."""
    text = values.dropna().astype(str).str.strip()
    email, phone = text.str.match(_EMAIL), text.str.match(_PHONE)
    n = int((email | phone).sum())
    if n:
        kind = "email" if email.sum() >= phone.sum() else "phone"
        raise DataError(table, column, f"source '{source}': ids look like {'e-mail addresses' if kind == 'email' else 'phone numbers'}",
                        n, hint=f"declare them as personal data so they are pseudonymised, e.g. pii: {{user_id: {kind}}} "
                                f"(generic), user_id: {kind} (braze, cafe24)")
