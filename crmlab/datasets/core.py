"""A container for the five canonical tables, and reading/writing it as a report data source."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine import zoned
from ..schema import DEFAULT_TZ, TABLES

TABLE_NAMES = tuple(TABLES)

#: Size of the bundled "sample" report source: large enough that a campaign's control group
#: (about a fifth of its eligible users) can show an effect, small enough to report in seconds.
SAMPLE_USERS = 20_000


def data_path(name: str) -> Path:
    """Path of a bundled data file inside the installed package."""
    return Path(str(resources.files("crmlab") / "data" / name))


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


def _in_zone(df: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Time columns in the shop's zone: naive times are read in ``tz`` (the data model's rule),
    zone-aware ones converted to it."""
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            df[col] = s.dt.tz_convert(tz)
        elif pd.api.types.is_datetime64_dtype(s):
            df[col] = zoned(s, tz)
    return df


def load_source(source: str | Path, *, tz: str = DEFAULT_TZ, date_format: str | None = None,
                **sample_kwargs) -> ShopData:
    """Read a report data source.

    ``source`` is ``"sample"`` (the bundled synthetic shop; ``sample_kwargs`` go to
    :func:`synthetic_shop`), ``"hillstrom"``, ``"cdnow"``, a folder holding ``<table>.parquet``
    or ``<table>.csv`` files, a DuckDB database file, a connection URL (``postgres://...``,
    ``duckdb:///...``), an Ibis connection or a PySpark session holding tables named after the
    canonical tables. Tables a source lacks are ``None``. Times come back in ``tz``: naive
    times are read as the shop's local time, text times by the boundary's rule
    (:func:`crmlab.validate.parse_frame`: ISO 8601, or ``date_format`` such as ``"%d/%m/%Y"``).
    """
    from . import load_cdnow, load_hillstrom, synthetic_shop
    text = str(source)
    if text == "sample":
        return synthetic_shop(**{"n_users": SAMPLE_USERS, **sample_kwargs})
    if text == "hillstrom":
        return load_hillstrom(tz=tz)
    if text == "cdnow":
        return load_cdnow(tz=tz)
    from ..engine import is_url, open_source, to_pandas
    from ..validate import parse_frame
    names = TABLE_NAMES + ("outcomes",)
    if isinstance(source, (str, Path)) and not is_url(text) and not Path(text).exists():
        raise FileNotFoundError(
            f"data source '{source}' not found: give 'sample', 'hillstrom', 'cdnow', a Parquet or CSV folder, "
            "a .duckdb file or a connection URL")
    # one reader for every source (crmlab.engine.open_source); canonical tables get the
    # boundary's parsing (text times, ids), so times come back zone-aware in tz
    data = ShopData(name=Path(text).stem if not is_url(text) else text.rsplit("/", 1)[-1])
    for n, t in open_source(source, names).items():
        df = to_pandas(t, None)
        setattr(data, n, parse_frame(df, n, tz=tz, date_format=date_format) if n in TABLE_NAMES else _in_zone(df, tz))
    if not data.tables():
        raise FileNotFoundError(f"data source '{source}' holds none of the tables {list(TABLE_NAMES)}")
    return data
