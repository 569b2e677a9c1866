"""GA4 BigQuery export (``events_YYYYMMDD`` tables) -> events, and orders from purchases.

Follows Google's published schema, "[GA4] BigQuery Export schema"
(https://support.google.com/analytics/answer/7029846,
https://developers.google.com/analytics/bigquery/event-schema): ``event_timestamp`` in
microseconds UTC, ``event_name``, ``user_pseudo_id``, ``user_id``, the repeated record
``event_params`` of ``{key, value: {string_value, int_value, float_value, double_value}}``,
``traffic_source`` (the user's *first* acquisition), ``collected_traffic_source`` (the event's
own ``manual_source`` / ``manual_medium`` / ``manual_campaign_name``), ``device.category``,
``ecommerce`` (``transaction_id``, ``purchase_revenue``, ``total_item_quantity``) and the
repeated ``items`` (``item_id``, ``item_category``, ``price``, ``quantity``, ``coupon``).

Read as BigQuery writes an export to files: newline-delimited JSON (INT64 values as text), or
Parquet, nested or already flattened (columns ``ga_session_id``, ``source``, ``medium``,
``campaign``, ``transaction_id``, ``purchase_revenue``, ``item_id``, ``item_category``,
``price``, ``device_category``, ``total_item_quantity``, ``coupon``).

Mapping:

- ``user_id``: GA4's ``user_id`` where the site sets it, else ``"ga4:" + user_pseudo_id``
  (option ``user: pseudo`` uses the pseudo id always);
- ``session_id``: ``user_pseudo_id:ga_session_id`` (GA4's session id is unique per user only).
  An event without ``ga_session_id`` joins the session of the same user's previous event, or
  else of the next one, when it lies within 30 minutes of it (GA4's default session timeout);
  otherwise it opens a session of its own (``user_pseudo_id:derived:event_timestamp``). Such
  events are counted as the note ``missing_ga_session_id``. (crmlab's session functions
  refuse a column that is null on some events only.)
- ``source``/``medium``/``campaign``: the session's: the first ``collected_traffic_source``
  (else ``source``/``medium``/``campaign`` event parameters) of the session, given to all its
  events (GA4 sets them on the session's landing event only); a session without one has null
  UTM (direct or unknown). ``traffic_source`` is the user's *first* acquisition, not the
  session's, so it is used only with the option ``utm_fallback: first_touch``;
- ``event``: :data:`EVENT_MAP` (``view_item`` -> ``product_view`` ...), extended by shop.yaml's
  ``events:``; other names pass through unchanged;
- ``product_id``/``category``/``price``: the event's first item. ``items`` is a REPEATED
  RECORD (``item_id``, ``item_name``, ``item_category``, ``price``, ``quantity``,
  ``item_revenue`` ...): an ``add_to_cart`` of a bundle or a ``begin_checkout``/``purchase`` of
  a basket lists several. The events table keeps **one row per GA4 event**, so event counts,
  page views, sessions and funnel steps equal GA4's own; the items after the first are counted
  in the ledger, ``additional_items`` (items) and ``events_with_several_items`` (events), and a
  purchase's items all go into its order (below);
- orders (option ``orders: true``, the default): one per ``ecommerce.transaction_id`` of the
  ``purchase`` events, the earliest event kept; repeats are ``duplicate_purchase_event``, purchases
  without a transaction id ``purchase_without_transaction_id``. From all the purchase's items:
  ``revenue`` is ``purchase_revenue``, else the ``value`` parameter, else the sum of the items'
  line revenue (noted ``revenue_from_items``); ``items`` is ``total_item_quantity``, else the
  sum of the items' ``quantity`` (an item without one counts 1); ``category`` is the category
  of the item with the largest line revenue (``item_revenue``, else ``price`` x ``quantity``;
  the first listed on a tie). Set ``orders: false`` when the shop system's export (Shopify,
  Cafe24) gives the orders. A purchase's amounts are read before repeats are dropped, so a
  repeated purchase event with an amount that is not a number is refused too.

``crmlab import`` applies these rules file by file in bounded memory, with the same result
(:mod:`crmlab.io.sources.stream`; option ``chunk_files``, default 1).
"""
from __future__ import annotations

import re

import pandas as pd

from . import readers, times
from .base import Output, event_map, examples_from, text_ids
from .mapping import Mapping, Source
from .pii import refuse_plain

