"""Every validation rule of the canonical data model raises a DataError that names the table,
the column, the rule, the count of bad rows and example rows."""
import ibis
import pandas as pd
import pytest

from crmlab import DataError, canonical
from crmlab.engine import to_pandas


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
    import crmlab.validate as v
    v.clear_cache()
    calls = []
    real = v._check_rows
    monkeypatch.setattr(v, "_check_rows", lambda *a: (calls.append(1), real(*a)))
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
