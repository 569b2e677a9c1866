"""Funnels: hand-counted sequences (modes, ties, window edge, exclusions, first vs best,
attribution), a brute-force reference on random sequences, planted synthetic rates, the
chi-square comparison against scipy/statsmodels, and DuckDB-vs-PySpark identity."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from crmlab.funnel import (compare_groups, dropped_users, funnel, funnel_users, plot_funnel,
                           plot_time_to_convert, time_to_convert)
from conftest import assert_same_frame

STEPS = ["A", "B", "C"]
D0 = pd.Timestamp("2024-03-04 10:00")


def ev(rows, **extra):
    """rows: (user, minutes after D0 (or a Timestamp), event[, device])."""
    out = []
    for r in rows:
        u, t, e = r[:3]
        time = t if isinstance(t, pd.Timestamp) else D0 + pd.Timedelta(minutes=t)
        row = {"user_id": u, "time": time, "event": e}
        if len(r) > 3:
            row["device"] = r[3]
        out.append(row)
    return pd.DataFrame(out)


def reached(df):
    return dict(zip(df["user_id"], df["reached"]))


# --------------------------------------------------------------------------- modes
MODES_DATA = ev([
    ("u1", 0, "A"), ("u1", 5, "X"), ("u1", 10, "B"), ("u1", 20, "C"),    # other event in between
    ("u2", 0, "B"), ("u2", 1, "A"), ("u2", 2, "C"),                      # out of order
    ("u3", 0, "A"), ("u3", 1, "B"), ("u3", 2, "C"),                      # clean
    ("u4", 0, "C"), ("u4", 1, "B"),                                      # never step 1
])


@pytest.mark.parametrize("mode, expected", [
    ("ordered", {"u1": 3, "u2": 1, "u3": 3}),
    ("adjacent", {"u1": 1, "u2": 1, "u3": 3}),
    ("any_order", {"u1": 3, "u2": 3, "u3": 3}),
])
def test_modes_differ(mode, expected):
    u = funnel_users(MODES_DATA, STEPS, mode=mode)
    assert reached(u) == expected  # u4 never did A: not in the funnel
    f = funnel(MODES_DATA, STEPS, mode=mode)
    counts = [sum(v >= k for v in expected.values()) for k in (1, 2, 3)]
    assert f["users"].tolist() == counts
    assert f["drop_off"].tolist() == [0, counts[0] - counts[1], counts[1] - counts[2]]
    assert f["conversion_from_start"].tolist() == pytest.approx([c / counts[0] for c in counts])


def test_output_columns_and_rates():
    f = funnel(MODES_DATA, STEPS)
    assert list(f.columns) == ["step", "step_name", "users", "conversion_from_start",
                               "conversion_from_previous", "drop_off"]
    assert f["step_name"].tolist() == STEPS
    assert f["conversion_from_previous"].tolist() == pytest.approx([1.0, 2 / 3, 1.0])


def test_step_sets_and_labels():
    data = ev([("u1", 0, "A"), ("u1", 1, "B2"), ("u2", 0, "A"), ("u2", 1, "B")])
    f = funnel(data, ["A", {"B", "B2"}])
    assert f["step_name"].tolist() == ["A", "B|B2"]
    assert f["users"].tolist() == [2, 2]
    f = funnel(data, {"view": "A", "cart": ["B"]})
    assert f["step_name"].tolist() == ["view", "cart"]
    assert f["users"].tolist() == [2, 1]


# --------------------------------------------------------------------------- ties, window edge
def test_equal_timestamps_ordered_by_step():
    # B is listed before A but at the same instant: ties are ordered by step, so A -> B counts.
    data = ev([("u1", 0, "B"), ("u1", 0, "A"), ("u1", 1, "C")])
    for mode in ("ordered", "adjacent"):
        assert reached(funnel_users(data, STEPS, mode=mode)) == {"u1": 3}


def test_equal_timestamp_other_event_breaks_adjacent():
    # X at the same instant as A sorts after A (non-step events after step events): adjacent breaks.
    data = ev([("u1", 0, "X"), ("u1", 0, "A"), ("u1", 1, "B")])
    assert reached(funnel_users(data, STEPS, mode="adjacent")) == {"u1": 1}
    assert reached(funnel_users(data, STEPS, mode="ordered")) == {"u1": 2}


def test_one_event_cannot_fill_two_steps():
    data = ev([("u1", 0, "A"), ("u1", 1, "A")])
    assert reached(funnel_users(data, ["A", "A", "A"])) == {"u1": 2}


def test_window_edge_is_inclusive():
    data = ev([
        ("u1", 0, "A"), ("u1", 24 * 60, "B"),                                   # exactly 1 day: in
        ("u2", 0, "A"), ("u2", D0 + pd.Timedelta(days=1, seconds=1), "B"),      # 1 day + 1 s: out
    ])
    assert reached(funnel_users(data, ["A", "B"], window="1D")) == {"u1": 2, "u2": 1}
    assert reached(funnel_users(data, ["A", "B"], window=pd.Timedelta(days=1, seconds=1))) == {"u1": 2, "u2": 2}
    assert reached(funnel_users(data, ["A", "B"], window=None)) == {"u1": 2, "u2": 2}


def test_window_counted_from_first_step_not_previous():
    # B within the window, C within a window of B but not of A.
    data = ev([("u1", 0, "A"), ("u1", 50, "B"), ("u1", 70, "C")])
    assert reached(funnel_users(data, STEPS, window="1h")) == {"u1": 2}


# --------------------------------------------------------------------------- repeats, first vs best
def test_repeated_steps_and_first_vs_best():
    day = 24 * 60
    data = ev([
        ("u1", 0, "A"), ("u1", 3 * day, "A"), ("u1", 3 * day + 60, "B"),   # first attempt fails, second reaches B
        ("u2", 0, "A"), ("u2", 1, "A"), ("u2", 2, "B"), ("u2", 3, "B"), ("u2", 4, "C"),
    ])
    first = funnel_users(data, STEPS, count="first")
    best = funnel_users(data, STEPS, count="best")
    assert reached(first) == {"u1": 1, "u2": 3}
    assert reached(best) == {"u1": 2, "u2": 3}
    # the counted attempt's times: first starts at day 0, best at day 3
    assert first.set_index("user_id").loc["u1", "t_1"] == (D0).tz_localize("Asia/Seoul")
    assert best.set_index("user_id").loc["u1", "t_1"] == (D0 + pd.Timedelta(days=3)).tz_localize("Asia/Seoul")
    # adjacent: A, A, B: only the second A's attempt is adjacent to B
    s = ev([("u1", 0, "A"), ("u1", 1, "A"), ("u1", 2, "B")])
    assert reached(funnel_users(s, ["A", "B"], mode="adjacent", count="first")) == {"u1": 1}
    assert reached(funnel_users(s, ["A", "B"], mode="adjacent", count="best")) == {"u1": 2}


def test_best_takes_earliest_among_equal_attempts():
    data = ev([("u1", 0, "A"), ("u1", 10, "B"), ("u1", 100, "A"), ("u1", 101, "B")])
    b = funnel_users(data, ["A", "B"], count="best").set_index("user_id")
    assert b.loc["u1", "t_2"] == (D0 + pd.Timedelta(minutes=10)).tz_localize("Asia/Seoul")


# --------------------------------------------------------------------------- exclusions
def test_exclusions():
    data = ev([
        ("u1", 0, "A"), ("u1", 1, "X"), ("u1", 2, "B"),                       # disqualified ...
        ("u1", 100, "A"), ("u1", 101, "B"),                                   # ... the next attempt counts
        ("u2", 0, "A"), ("u2", 1, "B"), ("u2", 2, "X"),                       # X after the last step reached: kept
        ("u3", 0, "A"), ("u3", 0, "X"), ("u3", 1, "B"),                       # X at A's instant sorts after A
        ("u4", 0, "A"), ("u4", 1, "B"), ("u4", 2, "X"), ("u4", 3, "C"),       # X before conversion
    ])
    u = funnel_users(data, STEPS, exclude="X")
    assert reached(u) == {"u1": 2, "u2": 2}
    assert u.attrs["excluded"]["attempts excluded"] == 3
    assert u.attrs["excluded"]["users whose every attempt was excluded"] == 2
    f = funnel(data, STEPS, exclude="X")
    assert f["users"].tolist() == [2, 2, 0]
    with pytest.raises(ValueError, match="exclude"):
        funnel(data, STEPS, exclude="A")


def test_as_of_excludes_later_events():
    data = ev([("u1", 0, "A"), ("u1", 10, "B"), ("u2", 0, "A")])
    u = funnel_users(data, ["A", "B"], as_of=(D0 + pd.Timedelta(minutes=5)).tz_localize("Asia/Seoul"))
    assert reached(u) == {"u1": 1, "u2": 1}
    assert u.attrs["excluded"]["events after as_of"] == 1


# --------------------------------------------------------------------------- breakdowns
BY_DATA = ev([
    ("u1", -5, "P", "app"), ("u1", 0, "A", "mobile"), ("u1", 1, "B", "desktop"),
    ("u2", 0, "A", "desktop"), ("u2", 1, "B", "desktop"), ("u2", 2, "C", "mobile"),
    ("u3", 0, "A", None),
])


@pytest.mark.parametrize("by_step, expected", [
    (1, {"u1": "mobile", "u2": "desktop", "u3": "(none)"}),
    ("last", {"u1": "desktop", "u2": "mobile", "u3": "(none)"}),
    (2, {"u1": "desktop", "u2": "desktop", "u3": "(none)"}),
    (3, {"u1": "desktop", "u2": "mobile", "u3": "(none)"}),   # stopped before 3: last reached step
    ("first", {"u1": "app", "u2": "desktop", "u3": "(none)"}),
])
def test_by_attribution(by_step, expected):
    u = funnel_users(BY_DATA, STEPS, by="device", by_step=by_step)
    assert dict(zip(u["user_id"], u["by"])) == expected
    f = funnel(BY_DATA, STEPS, by="device", by_step=by_step)
    total = funnel(BY_DATA, STEPS)
    # each user in one group: the groups add up to the total at every step
    assert f.groupby("step")["users"].sum().tolist() == total["users"].tolist()


def test_by_segment_frame():
    seg = pd.DataFrame({"user_id": ["u1", "u2"], "segment": ["vip", "new"]})
    f = funnel(BY_DATA, STEPS, by=seg)
    got = {(r.by, r.step): r.users for r in f.itertuples()}
    assert got == {("new", 1): 1, ("new", 2): 1, ("new", 3): 1, ("vip", 1): 1, ("vip", 2): 1, ("vip", 3): 0,
                   ("(none)", 1): 1, ("(none)", 2): 0, ("(none)", 3): 0}


def test_bad_parameters():
    with pytest.raises(ValueError, match="mode='loose'"):
        funnel(MODES_DATA, STEPS, mode="loose")
    with pytest.raises(ValueError, match="count="):
        funnel(MODES_DATA, STEPS, count="all")
    with pytest.raises(ValueError, match="window="):
        funnel(MODES_DATA, STEPS, window="-1D")
    with pytest.raises(ValueError, match="by="):
        funnel(MODES_DATA, STEPS, by="nonexistent")
    with pytest.raises(ValueError, match="by_step="):
        funnel(BY_DATA, STEPS, by="device", by_step=7)
    with pytest.raises(ValueError, match="steps"):
        funnel(MODES_DATA, "A")


# --------------------------------------------------------------------------- brute-force reference
def _reference(data, sets, window, mode, count, exclude):
    """Pure-Python O(n^2) statement of the documented semantics."""
    n = len(sets)
    res = {}
    for user, g in data.groupby("user_id"):
        def rank(e):
            return next((k for k, s in enumerate(sets) if e in s), n)
        rows = sorted(zip(g["time"], g["event"]), key=lambda r: (r[0], rank(r[1]), r[1]))
        if mode != "adjacent":
            rows = [r for r in rows if rank(r[1]) < n or r[1] in exclude]
        attempts = []
        for i, (t0, e0) in enumerate(rows):
            if mode in ("ordered", "adjacent") and e0 in sets[0]:
                cur, got = i, 1
                for k in range(1, n):
                    if mode == "ordered":
                        j = next((j for j in range(cur + 1, len(rows)) if rows[j][1] in sets[k]), None)
                    else:
                        j = cur + 1 if cur + 1 < len(rows) and rows[cur + 1][1] in sets[k] else None
                    if j is None or (window is not None and rows[j][0] > t0 + window):
                        break
                    cur, got = j, k + 1
                last = cur
            elif mode == "anchored" and e0 in sets[0]:
                got, last = 1, i
                for k in range(1, n):
                    j = next((j for j in range(i + 1, len(rows)) if rows[j][1] in sets[k]), None)
                    if j is None or (window is not None and rows[j][0] > t0 + window):
                        break
                    got, last = k + 1, max(last, j)
            elif mode == "any_order" and rank(e0) < n:
                got, last = 0, i
                for k in range(n):
                    j = next((j for j in range(i, len(rows)) if rows[j][1] in sets[k]), None)
                    if j is None or (window is not None and rows[j][0] > t0 + window):
                        break
                    got, last = k + 1, max(last, j)
                if got == 0:
                    continue
            else:
                continue
            disq = any(rows[j][1] in exclude for j in range(i + 1, last + 1))
            if not disq:
                attempts.append((i, got))
        if attempts:
            res[user] = attempts[0][1] if count == "first" else max(a[1] for a in attempts)
    return res


@pytest.fixture(scope="module")
def random_events():
    rng = np.random.default_rng(7)
    n = 3000
    users = rng.integers(0, 150, n)
    minutes = rng.integers(0, 6 * 60, n) // 5 * 5  # coarse times: many ties
    events = rng.choice(["A", "B", "C", "X", "Y"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    return pd.DataFrame({"user_id": [f"u{u:03d}" for u in users],
                         "time": D0 + pd.to_timedelta(minutes, unit="min"), "event": events})


@pytest.mark.parametrize("mode", ["ordered", "adjacent", "any_order", "anchored"])
@pytest.mark.parametrize("count", ["first", "best"])
def test_matches_brute_force_reference(random_events, mode, count):
    sets = [("A",), ("B", "C"), ("C",)]  # overlapping steps: C may fill step 2 or 3
    window = pd.Timedelta("40min")
    got = reached(funnel_users(random_events, [{"A"}, {"B", "C"}, {"C"}], window=window, mode=mode,
                               count=count, exclude="Y"))
    expected = _reference(random_events, sets, window, mode, count, {"Y"})
    assert got == expected


# --------------------------------------------------------------------------- time to convert, dropped users
TTC_DATA = ev([
    ("u1", 0, "A"), ("u1", 10, "B"), ("u1", 30, "C"),
    ("u2", 0, "A"), ("u2", 20, "B"),
    ("u3", 0, "A"), ("u3", 40, "B"),
    ("u4", 0, "A"),
])


def test_time_to_convert_hand_counted():
    s = time_to_convert(TTC_DATA, STEPS).set_index("step")
    assert s.loc[2, "n"] == 3 and s.loc[3, "n"] == 1
    assert s.loc[2, "median_seconds"] == 1200 and s.loc[2, "mean_seconds"] == pytest.approx(1400)
    assert s.loc[2, "p25_seconds"] == pytest.approx(np.percentile([600, 1200, 2400], 25))
    assert s.loc[3, "median_seconds"] == 1800 and s.loc[3, "median_from_previous_seconds"] == 1200
    per_user = time_to_convert(TTC_DATA, STEPS, output="per_user")
    assert len(per_user) == 4  # 3 users at step 2, 1 at step 3
    h = time_to_convert(TTC_DATA, STEPS, output="histogram", bins=4)
    assert h.groupby("step")["users"].sum().to_dict() == {2: 3, 3: 1}


def test_dropped_users():
    d = dropped_users(TTC_DATA, STEPS)
    assert d[["user_id", "last_step_reached", "next_step_name"]].values.tolist() == [
        ["u4", 1, "B"], ["u2", 2, "C"], ["u3", 2, "C"]]
    t = d.set_index("user_id")["time_reached"]
    assert t["u3"] == (D0 + pd.Timedelta(minutes=40)).tz_localize("Asia/Seoul")
    assert t["u4"] == D0.tz_localize("Asia/Seoul")


# --------------------------------------------------------------------------- chi-square
def _grouped_result(counts):
    rows = []
    for g, cs in counts.items():
        for k, c in enumerate(cs, 1):
            rows.append({"by": g, "step": k, "step_name": f"s{k}", "users": c})
    return pd.DataFrame(rows)


def test_compare_groups_matches_scipy_and_statsmodels():
    from scipy.stats import chi2_contingency
    from statsmodels.stats.proportion import proportions_chisquare

    res = compare_groups(_grouped_result({"a": [200, 60, 30], "b": [180, 40, 25]}), correction=False)
    r2 = res.set_index("step").loc[2]
    chi2, p, _ = proportions_chisquare(np.array([60, 40]), np.array([200, 180]))
    assert r2["chi2"] == pytest.approx(chi2) and r2["p_value"] == pytest.approx(p)
    r3 = res.set_index("step").loc[3]
    ref = chi2_contingency(np.array([[30, 30], [25, 15]]), correction=False)
    assert r3["p_value"] == pytest.approx(ref.pvalue)
    yates = compare_groups(_grouped_result({"a": [200, 60, 30], "b": [180, 40, 25]}))
    assert yates.set_index("step").loc[2, "p_value"] == pytest.approx(
        chi2_contingency(np.array([[60, 140], [40, 140]])).pvalue)
    three = compare_groups(_grouped_result({"a": [100, 50], "b": [100, 40], "c": [100, 20]}))
    assert three.loc[0, "dof"] == 2
    assert three.loc[0, "p_value"] == pytest.approx(
        chi2_contingency(np.array([[50, 50], [40, 60], [20, 80]])).pvalue)


# --------------------------------------------------------------------------- synthetic truth
@pytest.fixture(scope="module")
def shop():
    from crmlab.datasets import synthetic_shop
    return synthetic_shop(n_users=4000, weeks=8, seed=11, end="2025-06-02")


def test_planted_step_rates_recovered(shop):
    truth = shop.truth["funnel"].sort_values("step")
    steps = truth["event"].tolist()
    for events in (shop.events, shop.events.drop(columns="session_id")):  # true or derived sessions
        f = funnel(events, steps, window="session", count="first")
        for (_, t), (_, r) in zip(truth.iloc[1:].iterrows(), f.iloc[1:].iterrows()):
            n_prev = r["users"] + r["drop_off"]
            se = np.sqrt(t["p"] * (1 - t["p"]) / n_prev)
            assert abs(r["conversion_from_previous"] - t["p"]) < 4 * se, (t["event"], r["conversion_from_previous"], t["p"])


def test_compare_groups_on_persona_segments(shop):
    seg = shop.truth["segments"][["user_id", "persona"]]
    steps = shop.truth["funnel"].sort_values("step")["event"].tolist()
    f = funnel(shop.events, steps, window="session", by=seg)
    res = compare_groups(f)
    # personas have different planted add-to-cart rates (explorers never add to cart)
    assert res.set_index("step").loc[2, "p_value"] < 1e-6
    assert res.set_index("step").loc[2, "min_rate"] == 0.0


def test_plots_return_axes():
    import matplotlib.pyplot as plt
    ax = plot_funnel(funnel(MODES_DATA, STEPS))
    assert len(ax.patches) >= 3
    ax2 = plot_funnel(funnel(BY_DATA, STEPS, by="device"))
    assert ax2.get_ylabel() == "users"
    ax3 = plot_time_to_convert(time_to_convert(TTC_DATA, STEPS, output="per_user"))
    assert ax3.get_ylabel() == "users"
    plt.close("all")


# --------------------------------------------------------------------------- backends
@pytest.mark.parametrize("mode", ["ordered", "adjacent", "any_order", "anchored"])
def test_backends_agree(backend, random_events, mode):
    kw = dict(window="40min", mode=mode, exclude="Y")
    ref = funnel_users(random_events, [{"A"}, {"B", "C"}, {"C"}], count="best", **kw)
    got = funnel_users(backend(random_events), [{"A"}, {"B", "C"}, {"C"}], count="best", **kw)
    assert_same_frame(got, ref, sort_by="user_id")
    data = BY_DATA
    assert_same_frame(funnel(backend(data), STEPS, by="device", by_step="last", mode=mode),
                      funnel(data, STEPS, by="device", by_step="last", mode=mode))
    seg = pd.DataFrame({"user_id": ["u1", "u2"], "segment": ["vip", "new"]})
    assert_same_frame(funnel(backend(data), STEPS, by=seg, mode=mode), funnel(data, STEPS, by=seg, mode=mode))


def test_backends_agree_session_window(backend, shop):
    ev_ = shop.events.drop(columns="session_id")
    small = ev_[ev_["user_id"].isin(sorted(ev_["user_id"].unique())[:400])]
    steps = shop.truth["funnel"].sort_values("step")["event"].tolist()
    ref = funnel(small, steps, window="session", by="device")
    got = funnel(backend(small), steps, window="session", by="device")
    assert_same_frame(got, ref)


def test_subsecond_window_and_time_to_convert_by_group():
    data = ev([("u1", 0, "A"), ("u1", D0 + pd.Timedelta(milliseconds=1500), "B"),
               ("u2", 0, "A"), ("u2", D0 + pd.Timedelta(milliseconds=1501), "B")])
    assert reached(funnel_users(data, ["A", "B"], window="1500ms")) == {"u1": 2, "u2": 1}
    seg = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "g": ["x", "x", "y", "y"]})
    s = time_to_convert(TTC_DATA, STEPS, by=seg).set_index(["by", "step"])
    assert s.loc[("x", 2), "median_seconds"] == 900  # u1 600 s, u2 1200 s
    assert s.loc[("y", 2), "n"] == 1 and s.loc[("y", 2), "median_seconds"] == 2400


# --------------------------------------------------------------------------- first-attempt fast path
@pytest.mark.parametrize("window", [pd.Timedelta("40min"), None])
def test_first_attempt_without_exclusions_matches_brute_force(random_events, window):
    """Ordered mode, count="first", no exclusions advances one frontier row per user (a
    separate code path): the brute-force reference must agree."""
    sets = [("A",), ("B", "C"), ("C",)]
    got = reached(funnel_users(random_events, [{"A"}, {"B", "C"}, {"C"}], window=window, mode="ordered",
                               count="first"))
    assert got == _reference(random_events, sets, window, "ordered", "first", set())


@pytest.mark.parametrize("window, by, by_step", [("40min", "device", 2), ("session", "device", "last"),
                                                 (None, None, 1)])
def test_first_attempt_paths_agree(random_events, window, by, by_step):
    """The frontier path (no exclusions) and the general path (an exclusion event that never
    occurs) give the same users, steps, times and attribution."""
    rng = np.random.default_rng(3)
    e = random_events.assign(device=rng.choice(["app", "mobile", None], len(random_events)))
    kw = dict(window=window, mode="ordered", count="first", by=by, by_step=by_step)
    steps = [{"A"}, {"B", "C"}, {"C"}]
    fast = funnel_users(e, steps, **kw)
    general = funnel_users(e, steps, exclude="never_logged", **kw)
    assert len(fast) > 100 and fast["reached"].max() == 3
    pd.testing.assert_frame_equal(fast, general)


@pytest.mark.parametrize("window", [pd.Timedelta("40min"), None])
def test_first_attempt_disjoint_steps_matches_brute_force(random_events, window):
    """Disjoint steps, count="first", no exclusions: advanced by time alone (no positions);
    ties at one timestamp still go by step, as the brute-force reference orders them."""
    sets = [("A",), ("B",), ("C",)]
    got = reached(funnel_users(random_events, ["A", "B", "C"], window=window, mode="ordered", count="first"))
    assert got == _reference(random_events, sets, window, "ordered", "first", set())


@pytest.mark.parametrize("window, by, by_step", [("40min", None, 1), ("session", None, 1), (None, "device", "first"),
                                                 ("40min", "segment", 1)])
def test_first_attempt_disjoint_paths_agree(random_events, window, by, by_step):
    rng = np.random.default_rng(5)
    e = random_events.assign(device=rng.choice(["app", "mobile", None], len(random_events)))
    if by == "segment":
        users = sorted(e["user_id"].unique())
        by = pd.DataFrame({"user_id": users[::2], "segment": "even"})
    kw = dict(window=window, mode="ordered", count="first", by=by, by_step=by_step)
    fast = funnel_users(e, STEPS, **kw)
    general = funnel_users(e, STEPS, exclude="never_logged", **kw)
    assert len(fast) > 100 and fast["reached"].max() == 3
    pd.testing.assert_frame_equal(fast, general)
    pd.testing.assert_frame_equal(funnel(e, STEPS, **kw), funnel(e, STEPS, exclude="never_logged", **kw),
                                  check_like=True)


# --------------------------------------------------------------------------- ClickHouse windowFunnel
def test_windowfunnel_hand_counted_cases_from_the_issue():
    # A B B C: a repeated step does not break strict_order (ClickHouse reaches 3).
    abbc = ev([("u1", 0, "A"), ("u1", 1, "B"), ("u1", 2, "B"), ("u1", 3, "C")])
    assert reached(funnel_users(abbc, STEPS, mode="windowfunnel", clickhouse_modes={"strict_order"})) == {"u1": 3}
    assert reached(funnel_users(abbc, STEPS, mode="adjacent")) == {"u1": 2}
    # ... but strict_deduplication stops at the repeated B (level reached so far: 2).
    assert reached(funnel_users(abbc, STEPS, mode="windowfunnel", clickhouse_modes={"strict_deduplication"})) == {"u1": 2}
    # A X A B: the non-step X after the first A ends the scan (ClickHouse 1).
    axab = ev([("u1", 0, "A"), ("u1", 1, "X"), ("u1", 2, "A"), ("u1", 3, "B")])
    assert reached(funnel_users(axab, STEPS, mode="windowfunnel", clickhouse_modes="strict_order")) == {"u1": 1}
    assert reached(funnel_users(axab, STEPS, mode="adjacent", count="best")) == {"u1": 2}
    # A tie with a non-step event: ClickHouse sorts it first, so it precedes A and is skipped.
    tie = ev([("u1", 0, "A"), ("u1", 0, "X"), ("u1", 1, "B")])
    assert reached(funnel_users(tie, STEPS, mode="windowfunnel", clickhouse_modes="strict_order")) == {"u1": 2}
    # one row may fill several steps: A > A > B reaches 3 from the events A, B.
    aab = ev([("u1", 0, "A"), ("u1", 1, "B")])
    assert reached(funnel_users(aab, ["A", "A", "B"], mode="windowfunnel")) == {"u1": 3}
    assert reached(funnel_users(aab, ["A", "A", "B"], mode="ordered")) == {"u1": 1}
    # strict_increase: B at the same second as A does not count.
    same = ev([("u1", 0, "A"), ("u1", 0, "B")])
    assert reached(funnel_users(same, ["A", "B"], mode="windowfunnel")) == {"u1": 2}
    assert reached(funnel_users(same, ["A", "B"], mode="windowfunnel", clickhouse_modes="strict_increase")) == {"u1": 1}


def test_windowfunnel_reports_the_chain_times():
    # the last step-1 event before B starts the chain ClickHouse keeps (latest start)
    data = ev([("u1", 0, "A"), ("u1", 5, "A"), ("u1", 9, "B")])
    u = funnel_users(data, ["A", "B"], mode="windowfunnel").set_index("user_id")
    assert u.loc["u1", "t_1"] == (D0 + pd.Timedelta(minutes=5)).tz_localize("Asia/Seoul")
    assert u.loc["u1", "t_2"] == (D0 + pd.Timedelta(minutes=9)).tz_localize("Asia/Seoul")


def test_anchored_any_order_starts_at_step_1():
    # C before A does not count (anchored), B and C after A count in any order.
    data = ev([("u1", 0, "C"), ("u1", 1, "A"), ("u1", 2, "B"),
               ("u2", 0, "A"), ("u2", 1, "C"), ("u2", 2, "B"),
               ("u3", 0, "B"), ("u3", 1, "A")])
    assert reached(funnel_users(data, STEPS, mode="anchored")) == {"u1": 2, "u2": 3, "u3": 1}
    assert reached(funnel_users(data, STEPS, mode="any_order")) == {"u1": 3, "u2": 3, "u3": 2}


def test_renamed_and_clickhouse_parameters():
    with pytest.raises(ValueError, match="mode='strict'.*adjacent"):
        funnel(MODES_DATA, STEPS, mode="strict")
    with pytest.raises(ValueError, match="clickhouse_modes="):
        funnel(MODES_DATA, STEPS, mode="windowfunnel", clickhouse_modes={"strict_once"})
    with pytest.raises(ValueError, match="clickhouse_modes="):
        funnel(MODES_DATA, STEPS, mode="ordered", clickhouse_modes={"strict_order"})
    with pytest.raises(ValueError, match="count='first'"):
        funnel(MODES_DATA, STEPS, mode="windowfunnel", count="first")
    with pytest.raises(ValueError, match="exclude="):
        funnel(MODES_DATA, STEPS, mode="windowfunnel", exclude="X")


CH_OPTIONS = [(), ("strict_order",), ("strict_deduplication",), ("strict_increase",),
              ("strict_order", "strict_deduplication"), ("strict_order", "strict_increase"),
              ("strict_deduplication", "strict_increase"),
              ("strict_order", "strict_deduplication", "strict_increase")]
CH_STEPS = [[["A"], ["B"], ["C"]], [["A"], ["A"], ["B"]], [["A"], ["B", "C"], ["C"]], [["A"], ["B"], ["B"], ["C"]]]


@pytest.fixture(scope="module")
def ch_events():
    """Whole-second times on a coarse grid (many ties), repeated steps and non-step events."""
    rng = np.random.default_rng(11)
    n = 4000
    secs = rng.integers(0, 3 * 3600, n) // 60 * 60
    return pd.DataFrame({"user_id": [f"u{u:03d}" for u in rng.integers(0, 300, n)],
                         "time": D0 + pd.to_timedelta(secs, unit="s"), "_ts": secs.astype("int64"),
                         "event": rng.choice(["A", "B", "C", "X", "Y"], n, p=[.3, .25, .2, .15, .1])})


def _clickhouse_levels(events, steps, window_s, options):
    """ClickHouse's windowFunnel per user, run by chdb on the same rows."""
    chdb = pytest.importorskip("chdb")
    conds = ", ".join("event IN (" + ", ".join(f"'{e}'" for e in s) + ")" for s in steps)
    opts = "".join(f", '{o}'" for o in options)
    p = events[["user_id", "_ts", "event"]]  # noqa: F841 -- read by chdb's Python() table function
    q = (f"SELECT user_id, toInt64(windowFunnel({window_s}{opts})(toUInt64(_ts), {conds})) AS level "
         "FROM Python(p) GROUP BY user_id")
    r = chdb.query(q, "DataFrame")
    return {u: int(v) for u, v in zip(r["user_id"], r["level"]) if v > 0}