EVENT_MAP = {
    "page_view": "page_view", "view_item": "product_view", "view_search_results": "search",
    "search": "search", "add_to_cart": "add_to_cart", "remove_from_cart": "remove_from_cart",
    "begin_checkout": "begin_checkout", "purchase": "purchase",
}
_PARAMS = ("ga_session_id", "source", "medium", "campaign", "value", "coupon")
_FLAT = ("ga_session_id", "source", "medium", "campaign", "transaction_id", "purchase_revenue",
         "item_id", "item_category", "price", "device_category", "total_item_quantity", "coupon", "value",
         "n_items", "items_quantity", "items_revenue", "main_category")


def _param(params, key):
    for p in params if params is not None else ():
        if p.get("key") == key:
            v = p.get("value") or {}
            for k in ("string_value", "int_value", "double_value", "float_value"):
                if v.get(k) is not None:
                    return v[k]
    return None


def _get(rec, key):
    return rec.get(key) if isinstance(rec, dict) else None


def _first_item(items, key):
    items = list(items) if items is not None else []
    return _get(items[0], key) if items else None


def _num(v) -> float | None:
    """A number of an item record (NDJSON writes them as text); None when absent or not a number."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if x != x else x


def _basket(items) -> tuple[int, float | None, float | None, object]:
    """``(n_items, quantity, line revenue, main category)`` of an event's items (module docstring)."""
    items = [it for it in (items if items is not None else ()) if isinstance(it, dict)]
    if not items:
        return 0, None, None, None
    qty, lines = [], []
    for it in items:
        q = _num(it.get("quantity"))
        q = 1.0 if q is None else q
        line = _num(it.get("item_revenue"))
        price = _num(it.get("price"))
        qty.append(q)
        lines.append(line if line is not None else (None if price is None else price * q))
    known = [x for x in lines if x is not None]
    top = max(range(len(items)), key=lambda i: (lines[i] if lines[i] is not None else float("-inf"), -i))
    return len(items), sum(qty), (sum(known) if known else None), items[top].get("item_category")


def flatten(raw: pd.DataFrame) -> pd.DataFrame:
    """Nested export rows as the flat columns of :data:`_FLAT` (flat input is returned as is)."""
    if "event_params" not in raw.columns:
        return raw.assign(**{c: None for c in _FLAT if c not in raw.columns})
    out = raw[[c for c in ("event_timestamp", "event_name", "user_pseudo_id", "user_id") if c in raw]].copy()
    params = raw["event_params"]
    for key in _PARAMS:
        out[key] = params.map(lambda ps, k=key: _param(ps, k))
    cts = raw["collected_traffic_source"] if "collected_traffic_source" in raw else pd.Series(None, index=raw.index)
    ts = raw["traffic_source"] if "traffic_source" in raw else pd.Series(None, index=raw.index)
    for col, manual, first in (("source", "manual_source", "source"), ("medium", "manual_medium", "medium"),
                               ("campaign", "manual_campaign_name", "name")):
        out[col] = cts.map(lambda r, k=manual: _get(r, k)).fillna(out[col])
        out[f"first_{col}"] = ts.map(lambda r, k=first: _get(r, k))
    ec = raw["ecommerce"] if "ecommerce" in raw else pd.Series(None, index=raw.index)
    for key in ("transaction_id", "purchase_revenue", "total_item_quantity"):
        out[key] = ec.map(lambda r, k=key: _get(r, k))
    items = raw["items"] if "items" in raw else pd.Series(None, index=raw.index)
    for col, key in (("item_id", "item_id"), ("item_category", "item_category"), ("price", "price")):
        out[col] = items.map(lambda it, k=key: _first_item(it, k))
    out["coupon"] = out["coupon"].fillna(items.map(lambda it: _first_item(it, "coupon")))
    basket = pd.DataFrame(items.map(_basket).tolist(), index=raw.index,
                          columns=["n_items", "items_quantity", "items_revenue", "main_category"])
    out[basket.columns] = basket
    dev = raw["device"] if "device" in raw else pd.Series(None, index=raw.index)
    out["device_category"] = dev.map(lambda r: _get(r, "category"))
    return out


# ------------------------------------------------------------------ nested Parquet, in DuckDB
def _sql_param(key: str, slots: set[str]) -> str:
    """An ``event_params`` value as text, from the typed slots the export has, in :func:`_param`'s order."""
    v = f"list_extract(list_filter(event_params, lambda p: p.key = '{key}'), 1).value"
    found = [f"CAST({v}.{k} AS VARCHAR)" for k in ("string_value", "int_value", "double_value", "float_value")
             if k in slots]
    return f"coalesce({', '.join(found)})" if found else "NULL"


