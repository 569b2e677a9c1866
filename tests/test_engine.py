"""Every accepted input (pandas, Parquet file, Parquet folder, CSV, DuckDB file, Ibis table)
gives the same result, and exclusions are reported."""
import logging

import ibis
import pandas as pd
import pytest

from crmlab import canonical
from crmlab.datasets import load_cdnow_sample
from crmlab.io.engine import as_table, report_exclusions, to_pandas


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


# --------------------------------------------------------------------------- issue 14: paths and encodings
def _small_orders():
    return pd.DataFrame({"order_id": ["o1", "o2", "o3"], "user_id": ["고객1", "u2", "u3"],
                         "time": ["2026-01-05 10:00:00", "2026-01-06 11:00:00", "2026-01-07 12:00:00"],
                         "revenue": [1000.0, 2000.0, 3000.0]})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp949"])
def test_csv_with_bom_or_cp949_is_read(tmp_path, encoding):
    df = _small_orders().assign(category=["의류", "식품", "가전"])
    path = tmp_path / "orders.csv"
    df.to_csv(path, index=False, encoding=encoding)
    out = to_pandas(canonical(str(path), "orders"))
    assert out["user_id"].tolist() == ["고객1", "u2", "u3"]  # the first column keeps its name (no BOM)
    assert out["category"].tolist() == ["의류", "식품", "가전"]
    assert out["time"].iloc[0] == pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")


def test_csv_in_an_unknown_encoding_is_a_clear_error(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes("order_id,user_id\n".encode("utf-16"))
    with pytest.raises(ValueError, match="UTF-16"):
        canonical(str(path), "orders")
    path.write_bytes(b"order_id,user_id\n\x80\xff\xfe\x81,\xff\n")
    with pytest.raises(ValueError, match="neither UTF-8 nor CP949"):
        canonical(str(path), "orders")


def test_folder_of_csvs_is_read_like_a_folder_of_parquet(tmp_path):
    from crmlab.io.engine import open_source
    _small_orders().to_csv(tmp_path / "orders.csv", index=False)
    ev = pd.DataFrame({"user_id": ["u2"], "time": ["2026-01-05 09:00:00"], "event": ["page_view"]})
    ev.to_csv(tmp_path / "events.csv", index=False)
    assert to_pandas(canonical(tmp_path, "orders"))["revenue"].sum() == 6000
    assert len(to_pandas(canonical(tmp_path, "events"))) == 1
    assert set(open_source(tmp_path, ("events", "orders", "messages"))) == {"events", "orders"}
    with pytest.raises(FileNotFoundError, match="no messages.parquet or messages.csv"):
        canonical(tmp_path, "messages")


def test_path_errors_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="holds no Parquet or CSV files"):
        canonical(tmp_path / "empty", "orders")
    with pytest.raises(FileNotFoundError, match="DuckDB file not found"):
        canonical(f"{tmp_path / 'nope.duckdb'}::orders", "orders")
    import duckdb
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.execute("CREATE TABLE events AS SELECT 1 AS x")
    with pytest.raises(FileNotFoundError, match=r"no table 'orders'.*events"):
        canonical(f"{tmp_path / 'shop.duckdb'}::orders", "orders")
    with pytest.raises(FileNotFoundError, match=r"no table 'orders'"):
        canonical(tmp_path / "shop.duckdb", "orders")  # the table named by the canonical name


def test_load_source_parses_text_times_in_parquet_and_reads_csv_folders(tmp_path):
    from crmlab.datasets import load_source
    _small_orders().to_parquet(tmp_path / "orders.parquet")  # times stored as text
    data = load_source(tmp_path)
    assert str(data.orders["time"].dt.tz) == "Asia/Seoul"
    assert data.orders["time"].iloc[0] == pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")
    csv = tmp_path / "csv"
    csv.mkdir()
    _small_orders().to_csv(csv / "orders.csv", index=False, encoding="cp949")
    assert load_source(csv).orders["user_id"].tolist() == ["고객1", "u2", "u3"]


