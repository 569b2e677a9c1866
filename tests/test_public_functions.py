"""Common checks of every public function, as scikit-learn's ``test_public_functions`` does.

1. A bad *choice* (a string parameter with a fixed set of values: ``method``, ``correction``,
   ``period`` ...) is refused with ``ValueError`` naming the parameter and the value given,
   before any data are read: the data arguments here are placeholders that any data access
   would trip over, so a function that scans first and checks later fails this test.
2. A wrapper forwards every parameter it declares to the public function it calls when that
   function declares the same parameter (``holdout_uplift`` once took ``incomplete`` and
   dropped it). The check reads the source, so it covers every call site.
"""
import ast
import importlib
import inspect
import pkgutil
import textwrap
import warnings

import pytest

import crmlab

#: Parameter names that take one of a fixed set of strings, in every module.
CHOICES = {"method", "correction", "period", "variance", "per", "spending", "alternative", "max_skew",
           "min_arm_size", "prior_scale", "incomplete", "relative", "mode", "share", "scope", "basis",
           "family", "cov_type", "interval", "stat", "kind", "definition", "strategy", "output", "unit",
           "count", "freq", "min_dwell"}

#: Not analysis functions: parameter helpers and the report layer (tested in test_report.py).
SKIP_MODULES = ("crmlab.io.checks", "crmlab.report", "crmlab.__main__")

#: Shared parameters deliberately not forwarded, with the reason.
NOT_FORWARDED = {
    # Analyses cut rows after as_of themselves and count them (engine-side, in the ledger);
    # canonical(as_of=) would instead refuse the table.
    ("canonical", "as_of"): "the caller cuts and counts rows after as_of",
    # proportion_test uses the normal reference distribution: lift() without sizes.
    ("lift", "n_c"): "z-test, no Welch degrees of freedom",
    ("lift", "n_t"): "z-test, no Welch degrees of freedom",
}


def _public_functions():
    out = {}
    for info in pkgutil.walk_packages(crmlab.__path__, "crmlab."):
        if info.name.startswith(SKIP_MODULES):
            continue
        mod = importlib.import_module(info.name)
        for name, f in vars(mod).items():
            if not name.startswith("_") and inspect.isfunction(f) and f.__module__ == mod.__name__:
                out[f"{mod.__name__}.{name}"] = f
    return out


FUNCTIONS = _public_functions()


def _choice_cases():
    for qual, f in sorted(FUNCTIONS.items()):
        for p in inspect.signature(f).parameters.values():
            if p.name in CHOICES and (isinstance(p.default, str) or p.default is None):
                yield pytest.param(f, p.name, id=f"{qual}:{p.name}")


class Placeholder:
    """Stands for a table or a number; reading it fails."""

    def __repr__(self):
        return "<placeholder>"


def test_the_catalogue_is_not_empty():
    cases = list(_choice_cases())
    assert len(FUNCTIONS) > 100 and len(cases) > 80


@pytest.mark.parametrize("func, param", list(_choice_cases()))
def test_a_bad_choice_is_refused_before_any_data_are_read(func, param):
    sig = inspect.signature(func)
    kwargs = {p.name: Placeholder() for p in sig.parameters.values()
              if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    kwargs[param] = "no_such_choice"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as err:
            func(**kwargs)
    msg = str(err.value)
    assert f"{param}=" in msg and "no_such_choice" in msg, msg


_NOT_OURS = {"sns", "plt", "ax", "np", "pd", "ibis", "fig", "self", "stats", "sps"}


def _calls(func):
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    for node in ast.walk(tree.body[0]):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            yield node.func.id, node
        elif (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id not in _NOT_OURS):
            yield node.func.attr, node


def _forwarding_gaps(functions):
    by_name = {}
    for f in functions.values():
        by_name.setdefault(f.__name__, f)
    gaps = []
    for qual, f in sorted(functions.items()):
        mine = set(inspect.signature(f).parameters)
        for name, call in _calls(f):
            callee = by_name.get(name)
            if callee is None or callee is f or any(k.arg is None for k in call.keywords):
                continue  # not ours, recursion, or **kwargs forwards everything
            theirs = inspect.signature(callee).parameters
            passed = {k.arg for k in call.keywords} | set(list(theirs)[:len(call.args)])
            for p in sorted((mine & set(theirs)) - passed):
                if theirs[p].default is not inspect.Parameter.empty and (name, p) not in NOT_FORWARDED:
                    gaps.append(f"{qual} calls {name} without {p}=")
    return gaps


def test_wrappers_forward_every_parameter_they_declare():
    assert _forwarding_gaps(FUNCTIONS) == []


def test_the_forwarding_check_catches_a_dropped_parameter():
    def inner(data, *, incomplete="exclude"):
        return data

    def outer(data, *, incomplete="exclude"):
        return inner(data)

    assert _forwarding_gaps({"m.inner": inner, "m.outer": outer}) == ["m.outer calls inner without incomplete="]
