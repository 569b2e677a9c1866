"""The benchmark compares equal work: for every operation the hand-written DuckDB SQL, the
plain pandas version and the crmlab call give the same result on the same Parquet data."""
import numpy as np
import pandas as pd
import pytest

from bench import crmlab_ops as ops
from bench import reference as ref
from bench.generate import write, write_orders


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # two chunks, so ids must stay disjoint across chunks as at the large scales
    return write(tmp_path_factory.mktemp("bench") / "small", n_users=2400, chunk_users=1200)


def _naive(s):
    return s.dt.tz_localize(None) if isinstance(s.dtype, pd.DatetimeTZDtype) else s


def test_generated_chunks_keep_ids_disjoint(data):
    o = pd.read_parquet(data / "orders.parquet")
    c = pd.read_parquet(data / "customers.parquet")
    assert o["order_id"].is_unique and c["user_id"].is_unique and len(c) == 2400
    assert set(o["user_id"]) <= set(c["user_id"])


def test_sessionize_same(data):
    sql, pdv, cr = ref.sessionize_sql(data), ref.sessionize_pandas(data), ops.sessionize(data)
    assert len(sql) == len(pdv) == len(cr)
    # the same frame: every column crmlab returns, in user and time order
    assert set(sql.columns) == set(pdv.columns) == set(cr.columns)
    for other in (sql, pdv):
        assert list(other["user_id"]) == list(cr["user_id"])
        np.testing.assert_array_equal(other["time"].to_numpy(), cr["time"].dt.tz_localize(None).to_numpy())
    # the same partition of events into sessions: count sessions per user
    n_sql = sql.groupby("user_id")["session_id"].nunique().sort_index()
    n_pd = pdv.groupby("user_id")["session_id"].nunique().sort_index()
    n_cr = cr.groupby("user_id")["session_id"].nunique().sort_index()
    assert (n_sql.values == n_pd.values).all() and (n_sql.values == n_cr.values).all()


def test_rfm_same(data):
    sql = ref.rfm_sql(data).sort_values("user_id").reset_index(drop=True)
    pdv = ref.rfm_pandas(data).sort_values("user_id").reset_index(drop=True)
    cr = ops.rfm(data).sort_values("user_id").reset_index(drop=True)
    for other in (pdv, cr):
        assert list(other["user_id"]) == list(sql["user_id"])
        np.testing.assert_array_equal(other["frequency"], sql["frequency"])
        np.testing.assert_allclose(other["monetary"], sql["monetary"])
    np.testing.assert_array_equal(pdv["recency_days"], sql["recency_days"])
    np.testing.assert_array_equal(cr["recency"], sql["recency_days"])
    assert list(ref.rfm_sql(data)["user_id"]) == sorted(sql["user_id"])  # in user order, as rfm_table's
    for col in ("first_time", "last_time"):  # the peer computes the times rfm_table returns
        np.testing.assert_array_equal(cr[col].dt.tz_localize(None).to_numpy(), sql[col].to_numpy())


def test_rfm_lifetimes_same(data):
    sql = ref.rfm_lifetimes_sql(data).sort_values("user_id").reset_index(drop=True)
    pdv = ref.rfm_lifetimes_pandas(data).sort_values("user_id").reset_index(drop=True)
    cr = ops.rfm_lifetimes(data).sort_values("user_id").reset_index(drop=True)
    assert (sql["frequency"] > 0).any()  # repeat buyers exist, so monetary is exercised
    for other in (pdv, cr):
        assert list(other["user_id"]) == list(sql["user_id"])
        for col in ("frequency", "recency", "T", "monetary"):
            np.testing.assert_allclose(other[col], sql[col], rtol=1e-9, err_msg=col)


def test_order_only_scale(tmp_path):
    """The 10M-orders scale's generator: the asked-for size (within 2 %), unique ids, every order
    in the 18 months up to the as-of time, and repeat buyers for RFM to work with."""
    o = pd.read_parquet(write_orders(tmp_path / "o", 40_000) / "orders.parquet")
    assert abs(len(o) - 40_000) < 800 and o["order_id"].is_unique
    assert o["time"].max() <= pd.Timestamp(ref.AS_OF) and o["time"].min() >= pd.Timestamp(ref.AS_OF) - pd.Timedelta(days=548)
    per_user = o.groupby("user_id").size()
    assert 0.3 < (per_user == 1).mean() < 0.5 and per_user.max() > 10


def test_retention_same(data):
    sql = ref.retention_sql(data)
    pdv = ref.retention_pandas(data)
    cr = ops.retention(data)
    cr = cr[cr["value"] > 0]
    key = lambda d, c, k, v: dict(zip(zip(pd.to_datetime(_naive(d[c])), d[k].astype(int)), d[v].astype(int)))
    assert key(sql, "cohort", "k", "users") == key(pdv, "cohort", "k", "users") == key(cr, "cohort", "period_index", "value")


