"""What validating one table costs: ``canonical(path, table)`` with the cache cleared, in this process.

    python -m bench.validation_cost 10M orders,messages,assignments --repeats 3
    python -m bench.validation_cost 100M events --columns user_id,time,event   # what the funnel checks

Prints, per table, the least wall and CPU seconds (the process's: DuckDB's threads included) of
the repeats, and the least time DuckDB alone takes for the key's exact distinct count
(``count(DISTINCT hash(key))`` on the file), the part of validation no column choice removes. The engine is started first (as in bench.task), so the first repeat pays no start-up.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scale")
    ap.add_argument("tables", help="comma-separated canonical tables")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--columns", default=None, help="comma-separated columns a call reads (default: all)")
    a = ap.parse_args(argv)
    import os

    import ibis

    import crmlab.io.validate as v
    from crmlab import canonical
    from crmlab.io.engine import default_connection
    default_connection()  # crmlab's own connection, as in bench.task
    ibis.memtable({"x": [1]}).execute()
    cols = a.columns.split(",") if a.columns else None
    data = HERE / "data" / a.scale
    for name in a.tables.split(","):
        wall, cpu = [], []
        for _ in range(a.repeats):
            v.clear_cache()
            c, w = time.process_time(), time.perf_counter()
            canonical(data / f"{name}.parquet", name, columns=cols)
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
        key = _key_seconds(data / f"{name}.parquet", name, a.repeats)
        print(f"{a.scale} {name} ({a.columns or 'all columns'}): wall {min(wall):.3f} s, cpu {min(cpu):.3f} s, "
              f"of which the key's distinct count alone {key} (load {os.getloadavg()[0]:.1f})")
    return 0


def _key_seconds(path: Path, table: str, repeats: int) -> str:
    import duckdb

    from crmlab.io.schema import spec
    keys = spec(table).unique
    if not keys:
        return "- (no key)"
    con = duckdb.connect()
    q = f"SELECT count(DISTINCT hash({', '.join(keys)})) FROM read_parquet('{path}')"
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        con.execute(q).fetchall()
        best = min(best, time.perf_counter() - t)
    return f"{best:.3f} s"


if __name__ == "__main__":
    raise SystemExit(main())
