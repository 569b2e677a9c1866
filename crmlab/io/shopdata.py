"""A container for the five canonical tables of one shop (the data model's unit of exchange)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import TABLES

TABLE_NAMES = tuple(TABLES)


@dataclass
class ShopData:
    """The canonical tables of one shop (any may be ``None``), plus what generated data knows.

    ``truth`` holds planted facts of generated data (true segments, funnel probabilities,
    uplifts); ``outcomes`` holds per-user outcomes where a data set comes with them (Hillstrom).
    """

    customers: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    messages: pd.DataFrame | None = None
    assignments: pd.DataFrame | None = None
    outcomes: pd.DataFrame | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    name: str = "shop"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The canonical tables present, by name."""
        return {n: getattr(self, n) for n in TABLE_NAMES if getattr(self, n) is not None}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.tables().items())
        return f"ShopData({self.name}: {sizes})"

    def to_parquet(self, folder: str | Path) -> Path:
        """Write each table to ``folder/<table>.parquet``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for n, df in self.tables().items():
            df.to_parquet(folder / f"{n}.parquet", index=False)
        if self.outcomes is not None:
            self.outcomes.to_parquet(folder / "outcomes.parquet", index=False)
        return folder

    def to_duckdb(self, path: str | Path) -> Path:
        """Write each table into a DuckDB database file."""
        import duckdb
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(path)) as con:
            items = dict(self.tables())
            if self.outcomes is not None:
                items["outcomes"] = self.outcomes
            for n, df in items.items():
                con.register("_df", df)
                con.execute(f'CREATE OR REPLACE TABLE "{n}" AS SELECT * FROM _df')
                con.unregister("_df")
        return path
