"""The bundled data sets keep every row and convert to valid canonical tables."""
import numpy as np
import pandas as pd
import pytest

from crmlab import canonical
from crmlab.datasets import ShopData, load_cdnow, load_cdnow_sample, load_hillstrom, load_source
from crmlab.datasets.core import data_path


def test_cdnow_counts_and_totals():
    d = load_cdnow()
    o = d.orders
    assert len(o) == 69_659
    assert o["user_id"].nunique() == 23_570
    assert o["order_id"].is_unique
    # revenue total equals the raw file's dollar column (no row lost in conversion)
    raw = pd.read_csv(data_path("cdnow_master.txt.gz"), sep=r"\s+", skiprows=1, header=None)
    assert o["revenue"].sum() == pytest.approx(raw[3].sum())
    assert o["time"].min() == pd.Timestamp("1997-01-01", tz="Asia/Seoul")
    assert o["time"].max() == pd.Timestamp("1998-06-30", tz="Asia/Seoul")
    canonical(o, "orders")


def test_cdnow_sample_is_the_fhl_sample():
    o = load_cdnow_sample().orders
    assert len(o) == 6_919
    assert o["user_id"].nunique() == 2_357
    # every sample customer is a master customer, and the sample's rows are the master's rows
    master = load_cdnow().orders
    assert set(o["master_id"]) <= set(master["user_id"])
    m = master[master["user_id"].isin(set(o["master_id"]))]
    assert len(m) == len(o) and m["revenue"].sum() == pytest.approx(o["revenue"].sum())


def test_hillstrom_arms_and_outcomes():
    d = load_hillstrom()
    assert len(d.customers) == 64_000
    counts = d.assignments["variant"].value_counts()
    assert counts.to_dict() == {"Womens E-Mail": 21_387, "Mens E-Mail": 21_307, "No E-Mail": 21_306}
    # one e-mail per mailed customer, none for the control arm
    assert len(d.messages) == 21_387 + 21_307
    assert not set(d.messages["user_id"]) & set(d.assignments.query("variant == 'No E-Mail'")["user_id"])
    raw = pd.read_csv(data_path("hillstrom.csv.gz"))
    assert len(d.events) == raw["visit"].sum()
    assert len(d.orders) == raw["conversion"].sum()
    assert d.orders["revenue"].sum() == pytest.approx(raw["spend"].sum())
    assert (d.outcomes["spend"].sum(), d.outcomes["visit"].sum()) == (pytest.approx(raw["spend"].sum()), raw["visit"].sum())
    for name, df in d.tables().items():
        canonical(df, name)


@pytest.mark.parametrize("fmt", ["parquet", "duckdb"])
def test_source_round_trip(tmp_path, fmt):
    d = load_hillstrom()
    small = ShopData(orders=d.orders, messages=d.messages.head(100), assignments=d.assignments.head(100),
                     outcomes=d.outcomes.head(100))
    target = small.to_parquet(tmp_path / "pq") if fmt == "parquet" else small.to_duckdb(tmp_path / "x.duckdb")
    back = load_source(target)
    assert set(back.tables()) == {"orders", "messages", "assignments"}
    pd.testing.assert_frame_equal(back.orders.reset_index(drop=True)[["order_id", "revenue"]],
                                  d.orders.reset_index(drop=True)[["order_id", "revenue"]])
    # the instant survives the round trip
    back_utc = pd.to_datetime(back.orders["time"], utc=True).reset_index(drop=True)
    orig_utc = d.orders["time"].dt.tz_convert("UTC").reset_index(drop=True)
    assert (back_utc == orig_utc).all()
    assert len(back.outcomes) == 100


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="data source"):
        load_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of the tables"):
        load_source(tmp_path / "empty")


def test_naive_times_in_a_parquet_source_are_local_times(tmp_path):
    o = pd.DataFrame({"order_id": ["a"], "user_id": ["u"], "revenue": [1.0],
                      "time": pd.to_datetime(["2026-11-22 23:30"])})
    ShopData(orders=o).to_parquet(tmp_path)
    back = load_source(tmp_path)
    assert back.orders["time"].iloc[0] == pd.Timestamp("2026-11-22 23:30", tz="Asia/Seoul")
