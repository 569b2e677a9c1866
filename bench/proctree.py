"""Wall time and peak memory of a command's whole process tree (the CLI and its notebook kernels).

GNU time's ``%M`` is the largest single process of the tree (``wait4``'s ``ru_maxrss``), not the
tree's sum; the kernels of a report run one after the other but beside the CLI process, so what
the machine must hold is the sum. This samples the RSS of the command and all its descendants
every ``interval`` seconds with psutil and reports the largest sum, and each process's own peak;
``cpu_seconds`` is the user + system time of the whole tree (on a shared machine the wall time
depends on other users' load, the CPU time much less).

    python -m bench.proctree -- python -m crmlab report weekly --source bench/data/100M --week 2026-W47
"""
from __future__ import annotations

import json
import sys
import threading
import time

import psutil


def measure(cmd: list[str], *, interval: float = 0.2, env=None, cwd=None, timeout: float | None = None,
            stdout=None) -> dict:
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = stdout if stdout is not None else sys.stderr
    p = psutil.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=out)
    peak_sum = 0
    per: dict[int, dict] = {}
    stop = threading.Event()

    def sample():
        nonlocal peak_sum
        while not stop.is_set():
            try:
                procs = [p] + p.children(recursive=True)
            except psutil.Error:
                procs = [p]
            total = 0
            for q in procs:
                try:
                    rss = q.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                d = per.setdefault(q.pid, {"cmd": " ".join(_short(q)), "peak_mib": 0.0})
                d["peak_mib"] = max(d["peak_mib"], rss / 2**20)
            peak_sum = max(peak_sum, total)
            stop.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        rc = p.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        p.kill()
        rc = "timeout"
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # every reaped descendant (kernels included)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    procs = sorted(per.values(), key=lambda d: -d["peak_mib"])
    return {"returncode": rc, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 1),
            "peak_tree_mib": round(peak_sum / 2**20, 1),
            "largest_process_mib": round(procs[0]["peak_mib"], 1) if procs else 0.0,
            "processes": [{"cmd": d["cmd"][:120], "peak_mib": round(d["peak_mib"], 1)} for d in procs[:6]]}


def _short(q: psutil.Process) -> list[str]:
    try:
        return q.cmdline()[:8]
    except psutil.Error:
        return ["?"]


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    print(json.dumps(measure(args), indent=1))
