"""Run report notebooks with Papermill and publish them safely.

A run (:func:`run_reports`) resolves and validates every parameter, checks the data
(:mod:`crmlab.report.preflight`) and only then takes the reports folder's lock
(:func:`crmlab.report.publish.locked`). Each notebook is executed and exported to HTML in the
run's private ``.tmp-run-*`` folder; then a complete new version of the week (the notebooks of
this run, the week's other reports carried over, ``manifest.json``) is switched in at once
(:func:`crmlab.report.publish.switch`). A failing notebook never replaces its last good report:
the executed notebook with its error is published as ``<name>.failed.ipynb`` and the error is
returned (the CLI prints the failing cell and exits 1).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import params as P

from . import publish as PUB
from .registry import GROUPS, NOTEBOOKS  # noqa: F401  (re-exported: crmlab.report.runner.NOTEBOOKS)

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
    """See :func:`plan_declared`; returns ``(week, {name: parameters})``."""
    week, plans, _ = plan_declared(names, week=week, params_file=params_file, overrides=overrides,
                                   notebooks_dir=notebooks_dir)
    return week, plans


def plan_declared(names: Iterable[str], *, week: str | None = None, params_file: str | Path | None = None,
                  overrides: Mapping[str, Any] | None = None, notebooks_dir: str | Path | None = None):
    """Resolve and validate every notebook's parameters before any kernel starts.

    ``week`` (command line) wins over the file's ``week``, which wins over the last complete
    ISO week. Returns ``(week, {name: parameters}, {name: declared parameters})``.

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
    return week, out, declared


def format_error(exc: BaseException) -> str:
    """A readable message for a failed notebook: the cell, its source and the traceback."""
    from papermill.exceptions import PapermillExecutionError
    if isinstance(exc, PapermillExecutionError):
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        src = "\n".join("    " + line for line in (exc.source or "").splitlines())
        return (f"cell {exc.cell_index} (In [{exc.exec_count}]) raised {exc.ename}: {exc.evalue}\n"
                f"  cell source:\n{src}\n  traceback:\n{tb}")
    return f"{type(exc).__name__}: {exc}"




#: The banner of a report published with ``--allow-partial`` (shown above everything else).
PARTIAL_BANNER = {
    "en": "Partial data: this report was published although the data check found problems, so some "
          "numbers may be missing or wrong: {problems}",
    "ko": "불완전한 데이터: 데이터 점검에서 문제가 발견되었지만 이 리포트를 게시했습니다. 일부 숫자가 빠졌거나 "
          "틀릴 수 있습니다: {problems}",
}


def execute(name: str, parameters: Mapping[str, Any], week: str, work: Path, *,
            notebooks_dir: str | Path | None = None, progress: bool = True, lang: str | None = None,
            banner: str | None = None) -> Outcome:
    """Execute one notebook into ``work`` and export its HTML there (nothing is published).

    On success ``work`` holds ``<name>.ipynb`` and ``<name>.html``; when the notebook fails it
    holds ``<name>.failed.ipynb`` (if the kernel got that far) and the outcome carries the error.
    An ``OSError`` of the runner itself (disk full, read-only folder) is not a failing notebook:
    it is raised as :class:`~crmlab.report.publish.PublishError`.
    """
    import nbformat
    import papermill as pm

    from .export import notebook_to_html
    from .text import report_title

    kernel_env()
    d = _absolute(notebooks_dir or default_notebooks_dir())
    lang = lang or parameters.get("lang", "en")
    t0 = time.perf_counter()
    out = Outcome(name=name, ok=False, params=dict(parameters))
    executed = work / f"{name}.ipynb"
    try:
        pm.execute_notebook(str(d / f"{name}.ipynb"), str(executed), parameters=dict(parameters),
                            kernel_name=KERNEL_NAME,
                            progress_bar={"leave": False, "desc": f"  {name}"} if progress else False,
                            cwd=str(d), start_timeout=120)
        _scrub_secrets(executed, parameters)
        nb = nbformat.read(str(executed), as_version=4)
        notebook_to_html(nb, work / f"{name}.html", lang=lang, title=f"{report_title(name, lang)} · {week}",
                         banner=banner)
        out.ok = True
    except OSError as exc:  # the runner could not write: not the notebook's fault
        raise PUB.cannot_write(work, exc) from None
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never published
        out.error = format_error(exc)
        if executed.exists():
            _scrub_secrets(executed, parameters)
            os.replace(executed, work / f"{name}.failed.ipynb")
    finally:
        out.seconds = time.perf_counter() - t0
    return out


