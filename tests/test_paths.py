"""Paths and transitions: hand-counted sequences, a brute-force pandas statement of each
definition on random data full of ties and repeats, statsmodels for the group test, and
DuckDB-vs-PySpark identity."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from crmlab.paths import (ENDED, SEP, compare_paths, dropped_paths, plot_flow, plot_transition_heatmap,
                          step_flows, step_matrix, top_paths, transitions)
from conftest import assert_same_frame

D0 = pd.Timestamp("2024-03-04 10:00")


def ev(rows):
    return pd.DataFrame([{"user_id": u, "time": D0 + pd.Timedelta(minutes=m), "event": e} for u, m, e in rows])


HAND = ev([("u1", 0, "view"), ("u1", 1, "view"), ("u1", 3, "cart"), ("u1", 4, "buy"),
           ("u2", 0, "view"), ("u2", 2, "cart"), ("u2", 3, "view"),
           ("u3", 0, "view"), ("u3", 0, "search"), ("u3", 5, "cart")])  # tie: search sorts before view


# --------------------------------------------------------------------------- hand-counted
def test_transitions_hand_counted():
    t = transitions(HAND).set_index(["source", "target"])
    assert t.loc[("view", "cart"), "transitions"] == 3 and t.loc[("view", "cart"), "users"] == 3
    assert t.loc[("view", "cart"), "probability"] == pytest.approx(3 / 4)  # view -> view once
    assert t.loc[("view", "cart"), "median_seconds"] == 120  # 120, 120, 300 s
    assert t.loc[("search", "view"), "median_seconds"] == 0
    assert t.groupby("source")["probability"].sum().tolist() == pytest.approx([1, 1, 1])
    collapsed = transitions(HAND, collapse_repeats=True).set_index(["source", "target"])
    assert ("view", "view") not in collapsed.index
    assert collapsed.loc[("view", "cart"), "median_seconds"] == 180  # u1's run starts at minute 0


def test_step_matrix_hand_counted():
    m = step_matrix(HAND, max_steps=4).set_index(["step", "state"])["share"]
    assert m[(1, "view")] == pytest.approx(2 / 3) and m[(1, "search")] == pytest.approx(1 / 3)
    assert m[(4, "buy")] == pytest.approx(1 / 3) and m[(4, ENDED)] == pytest.approx(2 / 3)
    assert m.groupby(level="step").sum().tolist() == pytest.approx([1, 1, 1, 1])


def test_top_paths_and_dropped_paths_hand_counted():
    to = top_paths(HAND, to="cart", length=2)
    assert set(to["path"]) == {"search > view > cart", "view > cart", "view > view > cart"}
    assert to["share"].sum() == pytest.approx(1)
    frm = top_paths(HAND, start="cart", length=1)
    assert dict(zip(frm["path"], frm["paths"])) == {"cart > buy": 1, "cart > view": 1, "cart": 1}
    assert top_paths(HAND, to="buy").attrs["excluded"]["paths without the anchor"] == 2
    d = dropped_paths(HAND, ["view", "cart", "buy"], length=2)
    assert dict(zip(d["path"], d["paths"])) == {"cart": 1, "cart > view": 1}  # u3, u2 stopped at cart


def test_bad_parameters():
    with pytest.raises(ValueError, match="to=None, start=None"):
        top_paths(HAND)
    with pytest.raises(ValueError, match="length=0"):
        top_paths(HAND, to="cart", length=0)
    with pytest.raises(ValueError, match="per='visit'"):
        transitions(HAND, per="visit")
    with pytest.raises(ValueError, match="column='page'"):
        transitions(HAND, column="page")
    with pytest.raises(ValueError, match="max_steps=0"):
        step_matrix(HAND, max_steps=0)
    with pytest.raises(ValueError, match="exactly two groups"):
        compare_paths(HAND, pd.DataFrame({"user_id": ["u1", "u2", "u3"], "g": ["a", "b", "c"]}))
    with pytest.raises(ValueError, match="kind="):
        compare_paths(HAND, pd.DataFrame({"user_id": ["u1", "u2"], "g": ["a", "b"]}), kind="graph")


# --------------------------------------------------------------------------- brute force on random data
@pytest.fixture(scope="module")
def random_events():
    rng = np.random.default_rng(17)
    n = 2500
    minutes = rng.integers(0, 8 * 60, n) // 10 * 10  # coarse: many ties
    return pd.DataFrame({"user_id": [f"u{u:03d}" for u in rng.integers(0, 120, n)],
                         "time": D0 + pd.to_timedelta(minutes, unit="min"),
                         "event": rng.choice(["home", "list", "view", "cart", "buy", "search"], n,
                                             p=[.2, .2, .3, .15, .05, .1])})


def _paths(df, collapse=False):
    """Each user's states in path order (time, then state), the brute-force way."""
    out = {}
    for u, g in df.sort_values(["user_id", "time", "event"]).groupby("user_id"):
        rows = list(zip(g["time"], g["event"]))
        if collapse:
            rows = [r for i, r in enumerate(rows) if i == 0 or rows[i - 1][1] != r[1]]
        out[u] = rows
    return out


