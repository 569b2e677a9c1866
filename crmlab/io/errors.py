"""Errors raised by crmlab."""
from __future__ import annotations

import pandas as pd


class DataError(ValueError):
    """Input data breaks a rule of the canonical data model.

    Every instance names the ``table``, the ``column``, the ``rule`` broken, how many
    rows break it (``n_rows``) and up to five example rows (``examples``, a DataFrame),
    so an analyst can find the offending records without re-running anything.
    """

    def __init__(self, table: str, column: str | None, rule: str, n_rows: int = 0,
                 examples: pd.DataFrame | None = None, hint: str | None = None):
        self.table = table
        self.column = column
        self.rule = rule
        self.n_rows = int(n_rows)
        self.examples = examples if examples is not None else pd.DataFrame()
        where = f"table '{table}'" + (f", column '{column}'" if column else "")
        msg = f"{where}: {rule}"
        if n_rows:
            msg += f" ({self.n_rows:,} row{'s' if self.n_rows != 1 else ''})"
        if hint:
            msg += f". {hint}"
        if len(self.examples):
            with pd.option_context("display.width", 200, "display.max_columns", 20):
                msg += f"\nexample rows:\n{self.examples.head(5).to_string()}"
        super().__init__(msg)


class ParamError(ValueError):
    """A report parameter or a setting of ``shop.yaml`` is unknown, malformed or of the wrong type
    (the CLI's exit code 2)."""
