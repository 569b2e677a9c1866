"""Preflight: is the data ready for this week's reports? Checked before any kernel starts.

For every notebook of a run, from its declaration in :mod:`crmlab.report.registry`:

- **tables and columns**: each table it reads exists in the source and has the columns it reads
  (a table may be replaced by an alternative, e.g. Hillstrom's per-user ``outcomes``);
- **valid rows**: each table passes the data model's row rules (:func:`crmlab.io.validate.canonical`:
  nulls in required columns, negative amounts, unknown channels, duplicate ids), on the whole
  table, before anything is filtered;
- **coverage**: the latest row of each ``covers`` table is no earlier than the report week's end
  (next Monday 00:00 in the shop's zone) minus the tolerance, :data:`DEFAULT_TOLERANCE_HOURS`
  = 24 hours by default; a source whose data end before the week fails;
- **names**: parameters naming things in the data name something that exists (the arms
  ``treatment``/``control``, ``experiment``, ``holdout_experiment``, the ``by`` column, the
  funnel ``steps``, the channels of ``channel_windows``).

Parameter ranges (``lookback_weeks=0``) are checked earlier, with the types
(:func:`crmlab.report.params.validate`). :func:`enforce` turns the problems into the exit
codes: a name problem is a bad parameter (2), anything else means the data is not ready (3);
``--allow-partial`` publishes despite missing tables or stale data, with a banner, but never
despite invalid rows or a bad parameter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd

from ..io.schema import DEFAULT_TZ, spec
from ..io.sources import channels
from .params import ParamError, parse_week
from .registry import needs

#: How far before the report week's end the latest row of a streaming table may be.
DEFAULT_TOLERANCE_HOURS = 24.0
#: Kinds of problem; ``--allow-partial`` accepts only these.
PARTIAL_KINDS = ("missing", "stale")
_SHOW = 12  # names listed in a message


class DataNotReady(Exception):
    """The data cannot support the reports of this week (exit code 3)."""

    def __init__(self, message: str, problems: list["Problem"]):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    notebook: str
    kind: str  # param | missing | invalid | stale
    message: str


def _listed(values: Iterable[Any]) -> str:
    vals = sorted({str(v) for v in values})
    more = f" and {len(vals) - _SHOW} more" if len(vals) > _SHOW else ""
    return str(vals[:_SHOW]) + more


def week_end(week: str, tz: str = DEFAULT_TZ) -> pd.Timestamp:
    """The report week's exclusive end: next Monday 00:00 in ``tz``."""
    from ..io.engine import zoned_time
    return zoned_time(parse_week(week)[1], tz)


