"""Report parameters: ISO weeks, parameter files, and validation before any kernel starts.

Papermill only *warns* about a parameter the notebook does not declare and passes any value
of any type. Reports are run unattended, so :func:`validate` turns every such mistake into a
:class:`ParamError` naming the notebook, the parameter, the value and what is allowed, before
a kernel is started.
"""
from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path
from typing import Any, Mapping

#: Data sources understood by :func:`crmlab.datasets.load_source` besides paths.
NAMED_SOURCES = ("sample", "hillstrom", "cdnow")
#: Report languages.
LANGS = ("en", "ko")

_WEEK_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")  # ASCII digits only; used with fullmatch


from ..io.errors import ParamError  # noqa: E402  (one class for parameters and shop.yaml)
from ..io.shopfile import read_yaml_mapping  # noqa: E402,F401  (re-exported)


# ---------------------------------------------------------------------------------------------
# ISO weeks
# ---------------------------------------------------------------------------------------------
def parse_week(week: str, *, name: str = "week") -> tuple[dt.date, dt.date]:
    """Return (Monday, next Monday) of an ISO week written ``YYYY-Www`` (e.g. ``2026-W47``).

    Raises
    ------
    ParamError
        If ``week`` is not of that form or the year has no such week (W53 exists only in
        some years).
    """
    if not isinstance(week, str):
        raise ParamError(f"{name}={week!r}: expected an ISO week such as '2026-W47' (a string)")
    # fullmatch, no strip: " 2026-W47" or "2026-W47\n" would make a folder the index never
    # lists (or a second section for the same week), so only the exact form is accepted.
    m = _WEEK_RE.fullmatch(week)
    if not m:
        raise ParamError(f"{name}={week!r}: malformed ISO week; expected 'YYYY-Www' such as '2026-W47'")
    year, wk = int(m.group(1)), int(m.group(2))
    weeks_in_year = dt.date(year, 12, 28).isocalendar()[1]
    if not 1 <= wk <= weeks_in_year:
        raise ParamError(f"{name}={week!r}: {year} has ISO weeks W01..W{weeks_in_year:02d}")
    monday = dt.date.fromisocalendar(year, wk, 1)
    return monday, monday + dt.timedelta(days=7)


def week_of(day: dt.date) -> str:
    """The ISO week ``YYYY-Www`` containing ``day``."""
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def last_complete_week(today: dt.date | None = None) -> str:
    """The last ISO week that has ended before ``today`` (default: today, UTC).

    The bundled sample's data ends at the Monday of the current week, so this week is the
    last week of sample data.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return week_of(today - dt.timedelta(days=7))


# ---------------------------------------------------------------------------------------------
# Notebook parameters
# ---------------------------------------------------------------------------------------------
def notebook_parameters(path: str | Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its ``parameters`` cell.

    Returns ``{name: {"default": value, "source": text, "type": inferred type name,
    "help": comment}}``; ``default`` is the literal evaluated with :func:`ast.literal_eval`.
    """
    from papermill.inspection import inspect_notebook
    out: dict[str, dict[str, Any]] = {}
    for name, info in inspect_notebook(str(path)).items():
        text = info.get("default")
        try:
            value = ast.literal_eval(text) if text is not None else None
        except (ValueError, SyntaxError):
            value = text
        out[name] = {"default": value, "source": text, "type": info.get("inferred_type_name", ""),
                     "help": info.get("help", "")}
    return out