def _sql_flatten(files: list[str], types: dict[str, str]) -> str:
    """The SELECT of :func:`flatten`'s columns from nested export files (same rules, see
    :func:`_basket`): parameters and records are read in DuckDB, never as Python objects."""
    def fields(col) -> set[str]:  # the names in a STRUCT(...) type, loosely (DuckDB quotes some)
        return set(re.findall(r'[(,]\s*"?(\w+)"?\s', types.get(col, "")))

    def field(col, key, cast=None):
        if key not in fields(col):
            return "NULL"
        return f"TRY_CAST({col}.{key} AS {cast})" if cast else f"{col}.{key}"
    has = lambda k: k in fields("items")  # noqa: E731
    qty = "coalesce(TRY_CAST(x.quantity AS DOUBLE), 1)" if has("quantity") else "1"
    price = "TRY_CAST(x.price AS DOUBLE)" if has("price") else "NULL"
    line = f"coalesce(TRY_CAST(x.item_revenue AS DOUBLE), {price} * {qty})" if has("item_revenue") else f"{price} * {qty}"
    first = lambda k: f"items[1].{k}" if has(k) else "NULL"  # noqa: E731
    cols = [c for c in ("event_timestamp", "event_name", "user_pseudo_id", "user_id") if c in types]
    params = ", ".join(f"{_sql_param(k, fields('event_params'))} AS _p_{k}" for k in _PARAMS)
    items = ("coalesce(len(items), 0) AS n_items, "
             f"list_transform(items, lambda x: {qty}) AS _qty, list_transform(items, lambda x: {line}) AS _lines"
             if "items" in types else "0 AS n_items, NULL::DOUBLE[] AS _qty, NULL::DOUBLE[] AS _lines")
    main = ("CASE WHEN n_items = 0 THEN NULL WHEN list_max(_lines) IS NULL THEN items[1].item_category "
            "ELSE list_extract(items, list_position(_lines, list_max(_lines))).item_category END"
            if has("item_category") else "NULL")
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"""
WITH e AS (
  SELECT {', '.join(cols)}, filename AS _path, {params},
         {field('collected_traffic_source', 'manual_source')} AS _c_source,
         {field('collected_traffic_source', 'manual_medium')} AS _c_medium,
         {field('collected_traffic_source', 'manual_campaign_name')} AS _c_campaign,
         {field('traffic_source', 'source')} AS first_source, {field('traffic_source', 'medium')} AS first_medium,
         {field('traffic_source', 'name')} AS first_campaign,
         {field('ecommerce', 'transaction_id')} AS transaction_id,
         {field('ecommerce', 'purchase_revenue', 'DOUBLE')} AS purchase_revenue,
         {field('ecommerce', 'total_item_quantity', 'DOUBLE')} AS total_item_quantity,
         {first('item_id')} AS item_id, {first('item_category')} AS item_category, {first('price')} AS price,
         {first('coupon')} AS _item_coupon, {field('device', 'category')} AS device_category, {items}
          {', items' if 'items' in types else ''}
  FROM read_parquet([{file_list}], filename = true, union_by_name = true))
SELECT {', '.join(cols)}, _path, _p_ga_session_id AS ga_session_id,
       coalesce(_c_source, _p_source) AS source, coalesce(_c_medium, _p_medium) AS medium,
       coalesce(_c_campaign, _p_campaign) AS campaign, first_source, first_medium, first_campaign,
       transaction_id, purchase_revenue, total_item_quantity, item_id, item_category, price, device_category,
       coalesce(_p_coupon, _item_coupon) AS coupon, _p_value AS value,
       n_items, CASE WHEN n_items > 0 THEN list_sum(_qty) END AS items_quantity, list_sum(_lines) AS items_revenue,
       {main} AS main_category
FROM e"""


def _nested_parquet(found) -> bool:
    """Whether the export files ``found`` are all nested Parquet (then flattened in DuckDB)."""
    if not found or any(readers._kind(f) not in (".parquet", ".pq") for f in found):
        return None
    import pyarrow.parquet as pq
    names = pq.read_schema(found[0]).names
    return "event_params" in names


def flatten_in_duckdb(files: list[str], root) -> pd.DataFrame:
    """Nested Parquet export files as :func:`flatten`'s flat columns, computed in DuckDB: the
    nested records never become Python objects (1M events held 3.6 GiB that way, bench/ga4_bench.py)."""
    from pathlib import Path

    from ..engine import default_connection
    con = default_connection().con
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet([{file_list}], union_by_name = true)").fetchall()
    types = {name: str(kind) for name, kind, *_ in described}
    flat = con.sql(_sql_flatten(files, types)).to_arrow_table().to_pandas()
    for c in flat.columns:  # text as the object columns of the pandas path (same canonical dtypes)
        if pd.api.types.is_string_dtype(flat[c]) and flat[c].dtype != object:
            flat[c] = flat[c].astype(object)
    root = Path(root)
    paths = flat.pop("_path").astype("category")
    rel = {p: (str(Path(p).relative_to(root)) if root.is_dir() else Path(p).name) for p in paths.cat.categories}
    flat["_file"] = paths.cat.rename_categories(rel).astype("object")
    return flat


