"""Command line: ``python -m crmlab report {weekly|all|NAME} [options]``.

Examples::

    python -m crmlab report weekly --week 2026-W47 --params params/weekly.yaml
    python -m crmlab report all --source hillstrom --lang ko
    python -m crmlab report experiment_readout --set alpha=0.01
    python -m crmlab report all --list-params

Exit status: 0 when every report was published, 1 when a notebook failed (its previous report
is kept and the failed run is saved as ``<name>.failed.ipynb``), 2 for bad parameters (no
kernel was started).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _parse_set(items: Sequence[str]) -> dict:
    import yaml
    out = {}
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE (VALUE is read as YAML, e.g. alpha=0.01)")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crmlab", description="crmlab command line")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="run report notebooks and publish HTML",
                       description="Run report notebooks through Papermill and publish "
                                   "reports/<week>/<name>.html and reports/index.html.")
    r.add_argument("target", nargs="?", default="weekly",
                   help="'weekly' (weekly_uplift, message_performance), 'all', or one notebook's name")
    r.add_argument("--week", help="ISO week YYYY-Www (default: the last complete ISO week)")
    r.add_argument("--params", dest="params_file", help="YAML parameter file (e.g. params/weekly.yaml)")
    r.add_argument("--source", help="data source: sample | hillstrom | cdnow | Parquet folder | .duckdb file")
    r.add_argument("--lang", choices=["en", "ko"], help="report language")
    r.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override one parameter (VALUE read as YAML); repeatable")
    r.add_argument("--out", default="reports", help="output folder (default: reports)")
    r.add_argument("--notebooks", help="folder holding the report notebooks (default: notebooks/)")
    r.add_argument("--list-params", action="store_true", help="show each notebook's parameters and exit")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
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


def report(args: argparse.Namespace) -> int:
    from .report.params import ParamError
    from .report.runner import run_reports, select
    try:
        names = select(args.target, args.notebooks)
        if not names:
            print(f"no notebooks for {args.target!r}", file=sys.stderr)
            return 2
        if args.list_params:
            _list_params(names, args.notebooks)
            return 0
        overrides = _parse_set(args.set)
        for key in ("source", "lang"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
        week, outcomes = run_reports(names, week=args.week, params_file=args.params_file, overrides=overrides,
                                     out_dir=args.out, notebooks_dir=args.notebooks,
                                     progress=not args.no_progress)
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if o.ok:
            print(f"ok      {o.name:<22} {o.seconds:6.1f}s  {o.html}")
        else:
            print(f"FAILED  {o.name:<22} {o.seconds:6.1f}s  kept the previous report; failed run: {o.failed_ipynb}",
                  file=sys.stderr)
            print("        " + (o.error or "").replace("\n", "\n        "), file=sys.stderr)
    from pathlib import Path
    print(f"index: {Path(args.out) / 'index.html'}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        return report(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