def _redacted(value: Any) -> Any:
    """A parameter value as it may be published: a text without its secrets (a connection URL's
    password or token, :func:`crmlab.io.engine.redact`); other values as they are."""
    from ..io.engine import redact
    return redact(value) if isinstance(value, str) else value


def _secrets(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Parameter values holding a secret -> their redacted text."""
    return {v: _redacted(v) for v in parameters.values() if isinstance(v, str) and _redacted(v) != v}


def _scrub_secrets(notebook: Path, parameters: Mapping[str, Any]) -> None:
    """Replace every secret-bearing parameter value in an executed notebook (Papermill's
    injected-parameters cell, and any output that echoes it) by its redacted text: the kernel
    needed the password, the published ``.ipynb`` and HTML must not hold it."""
    secrets = _secrets(parameters)
    if not secrets:
        return
    import json
    text = notebook.read_text(encoding="utf-8")
    for raw, safe in secrets.items():
        text = text.replace(json.dumps(raw)[1:-1], json.dumps(safe)[1:-1]).replace(raw, safe)
    notebook.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- validate once per run
#: Tables a notebook reads beyond its declared needs (registry), when the source has them.
SNAPSHOT_EXTRA = {"message_performance": ("customers",), "cohort_rfm": ("events",), "funnel": ("orders",),
                  "experiment_readout": ("outcomes",)}


def snapshot_plan(names: Iterable[str], plans: Mapping[str, Mapping[str, Any]],
                  declared: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """``{(source, zone): tables}``: what the run's notebooks read, per data source and shop zone
    (the same key the notebooks' :class:`~crmlab.report.nb.Report` resolves)."""
    from .registry import needs
    from .shop import resolve
    out: dict[tuple[str, str], list[str]] = {}
    for n in names:
        p = {k: v["default"] for k, v in declared[n].items()} | dict(plans[n])
        source = str(p.get("source") or "sample")
        try:
            zone = resolve(source, currency=p.get("currency") or "", timezone=p.get("timezone") or "",
                           locale=p.get("locale") or "", lang=p.get("lang") or "en").timezone
        except P.ParamError:
            continue  # the preflight reports it
        nd = needs(n)
        if not nd.tables:
            continue  # not a registered report: it reads its source itself
        tables = list(nd.tables) + list(nd.alternatives.values()) + list(SNAPSHOT_EXTRA.get(n, ()))
        out.setdefault((source, zone), [])
        out[(source, zone)] += [t for t in tables if t not in out[(source, zone)]]
    return out


def build_snapshots(plan_: Mapping[tuple[str, str], list[str]], folder: Path) -> tuple[Path, dict]:
    """Write one validated snapshot per data source of the run into ``folder`` (each table copied
    and validated once: :func:`crmlab.report.snapshot.write_snapshot`) and the manifest the kernels
    find through :data:`crmlab.report.snapshot.ENV`. Returns ``(manifest path, {(source, zone): Snapshot})``."""
    import json

    from .snapshot import write_snapshot
    snaps = {}
    for i, ((source, zone), tables) in enumerate(plan_.items()):
        try:
            snaps[(source, zone)] = write_snapshot(source, tables, folder / f"snapshot-{i}.duckdb", tz=zone)
        except (FileNotFoundError, OSError, ValueError):
            continue  # an unreadable source: the preflight reports it
        except Exception as e:  # noqa: BLE001 - no snapshot: the notebooks read the source themselves, as before
            import logging
            logging.getLogger("crmlab").warning("no validated snapshot of %s (%s: %s); each notebook validates it",
                                                source, type(e).__name__, e)
    manifest = folder / "snapshot.json"
    manifest.write_text(json.dumps({"snapshots": [s.record() for s in snaps.values()]}, indent=1))
    return manifest, snaps


def _snapshot_record(snaps: Mapping[tuple[str, str], Any], params: Mapping[str, Any], tz: str | None) -> dict | None:
    """What a notebook's manifest entry records of the snapshot it read (rows and fingerprints)."""
    source = str(params.get("source") or "sample")
    for (src, zone), snap in snaps.items():
        if src == source and (tz is None or zone == tz):
            return {"source": src, "tz": zone, "path": str(snap.path),
                    "tables": {k: {"rows": v["rows"], "fingerprint": v["fingerprint"]} for k, v in snap.tables.items()}}
    return None


def _entry(name: str, outcome: Outcome, lang: str, partial: list[str]) -> dict[str, Any]:
    from .text import report_title
    entry = {"title": report_title(name, lang), "lang": lang,
             "executed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "seconds": round(outcome.seconds, 1),
             "parameters": {k: _redacted(v) for k, v in outcome.params.items()}}
    if partial:
        entry["partial"] = list(partial)
    return entry


def publish_week(out_dir: Path, week: str, work: Path, outcomes: list[Outcome], *,
                 partial: Mapping[str, list[str]] | None = None,
                 snapshots: Mapping[tuple[str, str], Any] | None = None) -> Path:
    """Build the week's new version from the current one and this run's results, switch to it.

    A notebook that succeeded replaces its ``.ipynb``/``.html`` (and clears an older
    ``.failed.ipynb``); one that failed keeps its last good report and adds ``.failed.ipynb``.
    """
    staged = PUB.stage(out_dir, week, work / "version")
    manifest = PUB.read_manifest(staged)
    for o in outcomes:
        if o.ok:
            for ext in ("ipynb", "html"):
                os.replace(work / f"{o.name}.{ext}", staged / f"{o.name}.{ext}")
            (staged / f"{o.name}.failed.ipynb").unlink(missing_ok=True)
            manifest[o.name] = _entry(o.name, o, o.params.get("lang", "en"), (partial or {}).get(o.name, []))
            rec = _snapshot_record(snapshots, o.params, None) if snapshots else None
            if rec:
                manifest[o.name]["snapshot"] = {**rec, "source": _redacted(rec["source"])}
        elif (work / f"{o.name}.failed.ipynb").exists():
            os.replace(work / f"{o.name}.failed.ipynb", staged / f"{o.name}.failed.ipynb")
    PUB.write_manifest(staged, manifest)
    return PUB.switch(out_dir, week, staged)


def _set_paths(outcomes: list[Outcome], week_dir: Path) -> None:
    for o in outcomes:
        if o.ok:
            o.ipynb, o.html = week_dir / f"{o.name}.ipynb", week_dir / f"{o.name}.html"
        elif (week_dir / f"{o.name}.failed.ipynb").exists():
            o.failed_ipynb = week_dir / f"{o.name}.failed.ipynb"


def run_reports(names: Iterable[str], *, week: str | None = None, params_file: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None, out_dir: str | Path = "reports",
                notebooks_dir: str | Path | None = None, progress: bool = True, allow_partial: bool = False,
                lock_timeout: float | None = 600.0, tolerance_hours: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> tuple[str, list[Outcome]]:
    """Validate all parameters, check the data, run each notebook (tqdm bar over notebooks),
    publish the week in one switch and update the index.

    Returns ``(week, outcomes)``. Before any kernel starts: a wrong parameter raises
    :class:`~crmlab.report.params.ParamError`; data that is not ready raises
    :class:`~crmlab.report.preflight.DataNotReady` (unless ``allow_partial``, which publishes
    with a banner; invalid rows are never allowed). A folder that cannot be written, or whose
    lock another run holds past ``lock_timeout`` seconds, raises
    :class:`~crmlab.report.publish.PublishError`.
    """
    from . import preflight

    names = list(names)
    week, plans, declared = plan_declared(names, week=week, params_file=params_file, overrides=overrides,
                                          notebooks_dir=notebooks_dir)
    import tempfile

    from .snapshot import ENV
    snap_dir = Path(tempfile.mkdtemp(prefix="crmlab-run-"))  # this run's validated snapshot
    previous_env = os.environ.get(ENV)
    try:
        manifest, snaps = build_snapshots(snapshot_plan(names, plans, declared), snap_dir)
        os.environ[ENV] = str(manifest)  # inherited by the kernels
        found = preflight.check_plans(names, plans, declared, week, tolerance_hours=tolerance_hours,
                                      snapshots=snaps)
        partial = preflight.enforce(found, allow_partial=allow_partial)
        _release_spark(snaps)
        return _run_locked(names, plans, declared, week, partial, snaps, out_dir=out_dir,
                           notebooks_dir=notebooks_dir, progress=progress, lock_timeout=lock_timeout,
                           on_wait=on_wait)
    finally:
        if previous_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous_env
        shutil.rmtree(snap_dir, ignore_errors=True)


def _release_spark(snaps: Mapping[tuple[str, str], Any]) -> None:
    """Once validated and checked, a Spark source is read by the kernels' own sessions: end the
    command's Spark session (and JVM) if crmlab launched it (:func:`crmlab.io.spark.release`)."""
    from ..io.spark import is_spark_url
    if any(is_spark_url(src) for src, _ in snaps):
        from ..io.spark import release
        release()


def report_jobs(n_notebooks: int) -> int:
    """How many notebooks of a run execute at once: ``CRMLAB_REPORT_JOBS``, default 2 on a
    machine with 2 or more cores. A kernel spends much of its time in single-threaded Python
    (start-up, imports, plots, the HTML export), so two kernels side by side use both cores;
    their engines then share the memory limit (see :func:`_execute_all`)."""
    env = os.environ.get("CRMLAB_REPORT_JOBS")
    jobs = int(env) if env else (2 if (os.cpu_count() or 1) >= 2 else 1)
    return max(1, min(jobs, n_notebooks))


def _execute_all(names, plans, declared, week, work, partial, *, notebooks_dir, progress) -> list[Outcome]:
    """Execute every notebook of the run into ``work`` (:func:`report_jobs` at a time); the
    outcomes in ``names`` order. With several at once, each kernel's DuckDB gets an equal share
    of crmlab's memory limit (``CRMLAB_MEMORY_LIMIT``, unless the user set it)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm
    jobs = report_jobs(len(names))

    def one(n):
        lang = plans[n].get("lang", declared[n].get("lang", {}).get("default", "en")) or "en"
        banner = (PARTIAL_BANNER.get(lang, PARTIAL_BANNER["en"]).format(problems="; ".join(partial[n]))
                  if partial.get(n) else None)
        return execute(n, plans[n], week, work, notebooks_dir=notebooks_dir, progress=progress and jobs == 1,
                       lang=lang, banner=banner)

    bar = tqdm(total=len(names), desc=f"reports {week}", unit="notebook", disable=not progress)
    if jobs == 1:
        outcomes = []
        for n in names:
            bar.set_postfix_str(n)
            outcomes.append(one(n))
            bar.update()
        bar.close()
        return outcomes
    set_limit = "CRMLAB_MEMORY_LIMIT" not in os.environ
    if set_limit:
        os.environ["CRMLAB_MEMORY_LIMIT"] = f"{60 // jobs}%"
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, n) for n in names]
            outcomes = []
            for f in futures:
                outcomes.append(f.result())
                bar.update()
    finally:
        if set_limit:
            os.environ.pop("CRMLAB_MEMORY_LIMIT", None)
        bar.close()
    return outcomes


def _run_locked(names, plans, declared, week, partial, snaps, *, out_dir, notebooks_dir, progress, lock_timeout,
                on_wait) -> tuple[str, list[Outcome]]:
    """The part of :func:`run_reports` under the reports folder's lock: run, publish, index."""
    from .index import write_index
    out = _absolute(out_dir)
    with PUB.locked(out, timeout=lock_timeout, on_wait=on_wait):
        try:
            PUB.clean_leftovers(out)
            work = PUB.work_dir(out)
            try:
                outcomes = _execute_all(names, plans, declared, week, work, partial, notebooks_dir=notebooks_dir,
                                        progress=progress)
                publish_week(out, week, work, outcomes, partial=partial, snapshots=snaps)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            write_index(out)
        except OSError as e:
            raise PUB.cannot_write(out, e) from None
    _set_paths(outcomes, Path(out_dir) / week)
    return week, outcomes


def _absolute(path: str | Path) -> Path:
    """``path`` made absolute once, before any notebook runs: Papermill's ``cwd=`` changes the
    whole process's working directory while a notebook executes, and two notebooks execute at
    once (threads), so a relative reports folder read during another notebook's run pointed into
    ``notebooks/`` (``crmlab report weekly`` with the default ``--out reports`` exited 4,
    "cannot write reports/.tmp-run-.../message_performance.ipynb")."""
    return Path(path).absolute()


def run_notebook(name: str, parameters: Mapping[str, Any], week: str, *, out_dir: str | Path = "reports",
                 notebooks_dir: str | Path | None = None, progress: bool = True,
                 lang: str | None = None) -> Outcome:
    """Execute one notebook with already validated ``parameters`` and publish it (under the
    lock, in one switch). No preflight: use :func:`run_reports` for scheduled runs."""
    out = _absolute(out_dir)
    with PUB.locked(out):
        PUB.clean_leftovers(out)
        work = PUB.work_dir(out)
        try:
            o = execute(name, parameters, week, work, notebooks_dir=notebooks_dir, progress=progress, lang=lang)
            publish_week(out, week, work, [o])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _set_paths([o], Path(out_dir) / week)
    return o
