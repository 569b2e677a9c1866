"""Command line: ``python -m crmlab report {weekly|all|NAME} [options]`` and ``python -m crmlab check SOURCE``.

Examples::

    python -m crmlab report weekly --week 2026-W47 --params params/weekly.yaml
    python -m crmlab report experiment_readout --source hillstrom --lang ko
    python -m crmlab report experiment_readout --set alpha=0.01
    python -m crmlab report all --list-params
    python -m crmlab check /data/shop.duckdb --week 2026-W47
    python -m crmlab check exports/ --mapping exports/shop.yaml --week 2026-W47
    python -m crmlab import exports/ --mapping exports/shop.yaml --out data/shop

Exit status (documented in README and docs/scheduling.md)::

    0  every report was published (check: the data is ready)
    1  a notebook failed: its previous report is kept, the failed run is saved as <name>.failed.ipynb
    2  bad parameters (unknown name, malformed week or YAML, out of range, naming nothing in the data)
    3  data not ready (a table or column missing, invalid rows, data ending before the week)
    4  cannot write the reports folder (read-only, disk full) or another run holds its lock

Errors are one line on stderr, never a traceback (set ``CRMLAB_DEBUG=1`` to see one). Nothing is
published on 2, 3 or 4, and no kernel is started on 2 or 3.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

EXIT_OK, EXIT_NOTEBOOK, EXIT_PARAMS, EXIT_DATA, EXIT_WRITE = 0, 1, 2, 3, 4


def _parse_set(items: Sequence[str]) -> dict:
    import yaml

    from .report.params import ParamError
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ParamError(f"--set {item!r}: expected NAME=VALUE (VALUE is read as YAML, e.g. alpha=0.01)")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v) if v.strip() else None
        except yaml.YAMLError as e:
            first = " ".join(str(e).split())
            raise ParamError(f"--set {item!r}: VALUE is not valid YAML ({first})") from None
    return out


def _add_run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--week", help="ISO week, exactly YYYY-Www (default: the last complete ISO week)")
    r.add_argument("--params", dest="params_file", help="YAML parameter file (e.g. params/weekly.yaml)")
    r.add_argument("--lang", choices=["en", "ko"], help="report language")
    r.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override one parameter (VALUE read as YAML); repeatable")
    r.add_argument("--notebooks", help="folder holding the report notebooks (default: notebooks/)")
    r.add_argument("--tolerance-hours", type=float, default=None,
                   help="how long before the week's end the latest order/event/message may be (default: 24)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crmlab", description="crmlab command line")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="run report notebooks and publish HTML",
                       description="Run report notebooks through Papermill and publish "
                                   "reports/<week>/<name>.html and reports/index.html. Exit status: "
                                   "0 ok, 1 a notebook failed, 2 bad parameters, 3 data not ready, "
                                   "4 cannot write (or locked).")
    r.add_argument("target", nargs="?", default="weekly",
                   help="'weekly' (weekly_uplift, message_performance), 'all', or one notebook's name")
    r.add_argument("--source", help="data source: sample | hillstrom | cdnow | Parquet folder | .duckdb file | "
                                    "connection URL (postgres://user@host/db, duckdb:///file.duckdb, ...) | "
                                    "pyspark:///parquet/folder or pyspark://catalog_db (read by Spark; master from "
                                    "?master=, CRMLAB_SPARK_MASTER or spark-defaults.conf; docs/scaling.md)")
    _add_run_options(r)
    r.add_argument("--out", default="reports", help="output folder (default: reports)")
    r.add_argument("--list-params", action="store_true", help="show each notebook's parameters and exit")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--allow-partial", action="store_true",
                   help="publish although tables are missing or the data end before the week (with a banner); "
                        "never with invalid rows or bad parameters")
    r.add_argument("--lock-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="wait this long for another run publishing into the same folder (default 600; 0: exit 4 at once)")
    c = sub.add_parser("check", help="check that a data source is ready for the reports (no kernel, nothing written)",
                       description="Preflight of the reports: tables, columns, valid rows, coverage of the week "
                                   "and the parameters naming things in the data. Exit status: 0 ready, "
                                   "2 bad parameters, 3 data not ready.")
    c.add_argument("source", help="sample | hillstrom | cdnow | Parquet folder | .duckdb file | with --mapping: "
                                  "the folder of vendor exports")
    c.add_argument("--report", dest="target", default="all", help="'weekly', 'all' (default) or one notebook's name")
    c.add_argument("--mapping", help="shop.yaml naming the vendor exports in SOURCE and their adapters "
                                     "(crmlab.io.sources; see docs/bring-your-own-data.md)")
    _add_run_options(c)
    i = sub.add_parser("import", help="map vendor exports onto the canonical tables and write a report source folder",
                       description="Apply the adapters of shop.yaml (crmlab.io.sources) to the exports in SOURCE and "
                                   "write <table>.parquet, shop.yaml and exclusions.csv to --out. Exit status: "
                                   "0 written, 2 bad mapping, 3 invalid data.")
    i.add_argument("source", help="folder holding the vendor exports")
    i.add_argument("--mapping", required=True, help="shop.yaml naming the exports and their adapters")
    i.add_argument("--out", required=True, help="folder to write the canonical tables to")
    return p


def _list_params(names, notebooks_dir) -> None:
    from pathlib import Path

    from .report.params import notebook_parameters
    from .report.runner import default_notebooks_dir
    d = Path(notebooks_dir or default_notebooks_dir())
    for n in names:
        print(f"{n}:")
        for k, info in notebook_parameters(d / f"{n}.ipynb").items():
            help_ = f"  # {info['help']}" if info.get("help") else ""
            kind = type(info["default"]).__name__ if info["default"] is not None else "str|None"
            print(f"  {k:<20} {kind:<8} = {info['source']:<12}{help_}")


def _overrides(args: argparse.Namespace) -> dict:
    overrides = _parse_set(args.set)
    for key in ("source", "lang"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    return overrides


def _names(args: argparse.Namespace) -> list[str]:
    from .report.params import ParamError
    from .report.runner import select
    names = select(args.target, args.notebooks)
    if not names:
        raise ParamError(f"no notebooks for {args.target!r}")
    return names


def report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report.runner import run_reports
    names = _names(args)
    if args.list_params:
        _list_params(names, args.notebooks)
        return EXIT_OK
    week, outcomes = run_reports(names, week=args.week, params_file=args.params_file, overrides=_overrides(args),
                                 out_dir=args.out, notebooks_dir=args.notebooks, progress=not args.no_progress,
                                 allow_partial=args.allow_partial, lock_timeout=args.lock_timeout,
                                 tolerance_hours=args.tolerance_hours,
                                 on_wait=lambda msg: print(f"note: {msg}", file=sys.stderr, flush=True))
    for o in outcomes:
        if o.ok:
            print(f"ok      {o.name:<22} {o.seconds:6.1f}s  {o.html}")
        else:
            print(f"FAILED  {o.name:<22} {o.seconds:6.1f}s  kept the previous report; failed run: {o.failed_ipynb}",
                  file=sys.stderr)
            print("        " + (o.error or "").replace("\n", "\n        "), file=sys.stderr)
    print(f"index: {Path(args.out) / 'index.html'}")
    return EXIT_NOTEBOOK if any(not o.ok for o in outcomes) else EXIT_OK


def check(args: argparse.Namespace) -> int:
    from .report import preflight
    from .report.runner import plan_declared
    names = _names(args)
    if getattr(args, "mapping", None):
        from .import_cli import check as check_exports
        return check_exports(args, names)
    overrides = _overrides(args)
    overrides["source"] = args.source
    # only notebooks declaring a source take it; the others are not about a data source
    week, plans, declared = plan_declared(names, week=args.week, params_file=args.params_file,
                                          overrides=overrides, notebooks_dir=args.notebooks)
    from .io.spark import is_spark_url
    if is_spark_url(args.source):  # checked in Spark, as a run would: no table is brought into pandas
        problems = _check_in_spark(names, plans, declared, week, args.tolerance_hours)
    else:
        problems = preflight.check_plans(names, plans, declared, week, tolerance_hours=args.tolerance_hours)
    for n in names:
        mine = [p for p in problems if p.notebook == n]
        print(f"{'ok' if not mine else 'PROBLEM':<8} {n:<22} {week}" + ("" if not mine else f"  ({len(mine)})"))
        for p in mine:
            print(f"         - [{p.kind}] {p.message}")
    preflight.enforce(problems)  # raises: the one-line error and the exit code
    return EXIT_OK


def _check_in_spark(names, plans, declared, week, tolerance_hours):
    """The preflight of a ``pyspark://`` source on the run's Spark snapshot (validated in Spark)."""
    import tempfile
    from pathlib import Path

    from .report import preflight
    from .report.runner import build_snapshots, snapshot_plan
    with tempfile.TemporaryDirectory(prefix="crmlab-check-") as d:
        _, snaps = build_snapshots(snapshot_plan(names, plans, declared), Path(d))
        return preflight.check_plans(names, plans, declared, week, tolerance_hours=tolerance_hours, snapshots=snaps)


def _run(args: argparse.Namespace) -> int:
    from .io.errors import DataError
    from .report.params import ParamError
    from .report.preflight import DataNotReady
    from .report.publish import PublishError
    try:
        if args.command == "import":
            from .import_cli import import_
            return import_(args)
        return report(args) if args.command == "report" else check(args)
    except DataError as e:  # an adapter meeting bad input (crmlab.io.sources)
        code, msg = EXIT_DATA, str(e)
    except ParamError as e:
        code, msg = EXIT_PARAMS, f"bad parameters: {e}"
    except DataNotReady as e:
        code, msg = EXIT_DATA, str(e)
    except PublishError as e:
        code, msg = EXIT_WRITE, str(e)
    except OSError as e:  # e.g. the output folder cannot even be created
        code, msg = EXIT_WRITE, f"cannot write: {e}"
    print("error: " + " ".join(msg.split()), file=sys.stderr)  # one line, whatever the message held
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except Exception as e:  # noqa: BLE001 - a scheduler gets one line, not a traceback
        if os.environ.get("CRMLAB_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {' '.join(str(e).split())} "
              "(a bug in crmlab: rerun with CRMLAB_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_NOTEBOOK


if __name__ == "__main__":
    sys.exit(main())
