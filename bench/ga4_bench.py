"""Wall time and peak memory of ``crmlab import`` on a GA4 BigQuery export (issue 14, adapters' scale).

Writes ``N`` events nested as BigQuery's export is (Google's "[GA4] BigQuery Export schema":
``event_params`` a REPEATED RECORD of ``{key, value: {string_value, int_value, float_value,
double_value}}``, ``items`` a REPEATED RECORD of ``{item_id, item_name, item_category, price,
quantity, item_revenue}``, the RECORDs ``ecommerce``, ``device``, ``traffic_source`` and
``collected_traffic_source``) to ``bench/data/ga4-<N>/events_*.parquet`` (one file per million
events), a ``shop.yaml`` with one ``ga4`` source, then runs

    python -m crmlab import bench/data/ga4-<N> --mapping bench/data/ga4-<N>/shop.yaml --out <tmp>

under :mod:`bench.proctree` (summed RSS of the process tree, sampled every 0.2 s) and prints
the wall time, CPU time, peak RSS and the export's size on disk.

    python -m bench.ga4_bench --events 1000000
    python -m bench.ga4_bench --events 5000000 --data /work/benchdata/ga4 --chunk-files 1

``crmlab import`` reads a GA4 export ``chunk_files`` files at a time (the source option in
shop.yaml, ``--chunk-files`` here, default 1; :mod:`crmlab.io.sources.stream`), so its peak
memory should be about that of one file, whatever the export's length.

The shape, drawn with numpy: 30 events per user (70 % never log in: ``user_id`` null) in
sessions of about 6 events; 4 event parameters per event (``page_location``,
``ga_session_id``, ``ga_session_number``, ``engagement_time_msec``; real exports carry 10-20,
so this understates the nested data); 1-3 items on item-level events (``view_item``,
``add_to_cart``, ``begin_checkout``, ``purchase``), none on the others; a ``purchase`` has
an ``ecommerce`` record with a unique ``transaction_id``; ``collected_traffic_source`` on the
session's first event only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
EVENTS = np.array(["session_start", "page_view", "view_item", "view_search_results", "add_to_cart",
                   "begin_checkout", "purchase"])
P_EVENTS = np.array([0.04, 0.45, 0.3, 0.05, 0.1, 0.04, 0.02])
ITEM_EVENTS = np.isin(EVENTS, ["view_item", "add_to_cart", "begin_checkout", "purchase"])
CATEGORIES = np.array(["fashion", "beauty", "food", "home"])
DEVICES = np.array(["mobile", "desktop", "tablet"])
SOURCES = np.array(["google", "naver", "kakao", "braze"])
MEDIA = np.array(["organic", "cpc", "crm", "email"])
EVENTS_PER_FILE = 1_000_000


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else str(n)


def _array(values, *args, **kw) -> pa.Array:
    """``pa.array``, in one chunk (numpy text arrays of millions of rows come back chunked)."""
    a = pa.array(values, *args, **kw)
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _list_of_structs(counts: np.ndarray, fields: dict[str, pa.Array]) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype("int32")
    return pa.ListArray.from_arrays(_array(offsets), pa.StructArray.from_arrays(list(fields.values()),
                                                                                  names=list(fields)))


def _params(session_id: np.ndarray, session_no: np.ndarray, rng) -> pa.ListArray:
    """Four parameters per event, each value in its typed slot (the others null), as GA4 writes them."""
    k = len(session_id)
    keys = np.tile(np.array(["page_location", "ga_session_id", "ga_session_number", "engagement_time_msec"]), k)
    pages = np.char.add("https://shop.example/p/", rng.integers(0, 5000, k).astype(str))
    strings = np.empty(4 * k, dtype=object)
    strings[0::4] = pages
    ints = np.zeros(4 * k, dtype="int64")
    ints[1::4], ints[2::4], ints[3::4] = session_id, session_no, rng.integers(0, 60_000, k)
    int_mask = np.ones(4 * k, dtype=bool)
    int_mask[1::4] = int_mask[2::4] = int_mask[3::4] = False
    value = pa.StructArray.from_arrays(
        [_array(strings, pa.string()), _array(ints, mask=int_mask),
         pa.nulls(4 * k, pa.float64()), pa.nulls(4 * k, pa.float64())],
        names=["string_value", "int_value", "float_value", "double_value"])
    offsets = _array(np.arange(0, 4 * k + 1, 4, dtype="int32"))
    return pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([_array(keys), value], names=["key", "value"]))


def _items(names: np.ndarray, rng) -> tuple[pa.ListArray, np.ndarray, np.ndarray]:
    counts = np.where(ITEM_EVENTS[names], rng.integers(1, 4, len(names)), 0)
    m = int(counts.sum())
    price = rng.integers(1, 200, m) * 1000.0
    qty = rng.integers(1, 3, m)
    ids = rng.integers(0, 5000, m)
    arr = _list_of_structs(counts, {
        "item_id": _array(np.char.add("SKU-", ids.astype(str))),
        "item_name": _array(np.char.add("product ", ids.astype(str))),
        "item_category": _array(CATEGORIES[ids % 4]),
        "price": _array(price), "quantity": _array(qty), "item_revenue": _array(price * qty)})
    offsets = np.concatenate([[0], np.cumsum(counts)])
    revenue = np.add.reduceat(np.append(price * qty, 0.0), offsets[:-1]) * (counts > 0)
    quantity = np.add.reduceat(np.append(qty, 0), offsets[:-1]) * (counts > 0)
    return arr, revenue, quantity


def _chunk(lo: int, k: int, n_users: int, rng) -> pa.Table:
    users = rng.integers(0, n_users, k)
    session_no = rng.integers(1, 6, k)
    start = 1_788_220_800 + (users * 7919 + session_no * 104_729) % (12 * 7 * 86400)  # from 2026-09-01
    ts = (start * 1_000_000 + rng.integers(0, 20 * 60 * 1_000_000, k)).astype("int64")
    names = rng.choice(len(EVENTS), k, p=P_EVENTS)
    items, revenue, quantity = _items(names, rng)
    buy = EVENTS[names] == "purchase"
    tid = np.char.add("T-", (lo + np.arange(k)).astype(str))
    ecommerce = pa.StructArray.from_arrays(
        [_array(tid, mask=~buy), _array(revenue, mask=~buy), _array(quantity, mask=~buy)],
        names=["transaction_id", "purchase_revenue", "total_item_quantity"], mask=_array(~buy))
    pseudo = np.char.add(users.astype(str), ".1788220800")
    logged_in = (users % 10) < 3
    first = EVENTS[names] == "session_start"
    src = rng.integers(0, len(SOURCES), k)
    cts = pa.StructArray.from_arrays(
        [_array(SOURCES[src]), _array(MEDIA[src]), _array(np.char.add("camp", (src % 3).astype(str)))],
        names=["manual_source", "manual_medium", "manual_campaign_name"], mask=_array(~first))
    return pa.table({
        "event_date": _array(np.full(k, "20261001")),
        "event_timestamp": _array(ts),
        "event_name": _array(EVENTS[names]),
        "event_params": _params(start, session_no, rng),
        "user_pseudo_id": _array(pseudo),
        "user_id": _array(np.char.add("C", users.astype(str)), mask=~logged_in),
        "device": pa.StructArray.from_arrays([_array(DEVICES[users % 3]), _array(np.full(k, "Android"))],
                                             names=["category", "operating_system"]),
        "traffic_source": pa.StructArray.from_arrays(
            [_array(SOURCES[users % 4]), _array(MEDIA[users % 4]), _array(np.full(k, "(organic)"))],
            names=["source", "medium", "name"]),
        "collected_traffic_source": cts,
        "ecommerce": ecommerce,
        "items": items,
    })


def write_export(n: int, target: Path, seed: int = 0, chunk_files: int = 1) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    done = target / "complete.txt"  # not .json: the adapter reads every .json of the folder
    (target / "shop.yaml").write_text("currency: KRW\ntimezone: Asia/Seoul\nsources:\n"
                                      f"  web: {{adapter: ga4, path: '.', chunk_files: {chunk_files}}}\n",
                                      encoding="utf-8")
    if done.exists() and json.loads(done.read_text())["events"] == n:
        return target
    rng = np.random.default_rng(seed)
    n_users = max(n // 30, 1)
    for i, lo in enumerate(range(0, n, EVENTS_PER_FILE)):
        k = min(EVENTS_PER_FILE, n - lo)
        pq.write_table(_chunk(lo, k, n_users, rng), target / f"events_{i:04d}.parquet")
    done.write_text(json.dumps({"events": n}))
    return target


def main(argv=None) -> int:
    from bench.proctree import measure
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--pythonpath", default=None, help="crmlab checkout to measure (default: this one)")
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the generated exports (default bench/data)")
    ap.add_argument("--chunk-files", type=int, default=1, help="the ga4 source's chunk_files (default 1)")
    ap.add_argument("--drop", action="store_true", help="remove the generated export afterwards")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    folder = write_export(args.events, args.data / f"ga4-{label(args.events)}", chunk_files=args.chunk_files)
    gen = time.perf_counter() - t0
    env = dict(os.environ)
    env["PYTHONPATH"] = args.pythonpath or str(Path(__file__).resolve().parents[1])
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        out = str(Path(tmp) / "out")
        res = measure([sys.executable, "-m", "crmlab", "import", str(folder), "--mapping", str(folder / "shop.yaml"),
                       "--out", out], env=env, stdout=sys.stderr)
        res["output_mib"] = round(sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) / 2**20, 1)
    size = sum(f.stat().st_size for f in folder.glob("*.parquet"))
    res.update(events=args.events, export_mib=round(size / 2**20, 1), generate_seconds=round(gen, 1),
               peak_per_export_mib=round(res["peak_tree_mib"] / (size / 2**20), 2),
               chunk_files=args.chunk_files, load_average_before=load_before,
               load_average=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count())
    res.pop("processes", None)
    print(json.dumps(res))
    if args.drop:
        import shutil
        shutil.rmtree(folder)
    return 0 if res["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