@pytest.mark.parametrize("steps", CH_STEPS, ids=lambda s: ">".join("|".join(x) for x in s))
def test_windowfunnel_equals_clickhouse_per_user(ch_events, steps):
    """mode="windowfunnel" claims ClickHouse's windowFunnel: per user, every mode combination."""
    sets = [set(s) for s in steps]
    for options in CH_OPTIONS:
        expected = _clickhouse_levels(ch_events, steps, 2400, options)
        got = reached(funnel_users(ch_events.drop(columns="_ts"), sets, window="2400s", mode="windowfunnel",
                                   clickhouse_modes=options))
        assert len(expected) > 250  # the comparison covers most users
        assert got == expected, options


def test_ordered_best_equals_clickhouse_for_disjoint_steps(ch_events):
    """The documented equivalence of mode="ordered", count="best" (disjoint steps only)."""
    expected = _clickhouse_levels(ch_events, STEPS, 2400, ())
    got = reached(funnel_users(ch_events.drop(columns="_ts"), STEPS, window="2400s", count="best"))
    assert got == expected
    # with overlapping steps it is not equivalent (one row fills one step only): a real difference
    over = [["A"], ["A"], ["B"]]
    got_o = reached(funnel_users(ch_events.drop(columns="_ts"), [set(s) for s in over], window="2400s", count="best"))
    assert got_o != _clickhouse_levels(ch_events, over, 2400, ())


