"""Run report notebooks with Papermill and publish them safely.

Each notebook is executed into a temporary folder beside the output folder and exported to
HTML there; only when both succeed are they moved over ``reports/<week>/<name>.ipynb`` and
``<name>.html``. A failing notebook therefore never replaces the last good report: the
executed notebook with its error is kept as ``<name>.failed.ipynb`` and the error is returned
(the CLI prints the failing cell and exits non-zero).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import params as P

#: Every report notebook, in the order reports are run and listed, with its group.
NOTEBOOKS: dict[str, str] = {
    "weekly_uplift": "weekly",
    "message_performance": "weekly",
    "cohort_rfm": "analyst",
    "funnel": "analyst",
    "experiment_readout": "analyst",
}
GROUPS = ("weekly", "all")

#: The kernel every report runs in (resolved to this interpreter, see :func:`kernel_env`).
KERNEL_NAME = "python3"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the checkout this package is imported from, else ``./notebooks``."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def available(notebooks_dir: str | Path | None = None) -> list[str]:
    """Names of the report notebooks present, registry order first, then any others (sorted)."""
    d = Path(notebooks_dir or default_notebooks_dir())
    present = {p.stem for p in d.glob("*.ipynb") if not p.stem.startswith(".")}
    return [n for n in NOTEBOOKS if n in present] + sorted(present - set(NOTEBOOKS))


def select(target: str, notebooks_dir: str | Path | None = None) -> list[str]:
    """Notebook names for ``weekly``, ``all`` or one notebook's name."""
    names = available(notebooks_dir)
    if target == "all":
        return names
    if target == "weekly":
        return [n for n in names if NOTEBOOKS.get(n) == "weekly"]
    if target in names:
        return [target]
    raise P.ParamError(f"report {target!r}: not a report; choose 'weekly', 'all' or one of {names}")