def test_funnel_same(data):
    sql, pdv, cr = ref.funnel_sql(data), ref.funnel_pandas(data), ops.funnel(data)
    assert list(sql["users"]) == list(pdv["users"]) == list(cr["users"])


def test_funnel_best_same(data):
    """The best-attempt funnel: the hand-written SQL, ClickHouse's windowFunnel (chdb) and crmlab."""
    pytest.importorskip("chdb")
    sql, ch, cr = ref.funnel_best_sql(data), ref.funnel_best_chdb(data), ops.funnel_best(data)
    assert list(sql["users"]) == [int(x) for x in ch["users"]] == list(cr["users"])
    assert list(cr["users"]) != list(ops.funnel(data)["users"])  # best differs from first here


def test_attribution_same(data):
    sql, pdv, cr = ref.attribution_sql(data), ref.attribution_pandas(data), ops.attribution(data)
    assert len(sql) > 0
    for other in (pdv, cr):
        a = sql.set_index("order_id")[["message_id", "campaign"]].sort_index()
        b = other.set_index("order_id")[["message_id", "campaign"]].sort_index()
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_abstats_same(data):
    sql = ref.abstats_sql(data).set_index(["experiment", "variant"]).sort_index()
    pdv = ref.abstats_pandas(data).set_index(["experiment", "variant"]).sort_index()
    pd.testing.assert_frame_equal(sql, pdv, check_dtype=False)
    cr = ops.abstats(data)
    rev = cr[(cr["metric"] == "revenue_per_user") & (cr["segment"] == "all")].set_index("experiment")
    assert len(rev) >= 3  # every treatment/control campaign of the shop
    for exp, row in rev.iterrows():
        for arm in ("treatment", "control"):
            ref_row = sql.loc[(exp, arm)]
            assert row[f"n_{arm}"] == ref_row["n"]
            value = row["estimate"] if arm == "treatment" else row["estimate_control"]
            assert value * row[f"n_{arm}"] == pytest.approx(ref_row["sum"], rel=1e-9, abs=1e-6)


def test_default_run_plan():
    """`make bench` covers the three event scales and the 10M-orders scale; what it leaves out
    at the largest scale and on orders alone is stated in run.applicable."""
    from bench.run import IMPLS, OPS, applicable, main
    import inspect
    assert "1M,10M,100M,10M-orders" in inspect.getsource(main)
    cells = {(s, o, i) for s in ("1M", "10M", "100M", "10M-orders") for o in OPS for i in IMPLS if applicable(o, i, s)}
    assert ("100M", "funnel", "sql") in cells and ("100M", "funnel", "crmlab_warm") in cells
    assert not {c for c in cells if c[0] == "100M" and (c[1] == "sessionize" or c[2] in ("pandas", "spark"))}
    assert {c[1] for c in cells if c[0] == "10M-orders"} == {"retention", "rfm", "rfm_lifetimes"}
    assert {c[1] for c in cells if c[2] == "lifetimes"} == {"rfm_lifetimes"}
    assert {c[1] for c in cells if c[2] == "chdb"} == {"funnel_best"}
    assert not {c for c in cells if c[1] == "funnel_best" and c[2] == "pandas"}
    assert ("10M", "weekly_report", "crmlab") in cells and ("10M", "weekly_report", "sql") not in cells


def test_sessionize_parquet_same(data):
    """Sessionisation written to Parquet (the 100M benchmark): the same rows and sessions as the
    SQL peer and as the in-memory call."""
    sql, cr = ref.sessionize_parquet_sql(data), ops.sessionize_parquet(data)
    mem = ops.sessionize(data)
    assert int(cr["rows"].iloc[0]) == int(sql["rows"].iloc[0]) == len(mem)
    assert int(cr["sessions"].iloc[0]) == int(sql["sessions"].iloc[0]) == mem[["user_id", "session_id"]].drop_duplicates().shape[0]


def test_runs_of_one_operation_go_round_robin(tmp_path, monkeypatch):
    """On a shared machine the first call, the warm call and the SQL of one operation take turns
    (run 1 of each, then run 2 ...), so that their ratio is not a comparison of two loads."""
    import bench.run as run
    calls = []
    monkeypatch.setattr(run, "generate", lambda scale: tmp_path)
    (tmp_path / "meta.json").write_text("{}")
    monkeypatch.setattr(run, "run_once", lambda op, impl, data, timeout: (calls.append(impl), {
        "seconds": float(len(calls)), "peak_rss_mib": 1.0, "rows": 1})[1])
    monkeypatch.setattr(run, "HERE", tmp_path)
    run.main(["--scales", "10M", "--ops", "rfm", "--impls", "crmlab,crmlab_warm,sql", "--repeats", "2",
              "--out", str(tmp_path / "r.md")])
    assert calls == ["crmlab", "crmlab_warm", "sql", "crmlab", "crmlab_warm", "sql"]
    import json
    cells = {r["impl"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    assert cells["sql"]["all_seconds"] == [3.0, 6.0] and cells["sql"]["seconds"] == 4.5