@pytest.mark.parametrize("options", [(), ("strict_order", "strict_deduplication"), ("strict_increase",)])
def test_windowfunnel_backends_agree(backend, random_events, options):
    kw = dict(window="40min", mode="windowfunnel", clickhouse_modes=options, by="event", by_step="last")
    steps = [{"A"}, {"B", "C"}, {"C"}]
    assert_same_frame(funnel_users(backend(random_events), steps, **kw), funnel_users(random_events, steps, **kw),
                      sort_by="user_id")


# --------------------------------------------------------------------------- trends
def test_funnel_trend_hand_counted_and_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    from crmlab.funnel import funnel_trend, plot_funnel_trend
    w1, w2 = D0, D0 + pd.Timedelta(weeks=1)  # D0 is a Monday
    data = ev([("u1", w1, "A"), ("u1", w1 + pd.Timedelta(minutes=10), "B"),
               ("u2", w1 + pd.Timedelta(days=2), "A"),
               ("u3", w1 + pd.Timedelta(days=6, hours=13, minutes=59), "A"),   # Sunday 23:59: week 1
               ("u3", w1 + pd.Timedelta(days=6, hours=14, minutes=29), "B"),  # converts 30 min later, week 2
               ("u4", w2, "A"), ("u4", w2 + pd.Timedelta(minutes=20), "B"), ("u5", w2 + pd.Timedelta(days=6), "A")])
    tr = funnel_trend(data, ["A", "B"], window="1D").set_index("period")
    p1, p2 = pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11")
    assert tr.loc[p1, "entered"] == 3 and tr.loc[p1, "users"] == 2 and tr.loc[p2, "entered"] == 2
    assert tr.loc[p1, "median_seconds"] == 1200  # 600 s and 1800 s
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert (tr.loc[p1, "ci_low"], tr.loc[p1, "ci_high"]) == pytest.approx((lo, hi))
    # week 2's last entrant (Sunday) has not had a whole day before the data ends
    assert tr.loc[p1, "complete"] and not tr.loc[p2, "complete"]
    fig = plot_funnel_trend(funnel_trend(data, ["A", "B"], window="1D"))
    assert fig.axes[0].get_ylabel() == "conversion to B"
    with pytest.raises(ValueError, match="period='M'"):
        funnel_trend(data, ["A", "B"], period="M")
    import matplotlib.pyplot as plt
    plt.close("all")


