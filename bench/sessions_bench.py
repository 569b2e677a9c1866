"""Peak memory of ``crmlab.sessions.traffic`` on events without ``session_id`` (issue 14, item 4).

Sessions are derived in the engine (a window sort per user); the bench writes ``N`` events with
every canonical event column but no ``session_id`` to one Parquet file, then runs ``traffic``
in a fresh process and reports that process's peak RSS (``getrusage``), wall time and the
number of sessions.

    python -m bench.sessions_bench --events 3000000            # writes bench/data/sessions-3M/
    python -m bench.sessions_bench --events 30000000 --by device

Events are drawn with numpy, in chunks of one million (the synthetic shop generator of
``bench/generate.py`` is far slower at this scale and the sessioniser needs only the columns'
shapes): 30 events per user on average in 5 sessions of about 6 events each (a session's
events within 20 minutes of its start, the starts spread over 12 weeks).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
EVENTS = np.array(["page_view", "product_view", "search", "add_to_cart", "begin_checkout", "purchase"])
P_EVENTS = np.array([0.45, 0.3, 0.1, 0.1, 0.03, 0.02])
DEVICES = np.array(["mobile", "desktop", "app"])
SOURCES = np.array(["kakao", "naver", "google", "direct"])


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else str(n)


#: Sessions per user; a session's events fall within 20 minutes of its start (one session under
#: the 30-minute timeout unless two of the user's sessions happen to overlap).
SESSIONS_PER_USER = 5


def _session_start(users: np.ndarray, session: np.ndarray, span: int) -> np.ndarray:
    """A fixed pseudo-random start per (user, session), the same in every chunk (a hash)."""
    h = (users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + session.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9))
    h ^= h >> np.uint64(31)
    return (h % np.uint64(span - 20 * 60 * 1_000_000)).astype("int64").astype("timedelta64[us]")


def write_events(n: int, target: Path, chunk: int = 1_000_000, seed: int = 0) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    path = target / "events.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == n:
        return path
    n_users = max(n // 30, 1)
    start = np.datetime64("2026-09-01T00:00:00", "us")
    span = 12 * 7 * 86400 * 1_000_000
    writer = None
    rng = np.random.default_rng(seed)
    try:
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            users = rng.integers(0, n_users, k)
            tbl = pa.table({
                "user_id": pa.array(np.char.add("u", users.astype(str))),
                "time": pa.array(start + _session_start(users, rng.integers(0, SESSIONS_PER_USER, k), span)
                                 + rng.integers(0, 20 * 60 * 1_000_000, k).astype("timedelta64[us]")),
                "event": pa.array(EVENTS[rng.choice(len(EVENTS), k, p=P_EVENTS)]),
                "product_id": pa.array(np.char.add("p", rng.integers(0, 5000, k).astype(str))),
                "category": pa.array(np.array(["fashion", "beauty", "food", "home"])[rng.integers(0, 4, k)]),
                "price": pa.array(rng.integers(1, 200, k) * 1000.0),
                "source": pa.array(SOURCES[rng.integers(0, len(SOURCES), k)]),
                "medium": pa.array(np.array(["crm", "cpc", "organic"])[rng.integers(0, 3, k)]),
                "campaign": pa.array(np.array(["none", "spring", "vip"])[rng.integers(0, 3, k)]),
                "device": pa.array(DEVICES[rng.integers(0, len(DEVICES), k)]),
            })
            if writer is None:
                writer = pq.ParquetWriter(path, tbl.schema)
            writer.write_table(tbl)
    finally:
        if writer is not None:
            writer.close()
    return path


CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
import ibis
if os.environ.get("CRMLAB_BENCH_MEMORY_LIMIT"):  # DuckDB spills beyond it (temp files)
    con = ibis.get_backend()
    con.raw_sql(f"SET memory_limit = '{os.environ['CRMLAB_BENCH_MEMORY_LIMIT']}'")
    con.raw_sql("SET preserve_insertion_order = false")
from crmlab.sessions import traffic
out = traffic(sys.argv[1], period="D", by=(sys.argv[2] or None))
print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "rows": len(out),
                  "sessions": int(out["sessions"].sum()), "how": out.attrs.get("sessions")}))
"""


def measure(path: Path, by: str | None, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), by or ""], capture_output=True, text=True, env=env)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    # ru_maxrss of children is the largest child so far: valid for the first (or a larger) run
    res["peak_rss_gib"] = round(peak_kib / 2**20, 2)
    res["peak_rss_reliable"] = peak_kib > before
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--by", default=None, help="breakdown column (source, medium, campaign, device)")
    ap.add_argument("--pythonpath", default=None, help="crmlab checkout to measure (default: this one)")
    ap.add_argument("--memory-limit", default=None,
                    help="DuckDB memory_limit of the run, e.g. 1500MB (default: DuckDB's, 80%% of RAM)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = write_events(args.events, DATA / f"sessions-v2-{label(args.events)}")
    gen = time.perf_counter() - t0
    if args.memory_limit:
        os.environ["CRMLAB_BENCH_MEMORY_LIMIT"] = args.memory_limit
    res = measure(path, args.by, args.pythonpath)
    res.update(events=args.events, by=args.by, memory_limit=args.memory_limit, generate_seconds=round(gen, 1), cpus=os.cpu_count())
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
