"""``crmlab import`` of a GA4 export in bounded memory: file by file, then user by user.

A GA4 BigQuery export is one table per day (``events_YYYYMMDD``), and a quarter of a mid-size
shop (100M events) does not fit in memory as one pandas frame. :func:`import_ga4` reads it in
two passes, each holding about one chunk of the export:

1. **by files**: ``chunk_files`` export files at a time (the source option, default 1: one day)
   are flattened and mapped row by row (:func:`crmlab.io.sources.ga4._event_rows`: times, ids,
   pseudonyms' refusal, event names, first item; :func:`~crmlab.io.sources.ga4._purchase_rows`:
   the order fields of purchases). Each row gets its position in the export (``_ord``) and goes
   to a staging file of its *user's bucket* (a hash of ``user_pseudo_id``), each purchase to one
   of its *transaction's bucket* (a hash of ``transaction_id``); the row-wise ledger counts are
   summed.
2. **by buckets**: the rules that read other rows need only rows of one user (sessions: an event
   without ``ga_session_id`` joins its user's adjacent session; the session's landing UTM goes to
   all its events, a session crossing midnight included) or of one transaction (a purchase
   repeated on another day is a ``duplicate_purchase_event``, the earliest kept). A bucket holds
   every row of its users (transactions) from every file, in export order, so
   :func:`~crmlab.io.sources.ga4._sessions` and :func:`~crmlab.io.sources.ga4._orders` give
   exactly what they give on the whole export. Each bucket is written as one Parquet part.

There are as many buckets as chunks, so a bucket holds about a chunk's rows. The tables are
folders of parts, ``events.parquet/part-0000.parquet`` ..., which every reader of a source
folder opens as the table (:func:`crmlab.io.engine.open_source`, ``pandas.read_parquet``); rows
come in bucket order, not export order. Validation then runs on the written parts in DuckDB
(:func:`crmlab.io.validate.canonical`), every row of every part. A DataError met while mapping
stops the import at the first chunk holding a bad row (its row count and examples are that
chunk's).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from . import ga4, readers
from .base import Output
from .mapping import Mapping, Source


def _buckets(keys: pd.Series, k: int) -> pd.Series:
    """A stable bucket in ``range(k)`` per key (nulls in bucket 0)."""
    text = keys.astype("object").where(keys.notna(), "").astype(str).to_numpy(dtype=object)
    return pd.Series(pd.util.hash_array(text, categorize=False) % k, index=keys.index)


def write_part(df: pd.DataFrame, path: Path) -> None:
    """``df`` as one Parquet file, an all-null column typed as text (so that every part of a table
    has the same schema, whichever rows a part holds)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema],
                       metadata=table.schema.metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(schema), path)


def align_parts(paths: list[Path]) -> None:
    """Rewrite the parts of one table to one schema (the columns of all, in order of appearance,
    typed as in the last part, the other sources' rows; a column a part lacks is null there), as
    ``pd.concat`` of the sources' frames would. One part in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    schemas = [pq.read_schema(p) for p in paths]
    fields: dict[str, pa.Field] = {}
    for sch in reversed(schemas):
        for f in sch:
            fields.setdefault(f.name, f)
    order = list(dict.fromkeys(n for sch in schemas for n in sch.names))
    target = pa.schema([fields[n] for n in order])
    for p, sch in zip(paths, schemas):
        if sch.names == order and all(sch.field(n).type == target.field(n).type for n in order):
            continue
        t = pq.read_table(p)
        cols = [t[n].cast(target.field(n).type) if n in sch.names else pa.nulls(len(t), target.field(n).type)
                for n in order]
        pq.write_table(pa.Table.from_arrays(cols, schema=target.remove_metadata()), p)


def chunks(files: list, size: int) -> list[list]:
    return [files[i:i + size] for i in range(0, len(files), size)]


def import_ga4(src: Source, m: Mapping, folder: Path, stage: Path) -> tuple[Output, dict[str, list[Path]]]:
    """Map the GA4 export of ``src`` into parts under ``folder`` (see the module docstring).

    Returns the output (its ledgers; ``tables`` stays empty, ``written`` holds the row counts) and
    ``{table: [part paths]}``. ``stage`` holds the staging files (removed by the caller)."""
    size = src.opt("chunk_files", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        from .mapping import MappingError
        raise MappingError(f"sources.{src.name}.chunk_files={size!r}: expected a whole number of export files >= 1")
    files = readers.files(src.path, "events")
    nested = ga4._nested_parquet(files)
    groups = chunks(files, size)
    k = len(groups)
    out = Output(src.name, "ga4")
    orders = src.opt("orders", True)
    staged: dict[tuple[str, int], list[Path]] = {}
    empty: dict[str, pd.DataFrame] = {}  # each table's staged columns, for an export without its rows
    ord0 = 0
    for c, group in enumerate(groups):
        flat = ga4.read_flat(src, group, nested).reset_index(drop=True)
        pre = ga4._event_rows(flat, m, src, out)
        pre["_ord"] = range(ord0, ord0 + len(pre))
        parts = [("events", pre, _buckets(pre["_pseudo"], k))]
        if orders:
            buys = ga4._purchase_rows(flat, pre, out)
            buys["_ord"] = pre.loc[buys.index, "_ord"]
            parts.append(("orders", buys, _buckets(buys["order_id"], k)))
        ord0 += len(pre)
        del flat
        for table, df, bucket in parts:
            empty.setdefault(table, df.iloc[:0])
            for b, rows in df.groupby(bucket, sort=True):
                path = stage / table / f"bucket-{b:04d}" / f"chunk-{c:05d}.parquet"
                write_part(rows, path)
                staged.setdefault((table, int(b)), []).append(path)
        del pre, parts
    written: dict[str, list[Path]] = {}
    out.written = {}
    for table in ("events", "orders") if orders else ("events",):
        written[table] = []
        out.written[table] = 0
        for b in range(k):
            paths = staged.get((table, b), [])
            if not paths and (b or any(key[0] == table for key in staged)):
                continue  # an empty bucket; a table without any row still gets one (empty) part
            rows = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True) if paths else empty[table]
            rows = rows.sort_values("_ord", kind="stable").drop(columns="_ord").reset_index(drop=True)
            df = ga4._sessions(rows, src) if table == "events" else ga4._orders(rows, out)
            df = ga4._text_as_objects(df)
            path = folder / f"{table}.parquet" / f"part-{b:04d}.parquet"
            write_part(df, path)
            written[table].append(path)
            out.written[table] += len(df)
            del rows, df
            for p in paths:
                p.unlink()
    if stage.exists():
        shutil.rmtree(stage)
    return out, written
