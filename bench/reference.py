"""Hand-written DuckDB SQL and plain pandas versions of each benchmarked operation.

The SQL is the practical floor on this machine: what an analyst fluent in DuckDB would write
for the same result. The pandas version is what a notebook without an engine would do. Both
return the same frame as the crmlab call they are compared with (checked by tests/test_bench.py
on small data), so the timings compare equal work, including the transfer to pandas.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

AS_OF = "2026-11-23 00:00:00"
FUNNEL = ("product_view", "add_to_cart", "begin_checkout", "purchase")
FUNNEL_WINDOW_HOURS = 24
ATTR_WINDOW_DAYS = 3


def _con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _p(data: Path, table: str) -> str:
    return f"read_parquet('{Path(data) / (table + '.parquet')}')"


# ---------------------------------------------------------------- sessionisation
def sessionize_sql(data: Path) -> pd.DataFrame:
    """Every event with its session, as ``sessionize`` returns it: every column, the session id
    as ``<user_id>-<n>`` text, in user and time order. (Until 2026-12-02 the peers returned
    three columns and an integer session number, unordered: a fraction of the rows' bytes that
    crmlab moves to pandas.)"""
    q = f"""
    WITH e AS (
      SELECT * EXCLUDE (session_id),
             CASE WHEN lag(time) OVER w IS NULL OR time - lag(time) OVER w > INTERVAL 30 MINUTE
                  THEN 1 ELSE 0 END AS new_session
      FROM {_p(data, 'events')} WINDOW w AS (PARTITION BY user_id ORDER BY time))
    SELECT * EXCLUDE (new_session),
           user_id || '-' || sum(new_session) OVER (PARTITION BY user_id ORDER BY time ROWS UNBOUNDED PRECEDING)
             AS session_id
    FROM e ORDER BY user_id, time"""
    # through Arrow, as crmlab fetches: DuckDB's .df() takes 11.6 s for these 1M rows of text
    # columns against 5.0 s via Arrow
    return _con().sql(q).to_arrow_table().to_pandas()


def sessionize_parquet_sql(data: Path) -> pd.DataFrame:
    """The same sessionisation written to Parquet by DuckDB (ids as crmlab derives them)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="bench-sess-sql-"))
    try:
        q = f"""
        WITH e AS (
          SELECT *, CASE WHEN lag(time) OVER w IS NULL OR time - lag(time) OVER w > INTERVAL 30 MINUTE
                         THEN 1 ELSE 0 END AS new_session
          FROM {_p(data, 'events')} WINDOW w AS (PARTITION BY user_id ORDER BY time))
        SELECT * EXCLUDE (new_session, session_id),
               user_id || '-' || sum(new_session) OVER (PARTITION BY user_id ORDER BY time ROWS UNBOUNDED PRECEDING) AS session_id
        FROM e ORDER BY user_id, time"""
        con = _con()
        con.execute(f"COPY ({q}) TO '{d / 's.parquet'}' (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*), count(DISTINCT session_id) FROM read_parquet('{d / 's.parquet'}')").fetchone()
        return pd.DataFrame({"path": [str(d / "s.parquet")], "rows": [rows[0]], "sessions": [rows[1]]})
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sessionize_pandas(data: Path) -> pd.DataFrame:
    """The same frame as :func:`sessionize_sql`, in pandas."""
    e = pd.read_parquet(Path(data) / "events.parquet").drop(columns="session_id", errors="ignore")
    e = e.sort_values(["user_id", "time"], kind="stable").reset_index(drop=True)
    gap = e.groupby("user_id", sort=False)["time"].diff()
    n = (gap.isna() | (gap > pd.Timedelta("30min"))).astype("int64").groupby(e["user_id"], sort=False).cumsum()
    e["session_id"] = e["user_id"] + "-" + n.astype(str)
    return e


# ---------------------------------------------------------------- RFM
def rfm_sql(data: Path) -> pd.DataFrame:
    """RFM with what ``rfm_table`` returns beside it: first and last order time, one row per user
    in user order. (Until 2026-12-02 the peer left out the two times and the order; at 100M
    orders that saved it 0.09 s of 0.57 s, so crmlab's warm call looked 1.67x slower than SQL
    for doing more.)"""
    q = f"""
    SELECT user_id,
           date_diff('day', max(time), TIMESTAMP '{AS_OF}') AS recency_days,
           count(*) AS frequency, sum(revenue) AS monetary,
           min(time) AS first_time, max(time) AS last_time
    FROM {_p(data, 'orders')} WHERE time <= TIMESTAMP '{AS_OF}' GROUP BY user_id ORDER BY user_id"""
    return _con().sql(q).df()


