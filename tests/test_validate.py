"""Every validation rule of the canonical data model raises a DataError that names the table,
the column, the rule, the count of bad rows and example rows."""
import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from crmlab import DataError, canonical
from crmlab.io.engine import to_pandas


def orders(**over):
    df = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4"],
        "user_id": ["u1", "u1", "u2", "u3"],
        "time": ["2026-01-05 10:00", "2026-01-06 23:30", "2026-01-07 08:00", "2026-01-08 12:00"],
        "revenue": [10_000.0, 25_000.0, 5_000.0, 0.0],
    })
    for k, v in over.items():
        df[k] = v
    return df


def messages(**over):
    df = pd.DataFrame({
        "message_id": ["m1", "m2", "m3"], "user_id": ["u1", "u2", "u3"],
        "campaign": ["c", "c", "c"], "channel": ["sms", "kakao_friendtalk", "app_push"],
        "is_ad": [True, True, False],
        "sent_time": pd.to_datetime(["2026-01-05 10:00"] * 3).tz_localize("Asia/Seoul"),
    })
    for k, v in over.items():
        df[k] = v
    return df


def test_valid_orders_pass_and_keep_every_row():
    t = canonical(orders(), "orders")
    out = to_pandas(t)
    assert len(out) == 4
    # optional columns are added as nulls
    assert {"discount", "coupon", "items", "category"} <= set(out.columns)
    assert out["discount"].isna().all()


def test_missing_required_column():
    with pytest.raises(DataError) as e:
        canonical(orders().drop(columns="revenue"), "orders")
    err = e.value
    assert (err.table, err.column) == ("orders", "revenue")
    assert "missing required column" in err.rule


def test_missing_required_column_on_ibis_table():
    t = ibis.memtable(pd.DataFrame({"order_id": ["a"], "user_id": ["u"], "revenue": [1.0]}))
    with pytest.raises(DataError, match="column 'time'"):
        canonical(t, "orders")


def test_wrong_type_number():
    with pytest.raises(DataError) as e:
        canonical(orders(revenue=["10", "abc", "3", "x"]), "orders")
    err = e.value
    assert err.column == "revenue" and "expected a number" in err.rule
    assert err.n_rows == 2
    assert list(err.examples["order_id"]) == ["o2", "o4"]


def test_wrong_type_on_ibis_table():
    df = orders()
    df["time"] = pd.to_datetime(df["time"])
    df["revenue"] = df["revenue"].astype(str)
    with pytest.raises(DataError) as e:
        canonical(ibis.memtable(df), "orders")
    assert e.value.column == "revenue" and "wrong type" in e.value.rule


def test_unparseable_times_counted_with_examples():
    with pytest.raises(DataError) as e:
        canonical(orders(time=["2026-01-05", "yesterday", "2026-13-45", "2026-01-08"]), "orders")
    err = e.value
    assert err.rule == "unparseable time" and err.column == "time"
    assert err.n_rows == 2
    assert list(err.examples["order_id"]) == ["o2", "o3"]
    assert "o2" in str(err) and "2 rows" in str(err)


def test_negative_revenue():
    with pytest.raises(DataError) as e:
        canonical(orders(revenue=[1.0, -5.0, 2.0, -1.0]), "orders")
    err = e.value
    assert (err.column, err.rule, err.n_rows) == ("revenue", "negative value", 2)
    assert sorted(err.examples["order_id"]) == ["o2", "o4"]


def test_duplicate_ids():
    with pytest.raises(DataError) as e:
        canonical(orders(order_id=["o1", "o1", "o2", "o1"]), "orders")
    err = e.value
    assert err.rule == "duplicate id" and err.column == "order_id"
    assert err.n_rows == 3  # three rows share the id o1
    assert set(err.examples["order_id"]) == {"o1"}