@pytest.mark.parametrize("collapse", [False, True])
def test_transitions_match_brute_force(random_events, collapse):
    pairs = [(u, a[1], b[1], (b[0] - a[0]).total_seconds())
             for u, rows in _paths(random_events, collapse).items() for a, b in zip(rows, rows[1:])]
    p = pd.DataFrame(pairs, columns=["user_id", "source", "target", "seconds"])
    ref = p.groupby(["source", "target"]).agg(transitions=("user_id", "size"), users=("user_id", "nunique"),
                                              median_seconds=("seconds", "median")).reset_index()
    ref["probability"] = ref["transitions"] / ref.groupby("source")["transitions"].transform("sum")
    got = transitions(random_events, collapse_repeats=collapse)
    assert len(got) == len(ref) == 36 - (6 if collapse else 0)
    cols = ["source", "target", "transitions", "users", "probability", "median_seconds"]
    assert_same_frame(got[cols], ref[cols], sort_by=["source", "target"])


def test_step_matrix_and_flows_match_brute_force(random_events):
    paths = _paths(random_events)
    k_max = 6
    rows = []
    for u, r in paths.items():
        states = [e for _, e in r[:k_max]] + [ENDED] * max(0, k_max - len(r))
        rows += [(k + 1, s) for k, s in enumerate(states)]
    ref = pd.DataFrame(rows, columns=["step", "state"]).value_counts().rename("paths").reset_index()
    got = step_matrix(random_events, max_steps=k_max)
    assert_same_frame(got[["step", "state", "paths"]], ref[["step", "state", "paths"]], sort_by=["step", "state"])
    assert got["share"].sum() == pytest.approx(k_max)
    fl = []
    for u, r in paths.items():
        states = [e for _, e in r[:k_max]]
        fl += [(k + 1, states[k], states[k + 1] if k + 1 < len(states) else ENDED) for k in range(min(len(states), k_max - 1))]
    ref_f = pd.DataFrame(fl, columns=["step", "source", "target"]).value_counts().rename("paths").reset_index()
    assert_same_frame(step_flows(random_events, max_steps=k_max, top=None), ref_f,
                      sort_by=["step", "source", "target"])


@pytest.mark.parametrize("anchor, length, collapse", [("to", 3, False), ("start", 2, False), ("to", 2, True)])
def test_top_paths_match_brute_force(random_events, anchor, length, collapse):
    target = "buy" if anchor == "to" else "cart"
    paths = []
    for u, r in _paths(random_events, collapse).items():
        states = [e for _, e in r]
        if target not in states:
            continue
        i = states.index(target)
        paths.append(SEP.join(states[max(0, i - length):i + 1] if anchor == "to" else states[i:i + length + 1]))
    ref = pd.Series(paths).value_counts()
    got = top_paths(random_events, **{anchor: target}, length=length, top=None, collapse_repeats=collapse)
    assert dict(zip(got["path"], got["paths"])) == ref.to_dict()
    assert got["paths"].sum() == len(paths) > 30


def test_dropped_paths_match_brute_force(random_events):
    from crmlab.funnel import dropped_users
    steps = ["view", "cart", "buy"]
    d = dropped_users(random_events, steps, window="2h")
    t_reached = dict(zip(d["user_id"], d["time_reached"].dt.tz_localize(None)))
    step_of = dict(zip(d["user_id"], d["last_step_name"]))
    rows = []
    for u, r in _paths(random_events).items():
        if u in t_reached:
            i = next(i for i, (t, _) in enumerate(r) if t >= t_reached[u])
            rows.append((step_of[u], SEP.join(e for _, e in r[i:i + 3])))
    ref = pd.DataFrame(rows, columns=["last_step_name", "path"]).value_counts().to_dict()
    got = dropped_paths(random_events, steps, length=2, top=None, window="2h")
    assert dict(zip(zip(got["last_step_name"], got["path"]), got["paths"])) == ref
    assert got["paths"].sum() == len(d) > 20


