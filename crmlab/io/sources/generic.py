"""A generic log with declared columns -> any canonical table (messages by default).

For exports no other adapter reads: an in-house message log, a randomisation log, a CSV from a
warehouse. shop.yaml declares the table and renames the columns onto the canonical ones
(docs/data-model.md)::

    tests:
      adapter: generic
      table: assignments            # messages (default), assignments, events, orders, customers
      path: assignments.csv
      columns: {exp: experiment, member_email: user_id, arm: variant}
      pii: {user_id: email}         # pseudonymise these canonical columns (email | phone)
      values: {channel: sms}        # constants for columns the file lacks
      assigned_time: 2026-11-16 09:00   # assignments only: when rows lack one

Times follow :mod:`crmlab.io.sources.times` (ISO 8601, else ``date_format``); channels are mapped
through the registry's aliases; ``is_ad`` defaults as :mod:`crmlab.io.sources.defaults` says. Other
columns of the file are dropped. Rows without a ``user_id`` are ``missing_user``.
"""
from __future__ import annotations

import pandas as pd

from ..schema import spec
from . import channels, readers, times
from .base import Output, examples_from, text_ids, user_ids
from .defaults import IS_AD_DEFAULT, assigned_time_needed
from .mapping import Mapping, Source
from .pii import refuse_plain


def _fill(df: pd.DataFrame, src: Source, table: str) -> pd.DataFrame:
    for col, value in (src.opt("values") or {}).items():
        if col not in df:
            df[col] = value
    if table == "messages" and "is_ad" not in df:
        df["is_ad"] = IS_AD_DEFAULT
    if table == "assignments" and ("assigned_time" not in df or df["assigned_time"].isna().any()):
        given = src.opt("assigned_time")
        if given is None:
            n = len(df) if "assigned_time" not in df else int(df["assigned_time"].isna().sum())
            raise assigned_time_needed(src.name, n)
        df["assigned_time"] = df.get("assigned_time", pd.Series(None, index=df.index)).fillna(str(given))
    return df


def adapt(src: Source, m: Mapping) -> Output:
    table = src.opt("table", "messages")
    s = spec(table)
    raw = readers.read_any(src.path, table).rename(columns=src.opt("columns", {}))
    pii = src.opt("pii") or {}
    for col, kind in pii.items():
        if col in raw:
            raw[col] = user_ids(raw[col], kind, m, src, table, col)
    df = _fill(raw[[c for c in raw.columns if c in s.names]].copy(), src, table)
    readers.require_columns(df, s.required, table, src.name, "generic log")
    out = Output(src.name, "generic")
    lg = out.ledger(table)
    lg.rows_in = len(df)
    for col in s.columns:
        if col.kind == "id" and col.name in df and col.name not in pii:
            df[col.name] = text_ids(df[col.name])
    if "user_id" in df and "user_id" not in pii:
        refuse_plain(df["user_id"], table, "user_id", src.name)
    missing = df["user_id"].isna() if "user_id" in df else pd.Series(False, index=df.index)
    lg.exclude("missing_user", int(missing.sum()))
    df = df[~missing].copy()
    ex = examples_from(df, [c for c in s.names if c in df and c != "text"])
    for col in s.columns:
        if col.kind == "time" and col.name in df:
            df[col.name] = times.parse(df[col.name], m.timezone, table=table, column=col.name, examples=ex,
                                       fmt=src.opt("date_format", m.date_format))
    if "channel" in df:
        df["channel"] = df["channel"].map(lambda c: channels.canonical_name(c) if isinstance(c, str) else c)
    out.tables[table] = df.reset_index(drop=True)
    return out
