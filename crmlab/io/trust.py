"""Which tables are already validated: the hook between a run's snapshot and the boundary.

A report run validates each source table once and writes it into a snapshot
(:mod:`crmlab.report.snapshot`). Opening that snapshot registers its connection here with
:func:`register`; :func:`crmlab.io.validate.canonical` asks :func:`trusted` before any scan.
This module lives beside the boundary (and imports nothing from the report layer) so that
``validate`` can ask without reaching up into the report.
"""
from __future__ import annotations

import json
import os
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir

#: Optional: a file to which every full validation of a table is appended (one JSON line);
#: the tests count scans with it.
LOG_ENV = "CRMLAB_VALIDATION_LOG"

# id(backend) -> {snapshot table name: canonical table name} of the snapshots opened here
_TRUSTED: dict[int, dict[str, str]] = {}
_BACKENDS: dict[int, Any] = {}  # keeps the trusted connections alive (ids are not reused)


def register(con: Any, marks: dict[str, str], *, merge: bool = False, drop: Any = ()) -> None:
    """Trust the tables of ``con`` named in ``marks`` (snapshot table -> canonical table);
    ``merge`` keeps the tables trusted before (a Spark connection serves several snapshots)
    except those named in ``drop`` (tables of the snapshot being opened again)."""
    kept = {k: v for k, v in _TRUSTED.get(id(con), {}).items() if k not in set(drop)} if merge else {}
    _TRUSTED[id(con)] = {**kept, **marks}
    _BACKENDS[id(con)] = con


def trusted(t: Any, table: str) -> bool:
    """True if every base table of the Ibis expression ``t`` is a table of a registered
    snapshot marked validated as the canonical ``table`` (an in-memory table anywhere in it: False)."""
    if not _TRUSTED or not isinstance(t, ir.Table):
        return False
    op = t.op()
    if op.find(ops.InMemoryTable) or op.find(ops.SQLQueryResult):
        return False
    bases = op.find(ops.DatabaseTable)
    if not bases:
        return False
    for b in bases:
        marks = _TRUSTED.get(id(b.source))
        if marks is None or marks.get(b.name) != table:
            return False
    return True


def log_validation(table: str, columns: list[str] | None = None) -> None:
    """Append one line to the file named by :data:`LOG_ENV`, if set (a validation ran, of the
    canonical ``columns`` it checked)."""
    target = os.environ.get(LOG_ENV)
    if target:
        with open(target, "a") as f:
            f.write(json.dumps({"table": table, "pid": os.getpid(), "columns": columns}) + "\n")