def test_duplicate_assignment_is_per_experiment():
    a = pd.DataFrame({"experiment": ["e1", "e2", "e1"], "user_id": ["u", "u", "u"],
                      "variant": ["control", "treatment", "treatment"],
                      "assigned_time": ["2026-01-01"] * 3})
    with pytest.raises(DataError) as e:
        canonical(a, "assignments")
    assert e.value.n_rows == 2 and e.value.column == "experiment, user_id"
    canonical(a.iloc[:2], "assignments")  # same user in two experiments is fine


def test_unknown_channel():
    with pytest.raises(DataError) as e:
        canonical(messages(channel=["sms", "fax", "pigeon"]), "messages")
    err = e.value
    assert err.column == "channel" and err.n_rows == 2 and "unknown value" in err.rule
    assert list(err.examples["message_id"]) == ["m2", "m3"]


def test_events_after_as_of():
    ev = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "event": ["page_view"] * 3,
                       "time": ["2026-01-05 10:00", "2026-01-12 00:00:01", "2026-01-12 00:00"]})
    # as_of is inclusive: a row exactly at as_of is not in the future
    with pytest.raises(DataError) as e:
        canonical(ev, "events", as_of="2026-01-12 00:00")
    assert e.value.n_rows == 1 and e.value.column == "time"
    assert list(e.value.examples["user_id"]) == ["u2"]
    canonical(ev, "events", as_of="2026-01-12 00:00:01")
    # an aware as_of is compared as the same instant: 15:00:01 UTC = 00:00:01 next day in Seoul
    canonical(ev, "events", as_of=pd.Timestamp("2026-01-11 15:00:01", tz="UTC"))


def test_null_in_required_column():
    with pytest.raises(DataError) as e:
        canonical(orders(user_id=["u1", None, "u2", None]), "orders")
    assert (e.value.column, e.value.n_rows) == ("user_id", 2)


def test_bool_column_type():
    with pytest.raises(DataError) as e:
        canonical(messages(is_ad=["yes", True, "maybe"]), "messages")
    assert e.value.column == "is_ad" and e.value.n_rows == 2


def test_naive_times_read_in_seoul_and_aware_times_converted():
    naive = to_pandas(canonical(orders(), "orders"))
    assert str(naive["time"].dt.tz) == "Asia/Seoul"
    assert naive["time"].iloc[1] == pd.Timestamp("2026-01-06 23:30", tz="Asia/Seoul")
    # An aware UTC time is the same instant, shown in Seoul (+9 h).
    aware = orders(time=pd.to_datetime(["2026-01-05 01:00"] * 4).tz_localize("UTC"))
    out = to_pandas(canonical(aware, "orders"))
    assert out["time"].iloc[0] == pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")


def test_configured_zone():
    out = to_pandas(canonical(orders(), "orders", tz="Europe/Berlin"), tz="Europe/Berlin")
    assert out["time"].iloc[0] == pd.Timestamp("2026-01-05 10:00", tz="Europe/Berlin")
    # the same wall time in Berlin is 8 hours later than in Seoul (winter)
    seoul = pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")
    assert (out["time"].iloc[0] - seoul) == pd.Timedelta(hours=8)


def test_error_message_names_table_column_rule_and_rows():
    with pytest.raises(DataError) as e:
        canonical(orders(revenue=[1.0, -5.0, 2.0, 3.0]), "orders")
    text = str(e.value)
    assert "table 'orders'" in text and "column 'revenue'" in text
    assert "negative value" in text and "(1 row)" in text and "o2" in text


def test_unknown_table_name():
    with pytest.raises(KeyError, match="canonical tables"):
        canonical(orders(), "purchases")


