"""Reading a report data source into the canonical tables (:class:`~crmlab.io.shopdata.ShopData`)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from ..io.engine import zoned
from ..io.schema import DEFAULT_TZ
from ..io.shopdata import TABLE_NAMES, ShopData  # noqa: F401  (public here as before)


#: Size of the bundled "sample" report source: large enough that a campaign's control group
#: (about a fifth of its eligible users) can show an effect, small enough to report in seconds.
SAMPLE_USERS = 20_000


def data_path(name: str) -> Path:
    """Path of a bundled data file inside the installed package."""
    return Path(str(resources.files("crmlab") / "data" / name))


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
    (:func:`crmlab.io.validate.parse_frame`: ISO 8601, or ``date_format`` such as ``"%d/%m/%Y"``).
    """
    from . import load_cdnow, load_hillstrom, synthetic_shop
    text = str(source)
    if text == "sample":
        return synthetic_shop(**{"n_users": SAMPLE_USERS, **sample_kwargs})
    if text == "hillstrom":
        return load_hillstrom(tz=tz)
    if text == "cdnow":
        return load_cdnow(tz=tz)
    from ..io.engine import is_url, open_source, to_pandas
    from ..io.validate import parse_frame
    names = TABLE_NAMES + ("outcomes",)
    if isinstance(source, (str, Path)) and not is_url(text) and not Path(text).exists():
        raise FileNotFoundError(
            f"data source '{source}' not found: give 'sample', 'hillstrom', 'cdnow', a Parquet or CSV folder, "
            "a .duckdb file or a connection URL")
    # one reader for every source (crmlab.io.engine.open_source); canonical tables get the
    # boundary's parsing (text times, ids), so times come back zone-aware in tz
    data = ShopData(name=Path(text).stem if not is_url(text) else text.rsplit("/", 1)[-1])
    for n, t in open_source(source, names).items():
        df = to_pandas(t, None)
        setattr(data, n, parse_frame(df, n, tz=tz, date_format=date_format) if n in TABLE_NAMES else _in_zone(df, tz))
    if not data.tables():
        raise FileNotFoundError(f"data source '{source}' holds none of the tables {list(TABLE_NAMES)}")
    return data