def test_funnel_trend_adds_up_to_the_funnel(shop):
    from crmlab.funnel import funnel_trend
    steps = shop.truth["funnel"].sort_values("step")["event"].tolist()
    tr = funnel_trend(shop.events, steps, period="D", window="session")
    f = funnel(shop.events, steps, window="session")
    for k in range(2, len(steps) + 1):
        d = tr[tr["step"] == k]
        assert d["entered"].sum() == f["users"].iloc[0]
        assert d["users"].sum() == f.loc[f["step"] == k, "users"].iloc[0]


@pytest.mark.parametrize("kw", [dict(window="40min"), dict(window="session"), dict(window=None, by="device", by_step="first"),
                                dict(window="40min", by="segment"),
                                dict(window="40min", mode="windowfunnel", clickhouse_modes=("strict_order",)),
                                dict(window="40min", mode="windowfunnel", clickhouse_modes=("strict_deduplication",))])
def test_counts_only_scan_equals_the_attempts(random_events, kw):
    """funnel() counts ordered/best on disjoint steps with ClickHouse's scan (levels only); the
    per-user attempts of funnel_users must give the same counts."""
    rng = np.random.default_rng(2)
    e = random_events.assign(device=rng.choice(["app", "mobile", None], len(random_events)))
    kw = dict(kw)
    if kw.get("by") == "segment":
        users = sorted(e["user_id"].unique())
        kw["by"] = pd.DataFrame({"user_id": users[::3], "segment": "third"})
    if "mode" not in kw:
        kw["count"] = "best"
    f = funnel(e, STEPS, **kw)
    u = funnel_users(e, STEPS, **kw)
    keys = ["by"] if "by" in kw else []
    ref = pd.DataFrame([{**({"by": b} if keys else {}), "step": k, "users": int((g["reached"] >= k).sum())}
                        for b, g in (u.groupby("by") if keys else [(None, u)]) for k in (1, 2, 3)])
    got = f[keys + ["step", "users"]].reset_index(drop=True)
    assert_same_frame(got, ref, sort_by=keys + ["step"])
    assert f["users"].iloc[-1] > 0
