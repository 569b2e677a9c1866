"""`make bench`: generate data, time every operation in fresh processes, write bench/results.md.

Each (operation, implementation, scale) runs ``--repeats`` times (default 3), each run in a
new Python process; the table reports the median time and the largest peak RSS. Ratios:
crmlab / SQL (goal <= 1.3) and peer / crmlab.

    python -m bench.run                       # every scale (see applicable() for what runs where)
    python -m bench.run --scales 1M,10M --impls crmlab,sql
    python -m bench.run --ops rfm,retention --repeats 5
    python -m bench.run --peer-repeats 3           # also repeat the slow peers (Spark, lifetimes)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .generate import ORDER_SCALES, generate

HERE = Path(__file__).resolve().parent
OPS = ("sessionize", "sessionize_parquet", "funnel", "funnel_best", "retention", "rfm", "rfm_lifetimes", "attribution", "abstats", "weekly_report")
IMPLS = ("crmlab", "crmlab_warm", "sql", "pandas", "spark", "lifetimes", "chdb")
LIFETIMES_VENV = HERE / ".venv-lifetimes"
TIME = Path("/usr/bin/time")  # Debian package `time`


def ensure_lifetimes_venv() -> Path | None:
    """lifetimes needs pandas < 2, so it lives in its own virtual environment."""
    py = LIFETIMES_VENV / "bin" / "python"
    if py.exists():
        return py
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LIFETIMES_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "lifetimes==0.11.3", "pandas<2", "numpy<2",
                        "scipy<1.14", "pyarrow<15", "autograd"], check=True)
        return py
    except subprocess.CalledProcessError as e:
        print(f"lifetimes environment could not be built: {e}", file=sys.stderr)
        return None


def run_once(op: str, impl: str, data: Path, timeout: int) -> dict:
    if impl == "lifetimes":
        py = ensure_lifetimes_venv()
        if py is None:
            return {"error": "no lifetimes venv"}
        cmd = [str(py), str(HERE / "lifetimes_rfm.py"), str(data)]
    else:
        cmd = [sys.executable, "-m", "bench.task", op, impl, str(data)]
    if op == "weekly_report":
        return _run_tree(data, timeout)
    # GNU time reports the child's own peak RSS (from wait4). The child's self-reported
    # ru_maxrss is not used: it can carry the forking parent's high-water mark across exec.
    if TIME.exists():
        cmd = [str(TIME), "-f", "MAXRSS_KB=%M", *cmd]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout}s"}
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = [l for l in (p.stderr or p.stdout).strip().splitlines() if not l.startswith("MAXRSS_KB=")][-1:] or ["?"]
        return {"error": f"exit {p.returncode}: {tail[0][:120]}"}
    out = json.loads(lines[-1])
    rss = [l for l in p.stderr.splitlines() if l.startswith("MAXRSS_KB=")]
    if rss:
        out["peak_rss_mib"] = int(rss[-1].split("=", 1)[1]) / 1024
    return out


def _run_tree(data: Path, timeout: int) -> dict:
    """The weekly report, as a user runs it: ``python -m crmlab report weekly`` from a fresh
    process. The CLI starts a kernel per notebook, so the peak is of the whole process tree
    (sampled with psutil, bench/proctree.py); the time is the CLI's wall time, start-up included."""
    import shutil
    import tempfile

    from .proctree import measure
    out = Path(tempfile.mkdtemp(prefix="crmlab-bench-report-"))
    cmd = [sys.executable, "-m", "crmlab", "report", "weekly", "--source", str(data), "--out", str(out),
           "--week", "2026-W47", "--no-progress"]
    keep = Path(data).parent / f"report-{Path(data).name}"  # the last run's reports, for bench.compare_reports
    try:
        with open(os.devnull, "w") as sink:
            m = measure(cmd, timeout=timeout, cwd=str(HERE.parent), stdout=sink)
        if m["returncode"] == 0:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(out, keep)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if m["returncode"] != 0:
        return {"error": f"exit {m['returncode']}"}
    return {"seconds": m["seconds"], "peak_rss_mib": m["peak_tree_mib"], "largest_process_mib": m["largest_process_mib"],
            "cpu_seconds": m["cpu_seconds"], "rows": 2}


ORDER_OPS = ("retention", "rfm", "rfm_lifetimes")  # what an orders-only scale can run
LARGEST = "100M"