def rfm_pandas(data: Path) -> pd.DataFrame:
    o = pd.read_parquet(Path(data) / "orders.parquet", columns=["user_id", "time", "revenue"])
    o = o[o["time"] <= pd.Timestamp(AS_OF)]
    g = o.groupby("user_id").agg(last=("time", "max"), frequency=("time", "size"), monetary=("revenue", "sum"))
    g["recency_days"] = (pd.Timestamp(AS_OF).normalize() - g["last"].dt.normalize()).dt.days
    return g.reset_index()[["user_id", "recency_days", "frequency", "monetary"]]


def rfm_lifetimes_sql(data: Path) -> pd.DataFrame:
    """lifetimes' summary_data_from_transaction_data (freq="D"): revenue summed per customer and
    day; frequency = days with an order - 1, recency = last - first day, T = as_of day - first
    day, monetary = mean revenue of the repeat days (0 without repeats)."""
    q = f"""
    WITH d AS (SELECT user_id, CAST(time AS DATE) AS day, sum(revenue) AS rev
               FROM {_p(data, 'orders')} WHERE time <= TIMESTAMP '{AS_OF}' GROUP BY user_id, day),
    u AS (SELECT user_id, count(*) - 1 AS frequency, min(day) AS first_day, max(day) AS last_day,
                 sum(rev) - arg_min(rev, day) AS repeat_rev FROM d GROUP BY user_id)
    SELECT user_id, CAST(frequency AS DOUBLE) AS frequency,
           CAST(date_diff('day', first_day, last_day) AS DOUBLE) AS recency,
           CAST(date_diff('day', first_day, CAST(TIMESTAMP '{AS_OF}' AS DATE)) AS DOUBLE) AS T,
           CASE WHEN frequency > 0 THEN repeat_rev / frequency ELSE 0 END AS monetary
    FROM u"""
    return _con().sql(q).df()


def rfm_lifetimes_pandas(data: Path) -> pd.DataFrame:
    o = pd.read_parquet(Path(data) / "orders.parquet", columns=["user_id", "time", "revenue"])
    o = o[o["time"] <= pd.Timestamp(AS_OF)]
    d = o.assign(day=o["time"].dt.normalize()).groupby(["user_id", "day"], as_index=False)["revenue"].sum()
    g = d.groupby("user_id").agg(n=("day", "size"), first=("day", "min"), last=("day", "max"),
                                 total=("revenue", "sum"), first_rev=("revenue", "first"))
    freq = (g["n"] - 1).astype(float)
    out = pd.DataFrame({"frequency": freq, "recency": (g["last"] - g["first"]).dt.days.astype(float),
                        "T": (pd.Timestamp(AS_OF).normalize() - g["first"]).dt.days.astype(float),
                        "monetary": ((g["total"] - g["first_rev"]) / freq.where(freq > 0)).fillna(0.0)})
    return out.reset_index()


# ---------------------------------------------------------------- monthly retention
def retention_sql(data: Path) -> pd.DataFrame:
    q = f"""
    WITH o AS (SELECT user_id, date_trunc('month', time) AS m FROM {_p(data, 'orders')}
               WHERE time <= TIMESTAMP '{AS_OF}'),
         f AS (SELECT user_id, min(m) AS cohort FROM o GROUP BY user_id),
         a AS (SELECT DISTINCT o.user_id, f.cohort, date_diff('month', f.cohort, o.m) AS k FROM o JOIN f USING (user_id))
    SELECT cohort, k, count(*) AS users FROM a GROUP BY cohort, k ORDER BY cohort, k"""
    return _con().sql(q).df()


def retention_pandas(data: Path) -> pd.DataFrame:
    o = pd.read_parquet(Path(data) / "orders.parquet", columns=["user_id", "time"])
    o = o[o["time"] <= pd.Timestamp(AS_OF)]
    m = o["time"].dt.to_period("M")
    o = pd.DataFrame({"user_id": o["user_id"], "m": m})
    o["cohort"] = o.groupby("user_id")["m"].transform("min")
    o["k"] = (o["m"] - o["cohort"]).apply(lambda x: x.n)
    a = o.drop_duplicates(["user_id", "k"])
    out = a.groupby(["cohort", "k"]).size().rename("users").reset_index()
    out["cohort"] = out["cohort"].dt.to_timestamp()
    return out


