"""What every adapter shares: its output, id normalisation, pseudonyms and safe examples."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import pandas as pd

from .ledger import Ledger
from .mapping import Mapping, Source
from .pii import pseudonymise, refuse_plain, require_salt

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


@dataclass
class Output:
    """One adapter's canonical tables (pandas, times zone-aware in the shop's zone) and ledgers."""
    source: str
    adapter: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    #: rows per table written as Parquet parts instead of held in ``tables`` (:mod:`.stream`)
    written: dict[str, int] = field(default_factory=dict)

    def ledger(self, table: str) -> Ledger:
        return self.ledgers.setdefault(table, Ledger(self.source, table))

    def exclusions(self) -> pd.DataFrame:
        frames = [lg.frame() for lg in self.ledgers.values()]
        return pd.concat(frames, ignore_index=True) if frames else Ledger(self.source, "").frame()


def text_ids(values: pd.Series) -> pd.Series:
    """Ids as text in Unicode NFC, trimmed, without zero-width characters (nulls stay null), so
    that ``123`` and ``"123"``, or NFD and NFC Hangul, name the same customer."""
    def one(v):
        if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        s = _INVISIBLE.sub("", unicodedata.normalize("NFC", str(v))).strip()
        return s or pd.NA
    return values.map(one).astype("object")


def user_ids(values: pd.Series, kind: str | None, m: Mapping, src: Source, table: str, column: str) -> pd.Series:
    """A user key as canonical ids: pseudonyms when ``kind`` is ``email``/``phone``, else text ids."""
    if kind in (None, "", "id"):
        ids = text_ids(values)
        refuse_plain(ids, table, column, src.name)
        return ids
    salt = require_salt(m.salt, table, column, src.name)
    return pseudonymise(values, salt, kind)


def examples_from(df: pd.DataFrame, safe: list[str]):
    """An ``examples(mask)`` function showing only ``safe`` columns (never raw personal data)."""
    cols = [c for c in safe if c in df.columns]
    return lambda mask: df.loc[mask, cols].head(5)


def event_map(default: dict[str, str], m: Mapping) -> dict[str, str]:
    return {**default, **m.events}