def applicable(op: str, impl: str, scale: str = "10M") -> bool:
    """Which cells a run measures. An orders-only scale runs the order operations. At the
    largest scale, sessionisation into pandas is left out (100M rows need more than the 8 GiB
    budget by themselves): it is measured written to Parquet instead (*sessionize_parquet*);
    pandas and Spark are left out there too (each would take hours); crmlab and the SQL run
    everything else. The weekly report is measured at every event scale."""
    if scale in ORDER_SCALES and op not in ORDER_OPS:
        return False
    if scale == LARGEST and (op == "sessionize" or impl in ("pandas", "spark")):
        return False
    if op == "sessionize_parquet":  # the engine writes the rows; no pandas or Spark peer
        return impl in ("crmlab", "crmlab_warm", "sql") and scale == LARGEST
    if impl == "lifetimes":  # the peer computes lifetimes' definitions: compared with the same call
        return op == "rfm_lifetimes"
    if impl == "chdb":  # ClickHouse's windowFunnel is the peer of the best-attempt funnel only
        return op == "funnel_best"
    if op == "funnel_best" and impl == "pandas":
        return False
    if op == "weekly_report":
        return impl == "crmlab"
    return True


def machine() -> str:
    import psutil
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.machine()}, Python {platform.python_version()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1M,10M,100M,10M-orders")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-repeats", type=int, default=1,
                    help="runs of the slow peers (Spark, lifetimes, pandas at the largest scale)")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--out", default=str(HERE / "results.md"))
    a = ap.parse_args(argv)
    rows = []
    results_json = HERE / "results.json"
    previous = json.loads(results_json.read_text()) if results_json.exists() else []
    for scale in a.scales.split(","):
        t = time.perf_counter()
        data = generate(scale)
        print(f"[{scale}] data ready in {time.perf_counter() - t:.0f} s: {(data / 'meta.json').read_text()}", flush=True)
        for op in a.ops.split(","):
            impls = [i for i in a.impls.split(",") if applicable(op, i, scale)]
            reps = {i: a.peer_repeats if i in ("spark", "lifetimes") or (i == "pandas" and scale == "100M")
                    else a.repeats for i in impls}
            # Round-robin: run r of every implementation, then run r + 1, so that on a shared
            # machine the first call, the warm call and the SQL of one operation see the same
            # load (one implementation's three runs back to back can meet a quiet minute the
            # next one does not).
            all_runs = {i: [] for i in impls}
            loads = {i: [] for i in impls}
            started = {}
            for r in range(max(reps.values(), default=0)):
                for impl in impls:
                    if r >= reps[impl]:
                        continue
                    started.setdefault(impl, time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
                    loads[impl].append(os.getloadavg()[0])  # other users' load, recorded beside the time
                    all_runs[impl].append(run_once(op, impl, data, a.timeout))
                    loads[impl].append(os.getloadavg()[0])
            for impl in impls:
                runs = all_runs[impl]
                ok = [r for r in runs if "seconds" in r]
                row = {"scale": scale, "op": op, "impl": impl, "runs": len(ok), "measured": started[impl],
                       "load_1min": round(max(loads[impl]), 1), "load_median": round(statistics.median(loads[impl]), 1)}
                if ok:
                    row.update(seconds=statistics.median(r["seconds"] for r in ok),
                               peak_rss_mib=max(r["peak_rss_mib"] for r in ok), rows=ok[0]["rows"],
                               all_seconds=[round(r["seconds"], 3) for r in ok])
                    if all("cpu_seconds" in r for r in ok):
                        row["cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in ok)
                        row["all_seconds"] = [r["seconds"] for r in ok]
                        row["largest_process_mib"] = max(r.get("largest_process_mib", 0) for r in ok)
                else:
                    row["error"] = runs[0].get("error")
                print(json.dumps(row), flush=True)
                rows.append(row)
    keep = [r for r in previous if (r["scale"], r["op"], r["impl"]) not in {(x["scale"], x["op"], x["impl"]) for x in rows}]
    allrows = keep + rows
    results_json.write_text(json.dumps(allrows, indent=1))
    Path(a.out).write_text(render(allrows))
    print(f"wrote {a.out}")
    return 0


def render(rows: list[dict]) -> str:
    by = {(r["scale"], r["op"], r["impl"]): r for r in rows}
    scales = [s for s in ("1M", "10M", "100M", "10M-orders") if any(r["scale"] == s for r in rows)]
    dates = sorted(r["measured"] for r in rows if "measured" in r)
    when = f"{dates[0][:10]} to {dates[-1][:10]} (UTC)" if dates else "?"
    lines = ["# Benchmark results", "", f"Machine: {machine()}. Measured {when}; each cell's time is in results.json.", "",
             "*weekly_report* is the whole `python -m crmlab report weekly` run: wall time of the CLI and the",
             "peak of the summed RSS of its process tree (the CLI and each notebook kernel, sampled every",
             "0.2 s by bench/proctree.py), not of one process. *sessionize_parquet* writes every event with",
             "its session to Parquet from the engine (crmlab: `sessionize(..., out=path)`; SQL: `COPY ... TO`).", "",
             "Median of the runs (each in a fresh process; the `runs` of each cell are in results.json), seconds for the operation itself (interpreter",
             "and engine start-up excluded: the first Ibis query, and the JVM for Spark); peak RSS is the",
             "largest of the runs, of the whole process (interpreter and imports included; for Spark the",
             "Python driver only, not the JVM), measured by GNU time. *crmlab* is a first call, which validates its inputs (rules, duplicate",
             "ids: a full scan the hand-written SQL does not do); *warm* is the same call again in the same",
             "session, inputs already validated, as in a notebook. Ratios: `warm/SQL` and `crmlab/SQL`",
             "against the goal (<= 1.3); `peer/crmlab` > 1 means crmlab is faster. Regenerate: `make bench`.",
             "The runs of one operation go round-robin (first call, warm, SQL, then again), so they share",
             "the machine's load; *load* is the median 1-minute load average around the crmlab runs (2 cores).",
             "A run with `--scales`, `--ops` or `--impls` replaces only its own cells; results.json keeps",
             "when each cell was measured (UTC). *10M-orders* holds orders alone (RFM and retention on 10M",
             "orders); the other scales count events, with orders and messages in proportion.", "",
             "*funnel_best* is the ordered funnel counting each user's best attempt; its peer *chdb* is",
             "ClickHouse's `windowFunnel` run in-process by chdb (no pandas peer).", "",
             "| scale | operation | crmlab s | warm s | SQL s | pandas s | Spark s | lifetimes s | chdb s | crmlab/SQL | warm/SQL | pandas/crmlab | Spark/crmlab | lifetimes/crmlab | chdb/crmlab | crmlab peak MiB | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def sec(r):
        if r is None:
            return "—"
        return f"{r['seconds']:.2f}" if "seconds" in r else f"({r.get('error', 'failed')})"

    def ratio(a, b):
        if a and b and "seconds" in a and "seconds" in b and b["seconds"] > 0:
            return f"{a['seconds'] / b['seconds']:.2f}"
        return "—"

    def load(r):  # the machine's 1-minute load average around the crmlab runs (median; else the largest)
        if r is None:
            return "—"
        return str(r.get("load_median", r.get("load_1min", "—")))

    for s in scales:
        for op in OPS:
            c = by.get((s, op, "crmlab"))
            if c is None and not any(k[:2] == (s, op) for k in by):
                continue
            wm, q, p, sp, lt, ch = (by.get((s, op, i)) for i in ("crmlab_warm", "sql", "pandas", "spark", "lifetimes", "chdb"))
            mem = f"{c['peak_rss_mib']:.0f}" if c and "peak_rss_mib" in c else "—"
            lines.append(f"| {s} | {op} | {sec(c)} | {sec(wm)} | {sec(q)} | {sec(p)} | {sec(sp)} | {sec(lt)} | {sec(ch)} | "
                         f"{ratio(c, q)} | {ratio(wm, q)} | {ratio(p, c)} | {ratio(sp, c)} | {ratio(lt, c)} | {ratio(ch, c)} | {mem} | {load(c)} |")
    weekly = [by[(sc, "weekly_report", "crmlab")] for sc in ("1M", "10M", "100M") if (sc, "weekly_report", "crmlab") in by]
    if weekly:
        lines += ["", "## Weekly report, whole run", "",
                  "`python -m crmlab report weekly --source bench/data/<scale> --week 2026-W47` from a fresh process",
                  "(bench/run.py `_run_tree`): median wall time of the runs, CPU time (user + system of the whole",
                  "process tree), peak of the tree's summed RSS, and the machine's 1-minute load average when measured",
                  "(2 cores: a load above 2 means other users' processes were waiting for the same cores).", "",
                  "| scale | wall s (runs) | CPU s | peak tree MiB | largest process MiB | load | measured |",
                  "|---|---|---|---|---|---|---|"]
        for r in weekly:
            if "seconds" not in r:
                lines.append(f"| {r['scale']} | ({r.get('error')}) | | | | | {r.get('measured', '')} |")
                continue
            runs = ", ".join(f"{x:.1f}" for x in r.get("all_seconds", []))
            lines.append(f"| {r['scale']} | {r['seconds']:.1f} ({runs}) | {r.get('cpu_seconds', '—')} | {r['peak_rss_mib']:.0f} | "
                         f"{r.get('largest_process_mib', '—')} | {r.get('load_1min', '—')} | {r.get('measured', '')} |")
    notes = HERE / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
