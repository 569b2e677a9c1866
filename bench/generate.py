"""Benchmark data: the synthetic shop at 1M, 10M and 100M events, written as Parquet.

Users are generated in chunks (each chunk its own seed and user-id prefix), so the largest
scale never holds more than one chunk in memory. Orders, messages and assignments come in
proportion, since they are generated for the same users.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SCALES = {"1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}
#: Order-only scales (the RFM and retention benchmarks of 10M orders): orders.parquet alone.
ORDER_SCALES = {"10M-orders": 10_000_000}
#: Where the scales are written: ``CRMLAB_BENCH_DATA``, else bench/data (a symlink to a disk
#: with room is fine: 100M events take about 1.6 GB of Parquet).
DATA = Path(os.environ.get("CRMLAB_BENCH_DATA") or Path(__file__).resolve().parent / "data")
TABLES = ("customers", "events", "orders", "messages", "assignments")
WEEKS = 12
END = "2026-11-23"


def _events_per_user(seed: int = 0) -> float:
    from crmlab.datasets import synthetic_shop
    d = synthetic_shop(n_users=4000, weeks=WEEKS, seed=seed, end=END)
    return len(d.events) / 4000


def _local(df):
    """Parquet holds the shop's local wall-clock time (the engine's convention)."""
    import pandas as pd
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_localize(None)
    return out


def generate(scale: str, chunk_users: int = 100_000, force: bool = False) -> Path:
    target = DATA / scale
    if (target / "meta.json").exists() and not force:
        return target
    if scale in ORDER_SCALES:
        return write_orders(target, ORDER_SCALES[scale], label=scale)
    n_users = int(SCALES[scale] / _events_per_user())
    return write(target, n_users, chunk_users, label=scale)


def write_orders(target: Path, n_orders: int, seed: int = 0, label: str = "") -> Path:
    """About ``n_orders`` orders over 18 months up to :data:`END` (the CDNOW shape: many one-time
    buyers, a long tail of frequent ones): 2 in 5 customers buy once, the others a negative
    binomial number of times (at least 2, mean 6.5); KRW revenue is lognormal. The synthetic shop's
    own orders are too few for this scale (10M orders would need about 350M events)."""
    import numpy as np
    import pandas as pd
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_users = int(n_orders / 4.3)  # expected orders per customer: 0.4 x 1 + 0.6 x (2 + 4.5)
    repeat = rng.random(n_users) < 0.6
    k = 1 + np.where(repeat, 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + 4.5), n_users), 0)
    end = pd.Timestamp(END)
    span = pd.Timedelta(days=548) / pd.Timedelta(seconds=1)
    first = rng.random(n_users) * span  # seconds after the start
    user = np.repeat(np.arange(n_users), k)
    is_first = np.ones(len(user), bool)
    is_first[1:] = user[1:] != user[:-1]
    # later orders fall uniformly between the first order and the end of the period
    offset = np.where(is_first, 0.0, rng.random(len(user)) * (span - first[user]))
    secs = first[user] + offset
    time_ = (end - pd.Timedelta(days=548)).to_datetime64() + (secs * 1e6).astype("timedelta64[us]")
    df = pd.DataFrame({"order_id": np.char.add("o", np.arange(len(user)).astype(str)),
                       "user_id": np.char.add("u", user.astype(str)),
                       "time": time_.astype("datetime64[us]"),
                       "revenue": np.round(rng.lognormal(10.3, 0.7, len(user)), -1)})
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), target / "orders.parquet")
    (target / "meta.json").write_text(json.dumps({"scale": label, "users": n_users, "rows": {"orders": len(df)},
                                                  "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    return target


def write(target: Path, n_users: int, chunk_users: int = 100_000, label: str = "") -> Path:
    """Write ``n_users`` synthetic users' tables as Parquet into ``target``, chunk by chunk."""
    from crmlab.datasets import synthetic_shop
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    meta = target / "meta.json"
    writers: dict[str, pq.ParquetWriter] = {}
    counts = dict.fromkeys(TABLES, 0)
    t0 = time.perf_counter()
    done, chunk = 0, 0
    while done < n_users:
        n = min(chunk_users, n_users - done)
        d = synthetic_shop(n_users=n, weeks=WEEKS, seed=1000 + chunk, end=END)
        for name in TABLES:
            df = getattr(d, name)
            for col in ("user_id", "order_id", "message_id", "session_id"):
                if col in df.columns:  # disjoint ids across chunks
                    df = df.assign(**{col: f"c{chunk}_" + df[col].astype(str)})
            tbl = pa.Table.from_pandas(_local(df), preserve_index=False)
            if name not in writers:
                # microsecond times: Spark cannot read nanosecond Parquet timestamps
                writers[name] = pq.ParquetWriter(target / f"{name}.parquet", tbl.schema,
                                                 coerce_timestamps="us", allow_truncated_timestamps=True)
            writers[name].write_table(tbl.cast(writers[name].schema))
            counts[name] += len(df)
        done += n
        chunk += 1
    for w in writers.values():
        w.close()
    meta.write_text(json.dumps({"scale": label, "users": n_users, "rows": counts,
                                "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    return target


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("scales", nargs="*", default=["1M", "10M"])
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    for s in a.scales:
        p = generate(s, force=a.force)
        print(p, (p / "meta.json").read_text())
