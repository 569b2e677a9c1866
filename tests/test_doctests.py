"""The docstring Examples of the package run as tests (ibis' style): an example that no longer
does what its docstring says fails here."""
import doctest
import importlib
import pkgutil

import pytest

import crmlab


def _modules_with_examples():
    for info in pkgutil.walk_packages(crmlab.__path__, "crmlab."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as f:
                if ">>> " in f.read():
                    yield info.name


@pytest.mark.parametrize("name", sorted(_modules_with_examples()))
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