def test_compare_paths_matches_statsmodels_on_brute_force_counts(random_events):
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest
    users = sorted(random_events["user_id"].unique())
    groups = pd.DataFrame({"user_id": users, "arm": ["ctl" if i % 3 else "test" for i in range(len(users))]})
    got = compare_paths(random_events, groups)
    arm = dict(zip(groups["user_id"], groups["arm"]))
    have = {}
    for u, r in _paths(random_events).items():
        for a, b in zip(r, r[1:]):
            have.setdefault((a[1], b[1]), set()).add(u)
    n = groups["arm"].value_counts()
    rows = []
    for key, us in have.items():
        xa, xb = sum(arm[u] == "ctl" for u in us), sum(arm[u] == "test" for u in us)
        z, p = proportions_ztest([xb, xa], [n["test"], n["ctl"]])
        rows.append((*key, xa, xb, z, p))
    ref = pd.DataFrame(rows, columns=["source", "target", "users_a", "users_b", "z", "p_value"])
    ref["p_holm"] = multipletests(ref["p_value"], method="holm")[1]
    cols = ["source", "target", "users_a", "users_b", "z", "p_value", "p_holm"]
    assert_same_frame(got[cols], ref[cols], sort_by=["source", "target"])
    assert (got["group_a"] == "ctl").all() and (got["n_a"] + got["n_b"] == len(users)).all()
    sm = compare_paths(random_events, groups, kind="step_matrix", max_steps=3)
    assert len(sm) > 10 and sm["p_value"].between(0, 1).all()


# --------------------------------------------------------------------------- plots
def test_plots_draw_what_they_are_given(random_events):
    import matplotlib.pyplot as plt
    tr = transitions(random_events)
    ax = plot_transition_heatmap(tr)
    cells = np.asarray(ax.collections[0].get_array()).reshape(6, 6)
    assert ax.get_xlabel() == "next (target)"
    assert cells.sum(axis=1) == pytest.approx(np.ones(6))  # each source's probabilities
    flows = step_flows(random_events, max_steps=4)
    ax2 = plot_flow(flows)
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["step 1", "step 2", "step 3", "step 4"]
    assert len(ax2.patches) > len(flows[flows["target"] != ENDED]) // 2
    plt.close("all")


# --------------------------------------------------------------------------- backends
def test_backends_agree(backend, random_events):
    data = backend(random_events)
    assert_same_frame(transitions(data), transitions(random_events), sort_by=["source", "target"])
    assert_same_frame(step_matrix(data, max_steps=5), step_matrix(random_events, max_steps=5),
                      sort_by=["step", "state"])
    assert_same_frame(step_flows(data, max_steps=4), step_flows(random_events, max_steps=4),
                      sort_by=["step", "source", "target"])
    assert_same_frame(top_paths(data, to="buy", top=None), top_paths(random_events, to="buy", top=None),
                      sort_by="path")
    assert_same_frame(transitions(data, per="session", collapse_repeats=True),
                      transitions(random_events, per="session", collapse_repeats=True), sort_by=["source", "target"])
    assert_same_frame(dropped_paths(data, ["view", "cart", "buy"], top=None, window="2h"),
                      dropped_paths(random_events, ["view", "cart", "buy"], top=None, window="2h"),
                      sort_by=["last_step_name", "path"])


# --------------------------------------------------------------------------- abandonment causes
def _row(u, m, e, cat=None, price=None):
    return {"user_id": u, "time": D0 + pd.Timedelta(minutes=m), "event": e, "category": cat, "price": price}


