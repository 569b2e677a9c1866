"""What a report run asked of Spark, from Spark's own event logs: per application (the command
line's validation, each notebook kernel) the jobs, tasks, task time, bytes read and shuffled.

Run the report with event logs on (the URL's query parameters are Spark settings)::

    python -m crmlab report weekly --week 2026-W47 \\
        --source 'pyspark:///data/10M?spark.eventLog.enabled=true&spark.eventLog.dir=/tmp/events'
    python -m bench.spark_events /tmp/events

The figures are Spark's task metrics (``SparkListenerTaskEnd``), summed (a ``.zstd`` log, Spark 4's default, is read with
the ``zstd`` command): *task s* is executor
run time, the core-seconds a cluster would spend on the same plan; *shuffle written* is what
the exchanges of the plans moved between stages, the network traffic of a cluster run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _lines(log: Path):
    """Event lines of one application: a file, or Spark 4's ``eventlog_v2_*`` folder of parts."""
    files = sorted(f for f in log.iterdir() if f.name.startswith("events_")) if log.is_dir() else [log]
    for f in files:
        if f.suffix == ".zstd":  # Spark 4 compresses event logs with zstd by default
            import subprocess
            text = subprocess.run(["zstd", "-dc", str(f)], check=True, capture_output=True).stdout.decode()
        else:
            text = f.read_text()
        yield from text.splitlines()


def summarise(log: Path) -> dict:
    app, jobs, tasks = "?", 0, 0
    run_ms = cpu_ns = read = shuffle_w = shuffle_r = 0
    stages_with_shuffle = 0
    for line in _lines(log):
        e = json.loads(line)
        kind = e.get("Event")
        if kind == "SparkListenerApplicationStart":
            app = e.get("App Name", "?")
        elif kind == "SparkListenerJobStart":
            jobs += 1
        elif kind == "SparkListenerStageCompleted":
            acc = {a.get("Name"): a.get("Value") for a in e["Stage Info"].get("Accumulables", [])}
            if int(acc.get("internal.metrics.shuffle.write.bytesWritten", 0) or 0) > 0:
                stages_with_shuffle += 1
        elif kind == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            tasks += 1
            run_ms += m.get("Executor Run Time", 0)
            cpu_ns += m.get("Executor CPU Time", 0)
            read += (m.get("Input Metrics") or {}).get("Bytes Read", 0)
            sr = m.get("Shuffle Read Metrics") or {}
            shuffle_r += sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0)
            shuffle_w += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
    mib = 2 ** 20
    return {"log": log.name, "app": app, "jobs": jobs, "tasks": tasks, "task_s": round(run_ms / 1000, 1),
            "task_cpu_s": round(cpu_ns / 1e9, 1), "input_mib": round(read / mib, 1),
            "shuffle_written_mib": round(shuffle_w / mib, 1), "shuffle_read_mib": round(shuffle_r / mib, 1),
            "stages_writing_shuffle": stages_with_shuffle}


def main(folder: str) -> None:
    rows = [summarise(p) for p in sorted(Path(folder).iterdir())]
    cols = list(rows[0]) if rows else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