def test_validation_is_remembered_per_file_and_redone_when_it_changes(tmp_path, monkeypatch):
    import crmlab.io.validate as v
    v.clear_cache()
    calls = []
    real = v._check_rows
    monkeypatch.setattr(v, "_check_rows", lambda *a: (calls.append(1), real(*a))[1])
    path = tmp_path / "orders.parquet"
    df = orders()
    df["time"] = pd.to_datetime(df["time"])
    df.to_parquet(path)
    canonical(path, "orders")
    canonical(path, "orders")
    assert len(calls) == 1  # second call on the unchanged file: no scan
    canonical(path, "orders", as_of="2026-02-01")
    assert len(calls) == 2  # another as_of is another check
    bad = df.assign(revenue=[1.0, -1.0, 1.0, 1.0])
    import os, time
    time.sleep(0.01)
    bad.to_parquet(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(DataError, match="negative value"):
        canonical(path, "orders")  # the changed file is checked again
    # pandas frames are always checked (they can change in place)
    canonical(df, "orders")
    canonical(df, "orders")
    assert len(calls) == 5
    v.clear_cache()


# --------------------------------------------------------------------------- issue 14: one strict boundary
def _orders_frame(n=4):
    df = orders()
    df["time"] = pd.to_datetime(df["time"])
    return df


def test_ambiguous_day_month_text_dates_raise_with_examples():
    # "05/01/2026" and "13/01/2026" in one column: element-by-element parsing read the first as
    # May 1 and the second as Jan 13. Without a declared format such text is refused.
    df = orders(time=["05/01/2026", "13/01/2026", "06/01/2026", "2026-01-08"])
    with pytest.raises(DataError) as e:
        canonical(df, "orders")
    err = e.value
    assert err.column == "time" and "ambiguous" in err.rule and err.n_rows == 3
    assert list(err.examples["order_id"]) == ["o1", "o2", "o3"]
    assert "date_format" in str(err)


def test_declared_date_format_reads_day_first():
    df = orders(time=["05/01/2026", "13/01/2026", "06/01/2026", "08/01/2026"])
    out = to_pandas(canonical(df, "orders", date_format="%d/%m/%Y"))
    assert out["time"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-05", "2026-01-13", "2026-01-06", "2026-01-08"]
    with pytest.raises(DataError, match="date_format") as e:
        canonical(orders(time=["05/01/2026", "2026-01-05", "13/01/2026", "x"]), "orders", date_format="%d/%m/%Y")
    assert e.value.n_rows == 2


def test_mixed_offsets_are_converted_not_a_pandas_crash():
    df = orders(time=["2026-01-05T10:00:00+09:00", "2026-01-05T01:00:00Z", "2026-01-05 10:00", "2026-01-05T02:00:00.5+01:00"])
    out = to_pandas(canonical(df, "orders"))
    seoul = pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")
    assert out["time"].tolist()[:3] == [seoul, seoul, seoul]  # the naive one is read in the shop's zone
    assert out["time"].iloc[3] == seoul + pd.Timedelta(milliseconds=500)


def test_typo_in_tz_and_bad_as_of_give_a_clear_value_error():
    from crmlab.cohort import retention
    with pytest.raises(ValueError, match=r"tz='Asia/Seol'.*time zone") as e:
        canonical(orders(), "orders", tz="Asia/Seol")
    assert not isinstance(e.value, KeyError)
    with pytest.raises(ValueError, match=r"tz='Asia/Seol'"):
        retention(orders(), tz="Asia/Seol")
    with pytest.raises(ValueError, match=r"as_of='yesterdy'"):
        canonical(orders(), "orders", as_of="yesterdy")
    with pytest.raises(ValueError, match=r"as_of='yesterdy'"):
        retention(orders(), as_of="yesterdy")


def test_text_times_in_parquet_come_out_as_times(tmp_path):
    # a converted CSV export: the time column is text in the Parquet file
    orders().to_parquet(tmp_path / "orders.parquet")
    out = to_pandas(canonical(tmp_path / "orders.parquet", "orders"))
    assert str(out["time"].dt.tz) == "Asia/Seoul"
    assert out["time"].iloc[1] == pd.Timestamp("2026-01-06 23:30", tz="Asia/Seoul")
    pd.DataFrame({"x": ["a"]}).to_parquet(tmp_path / "junk.parquet")
    bad = orders(time=["2026-01-05", "yesterday", "2026-01-07", "2026-01-08"])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError) as e:
        canonical(tmp_path / "bad.parquet", "orders")
    assert e.value.rule == "unparseable time" and e.value.n_rows == 1
    assert list(e.value.examples["order_id"]) == ["o2"]


def test_text_times_with_offsets_on_duckdb_table_are_converted():
    t = ibis.memtable(orders(time=["2026-01-05T10:00:00+09:00", "2026-01-05T01:00:00Z", "2026-01-05 10:00",
                                   "2026-01-05 10:00:00"]))
    out = to_pandas(canonical(t, "orders"))
    assert (out["time"] == pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")).all()
    t = ibis.memtable(orders(time=["05/01/2026", "13/01/2026", "06/01/2026", "2026-01-08"]))
    with pytest.raises(DataError, match="ambiguous"):
        canonical(t, "orders")


def test_integer_and_text_ids_are_one_type():
    o = _orders_frame().assign(user_id=[1, 1, 2, 3])
    t = canonical(o, "orders")
    assert t.schema()["user_id"].is_string()
    assert canonical(ibis.memtable(o), "orders").schema()["user_id"].is_string()
    assert to_pandas(t)["user_id"].tolist() == ["1", "1", "2", "3"]


def test_integer_ids_join_text_ids_in_attribute_and_compliance():
    from crmlab.compliance import check_compliance
    from crmlab.messages import attribute
    m = messages(user_id=[1, 2, 3], delivered_time=pd.to_datetime(["2026-01-05 10:01"] * 3).tz_localize("Asia/Seoul"))
    o = _orders_frame().assign(user_id=["1", "2", "9", "9"], time=pd.to_datetime(["2026-01-05 12:00"] * 4))
    got = attribute(m, o)
    assert sorted(got["user_id"]) == ["1", "2"]  # orders of users 1 and 2 credited to their messages
    cust = pd.DataFrame({"user_id": ["1", "2", "3"], "signup_time": ["2025-01-01"] * 3,
                         "consent_sms": [True] * 3, "consent_kakao_friendtalk": [True] * 3,
                         "consent_app_push": [True] * 3})
    check_compliance(m, cust)  # crashed inside Ibis: int64 vs string join keys


def test_nfc_and_zero_width_ids_match():
    import unicodedata
    nfd = unicodedata.normalize("NFD", "고객1")
    o = _orders_frame().assign(user_id=["고객1", nfd, "u\u200b2", "u2"], order_id=["o1", "o2", "o3", "o3\u200b"])
    with pytest.raises(DataError, match="duplicate id"):
        canonical(o, "orders")  # o3 and o3+zero-width space are one id
    out = to_pandas(canonical(o.assign(order_id=["o1", "o2", "o3", "o4"]), "orders"))
    assert out["user_id"].nunique() == 2
    t = ibis.memtable(o.assign(order_id=["o1", "o2", "o3", "o4"]))
    assert to_pandas(canonical(t, "orders"))["user_id"].nunique() == 2


def _nan_sources(df, tmp_path):
    """The same frame, NaN kept as NaN (not null), as Parquet, a DuckDB table and an Arrow memtable."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    tbl = pa.Table.from_pandas(df, preserve_index=False)
    cols = {n: (pa.array(df[n].to_numpy(), from_pandas=False) if df[n].dtype.kind == "f" else tbl[n])
            for n in df.columns}
    tbl = pa.table(cols)
    assert pa.compute.is_nan(tbl["revenue"]).to_pylist().count(True) == 1
    pq.write_table(tbl, tmp_path / "nan.parquet")
    with duckdb.connect(str(tmp_path / "nan.duckdb")) as con:
        con.execute("CREATE TABLE orders AS SELECT * FROM tbl")
    return [tmp_path / "nan.parquet", f"{tmp_path / 'nan.duckdb'}::orders", ibis.memtable(tbl)]


def test_nan_is_null_on_every_backend(tmp_path):
    from crmlab.cohort import retention
    df = _orders_frame().assign(revenue=[1.0, float("nan"), 2.0, 3.0])
    for src in _nan_sources(df, tmp_path):
        with pytest.raises(DataError) as e:
            canonical(src, "orders")
        assert (e.value.column, e.value.n_rows) == ("revenue", 1) and "missing" in e.value.rule, src
        with pytest.raises(DataError):
            retention(src, metric="revenue")
    # NaN in an optional amount is a missing value, not a number
    disc = _orders_frame().assign(discount=[1.0, float("nan"), None, 0.0])
    import pyarrow as pa
    tbl = pa.table({**{c: pa.Table.from_pandas(disc[[c]], preserve_index=False)[c] for c in disc.columns},
                    "discount": pa.array([1.0, float("nan"), None, 0.0], from_pandas=False)})
    out = to_pandas(canonical(ibis.memtable(tbl), "orders"))
    assert out["discount"].isna().sum() == 2
    t = canonical(ibis.memtable(tbl), "orders")
    assert int(t.discount.count().execute()) == 2  # the engine sees a null, not NaN


def test_amounts_must_be_finite():
    with pytest.raises(DataError) as e:
        canonical(_orders_frame().assign(revenue=[1.0, float("inf"), 2.0, 3.0]), "orders")
    assert (e.value.column, e.value.n_rows) == ("revenue", 1) and "finite" in e.value.rule
    assert list(e.value.examples["order_id"]) == ["o2"]
    with pytest.raises(DataError) as e:
        canonical(_orders_frame().assign(revenue=[1e308, 1e308, 2.0, 3.0]), "orders")
    assert e.value.column == "revenue" and "overflow" in e.value.rule


def test_click_implies_delivery_on_channels_that_report_delivery():
    t0 = pd.Timestamp("2026-01-05 10:00", tz="Asia/Seoul")
    m = messages(channel=["sms", "app_push", "sms"],
                 delivered_time=[t0, None, None], clicked_time=[t0, t0, t0])
    with pytest.raises(DataError) as e:
        canonical(m, "messages")
    err = e.value
    assert err.column == "clicked_time" and err.n_rows == 2 and "delivered" in err.rule
    # a table without any delivery signal (the shop exports none) is not held to it
    canonical(messages(clicked_time=[t0, t0, t0]), "messages")


def test_negative_cost_raises():
    with pytest.raises(DataError) as e:
        canonical(messages(cost=[1.0, -2.0, 0.0]), "messages")
    assert (e.value.column, e.value.n_rows) == ("cost", 1)


def test_cache_sees_rows_inserted_into_a_duckdb_table(tmp_path):
    import crmlab.io.validate as v
    v.clear_cache()
    con = ibis.duckdb.connect()
    con.create_table("orders", _orders_frame())
    t = con.table("orders")
    canonical(t, "orders")
    con.raw_sql("INSERT INTO orders VALUES ('o9', 'u9', TIMESTAMP '2026-01-09 10:00', -5.0)")
    with pytest.raises(DataError, match="negative value"):
        canonical(t, "orders")
    con.raw_sql("DELETE FROM orders WHERE order_id = 'o9'")
    canonical(t, "orders")
    con.raw_sql("INSERT INTO orders VALUES ('o1', 'u9', TIMESTAMP '2026-01-09 10:00', 5.0)")
    with pytest.raises(DataError, match="duplicate id"):
        canonical(t, "orders")


def test_cache_sees_rows_in_a_duckdb_wal(tmp_path):
    import duckdb
    import crmlab.io.validate as v
    v.clear_cache()
    db = tmp_path / "shop.duckdb"
    df = _orders_frame()
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE orders AS SELECT * FROM df")
    src = f"{db}::orders"
    canonical(src, "orders")
    writer = duckdb.connect(str(db))
    writer.execute("PRAGMA disable_checkpoint_on_shutdown")
    writer.execute("SET checkpoint_threshold = '1GB'")
    writer.execute("INSERT INTO orders VALUES ('o1', 'u9', TIMESTAMP '2026-01-09 10:00', 5.0)")
    writer.close()
    assert (tmp_path / "shop.duckdb.wal").exists()  # the new row sits in the WAL, the main file is unchanged
    with pytest.raises(DataError, match="duplicate id"):
        canonical(src, "orders")


def test_validation_is_one_aggregate_query_when_the_data_are_clean(monkeypatch):
    import crmlab.io.validate as v
    v.clear_cache()
    con = ibis.duckdb.connect()
    con.create_table("orders", _orders_frame())
    t = con.table("orders")
    seen = []
    real = ir.Table.execute
    monkeypatch.setattr(ir.Table, "execute", lambda self, *a, **k: (seen.append(1), real(self, *a, **k))[1])
    canonical(t, "orders")
    assert len(seen) <= 2  # the content fingerprint and one aggregate with every rule


def _experiment(n=10):
    a = pd.DataFrame({"experiment": "e", "user_id": [f"u{i}" for i in range(2 * n)],
                      "variant": ["control"] * n + ["treatment"] * n, "assigned_time": "2026-01-05"})
    o = pd.DataFrame({"user_id": a["user_id"], "converted": [1, 0] * n})
    return a, o


def test_readout_refuses_duplicate_outcome_rows():
    from crmlab.abtest import readout
    a, o = _experiment()
    dup = pd.concat([o, o[o.user_id == "u0"]], ignore_index=True)  # u0 twice: 6 conversions of n=5 ... in the sum
    with pytest.raises(DataError) as e:
        readout(a, dup, metrics="converted", control="control")
    assert (e.value.table, e.value.column, e.value.n_rows) == ("outcomes", "user_id", 2)
    assert "one row per user" in e.value.rule and set(e.value.examples["user_id"]) == {"u0"}
    readout(a, o, metrics="converted", control="control")  # one row per user passes


def test_text_outcomes_are_a_clear_error():
    from crmlab.abtest import readout
    a, o = _experiment()
    yes = o.assign(converted=o["converted"].map({1: "yes", 0: "no"}))
    for data in (yes, ibis.memtable(yes)):
        with pytest.raises(DataError) as e:
            readout(a, data, metrics="converted", control="control")
        assert (e.value.table, e.value.column) == ("outcomes", "converted") and "wrong type" in e.value.rule
        assert "1/0" in str(e.value)
    ok = readout(a, o.assign(converted=o["converted"].astype(bool)), metrics="converted", control="control")
    assert ok is not None  # true/false outcomes are 1/0


def test_outcomes_must_be_finite_and_nan_is_null():
    from crmlab.abtest import readout
    a, o = _experiment()
    with pytest.raises(DataError, match="finite"):
        readout(a, o.assign(converted=[float("inf")] + [0.0] * 19), metrics="converted", control="control")


# --------------------------------------------------------------------------- issue 16: validation's scans
def _scanned(raw) -> list[str]:
    """The queries DuckDB ran since logging began (its QueryLog) that read a column of some table,
    from each query's own plan: a scan operator with column projections. Metadata queries
    (catalog functions) and plans answered from statistics read none."""
    import json
    logged = [m for (m,) in raw.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()]
    raw.execute("CALL disable_logging()")
    raw.execute("CALL truncate_duckdb_logs()")
    out = []
    for q in logged:
        if not q.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        if "duckdb_tables()" in q:  # the catalog look-up (with parameters, so not re-planned here)
            continue
        plan = json.loads(raw.execute("EXPLAIN (FORMAT JSON) " + q).fetchall()[0][1])
        stack = list(plan)
        while stack:
            node = stack.pop()
            stack.extend(node.get("children", []))
            info = node.get("extra_info")
            cols = info.get("Projections") if isinstance(info, dict) else None  # text, or a list of names
            if cols and (cols.strip() if isinstance(cols, str) else any(str(c).strip() for c in cols)):
                out.append(q)
                break
    return out


def _logging(raw):
    raw.execute("CALL truncate_duckdb_logs()")
    raw.execute("CALL enable_logging('QueryLog')")


@pytest.mark.parametrize("kind, hit_scans", [("duckdb file", 0), ("arrow memtable", 0), ("pandas memtable", 1),
                                             ("in-memory duckdb", 1)])
def test_validation_miss_is_one_pass_and_a_hit_reads_no_rows(tmp_path, kind, hit_scans):
    # A cache hit used to hash every row of every column (a full scan per call), and a miss
    # scanned twice (the rules, then an exact distinct count of the ids): issue 16.
    import crmlab.io.validate as v
    v.clear_cache()
    n = 20_000  # enough ids that an approximate distinct count is not exact
    df = pd.DataFrame({"order_id": [f"o{i}" for i in range(n)], "user_id": [f"u{i % 997}" for i in range(n)],
                       "time": pd.Timestamp("2026-01-05") + pd.to_timedelta(range(n), unit="min"),
                       "revenue": [float(i % 50) for i in range(n)]})
    if "memtable" not in kind:
        con = ibis.duckdb.connect(str(tmp_path / "shop.duckdb") if kind == "duckdb file" else ":memory:")
        con.create_table("orders", df)
        t = con.table("orders")
    else:
        import pyarrow as pa
        t = ibis.memtable(pa.Table.from_pandas(df, preserve_index=False) if kind == "arrow memtable" else df)
        con = t._find_backend(use_default=True)  # where a memtable runs
    raw = con.con
    _logging(raw)
    canonical(t, "orders")
    assert len(_scanned(raw)) == 1  # every rule, the row count and the distinct ids in one query
    _logging(raw)
    canonical(t, "orders")
    # validated and unchanged: no row is read, except to hash the rows of a pandas memtable
    # or an in-memory DuckDB table (neither has a version that changes with its rows)
    assert len(_scanned(raw)) == hit_scans
    v.clear_cache()


def test_cache_sees_rows_written_to_a_duckdb_file_table_without_scanning(tmp_path):
    import crmlab.io.validate as v
    v.clear_cache()
    con = ibis.duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.create_table("orders", _orders_frame())
    t = con.table("orders")
    canonical(t, "orders")
    con.raw_sql("UPDATE orders SET revenue = -1 WHERE order_id = 'o2'")  # same row count
    with pytest.raises(DataError, match="negative value"):
        canonical(t, "orders")
    con.raw_sql("UPDATE orders SET revenue = 1 WHERE order_id = 'o2'")
    canonical(t, "orders")
    con.raw_sql("CREATE OR REPLACE TABLE orders AS SELECT * REPLACE (CASE WHEN order_id = 'o3' THEN 'o1' "
                "ELSE order_id END AS order_id) FROM orders")  # a new table of the same name and size
    with pytest.raises(DataError, match="duplicate id"):
        canonical(con.table("orders"), "orders")
    v.clear_cache()


def test_in_memory_duckdb_table_update_in_place_is_seen():
    # an in-memory table has no file that changes with it: its rows are hashed on a hit
    import crmlab.io.validate as v
    v.clear_cache()
    con = ibis.duckdb.connect()
    con.create_table("orders", _orders_frame())
    t = con.table("orders")
    canonical(t, "orders")
    con.raw_sql("UPDATE orders SET order_id = 'o1' WHERE order_id = 'o2'")
    with pytest.raises(DataError, match="duplicate id") as e:
        canonical(t, "orders")
    assert e.value.n_rows == 2 and set(e.value.examples["order_id"]) == {"o1"}
    v.clear_cache()


def test_pandas_memtable_edited_in_place_is_seen():
    # DuckDB reads a pandas memtable's own buffers: an edit of the frame shows in the next query
    import crmlab.io.validate as v
    v.clear_cache()
    df = _orders_frame()
    t = ibis.memtable(df)
    canonical(t, "orders")
    df.loc[1, "revenue"] = -5.0
    with pytest.raises(DataError, match="negative value") as e:
        canonical(t, "orders")
    assert e.value.n_rows == 1 and list(e.value.examples["order_id"]) == ["o2"]
    v.clear_cache()


# --------------------------------------------------------------------------- issue 16: only the columns a call reads
def test_a_call_checks_only_the_columns_it_reads_and_the_key(tmp_path, monkeypatch):
    # The funnel reads three of the events' eleven columns; validating all of them cost it
    # 0.6x its own query at 100M events (issue 16). A rule of an unread column is not run, the
    # key's uniqueness always is, and the unread canonical columns are not handed back.
    import json

    import crmlab.io.validate as v
    from crmlab.io.trust import LOG_ENV
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    v.clear_cache()
    path = tmp_path / "orders.parquet"
    orders(revenue=[10.0, -1.0, 5.0, 0.0], coupon=["A", None, None, "B"]).to_parquet(path)
    t = canonical(path, "orders", columns=["user_id", "time"])
    assert t.columns == ("order_id", "user_id", "time")  # the key comes along; revenue is not handed back
    assert int(t.count().execute()) == 4
    with pytest.raises(AttributeError):
        _ = t.revenue  # a caller cannot read a column it did not have checked
    with pytest.raises(DataError, match="revenue.*negative value"):
        canonical(path, "orders", columns=["user_id", "revenue"])  # a later call reading it checks it
    with pytest.raises(DataError, match="revenue.*negative value"):
        canonical(path, "orders")  # the cache never stands in for a column it did not check
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert runs[0]["columns"] == ["order_id", "time", "user_id"]
    assert runs[1]["columns"] == ["revenue"]  # only what the first call had not checked
    v.clear_cache()


def test_the_key_is_checked_whichever_columns_a_call_reads():
    with pytest.raises(DataError, match="order_id.*duplicate id"):
        canonical(orders(order_id=["o1", "o1", "o3", "o4"]), "orders", columns=["user_id", "revenue"])


def test_a_narrow_call_then_a_wide_one_checks_each_column_once(tmp_path, monkeypatch):
    import json

    import crmlab.io.validate as v
    from crmlab.io.trust import LOG_ENV
    log = tmp_path / "validations.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    v.clear_cache()
    path = tmp_path / "orders.parquet"
    orders(coupon=["A", None, None, "B"]).to_parquet(path)
    canonical(path, "orders", columns=["user_id", "time", "revenue"])
    wide = canonical(path, "orders")
    assert set(wide.columns) >= {"order_id", "user_id", "time", "revenue", "discount", "coupon", "items", "category"}
    canonical(path, "orders", columns=["user_id", "coupon"])  # all checked by now: no scan
    canonical(path, "orders")
    runs = [json.loads(line)["columns"] for line in log.read_text().splitlines()]
    assert runs == [["order_id", "revenue", "time", "user_id"], ["category", "coupon", "discount", "items"]]
    v.clear_cache()


def test_as_of_checks_the_time_column_even_when_a_call_does_not_name_it():
    with pytest.raises(DataError, match="time after as_of"):
        canonical(orders(), "orders", columns=["user_id"], as_of="2026-01-06")


def test_text_times_of_an_unread_column_are_not_checked_in_the_engine(tmp_path):
    # delivered_time holds ambiguous day/month text; a call that does not read it is not
    # stopped by it (a pandas frame is still parsed whole, in pandas, before the engine sees it)
    path = tmp_path / "messages.parquet"
    messages(delivered_time=["05/01/2026"] * 3).to_parquet(path)
    t = canonical(path, "messages", columns=["user_id", "sent_time", "channel"])
    assert "delivered_time" not in t.columns and int(t.count().execute()) == 3
    with pytest.raises(DataError, match="delivered_time.*ambiguous"):
        canonical(path, "messages")
