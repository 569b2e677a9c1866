"""``crmlab check SOURCE --mapping shop.yaml`` and ``crmlab import SOURCE --mapping shop.yaml --out DIR``.

``check`` applies every adapter of the mapping to the exports in SOURCE (nothing is written),
then says, for each adapter's output on its own and for all of them together, which report
notebooks can run and why the others cannot (the preflight of :mod:`crmlab.report.preflight`:
tables, columns, valid rows, coverage of the week, names). ``import`` writes the canonical
tables as a report source folder (:func:`crmlab.io.sources.import_to`: GA4 exports file by file, in bounded memory).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .io.sources import Built, build, import_to
from .io.sources.mapping import load


def _line(text: str = "") -> None:
    print(text, flush=True)


def _summary(o) -> list[str]:
    sizes = ", ".join(f"{t} {n:,} rows" for t, n in {**{t: len(df) for t, df in o.tables.items()}, **o.written}.items())
    lines = [f"source {o.source} ({o.adapter}): {sizes}"]
    for lg in o.ledgers.values():
        parts = [f"{n:,} {r}" for r, n in sorted(lg.excluded.items())]
        lines.append(f"    {lg.table}: {lg.rows_in:,} input rows" + (f"; excluded {', '.join(parts)}" if parts else ""))
        for kind, counter in (("folded", lg.folded), ("noted", lg.notes)):
            if counter:
                lines.append(f"    {lg.table}: {kind} " + ", ".join(f"{n:,} {r}" for r, n in sorted(counter.items())))
    return lines


def _params(n: str, plans, declared, tz: str) -> dict[str, Any]:
    return {k: v["default"] for k, v in declared[n].items()} | dict(plans[n]) | {"timezone": tz}


def verdicts(built: Built, names, plans, declared, week: str, *, outputs=None, tolerance_hours=None):
    """``{notebook: [Problem]}`` for the data of ``outputs`` (default all) of ``built``."""
    from .report.preflight import check_notebook
    data = built.data(outputs)
    tz = built.mapping.timezone
    cache: dict = {}
    return {n: check_notebook(n, _params(n, plans, declared, tz), data, week, tolerance_hours=tolerance_hours,
                              tz=tz, _validated=cache) for n in names}


def _plan(args, names):
    from .report.runner import plan_declared
    from .__main__ import _overrides
    overrides = _overrides(args)
    overrides.pop("source", None)
    return plan_declared(names, week=args.week, params_file=args.params_file, overrides=overrides,
                         notebooks_dir=args.notebooks)


def _built(args) -> Built:
    return build(load(args.mapping, root=args.source))


def check(args, names) -> int:
    from .report import preflight
    built = _built(args)
    week, plans, declared = _plan(args, names)
    for o in built.outputs:
        for line in _summary(o):
            _line(line)
        found = verdicts(built, names, plans, declared, week, outputs=[o], tolerance_hours=args.tolerance_hours)
        can = [n for n, ps in found.items() if not ps]
        _line(f"    can run alone: {', '.join(can) if can else 'none'}")
        for n, ps in found.items():
            if ps:
                _line(f"    cannot run alone: {n}: " + "; ".join(dict.fromkeys(p.message for p in ps)))
    _line(f"all sources together ({week}):")
    found = verdicts(built, names, plans, declared, week, tolerance_hours=args.tolerance_hours)
    for n, ps in found.items():
        _line(f"{'ok' if not ps else 'PROBLEM':<8} {n:<22} {week}" + ("" if not ps else f"  ({len(ps)})"))
        for p in ps:
            _line(f"         - [{p.kind}] {p.message}")
    preflight.enforce([p for ps in found.values() for p in ps])
    return 0


def import_(args) -> int:
    """GA4 exports are read file by file in bounded memory (:func:`crmlab.io.sources.import_to`)."""
    from .report.preflight import DataNotReady, Problem
    out = Path(args.out)
    built, rows, bad = import_to(load(args.mapping, root=args.source), out)
    for o in built.outputs:
        for line in _summary(o):
            _line(line)
    if bad:
        raise DataNotReady("data not valid: " + "; ".join(f"[{s}] {msg}" for (s, _), msg in bad.items()),
                           [Problem(s, "invalid", msg) for (s, _), msg in bad.items()])
    _line(f"wrote {out} ({', '.join(f'{t}.parquet' for t in rows)}, shop.yaml, exclusions.csv)")
    _line(f"next: python -m crmlab check {out} --week <YYYY-Www>, then python -m crmlab report weekly --source {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .__main__ import main
    sys.exit(main(["import", *sys.argv[1:]]))