# ---------------------------------------------------------------- four-step funnel
def funnel_sql(data: Path) -> pd.DataFrame:
    """Ordered funnel, each user's first attempt: the first product_view starts the window;
    each later step is the first matching event at or after the previous step, within 24 h of
    the start."""
    s = FUNNEL
    q = f"""
    WITH e AS (SELECT user_id, time, event FROM {_p(data, 'events')} WHERE event IN {tuple(s)}),
    s1 AS (SELECT user_id, min(time) AS t1 FROM e WHERE event = '{s[0]}' GROUP BY user_id),
    s2 AS (SELECT s1.user_id, s1.t1, min(e.time) AS t2 FROM s1 JOIN e ON e.user_id = s1.user_id
           AND e.event = '{s[1]}' AND e.time >= s1.t1 AND e.time <= s1.t1 + INTERVAL {FUNNEL_WINDOW_HOURS} HOUR
           GROUP BY s1.user_id, s1.t1),
    s3 AS (SELECT s2.user_id, s2.t1, min(e.time) AS t3 FROM s2 JOIN e ON e.user_id = s2.user_id
           AND e.event = '{s[2]}' AND e.time >= s2.t2 AND e.time <= s2.t1 + INTERVAL {FUNNEL_WINDOW_HOURS} HOUR
           GROUP BY s2.user_id, s2.t1),
    s4 AS (SELECT s3.user_id FROM s3 JOIN e ON e.user_id = s3.user_id
           AND e.event = '{s[3]}' AND e.time >= s3.t3 AND e.time <= s3.t1 + INTERVAL {FUNNEL_WINDOW_HOURS} HOUR
           GROUP BY s3.user_id)
    SELECT 1 AS step, count(*) AS users FROM s1 UNION ALL SELECT 2, count(*) FROM s2
    UNION ALL SELECT 3, count(*) FROM s3 UNION ALL SELECT 4, count(*) FROM s4 ORDER BY step"""
    return _con().sql(q).df()


def funnel_pandas(data: Path) -> pd.DataFrame:
    e = pd.read_parquet(Path(data) / "events.parquet", columns=["user_id", "time", "event"])
    e = e[e["event"].isin(FUNNEL)]
    start = e[e["event"] == FUNNEL[0]].groupby("user_id")["time"].min().rename("t1")
    frontier = start.to_frame()
    frontier["prev"] = frontier["t1"]
    counts = [len(frontier)]
    window = pd.Timedelta(hours=FUNNEL_WINDOW_HOURS)
    for step in FUNNEL[1:]:
        cand = e[e["event"] == step].merge(frontier, left_on="user_id", right_index=True)
        cand = cand[(cand["time"] >= cand["prev"]) & (cand["time"] <= cand["t1"] + window)]
        nxt = cand.groupby("user_id").agg(t1=("t1", "first"), prev=("time", "min"))
        frontier = nxt
        counts.append(len(frontier))
    return pd.DataFrame({"step": np.arange(1, len(FUNNEL) + 1), "users": counts})


# ---------------------------------------------------------------- four-step funnel, best attempt
def funnel_best_sql(data: Path) -> pd.DataFrame:
    """Ordered funnel, each user's best attempt (ClickHouse windowFunnel's level; disjoint steps):
    events sorted by (time, step); a step-k event extends the latest step-(k-1) chain before it
    when it is within 24 h of that chain's start (the latest start reaching k-1 is the best)."""
    s = FUNNEL
    case = " ".join(f"WHEN '{e}' THEN {i + 1}" for i, e in enumerate(s))
    win = "WINDOW w AS (PARTITION BY user_id ORDER BY time, k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    within = f"time <= p + INTERVAL {FUNNEL_WINDOW_HOURS} HOUR"
    q = f"""
    WITH e AS (SELECT user_id, time, CASE event {case} END AS k FROM {_p(data, 'events')} WHERE event IN {tuple(s)}),
    c1 AS (SELECT *, CASE WHEN k = 1 THEN time END AS c FROM e),
    l2 AS (SELECT user_id, time, k, c AS c1, max(c) OVER w AS p FROM c1 {win}),
    c2 AS (SELECT *, CASE WHEN k = 2 AND {within} THEN p END AS c2 FROM l2),
    l3 AS (SELECT user_id, time, k, c1, c2, max(c2) OVER w AS p FROM c2 {win}),
    c3 AS (SELECT *, CASE WHEN k = 3 AND {within} THEN p END AS c3 FROM l3),
    l4 AS (SELECT user_id, time, k, c1, c2, c3, max(c3) OVER w AS p FROM c3 {win}),
    lv AS (SELECT user_id, max(CASE WHEN k = 4 AND {within} THEN 4 WHEN c3 IS NOT NULL THEN 3
                                    WHEN c2 IS NOT NULL THEN 2 WHEN c1 IS NOT NULL THEN 1 END) AS lvl
           FROM l4 GROUP BY user_id)
    SELECT s.step, count(*) AS users FROM lv JOIN (VALUES (1), (2), (3), (4)) s(step) ON lv.lvl >= s.step
    GROUP BY s.step ORDER BY s.step"""
    return _con().sql(q).df()