# ---------------------------------------------------------------------------------------------- checks
def _table_problems(data, table: str, columns: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    df = getattr(data, table, None)
    if df is None:
        yield "missing", f"the source has no {table} table"
        return
    absent = [c for c in columns if c not in df.columns]
    if absent:
        yield "missing", f"table '{table}' lacks column(s) {absent}"


def _invalid(data, table: str, tz: str) -> str | None:
    """The first data-model rule the whole table breaks (one line), or None."""
    from ..io.errors import DataError
    from ..io.validate import canonical
    try:
        canonical(getattr(data, table), table, tz=tz)
    except DataError as e:
        return str(e).splitlines()[0]
    return None


def _is_table(obj) -> bool:
    from ..io.engine import is_table
    return is_table(obj)


def _span(t, col: str, tz: str):
    """(first, latest) of ``col`` of a lazy table, computed in the engine (None when empty)."""
    from ..io.engine import zoned_time
    r = t.aggregate(lo=t[col].min(), hi=t[col].max()).execute().iloc[0]
    if pd.isna(r["hi"]):
        return None, None
    return zoned_time(r["lo"], tz), zoned_time(r["hi"], tz)


def _stale(data, table: str, end: pd.Timestamp, tolerance: pd.Timedelta, week: str, tz: str) -> str | None:
    col = spec(table).time_column
    obj = getattr(data, table)
    if _is_table(obj):
        first, latest = _span(obj, col, tz)
        if latest is None:
            return f"table '{table}' has no rows with a {col}"
    else:
        s = pd.to_datetime(obj[col])
        s = s.dt.tz_convert(tz) if s.dt.tz is not None else s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        if s.notna().sum() == 0:
            return f"table '{table}' has no rows with a {col}"
        latest, first = s.max(), s.min()
    hours = tolerance / pd.Timedelta(hours=1)
    if latest < end - tolerance:
        return (f"table '{table}' ends at {latest:%Y-%m-%d %H:%M} ({tz}), before {week} ends "
                f"({end:%Y-%m-%d %H:%M}) minus the {hours:g} h tolerance")
    if first >= end:
        return f"table '{table}' begins at {first:%Y-%m-%d %H:%M} ({tz}), after {week} ends"
    return None


def _arms(a: pd.DataFrame) -> dict[str, set[str]]:
    if _is_table(a):  # the distinct (experiment, arm) pairs, not the assignments
        a = a.select(a.experiment.cast("string").name("experiment"),
                     a.variant.cast("string").name("variant")).distinct().execute()
    return a.groupby(a["experiment"].astype(str))["variant"].agg(lambda v: set(map(str, v))).to_dict()


def _names_weekly_uplift(data, p: Mapping[str, Any], as_of) -> Iterator[str]:
    arms = _arms(data.assignments)
    present = set().union(*arms.values()) if arms else set()
    for key in ("treatment", "control"):
        if p.get(key) not in present:
            yield f"{key}={p.get(key)!r}: no experiment has an arm of that name; arms in the data: {_listed(present)}"
    h = p.get("holdout_experiment")
    if h and h not in arms:
        yield (f"holdout_experiment={h!r}: no such experiment; experiments: {_listed(arms)} "
               "(set holdout_experiment='' if the shop has no global holdout)")


def _names_experiment_readout(data, p: Mapping[str, Any], as_of) -> Iterator[str]:
    a = data.assignments
    if _is_table(a):
        from ..io.engine import local_time
        import ibis
        a = a.filter(a.assigned_time <= ibis.literal(local_time(as_of, getattr(as_of, "tz", None) and str(as_of.tz) or DEFAULT_TZ)))
    else:
        a = a[pd.to_datetime(a["assigned_time"]) <= as_of]
    arms = _arms(a)
    exp, ctrl = p.get("experiment") or "", p.get("control") or ""
    if exp and exp not in arms:
        yield f"experiment={exp!r}: no such experiment with assignments by the week's end; experiments: {_listed(arms)}"
        return
    if ctrl:
        lacking = [e for e in ([exp] if exp else arms) if ctrl not in arms[e]]
        if lacking:
            yield f"control={ctrl!r}: not an arm of {_listed(lacking)}; their arms: {_listed(set().union(*[arms[e] for e in lacking]))}"


def _names_funnel(data, p: Mapping[str, Any], as_of) -> Iterator[str]:
    ev = data.events
    by = p.get("by")
    if by and by not in ev.columns:
        yield f"by={by!r}: not a column of the events table; columns: {list(ev.columns)}"
    seen = (set(map(str, ev.select("event").distinct().execute()["event"])) if _is_table(ev)
            else set(ev["event"].astype(str).unique()))
    absent = [s for s in (p.get("steps") or []) if s not in seen]
    if absent:
        yield f"steps: event(s) {absent} never occur in the events table; events present: {_listed(seen)}"


def _names_message_performance(data, p: Mapping[str, Any], as_of) -> Iterator[str]:
    unknown = sorted(set(p.get("channel_windows") or {}) - set(channels.names()))
    if unknown:
        yield f"channel_windows: unknown channel(s) {unknown}; channels are {list(channels.names())}"


_NAME_CHECKS = {"weekly_uplift": _names_weekly_uplift, "experiment_readout": _names_experiment_readout,
                "funnel": _names_funnel, "message_performance": _names_message_performance}


def check_notebook(name: str, params: Mapping[str, Any], data, week: str, *,
                   tolerance_hours: float | None = None, tz: str = DEFAULT_TZ,
                   _validated: dict | None = None) -> list[Problem]:
    """Every problem of notebook ``name`` run with ``params`` (defaults included) on ``data``."""
    nd = needs(name)
    tol = pd.Timedelta(hours=DEFAULT_TOLERANCE_HOURS if tolerance_hours is None else tolerance_hours)
    end = week_end(week, tz)
    out: list[Problem] = []
    usable = []
    for table, cols in nd.tables.items():
        alt = nd.alternatives.get(table)
        if alt and getattr(data, alt, None) is not None:
            continue  # e.g. per-user outcomes instead of orders
        found = list(_table_problems(data, table, cols))
        out += [Problem(name, kind, msg) for kind, msg in found]
        if not found:
            usable.append(table)
    validated = _validated if _validated is not None else {}
    for table in usable:
        if table not in validated:
            validated[table] = _invalid(data, table, tz)
        if validated[table]:
            out.append(Problem(name, "invalid", validated[table]))
    for table in nd.covers:
        if table in usable and not validated.get(table):
            msg = _stale(data, table, end, tol, week, tz)
            if msg:
                out.append(Problem(name, "stale", msg))
    check = _NAME_CHECKS.get(name)
    tables_ok = all(t in usable and not validated.get(t) for t in nd.tables
                    if not (nd.alternatives.get(t) and getattr(data, nd.alternatives[t], None) is not None))
    if check and tables_ok:
        out += [Problem(name, "param", msg) for msg in check(data, params, end - pd.Timedelta(microseconds=1))]
    return out


def check_plans(names: Iterable[str], plans: Mapping[str, Mapping[str, Any]],
                declared: Mapping[str, Mapping[str, Any]], week: str, *,
                tolerance_hours: float | None = None, tz: str = DEFAULT_TZ,
                snapshots: Mapping[tuple[str, str], Any] | None = None) -> list[Problem]:
    """Problems of every notebook of a run (parameters as planned by the runner, the notebook's
    defaults filling the rest). Each data source is loaded and validated once.

    ``snapshots`` maps ``(source, zone)`` to the run's validated snapshot
    (:class:`crmlab.report.snapshot.Snapshot`): its lazy tables are checked, and its validation's
    outcome is used instead of validating again."""
    from crmlab.datasets import load_source

    from .shop import resolve
    loaded: dict[tuple[str, str], Any] = {}
    validated: dict[tuple[str, str], dict] = {}
    out: list[Problem] = []
    for n in names:
        p = {k: v["default"] for k, v in declared[n].items()} | dict(plans[n])
        source = str(p.get("source") or "sample")
        try:  # the shop's settings (its zone sets the week's bounds): a bad one is a bad parameter
            zone = resolve(source, currency=p.get("currency") or "", timezone=p.get("timezone") or "",
                           locale=p.get("locale") or "", lang=p.get("lang") or "en").timezone
        except ParamError as e:
            out.append(Problem(n, "param", str(e)))
            continue
        if not needs(n).tables:
            continue  # not a registered report: nothing declared to check
        key = (source, zone if "timezone" in declared[n] else tz)
        if key not in loaded and snapshots and key in snapshots:
            from .snapshot import open_snapshot
            snap = snapshots[key]
            loaded[key] = open_snapshot(snap.path, source)
            validated[key] = dict(snap.invalid)
        if key not in loaded:
            try:
                loaded[key] = load_source(source, tz=key[1])
            except (FileNotFoundError, OSError, ValueError) as e:
                out.append(Problem(n, "missing", f"source {source!r} cannot be read: {e}"))
                loaded[key] = None
        if loaded[key] is None:
            continue
        out += check_notebook(n, p, loaded[key], week, tolerance_hours=tolerance_hours, tz=key[1],
                              _validated=validated.setdefault(key, {}))
    return out


def _grouped(problems: list[Problem]) -> str:
    """One line: each distinct message once, with the notebooks it concerns."""
    by_msg: dict[str, list[str]] = {}
    for p in problems:
        by_msg.setdefault(p.message, []).append(p.notebook)
    return "; ".join(f"{msg} [{', '.join(dict.fromkeys(nbs))}]" for msg, nbs in by_msg.items())


def enforce(problems: list[Problem], *, allow_partial: bool = False) -> dict[str, list[str]]:
    """Raise for ``problems`` (:class:`~crmlab.report.params.ParamError` for bad names,
    :class:`DataNotReady` for data), or return ``{notebook: [messages]}`` that ``allow_partial``
    lets through (shown in the report's banner)."""
    params = [p for p in problems if p.kind == "param"]
    if params:
        raise ParamError(_grouped(params))
    blocking = [p for p in problems if not (allow_partial and p.kind in PARTIAL_KINDS)]
    if blocking:
        hint = "" if any(p.kind == "invalid" for p in blocking) else " (--allow-partial publishes anyway, with a banner)"
        raise DataNotReady(f"data not ready: {_grouped(blocking)}{hint}", blocking)
    partial: dict[str, list[str]] = {}
    for p in problems:
        partial.setdefault(p.notebook, []).append(p.message)
    return partial