CARTS = pd.DataFrame([
    _row("p1", -3000, "page_view"), _row("p1", 0, "product_view", "shoes", 100.0),
    _row("p1", 1, "add_to_cart", "shoes", 100.0), _row("p1", 5, "product_view", "shoes", 80.0),   # cheaper view
    _row("p1", 6, "product_view", "shoes", 120.0), _row("p1", 7, "product_view", "bags", 10.0),  # not cheaper / other category
    _row("p2", -3000, "page_view"), _row("p2", 0, "add_to_cart", "bags", 50.0),
    _row("p2", 2, "remove_from_cart", "bags", 50.0), _row("p2", 3, "add_to_cart", "bags", 60.0),  # a removal
    _row("c1", -3000, "page_view"), _row("c1", 0, "add_to_cart", "bags", 50.0), _row("c1", 2, "begin_checkout"),
    _row("n1", 0, "page_view"), _row("n1", 1, "add_to_cart", "hats", 20.0),   # first visit, signed up before
    _row("n2", 0, "page_view"), _row("n2", 1, "add_to_cart", "hats", 20.0),   # first visit, signs up later
    _row("b1", 0, "add_to_cart", "hats", 20.0), _row("b1", 5, "purchase"),    # bought: not an abandoner
    _row("z", 5000, "page_view"),
])
CUSTOMERS = pd.DataFrame({"user_id": ["p1", "p2", "c1", "n1", "n2", "b1", "z"],
                          "signup_time": [D0 - pd.Timedelta(days=30)] * 4 + [D0 + pd.Timedelta(days=2), D0, D0]})


def test_abandonment_causes_hand_counted():
    from crmlab.paths import abandonment_causes
    c = abandonment_causes(CARTS, customers=CUSTOMERS).set_index("user_id")
    assert c["likely_cause"].to_dict() == {"c1": "checkout friction", "n1": "unclear", "n2": "new visitor",
                                           "p1": "price", "p2": "price"}
    assert c.loc["p1", "cheaper_views"] == 1 and c.loc["p1", "carted_price"] == 100
    assert c.loc["p2", "removals"] == 1 and c.loc["p2", "carted_price"] == 60  # the latest add
    assert bool(c.loc["n2", "first_visit"]) and not bool(c.loc["c1", "first_visit"])
    assert "reached checkout" in c.loc["c1", "evidence"]
    # without customers nobody is called a new visitor (signup unknown)
    assert "new visitor" not in set(abandonment_causes(CARTS)["likely_cause"])


def test_abandonment_causes_match_brute_force_and_backends(backend):
    from crmlab.paths import abandonment_causes
    from crmlab.segments import cart_abandonment
    rng = np.random.default_rng(5)
    n = 3000
    e = pd.DataFrame({"user_id": [f"u{u:03d}" for u in rng.integers(0, 150, n)],
                      "time": D0 + pd.to_timedelta(rng.integers(0, 10 * 24 * 60, n), unit="min"),
                      "event": rng.choice(["page_view", "product_view", "add_to_cart", "remove_from_cart",
                                           "begin_checkout", "purchase"], n, p=[.25, .4, .15, .07, .08, .05]),
                      "category": rng.choice(["a", "b"], n), "price": rng.integers(1, 10, n).astype(float)})
    got = abandonment_causes(backend(e))
    ab = cart_abandonment(e).set_index("user_id")
    assert list(got["user_id"]) == sorted(ab.index) and len(got) > 30
    tz = "Asia/Seoul"
    ev = e.assign(t=e["time"].dt.tz_localize(tz)).sort_values(["user_id", "t"])
    for r in got.itertuples():
        g = ev[ev["user_id"] == r.user_id]
        at = ab.loc[r.user_id, "abandoned_time"]
        adds = g[(g["event"] == "add_to_cart") & (g["t"] <= at)].sort_values(["t", "price"])
        cat, price = (adds["category"].iloc[-1], adds["price"].iloc[-1]) if len(adds) else (None, np.nan)
        near = g[(g["t"] >= at - pd.Timedelta("7D")) & (g["t"] <= at + pd.Timedelta("24h"))]
        assert r.removals == (near["event"] == "remove_from_cart").sum()
        assert r.cheaper_views == ((near["event"] == "product_view") & (near["category"] == cat)
                                   & (near["price"] < price)).sum()
        gaps = g["t"].diff() > pd.Timedelta("30min")
        start = g["t"][(gaps | (g["t"] == g["t"].iloc[0])) & (g["t"] <= at)].max()
        assert r.first_visit == (g["t"].min() >= start)
    assert set(got["likely_cause"]) <= {"price", "checkout friction", "unclear"}