def _type_ok(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        return _items_ok(list(value), list(default))
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return False
        return _items_ok(list(value.values()), list(default.values()))
    return isinstance(value, type(default))


def _items_ok(values: list, defaults: list) -> bool:
    """Elements of a list (values of a dict) against a homogeneous default's first element."""
    kinds = {type(d) for d in defaults}
    if not defaults:
        return True
    if kinds <= {int, float}:  # numbers inside containers: any real number (a window of 0.5 days)
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if len(kinds) > 1:
        return True
    return all(_type_ok(v, defaults[0]) for v in values)


def _type_name(v: Any) -> str:
    return "None" if v is None else type(v).__name__


_CHOICES = re.compile(r"[\w.-]+(?:\s*\|\s*[\w.-]+)+")


def choices(help_text: str | None, default: Any) -> list[str] | None:
    """Allowed values written in a parameter's comment as ``a | b | c`` (when the default is
    one of them), else None: ``lang = "en"  # en | ko`` allows only "en" and "ko"."""
    if not help_text or not isinstance(default, str):
        return None
    for m in _CHOICES.finditer(help_text):
        opts = [o.strip() for o in m.group(0).split("|")]
        if default in opts:
            return opts
    return None


def check_source(source: Any, *, name: str = "source") -> str:
    """Return the data source as a string, with a path made absolute; raise if it does not exist."""
    if not isinstance(source, (str, Path)):
        raise ParamError(f"{name}={source!r}: expected one of {list(NAMED_SOURCES)} or a path (a string)")
    text = str(source)
    if text in NAMED_SOURCES:
        return text
    from crmlab.io.engine import is_url
    from crmlab.io.spark import SparkSource, is_spark_url
    if is_spark_url(text):  # its folder (or the URL's form) is checked now; the session starts when read
        try:
            SparkSource(text)
        except (FileNotFoundError, ValueError) as e:
            raise ParamError(f"{name}: {e}") from None
        return text
    if is_url(text):  # a live database (postgres://, duckdb://, bigquery://, ...): connected when read
        return text
    p = Path(text).expanduser()
    if not p.exists():
        raise ParamError(f"{name}={text!r}: data source not found; give one of {list(NAMED_SOURCES)}, "
                         "a Parquet folder or a .duckdb file")
    return str(p.resolve())


def validate(notebook: str, params: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Check ``params`` against the parameters ``declared`` by ``notebook``.

    Rules: every name must be declared; a value's type must match the default's type (an int
    is accepted for a float; a ``None`` default accepts anything; lists for lists/tuples);
    ``week`` must be an ISO week or ``None``; ``lang`` one of :data:`LANGS`; ``source`` must
    exist; ``alpha`` in (0, 1); a string whose comment lists ``a | b | c`` one of those
    (:func:`choices`). Returns the parameters with ``source`` made absolute.

    Raises
    ------
    ParamError
        Naming the notebook, the parameter, the value given and what is allowed.
    """
    out = dict(params)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParamError(f"{notebook}: unknown parameter(s) {unknown}; the notebook declares {sorted(declared)}")
    for key, value in params.items():
        default = declared[key]["default"]
        if key == "week":
            if value is not None:
                parse_week(value, name=f"{notebook}: week")
            continue
        if key == "source":
            out[key] = check_source(value, name=f"{notebook}: source")
            continue
        if key == "lang" and value not in LANGS:
            raise ParamError(f"{notebook}: lang={value!r}: allowed values are {list(LANGS)}")
        if not _type_ok(value, default):
            raise ParamError(f"{notebook}: {key}={value!r} is of type {_type_name(value)}; expected "
                             f"{_type_name(default)} like the default {declared[key]['source']}")
        allowed = choices(declared[key].get("help"), default)
        if allowed and value not in allowed:
            raise ParamError(f"{notebook}: {key}={value!r}: allowed values are {allowed}")
        if key == "alpha" and not 0 < float(value) < 1:
            raise ParamError(f"{notebook}: alpha={value!r}: must be between 0 and 1 (exclusive)")
        check_range(notebook, key, value)
    return out


def _allowed(low, high, low_inclusive: bool) -> str:
    lo = "" if low is None else (f">= {low:g}" if low_inclusive else f"> {low:g}")
    hi = "" if high is None else f"<= {high:g}"
    return " and ".join(x for x in (lo, hi) if x)


def _in_range(value: float, low, high, low_inclusive: bool) -> bool:
    if value != value:  # NaN
        return False
    if low is not None and (value < low or (value == low and not low_inclusive)):
        return False
    return high is None or value <= high


def check_range(notebook: str, key: str, value: Any) -> None:
    """Raise if a numeric parameter is outside its range (:data:`~crmlab.report.registry.RANGES`):
    ``lookback_weeks=0`` would publish a page saying "no campaign" although there were some."""
    from .registry import DAY_MAPS, RANGES
    if key in DAY_MAPS and isinstance(value, dict):
        low, high, inc = RANGES["window_days"]
        for ch, days in value.items():
            if isinstance(days, (int, float)) and not _in_range(float(days), low, high, inc):
                raise ParamError(f"{notebook}: {key}[{ch!r}]={days!r}: must be {_allowed(low, high, inc)} (days)")
        return
    if key not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, inc = RANGES[key]
    if not _in_range(float(value), low, high, inc):
        raise ParamError(f"{notebook}: {key}={value!r}: must be {_allowed(low, high, inc)}")


# ---------------------------------------------------------------------------------------------
# Parameter files
# ---------------------------------------------------------------------------------------------
def load_params_file(path: str | Path | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Read a YAML parameter file: top-level keys are shared by every notebook that declares
    them; a ``notebooks:`` mapping holds per-notebook values (these win).

    Returns ``(shared, per_notebook)``.
    """
    if path is None:
        return {}, {}
    p = Path(path)
    if not p.exists():
        raise ParamError(f"--params {str(path)!r}: file not found")
    doc = read_yaml_mapping(p, f"--params {str(path)!r}", "parameter names")
    per = doc.pop("notebooks", None) or {}
    if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
        raise ParamError(f"--params {str(path)!r}: 'notebooks' must map notebook names to parameter mappings")
    return doc, per


def params_for(notebook: str, declared: Mapping[str, Any], shared: Mapping[str, Any],
               per_notebook: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the parameters one notebook gets: shared values it declares, then its own section,
    then command-line overrides (which apply only where declared). Its own section is passed
    whole, so an unknown name there is an error."""
    merged = {k: v for k, v in shared.items() if k in declared}
    merged.update(per_notebook.get(notebook, {}))
    merged.update({k: v for k, v in overrides.items() if k in declared})
    return merged


def check_shared_known(shared: Mapping[str, Any], per_notebook: Mapping[str, Any],
                       declared_by: Mapping[str, Mapping[str, Any]], *, where: str) -> None:
    """A shared parameter that no notebook of the run declares is a typo: raise.
    A per-notebook section for a notebook that does not exist is too."""
    all_names = set().union(*[set(d) for d in declared_by.values()]) if declared_by else set()
    unknown = sorted(set(shared) - all_names)
    if unknown:
        raise ParamError(f"{where}: unknown parameter(s) {unknown}: no notebook of this run declares them "
                         f"(declared: {sorted(all_names)})")
