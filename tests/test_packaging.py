"""Packaging facts that drift unless tested: environment.yml mirrors pyproject.toml, and
docs/data-model.md is the data model the code validates."""
import re
import tomllib
from pathlib import Path

import yaml

import crmlab.io.schema

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names of PyPI packages where they differ
CONDA_NAME = {"duckdb": "python-duckdb", "ibis-framework": "ibis-framework-core"}


def _name_spec(req: str):
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", req)
    return m.group(1).lower(), m.group(3).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]  # the test extra too
    want = {CONDA_NAME.get(n, n): spec for n, spec in map(_name_spec, deps)}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for pip_req in item["pip"]:
                if not pip_req.startswith("-e"):
                    n, s = _name_spec(pip_req)
                    have[n] = s
        else:
            n, s = _name_spec(item.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=<>]", item) else item)
            if n not in ("python", "pip"):
                have[n] = s
    assert have == want


def test_data_model_doc_is_current():
    doc = (ROOT / "docs" / "data-model.md").read_text()
    assert doc.strip() == crmlab.io.schema.to_markdown().strip(), "regenerate: python -m crmlab.io.schema > docs/data-model.md"
