"""Run one benchmarked operation once, in this (fresh) process, and print a JSON line:
seconds (the operation only, imports and interpreter start excluded), peak RSS in MiB, rows."""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def implementations() -> dict[str, dict[str, object]]:
    from . import crmlab_ops, reference
    ops = {}
    for op in ("sessionize", "funnel", "retention", "rfm", "rfm_lifetimes", "attribution", "abstats"):
        ops[op] = {"sql": getattr(reference, f"{op}_sql"), "pandas": getattr(reference, f"{op}_pandas")}
        if hasattr(crmlab_ops, op):
            ops[op]["crmlab"] = getattr(crmlab_ops, op)
            ops[op]["crmlab_warm"] = getattr(crmlab_ops, op)
            ops[op]["spark"] = lambda data, _op=op: crmlab_ops.on_spark(_op, data)
    # the best attempt: no pandas peer (a per-user scan); ClickHouse's windowFunnel (chdb) instead
    ops["funnel_best"] = {"sql": reference.funnel_best_sql, "chdb": reference.funnel_best_chdb,
                          "crmlab": crmlab_ops.funnel_best, "crmlab_warm": crmlab_ops.funnel_best,
                          "spark": lambda data: crmlab_ops.on_spark("funnel_best", data)}
    ops["sessionize_parquet"] = {"sql": reference.sessionize_parquet_sql, "crmlab": crmlab_ops.sessionize_parquet,
                                 "crmlab_warm": crmlab_ops.sessionize_parquet}
    ops["weekly_report"] = {"crmlab": crmlab_ops.weekly_report}
    return ops


def main(op: str, impl: str, data: str) -> None:
    fn = implementations()[op][impl]
    if impl in ("crmlab", "crmlab_warm", "spark"):
        # Imports are not part of the operation (a notebook imports once): load every module
        # the operations use, so that none pays for scipy's import inside its timing.
        for mod in ("cohort", "rfm", "funnel", "sessions", "messages", "uplift"):
            __import__(f"crmlab.{mod}")
    if impl in ("crmlab", "crmlab_warm"):
        # Engine start-up (the first Ibis query of a process connects DuckDB and warms the
        # compiler, ~1 s) is paid once per notebook, not per operation: excluded, like the
        # JVM start-up for Spark. It is crmlab's own connection that the operations use (with
        # its memory limit, threads and spill folder): opened here, and Ibis' default backend
        # with it. (Until 2026-12-02 this warmed a plain Ibis connection instead, and the
        # first call paid for opening crmlab's, ~0.1 s.)
        import ibis

        from crmlab.io.engine import default_connection
        default_connection()
        ibis.memtable({"x": [1]}).execute()
    if impl == "crmlab_warm":
        # The second call of a notebook session: the inputs were validated by the first.
        fn(Path(data))
    if impl == "spark":
        crmlab_ops_setup = __import__("bench.crmlab_ops", fromlist=["spark_connection"])
        crmlab_ops_setup.spark_connection()  # JVM start-up is not part of the operation
    t0 = time.perf_counter()
    out = fn(Path(data))
    seconds = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"op": op, "impl": impl, "seconds": seconds, "peak_rss_mib": max(rss_mib, children),
                      "rows": int(len(out)) if out is not None else 0}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
