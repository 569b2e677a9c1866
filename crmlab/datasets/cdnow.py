"""CDNOW: the standard data set of the RFM/CLV literature, as canonical ``orders``.

Source files (whitespace-separated, no header in the sample):
- ``cdnow_master.txt``: customer id, yyyymmdd date, number of CDs, dollar value (69,659 rows).
- ``cdnow_sample.txt``: master id, sample id, date, CDs, dollars (6,919 rows, 2,357 customers),
  the data of Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science.
"""
from __future__ import annotations

import pandas as pd

from ..io.engine import zoned
from ..io.schema import DEFAULT_TZ
from .core import ShopData, data_path


def _orders(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    raw = raw.reset_index(drop=True)
    return pd.DataFrame({
        "order_id": (raw.index + 1).astype(str).str.zfill(6),
        "user_id": raw["user_id"].astype(str),
        "time": zoned(pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"), tz),
        "revenue": raw["dollars"].astype(float),
        "items": raw["cds"].astype("int64"),
    })


def load_cdnow(tz: str = DEFAULT_TZ) -> ShopData:
    """CDNOW master file: 69,659 orders of 23,570 customers (revenue in US dollars).

    Some orders have zero value (returns or free items); they are kept, as in the literature.
    Times are dates at midnight in ``tz``.
    """
    raw = pd.read_csv(data_path("cdnow_master.txt.gz"), sep=r"\s+", skiprows=1, header=None,
                      names=["user_id", "date", "cds", "dollars"], dtype={"user_id": str})
    return ShopData(orders=_orders(raw, tz), name="cdnow")


def load_cdnow_sample(tz: str = DEFAULT_TZ) -> ShopData:
    """The 1/10 CDNOW sample of Fader, Hardie & Lee (2005): 6,919 orders of 2,357 customers.

    ``user_id`` is the sample id (0001..2357); the master id is kept in ``master_id``.
    """
    raw = pd.read_csv(data_path("cdnow_sample.txt.gz"), sep=r"\s+", header=None,
                      names=["master_id", "user_id", "date", "cds", "dollars"],
                      dtype={"master_id": str, "user_id": str})
    orders = _orders(raw, tz)
    orders["master_id"] = raw["master_id"].values
    return ShopData(orders=orders, name="cdnow_sample")