def kernel_env() -> None:
    """Make the ``python3`` kernelspec resolve to this interpreter's environment.

    ``JUPYTER_PATH`` is searched before the user's and the system's kernel folders, so the
    venv's own ``python3`` spec (whose ``python`` jupyter_client replaces with
    ``sys.executable``) wins over any other Python's spec.
    """
    venv_share = str(Path(sys.prefix) / "share" / "jupyter")
    parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if not parts or parts[0] != venv_share:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([venv_share] + [p for p in parts if p != venv_share])
    # Reports are static: notebooks skip interactive widgets when this is set.
    os.environ["CRMLAB_REPORT"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


@dataclass
class Outcome:
    """What happened to one notebook."""
    name: str
    ok: bool
    html: Path | None = None
    ipynb: Path | None = None
    failed_ipynb: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


def plan(names: Iterable[str], *, week: str | None = None, params_file: str | Path | None = None,
         overrides: Mapping[str, Any] | None = None,
         notebooks_dir: str | Path | None = None) -> tuple[str, dict[str, dict[str, Any]]]:
    """Resolve and validate every notebook's parameters before any kernel starts.

    ``week`` (command line) wins over the file's ``week``, which wins over the last complete
    ISO week. Returns ``(week, {name: parameters})``.

    Raises
    ------
    ParamError
        On any unknown name, malformed week, wrong type or missing data source.
    """
    d = Path(notebooks_dir or default_notebooks_dir())
    names = list(names)
    overrides = dict(overrides or {})
    shared, per = P.load_params_file(params_file)
    declared = {n: P.notebook_parameters(d / f"{n}.ipynb") for n in names}
    where = f"--params {params_file}" if params_file else "parameters"
    P.check_shared_known({**shared}, per, declared, where=where)
    known = set(available(d))
    stray = sorted(set(per) - known)
    if stray:
        raise P.ParamError(f"{where}: section(s) for unknown notebook(s) {stray}; notebooks are {sorted(known)}")
    unknown_over = sorted(k for k in overrides if not any(k in dec for dec in declared.values()))
    if unknown_over:
        raise P.ParamError(f"unknown parameter(s) {unknown_over}: no notebook of this run declares them")
    week = week or overrides.pop("week", None) or shared.get("week") or P.last_complete_week()
    P.parse_week(week)
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        merged = P.params_for(n, declared[n], shared, per, overrides)
        if "week" in declared[n]:
            merged["week"] = week
        out[n] = P.validate(n, merged, declared[n])
    return week, out


def format_error(exc: BaseException) -> str:
    """A readable message for a failed notebook: the cell, its source and the traceback."""
    from papermill.exceptions import PapermillExecutionError
    if isinstance(exc, PapermillExecutionError):
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        src = "\n".join("    " + line for line in (exc.source or "").splitlines())
        return (f"cell {exc.cell_index} (In [{exc.exec_count}]) raised {exc.ename}: {exc.evalue}\n"
                f"  cell source:\n{src}\n  traceback:\n{tb}")
    return f"{type(exc).__name__}: {exc}"


def run_notebook(name: str, parameters: Mapping[str, Any], week: str, *, out_dir: str | Path = "reports",
                 notebooks_dir: str | Path | None = None, progress: bool = True,
                 lang: str | None = None) -> Outcome:
    """Execute one notebook into a temporary folder, export it, and publish both atomically.

    On failure the previous ``<name>.ipynb``/``<name>.html`` stay as they were and the executed
    notebook with the error is written to ``<name>.failed.ipynb``.
    """
    import nbformat
    import papermill as pm

    from .export import notebook_to_html
    from .text import report_title

    kernel_env()
    d = Path(notebooks_dir or default_notebooks_dir())
    src = d / f"{name}.ipynb"
    week_dir = Path(out_dir) / week
    week_dir.mkdir(parents=True, exist_ok=True)
    lang = lang or parameters.get("lang", "en")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=week_dir))
    out = Outcome(name=name, ok=False, params=dict(parameters))
    try:
        executed = tmp / f"{name}.ipynb"
        try:
            pm.execute_notebook(str(src), str(executed), parameters=dict(parameters), kernel_name=KERNEL_NAME,
                                progress_bar={"leave": False, "desc": f"  {name}"} if progress else False,
                                cwd=str(d), start_timeout=120)
            html = tmp / f"{name}.html"
            nb = nbformat.read(str(executed), as_version=4)
            notebook_to_html(nb, html, lang=lang, title=f"{report_title(name, lang)} · {week}")
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never published
            out.error = format_error(exc)
            if executed.exists():
                failed = week_dir / f"{name}.failed.ipynb"
                os.replace(executed, failed)
                out.failed_ipynb = failed
            return out
        os.replace(executed, week_dir / f"{name}.ipynb")
        os.replace(html, week_dir / f"{name}.html")
        stale = week_dir / f"{name}.failed.ipynb"
        if stale.exists():
            stale.unlink()
        out.ok, out.ipynb, out.html = True, week_dir / f"{name}.ipynb", week_dir / f"{name}.html"
        _record(week_dir, name, lang, parameters, time.perf_counter() - t0)
        return out
    finally:
        out.seconds = time.perf_counter() - t0
        shutil.rmtree(tmp, ignore_errors=True)


def _record(week_dir: Path, name: str, lang: str, parameters: Mapping[str, Any], seconds: float) -> None:
    """Keep what each published report was run with in ``<week>/manifest.json`` (for the index)."""
    from .text import report_title
    path = week_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except json.JSONDecodeError:
        manifest = {}
    manifest[name] = {"title": report_title(name, lang), "lang": lang,
                      "executed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "seconds": round(seconds, 1), "parameters": dict(parameters)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run_reports(names: Iterable[str], *, week: str | None = None, params_file: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None, out_dir: str | Path = "reports",
                notebooks_dir: str | Path | None = None, progress: bool = True) -> tuple[str, list[Outcome]]:
    """Validate all parameters, run each notebook (tqdm bar over notebooks), update the index.

    Returns ``(week, outcomes)``; a :class:`~crmlab.report.params.ParamError` is raised before
    any kernel starts if a parameter is wrong.
    """
    from tqdm.auto import tqdm

    from .index import write_index

    names = list(names)
    week, plans = plan(names, week=week, params_file=params_file, overrides=overrides,
                       notebooks_dir=notebooks_dir)
    outcomes = []
    bar = tqdm(names, desc=f"reports {week}", unit="notebook", disable=not progress)
    for n in bar:
        bar.set_postfix_str(n)
        outcomes.append(run_notebook(n, plans[n], week, out_dir=out_dir, notebooks_dir=notebooks_dir,
                                     progress=progress))
    bar.close()
    write_index(out_dir)
    return week, outcomes