def _users(flat: pd.DataFrame, src: Source) -> pd.Series:
    pseudo = "ga4:" + text_ids(flat["user_pseudo_id"]).astype("string")
    if src.opt("user") == "pseudo" or "user_id" not in flat:
        return pseudo.astype("object")
    uid = text_ids(flat["user_id"])
    refuse_plain(uid, "events", "user_id", src.name)  # Google's terms forbid personal data in user_id
    return uid.fillna(pseudo).astype("object")


_TIMEOUT = pd.Timedelta(minutes=30)


def _fill_sessions(sid: pd.Series, pseudo: pd.Series, t: pd.Series, stamp: pd.Series) -> pd.Series:
    """Session ids for events without ``ga_session_id`` (see the module docstring)."""
    if sid.notna().all():
        return sid
    df = pd.DataFrame({"sid": sid.astype("object"), "user": pseudo, "t": t}).sort_values(["user", "t"], kind="stable")
    g = df.groupby("user", sort=False)
    prev_sid, prev_t = g["sid"].ffill(), df["t"].where(df["sid"].notna()).groupby(df["user"]).ffill()
    next_sid, next_t = g["sid"].bfill(), df["t"].where(df["sid"].notna()).groupby(df["user"]).bfill()
    fill = prev_sid.where(df["t"] - prev_t <= _TIMEOUT)
    fill = fill.fillna(next_sid.where(next_t - df["t"] <= _TIMEOUT))
    own = df["user"].astype("string") + ":derived:" + stamp.loc[df.index].astype("string")
    out = df["sid"].fillna(fill).fillna(own.astype("object"))
    return out.loc[sid.index]


def _session_utm(pre: pd.DataFrame, src: Source) -> pd.DataFrame:
    """UTM of each event's session (first non-null in the session, in export order), see the
    module docstring. ``pre["session_id"]`` is ``user_pseudo_id:ga_session_id`` (null without one)."""
    cols = ["source", "medium", "campaign"]
    key = pre["session_id"].astype("string")
    utm = pre[cols].astype("object")
    has_session = key.notna()
    if has_session.any():
        firsts = utm[has_session].groupby(key[has_session]).transform("first")
        utm.loc[has_session, cols] = firsts
    if src.opt("utm_fallback") == "first_touch":
        for c in cols:
            utm[c] = utm[c].fillna(pre.get(f"_first_{c}"))
    return utm


def _event_rows(flat: pd.DataFrame, m: Mapping, src: Source, out: Output) -> pd.DataFrame:
    """What each event row gives on its own (times, ids, names, first item, its own UTM) and its
    ledger notes; the session rules (:func:`_sessions`) need the user's other events."""
    ex = examples_from(flat, ["event_timestamp", "event_name", "user_pseudo_id", "ga_session_id", "_file"])
    t = times.epoch(flat["event_timestamp"], "us", m.timezone, table="events", column="event_timestamp", examples=ex)
    sid = text_ids(flat["ga_session_id"])
    pseudo = text_ids(flat["user_pseudo_id"])
    names = event_map(EVENT_MAP, m)
    pre = pd.DataFrame({
        "user_id": flat["user_id_canonical"], "time": t,
        "event": flat["event_name"].map(lambda n: names.get(n, n)),
        "session_id": (pseudo.astype("string") + ":" + sid.astype("string")).astype("object"),
        "product_id": text_ids(flat["item_id"]), "category": flat["item_category"].astype("object"),
        "price": readers.numbers(flat["price"], "events", "price", ex),
        "source": flat["source"], "medium": flat["medium"], "campaign": flat["campaign"],
        "device": flat["device_category"], "_pseudo": pseudo, "_stamp": text_ids(flat["event_timestamp"])})
    if src.opt("utm_fallback") == "first_touch":
        for c in ("source", "medium", "campaign"):
            if f"first_{c}" in flat:
                pre[f"_first_{c}"] = flat[f"first_{c}"]
    lg = out.ledger("events")
    lg.rows_in += len(flat)
    lg.note("missing_ga_session_id", int(sid.isna().sum()))
    n_items = pd.to_numeric(flat["n_items"], errors="coerce").fillna(0)
    lg.note("additional_items", int((n_items - 1).clip(lower=0).sum()))
    lg.note("events_with_several_items", int((n_items > 1).sum()))
    return pre