def test_exclusions_ledger_carries_snake_case_codes():
    df = report_exclusions(pd.DataFrame({"x": [1]}), {"orders after as_of": 3, "messages without anchor time (undelivered)": 2},
                           "f")
    ex = df.attrs["excluded"]
    assert ex == {"orders after as_of": 3, "messages without anchor time (undelivered)": 2}  # the phrases
    assert ex.codes == {"after_as_of": 3, "messages_without_anchor_time_undelivered": 2}
    assert ex["after_as_of"] == 3 and "after_as_of" in ex
    assert ex.ledger().to_dict("records")[0] == {"code": "after_as_of", "reason": "orders after as_of", "n": 3}
    import re
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", c) for c in ex.codes)


@pytest.mark.spark
def test_to_spark_keeps_nulls_of_concatenated_frames(spark_con):
    import numpy as np
    from conftest import to_spark
    a = pd.DataFrame({"user_id": ["u1", "u2"], "campaign": ["c", None], "revenue": [1.0, None],
                      "time": pd.to_datetime(["2026-01-05 10:00", "2026-01-05 11:00"])})
    b = pd.DataFrame({"user_id": ["u3"], "campaign": [None], "revenue": [np.nan],
                      "time": pd.to_datetime(["2026-01-05 12:30"])})
    df = pd.concat([a, b], ignore_index=True)
    t = to_spark(spark_con, df, tz="Asia/Seoul")
    rows = t._find_backend()._session.sql(f"SELECT * FROM {t.get_name()}").collect()
    assert [r["campaign"] for r in rows] == ["c", None, None]  # not the text 'NaN'
    assert [r["revenue"] for r in rows] == [1.0, None, None]  # null, not NaN
    back = to_pandas(t.order_by("time"), None)
    assert back["time"].tolist() == df["time"].tolist()  # wall-clock times unchanged


@pytest.mark.spark
def test_nan_is_null_on_spark(spark_con):
    import numpy as np
    from crmlab import DataError
    con = spark_con._session
    sdf = con.createDataFrame([("o1", "u1", 1.0), ("o2", "u2", float("nan"))], "order_id string, user_id string, revenue double")
    from pyspark.sql import functions as F
    sdf = sdf.withColumn("time", F.to_timestamp(F.lit("2026-01-05 10:00:00")))
    sdf.createOrReplaceTempView("nan_orders")
    with pytest.raises(DataError) as e:
        canonical(spark_con.table("nan_orders"), "orders")
    assert (e.value.column, e.value.n_rows) == ("revenue", 1)


def test_redact_removes_passwords_and_tokens_from_urls():
    from crmlab.io.engine import redact
    assert redact("postgres://ana:pa:ss@db.shop:5432/crm") == "postgres://ana:***@db.shop:5432/crm"
    assert redact("snowflake://ana@acct/db?password=x1&warehouse=wh&Token=abc") == \
        "snowflake://ana@acct/db?password=***&warehouse=wh&Token=***"
    assert redact("duckdb:///data/shop.duckdb") == "duckdb:///data/shop.duckdb"
    assert redact("pyspark:///data/shop?spark.keystore=ks") == "pyspark:///data/shop?spark.keystore=ks"


def test_optimizers_off_only_on_crmlabs_own_connection():
    """The funnel runs without DuckDB's partitioned_execution on crmlab's connection (a 2.2x
    slower 100M plan with it); a connection the user passes in keeps its settings, and the
    previous setting comes back after the block."""
    import ibis

    from crmlab.io.engine import default_connection, optimizers_off

    def setting(con):
        return con.con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0] or ""

    own = default_connection()
    t = own.create_table("_opt_probe", pd.DataFrame({"x": [1, 2]}), overwrite=True)
    before = setting(own)
    with optimizers_off(t.x.sum(), "partitioned_execution"):
        assert "partitioned_execution" in setting(own)
        assert t.x.sum().execute() == 3
    assert setting(own) == before
    user = ibis.duckdb.connect()
    u = user.create_table("_opt_probe", pd.DataFrame({"x": [1, 2]}))
    with optimizers_off(u.x.sum(), "partitioned_execution"):
        assert "partitioned_execution" not in setting(user)
    with optimizers_off(pd.DataFrame({"x": [1]}), "partitioned_execution"):  # not an expression: no-op
        pass
