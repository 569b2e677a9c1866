"""The layers of crmlab: pure statistics never reach data access.

GrowthBook's gbstats keeps its statistics in modules that take numbers; crmlab does the same
so each method can be tested on numbers alone and reused on any engine. The check walks the
static import graph (module-level and function-level imports alike), so a lazy import cannot
hide a dependency, and it finds import circles among the statistics modules.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "crmlab"

#: Modules that compute statistics from numbers.
PURE = ["abtest.samples", "abtest.intervals", "abtest.skew", "abtest.result", "abtest.cuped",
        "abtest.frequentist", "abtest.power", "abtest.corrections", "abtest.bayes", "abtest.robust",
        "abtest.sequential", "abtest.group_sequential"]
#: What they must never reach: data access and the engine.
ENGINE = {"io.engine", "io.validate", "io.schema", "io.sources", "abtest.sufficient", "abtest.readout", "abtest.adjust",
          "abtest.srm"}
FORBIDDEN_PACKAGES = {"ibis", "duckdb", "pyspark"}


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(crmlab modules, third-party top-level packages) that ``module`` imports anywhere."""
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():
        path = ROOT.joinpath(*module.split("."), "__init__.py")
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    inner, outer = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + (node.module.split(".") if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    inner.add(sub if ROOT.joinpath(*sub.split(".")).with_suffix(".py").exists() else target)
            elif node.module.split(".")[0] == "crmlab":
                inner.add(node.module.split(".", 1)[1])
            else:
                outer.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                outer.add(alias.name.split(".")[0])
    return {m for m in inner if m}, outer


def _closure(module: str) -> tuple[set[str], set[str]]:
    seen, packages, todo = set(), set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        inner, outer = _imports(m)
        packages |= outer
        todo.extend(inner - seen)
    return seen - {module}, packages


@pytest.mark.parametrize("module", PURE)
def test_statistics_modules_do_not_reach_the_engine(module):
    reached, packages = _closure(module)
    assert not (reached & ENGINE), f"{module} reaches {sorted(reached & ENGINE)}"
    assert not (packages & FORBIDDEN_PACKAGES), f"{module} imports {sorted(packages & FORBIDDEN_PACKAGES)}"


def test_no_import_circle_in_the_ab_engine():
    modules = {f"abtest.{p.stem}" for p in (ROOT / "abtest").glob("*.py") if p.stem != "__init__"}
    graph = {m: _imports(m)[0] & modules for m in modules}

    # a circle means some module reaches itself through the graph
    def reaches(a, b, seen=()):
        return any(n == b or (n not in seen and reaches(n, b, seen + (n,))) for n in graph[a])
    circles = sorted(m for m in modules if reaches(m, m))
    assert not circles, f"import circle through {circles}"


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The graph walk would catch the earlier layout: frequentist -> sufficient -> engine."""
    fake = tmp_path / "crmlab"
    (fake / "abtest").mkdir(parents=True)
    (fake / "abtest" / "frequentist.py").write_text("def f():\n    from .sufficient import x\n")
    (fake / "abtest" / "sufficient.py").write_text("from ..io.engine import y\n")
    (fake / "io").mkdir()
    (fake / "io" / "engine.py").write_text("import ibis\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    reached, packages = _closure("abtest.frequentist")
    assert {"abtest.sufficient", "io.engine"} <= reached and "ibis" in packages


INFRASTRUCTURE = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "io").rglob("*.py"))


@pytest.mark.parametrize("module", INFRASTRUCTURE)
def test_infrastructure_never_reaches_up(module):
    """The boundary (crmlab.io) serves every layer above it and imports none of them: not the
    analyses, the statistics, the bundled data sets or the report."""
    reached, _ = _closure(module)
    above = sorted(m for m in reached if m.split(".")[0] != "io")
    assert not above, f"{module} reaches {above}"


def test_the_infrastructure_folder_holds_the_boundary():
    """The layers show in the tree: the boundary's modules live under crmlab/io, not beside the analyses."""
    top = {p.stem for p in ROOT.glob("*.py")}
    assert not top & {"engine", "schema", "validate", "errors", "checks", "snapshot"}, sorted(top)
    assert not (ROOT / "sources").exists()
    assert {"io.engine", "io.schema", "io.validate", "io.errors", "io.checks", "io.sources"} <= set(INFRASTRUCTURE)