def funnel_best_chdb(data: Path) -> pd.DataFrame:
    """The same with ClickHouse's own windowFunnel (in-process, chdb), microsecond timestamps."""
    import chdb
    conds = ", ".join(f"event = '{e}'" for e in FUNNEL)
    path = Path(data) / "events.parquet"
    q = f"""
    SELECT step, countIf(lvl >= step) AS users
    FROM (SELECT user_id, windowFunnel({FUNNEL_WINDOW_HOURS * 3600 * 1_000_000})(
              toUInt64(toUnixTimestamp64Micro(toDateTime64(time, 6, 'UTC'))), {conds}) AS lvl
          FROM file('{path}', Parquet) WHERE event IN {tuple(FUNNEL)} GROUP BY user_id)
    ARRAY JOIN [1, 2, 3, 4] AS step GROUP BY step ORDER BY step"""
    return chdb.query(q, "DataFrame")


# ---------------------------------------------------------------- attribution
def attribution_sql(data: Path) -> pd.DataFrame:
    """Receipt-based, half-open 3-day window after delivery, one credit per order and campaign
    (the campaign's latest qualifying message), last touch across campaigns: one row per
    credited order."""
    q = f"""
    WITH m AS (SELECT message_id, user_id, campaign, delivered_time FROM {_p(data, 'messages')}
               WHERE delivered_time IS NOT NULL),
    o AS (SELECT order_id, user_id, time, revenue FROM {_p(data, 'orders')}),
    c AS (SELECT o.order_id, o.user_id, o.time AS order_time, o.revenue, m.message_id, m.campaign,
                 m.delivered_time AS anchor_time
          FROM o JOIN m ON m.user_id = o.user_id AND o.time >= m.delivered_time
                        AND o.time < m.delivered_time + INTERVAL {ATTR_WINDOW_DAYS} DAY)
    SELECT * FROM c
    QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY anchor_time DESC, message_id DESC) = 1
    ORDER BY order_time, order_id"""
    return _con().sql(q).df()


def attribution_pandas(data: Path) -> pd.DataFrame:
    m = pd.read_parquet(Path(data) / "messages.parquet", columns=["message_id", "user_id", "campaign", "delivered_time"])
    m = m.dropna(subset=["delivered_time"]).rename(columns={"delivered_time": "anchor_time"})
    o = pd.read_parquet(Path(data) / "orders.parquet", columns=["order_id", "user_id", "time", "revenue"])
    j = o.rename(columns={"time": "order_time"}).merge(m, on="user_id")
    j = j[(j["order_time"] >= j["anchor_time"]) & (j["order_time"] < j["anchor_time"] + pd.Timedelta(days=ATTR_WINDOW_DAYS))]
    j = j.sort_values(["order_id", "anchor_time", "message_id"], ascending=[True, False, False])
    return j.drop_duplicates("order_id").sort_values(["order_time", "order_id"]).reset_index(drop=True)


# ---------------------------------------------------------------- A/B sufficient statistics
def abstats_sql(data: Path) -> pd.DataFrame:
    """Per experiment and variant: n, sum and sum of squares of each user's revenue within
    7 days of assignment (users without orders count as zero)."""
    q = f"""
    WITH a AS (SELECT experiment, variant, user_id, assigned_time FROM {_p(data, 'assignments')}),
    y AS (SELECT a.experiment, a.variant, a.user_id, coalesce(sum(o.revenue), 0) AS revenue
          FROM a LEFT JOIN {_p(data, 'orders')} o ON o.user_id = a.user_id
               AND o.time >= a.assigned_time AND o.time < a.assigned_time + INTERVAL 7 DAY
          GROUP BY a.experiment, a.variant, a.user_id)
    SELECT experiment, variant, count(*) AS n, sum(revenue) AS sum, sum(revenue * revenue) AS sum_sq
    FROM y GROUP BY experiment, variant ORDER BY experiment, variant"""
    return _con().sql(q).df()


def abstats_pandas(data: Path) -> pd.DataFrame:
    a = pd.read_parquet(Path(data) / "assignments.parquet", columns=["experiment", "variant", "user_id", "assigned_time"])
    o = pd.read_parquet(Path(data) / "orders.parquet", columns=["user_id", "time", "revenue"])
    j = a.merge(o, on="user_id", how="left")
    inside = (j["time"] >= j["assigned_time"]) & (j["time"] < j["assigned_time"] + pd.Timedelta(days=7))
    j["revenue"] = j["revenue"].where(inside, 0.0)
    y = j.groupby(["experiment", "variant", "user_id"], as_index=False)["revenue"].sum()
    y["sq"] = y["revenue"] ** 2
    out = y.groupby(["experiment", "variant"]).agg(n=("user_id", "size"), sum=("revenue", "sum"), sum_sq=("sq", "sum"))
    return out.reset_index()