# --------------------------------------------------------------------------- signals before lapse
def _lapse_data():
    rng = np.random.default_rng(8)
    n = 6000
    users = [f"u{u:03d}" for u in rng.integers(0, 200, n)]
    e = pd.DataFrame({"user_id": users,
                      "time": D0 + pd.to_timedelta(rng.integers(0, 60 * 24 * 60, n) // 7 * 7, unit="min"),
                      "event": rng.choice(["page_view", "product_view", "search", "remove_from_cart", "add_to_cart"], n,
                                          p=[.25, .45, .12, .06, .12]),
                      "category": rng.choice(["a", "b", None], n, p=[.5, .4, .1])})
    m = 500
    o = pd.DataFrame({"order_id": [f"o{i}" for i in range(m)], "user_id": [f"u{u:03d}" for u in rng.integers(0, 150, m)],
                      "time": D0 + pd.to_timedelta(rng.integers(0, 60 * 24 * 60, m), unit="min"),
                      "revenue": 10.0})
    # a third of the users stop after 20 days: they lapse
    stop = D0 + pd.Timedelta(days=20)
    quits = lambda d: d["user_id"].str[1:].astype(int) < 60  # noqa: E731
    return e[~quits(e) | (e["time"] < stop)].reset_index(drop=True), o[~quits(o) | (o["time"] < stop)].reset_index(drop=True)


def test_lapse_signals_match_brute_force_and_statsmodels():
    from scipy import stats
    from statsmodels.stats.proportion import proportions_ztest

    from crmlab.paths import lapse_signals, plot_lapse_signals
    from crmlab.segments import churn_risk
    e, o = _lapse_data()
    got = lapse_signals(e, o).set_index("signal")
    risk = set(churn_risk(o, e)["user_id"])
    assert got.attrs["excluded"]["events after as_of"] > 0  # as_of is the last order: later events are cut
    e = e[e["time"] <= got.attrs["as_of"].tz_localize(None)]
    flags = {}
    for u, g in e.sort_values(["user_id", "time", "event"]).groupby("user_id"):
        if u not in set(o["user_id"]):
            continue
        g = g.reset_index(drop=True)
        sess = (g["time"].diff() > pd.Timedelta("30min")).cumsum()
        starts = g.groupby(sess)["time"].min()
        last = starts.sort_values(ascending=False).index[:3]
        nxt = g.groupby(sess)["time"].shift(-1)
        long = (g["event"] == "product_view") & ((nxt - g["time"]) >= pd.Timedelta("3min"))
        pv = g[g["event"] == "product_view"].dropna(subset=["category"])
        rep = pv.groupby([sess[pv.index], pv["category"]]).size().groupby(level=0).max() >= 3
        inl = sess.isin(last)
        flags[u] = {"long_product_view": long[inl].any(), "cart_removal": (g["event"][inl] == "remove_from_cart").any(),
                    "repeated_category_views": bool(rep.reindex(last, fill_value=False).any()),
                    "search": (g["event"][inl] == "search").any(),
                    "sessions_per_week": (starts > starts.max() - pd.Timedelta(weeks=4)).sum() / 4,
                    "group": "lapsing" if u in risk else "retained"}
    ref = pd.DataFrame.from_dict(flags, orient="index")
    la, re_ = ref[ref["group"] == "lapsing"], ref[ref["group"] == "retained"]
    assert got.loc["search", "n_lapsing"] == len(la) > 20 and got.loc["search", "n_retained"] == len(re_) > 20
    for s in ("long_product_view", "cart_removal", "repeated_category_views", "search"):
        assert got.loc[s, "value_lapsing"] == pytest.approx(la[s].mean())
        assert got.loc[s, "value_retained"] == pytest.approx(re_[s].mean())
        assert got.loc[s, "p_value"] == pytest.approx(proportions_ztest([la[s].sum(), re_[s].sum()], [len(la), len(re_)])[1], nan_ok=True)
    spw = "sessions_per_week"
    assert got.loc[spw, "value_lapsing"] == pytest.approx(la[spw].mean())
    assert got.loc[spw, "p_value"] == pytest.approx(stats.ttest_ind(la[spw], re_[spw], equal_var=False).pvalue)
    assert (got["ci_low_lapsing"] <= got["value_lapsing"] + 1e-12).all()
    ax = plot_lapse_signals(got.reset_index())
    assert len(ax.get_yticklabels()) == 4
    import matplotlib.pyplot as plt
    plt.close("all")


def test_lapse_signals_backends_agree(backend):
    from crmlab.paths import lapse_signals
    e, o = _lapse_data()
    assert_same_frame(lapse_signals(backend(e), backend(o)), lapse_signals(e, o))