def _sessions(pre: pd.DataFrame, src: Source) -> pd.DataFrame:
    """The events table from :func:`_event_rows` of *all* events of the users in ``pre``, in export
    order: sessions for events without ``ga_session_id`` and the session's UTM on every event."""
    utm = _session_utm(pre, src)
    session = _fill_sessions(pre["session_id"], pre["_pseudo"], pre["time"], pre["_stamp"])
    ev = pre.drop(columns=[c for c in pre.columns if c.startswith("_")]).assign(session_id=session)
    ev[["source", "medium", "campaign"]] = utm
    return ev


def _purchase_rows(flat: pd.DataFrame, pre: pd.DataFrame, out: Output) -> pd.DataFrame:
    """The purchase events with a transaction id, their order fields read row by row; purchases
    without one are counted (``purchase_without_transaction_id``)."""
    buy = flat["event_name"].eq("purchase")
    p = flat[buy]
    lg = out.ledger("orders")
    lg.rows_in += len(p)
    tid = text_ids(p["transaction_id"]).mask(lambda s: s.eq("(not set)"))
    lg.exclude("purchase_without_transaction_id", int(tid.isna().sum()))
    p = p.assign(order_id=tid)[tid.notna()]
    ex = examples_from(p, ["order_id", "event_timestamp", "purchase_revenue", "_file"])
    given = readers.numbers(p["purchase_revenue"].fillna(p["value"]), "orders", "purchase_revenue", ex)
    lines = pd.to_numeric(p["items_revenue"], errors="coerce")
    items = readers.numbers(p["total_item_quantity"], "orders", "total_item_quantity", ex)
    items = items.fillna(pd.to_numeric(p["items_quantity"], errors="coerce"))
    return pd.DataFrame({"order_id": p["order_id"], "user_id": pre.loc[p.index, "user_id"],
                         "time": pre.loc[p.index, "time"], "revenue": given, "_lines": lines.astype(float),
                         "coupon": p["coupon"], "items": items.astype(float),
                         "category": p["main_category"].fillna(p["item_category"]).astype("object")})


def _orders(rows: pd.DataFrame, out: Output) -> pd.DataFrame:
    """One order per transaction id from :func:`_purchase_rows` of *all* its purchase events (in
    export order): the earliest kept, repeats counted as ``duplicate_purchase_event``."""
    lg = out.ledger("orders")
    p = rows.sort_values("time", kind="stable")
    dup = p["order_id"].duplicated()
    lg.exclude("duplicate_purchase_event", int(dup.sum()))
    p = p[~dup]
    lg.note("revenue_from_items", int((p["revenue"].isna() & p["_lines"].notna()).sum()))
    return pd.DataFrame({"order_id": p["order_id"], "user_id": p["user_id"], "time": p["time"],
                         "revenue": p["revenue"].fillna(p["_lines"]), "coupon": p["coupon"],
                         "items": p["items"].round().astype("Int64"),
                         "category": p["category"].astype("object")}).reset_index(drop=True)


def read_flat(src: Source, files: list | None = None, nested: bool | None = None) -> pd.DataFrame:
    """The export files ``files`` (default: all of ``src.path``) as :func:`flatten`'s columns, with
    ``user_id_canonical``. ``nested``: whether the export is nested Parquet (read in DuckDB)."""
    files = readers.files(src.path, "events") if files is None else files
    if nested is None:
        nested = _nested_parquet(files)
    if nested:
        flat = flatten_in_duckdb([str(f) for f in files], src.path)
        readers.require_columns(flat, ["event_timestamp", "event_name", "user_pseudo_id"], "events", src.name, "GA4")
    else:
        raw = readers.read_files(files, src.path, "events")
        readers.require_columns(raw, ["event_timestamp", "event_name", "user_pseudo_id"], "events", src.name, "GA4")
        flat = flatten(raw)
        if "_file" in raw:
            flat["_file"] = raw["_file"]
    flat["user_id_canonical"] = _users(flat, src)
    return flat


def adapt(src: Source, m: Mapping) -> Output:
    flat = read_flat(src)
    out = Output(src.name, "ga4")
    pre = _event_rows(flat, m, src, out)
    purchases = _purchase_rows(flat, pre, out) if src.opt("orders", True) else None
    out.tables["events"] = _text_as_objects(_sessions(pre, src))
    if purchases is not None:
        out.tables["orders"] = _text_as_objects(_orders(purchases, out))
    return out


def _text_as_objects(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as object dtype with None for missing, whichever reader (pandas or DuckDB) the
    export went through, so both give the same frames."""
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df
