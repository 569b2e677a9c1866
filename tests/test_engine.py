"""Every accepted input (pandas, Parquet file, Parquet folder, CSV, DuckDB file, Ibis table)
gives the same result, and exclusions are reported."""
import logging

import ibis
import pandas as pd
import pytest

from crmlab import canonical
from crmlab.datasets import load_cdnow_sample
from crmlab.engine import as_table, report_exclusions, to_pandas


def monthly(t):
    return t.group_by(month=t.time.truncate("M")).agg(orders=t.count(), revenue=t.revenue.sum()).order_by("month")


@pytest.fixture(scope="module")
def orders():
    return load_cdnow_sample().orders.drop(columns="master_id")


def test_all_inputs_agree(orders, tmp_path):
    expected = to_pandas(monthly(canonical(orders, "orders")))
    assert expected["orders"].sum() == len(orders)  # no row lost
    local = orders.assign(time=orders["time"].dt.tz_localize(None))  # files hold local wall time
    local.to_parquet(tmp_path / "o.parquet")
    (tmp_path / "folder").mkdir()
    local.iloc[:3000].to_parquet(tmp_path / "folder" / "part-0.parquet")
    local.iloc[3000:].to_parquet(tmp_path / "folder" / "part-1.parquet")
    local.to_csv(tmp_path / "o.csv", index=False)
    import duckdb
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.execute("CREATE TABLE orders AS SELECT * FROM local")
    sources = [tmp_path / "o.parquet", tmp_path / "folder", str(tmp_path / "o.csv"),
               f"{tmp_path / 'shop.duckdb'}::orders", ibis.memtable(local)]
    for src in sources:
        got = to_pandas(monthly(canonical(src, "orders")))
        pd.testing.assert_frame_equal(got, expected, check_dtype=False), src


def test_times_come_back_in_the_shop_zone(orders):
    out = to_pandas(canonical(orders, "orders").limit(3))
    assert str(out["time"].dt.tz) == "Asia/Seoul"


def test_unsupported_input():
    with pytest.raises(TypeError, match="pandas DataFrame, a path, a connection URL or an Ibis table"):
        as_table([1, 2, 3])
    with pytest.raises(ValueError, match="expected .parquet"):
        as_table(__file__)


def test_report_exclusions_sets_attrs_and_logs(caplog):
    df = pd.DataFrame({"x": [1]})
    with caplog.at_level(logging.INFO, logger="crmlab"):
        report_exclusions(df, {"orders after as_of": 12, "null user": 0}, "rfm_table")
    assert df.attrs["excluded"] == {"orders after as_of": 12, "null user": 0}
    assert "12 orders after as_of" in caplog.text


def test_nanosecond_times_reach_the_engine_floored_to_microseconds():
    df = pd.DataFrame({"order_id": ["a", "b"], "user_id": ["u", "u"], "revenue": [1.0, 2.0],
                       "time": pd.to_datetime(["2026-01-05 10:00:00.123456789", "2026-01-05 10:00:00.000000001"])})
    out = to_pandas(canonical(df, "orders"))
    assert list(out["time"].dt.tz_localize(None)) == [pd.Timestamp("2026-01-05 10:00:00.123456"),
                                                      pd.Timestamp("2026-01-05 10:00:00")]


def test_zone_aware_files_are_read_in_the_shop_zone(tmp_path):
    """An order at 00:30 on 1 February in Seoul is 15:30 on 31 January in UTC: read from a UTC
    Parquet file or a DuckDB TIMESTAMPTZ column it must still fall in February."""
    from crmlab.cohort import cohorts
    from crmlab.datasets import ShopData, load_source
    o = pd.DataFrame({"order_id": ["a", "b"], "user_id": ["u1", "u2"], "revenue": [1.0, 2.0],
                      "time": pd.to_datetime(["2024-01-31 15:30", "2024-01-31 14:30"]).tz_localize("UTC")})
    o.to_parquet(tmp_path / "orders.parquet")
    ShopData(orders=o).to_duckdb(tmp_path / "shop.duckdb")
    for src in (tmp_path / "orders.parquet", f"{tmp_path / 'shop.duckdb'}::orders", o):
        c = cohorts(src, period="M").set_index("user_id")
        assert c.loc["u1", "cohort"] == pd.Timestamp("2024-02-01", tz="Asia/Seoul"), src
        assert c.loc["u2", "cohort"] == pd.Timestamp("2024-01-01", tz="Asia/Seoul"), src
        assert c.loc["u1", "first_time"] == pd.Timestamp("2024-02-01 00:30", tz="Asia/Seoul")
    # as_of is compared in the shop's zone too: only u2's order (23:30 on 31 January) is on or before it
    import crmlab
    with pytest.raises(crmlab.DataError, match="after as_of"):
        canonical(tmp_path / "orders.parquet", "orders", as_of="2024-02-01 00:00")
    canonical(tmp_path / "orders.parquet", "orders", as_of="2024-02-01 00:30")
    # the round trip of the package's own writer keeps the instant
    back = load_source(tmp_path / "shop.duckdb")
    assert (pd.to_datetime(back.orders["time"], utc=True) == o["time"]).all()


def test_daylight_saving_times_are_never_lost():
    """In a zone with daylight saving, a naive time in the fall-back hour names two instants and
    one in the spring-forward gap names none: each is read by the documented rule, none becomes
    NaT on the way in (validation) or out (results)."""
    from crmlab.rfm import rfm_table
    tz = "America/New_York"
    o = pd.DataFrame({"order_id": ["fall", "gap", "plain"], "user_id": ["a", "b", "b"], "revenue": [1.0, 2.0, 3.0],
                      "time": pd.to_datetime(["2024-11-03 01:30", "2024-03-10 02:30", "2024-05-01 12:00"])})
    back = to_pandas(canonical(o, "orders", tz=tz), tz).set_index("order_id")["time"]
    assert back.notna().all()
    assert back["fall"] == pd.Timestamp("2024-11-03 06:30", tz="UTC")  # the later instant, standard time (-05:00)
    assert back["gap"] == pd.Timestamp("2024-03-10 03:00", tz=tz)  # moved to the end of the gap
    r = rfm_table(o, as_of=pd.Timestamp("2024-12-01", tz=tz), tz=tz).set_index("user_id")
    assert r[["first_time", "last_time"]].notna().all().all()
    assert r.loc["a", "first_time"] == back["fall"]
    # An as_of inside the fall-back hour comes back as the same rule's instant, not an error.
    from crmlab.cohort import repurchase_rate, retention
    fall = pd.Timestamp("2024-11-03 06:30", tz="UTC")  # 01:30 EST, the second 01:30 of the day
    assert pd.Timestamp(rfm_table(o, as_of=fall, tz=tz).attrs["as_of"]) == fall
    assert repurchase_rate(o, as_of=fall, tz=tz).attrs["as_of"] == fall
    assert retention(o, as_of=fall, tz=tz).attrs["as_of"] == fall
