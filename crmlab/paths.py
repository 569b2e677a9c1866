"""Customer flow: transitions between events, top paths, a step matrix, flows between steps,
two-group comparisons, and plots (a flow diagram and a transition heatmap).

Models studied: retentioneering's transition graph, step matrix and Sankey (``StepMatrix``,
``TransitionGraph``, ``StepSankey``) and PostHog's paths insight (paths to / from an event).

Definitions
-----------
path
    The time-ordered events of one user (``per="user"``, the default) or of one session
    (``per="session"``; sessions derived from ``timeout`` of inactivity when ``session_id``
    is missing, :func:`crmlab.sessions.sessionize`). Events at the **same timestamp** are
    ordered by their state (text) so every backend gives the same path.
state
    The value of ``column`` (default ``"event"``; also a page or a category column), as
    text, missing values as ``"(none)"``. ``collapse_repeats=True`` merges runs of one state
    into one step (``view view cart`` -> ``view cart``), as retentioneering's collapse of
    loops; the merged run keeps the time of its first event.
transition
    Two consecutive steps of a path, ``source -> target``. ``transitions`` counts them,
    ``users`` the distinct users with at least one, ``probability = transitions /
    transitions out of source`` (a first-order Markov chain's estimate, rows sum to 1) and
    ``median_seconds`` the median time between the two events (the mean of the two middle
    values for an even count, pandas' and numpy's median).
step matrix
    ``share`` of paths whose ``step``-th step (1, 2, ...) is each state; paths shorter than
    ``step`` are in the state ``"(ended)"``, so each step's shares sum to 1 (retentioneering's
    step matrix with its ENDED row).
top paths
    PostHog-style: ``to=X`` takes each path's first ``X`` and the ``length`` steps before it;
    ``start=X`` takes the first ``X`` and the ``length`` steps after it; the steps are joined
    with ``" > "``. Paths that never hold ``X`` are counted in ``attrs["excluded"]``.
    :func:`dropped_paths` starts at the last funnel step a dropped user reached
    (:func:`crmlab.funnel.dropped_users`).

Everything is computed in the engine (Ibis: DuckDB, PySpark, ...) with window functions
(``row_number``, ``lead``) and aggregates; no Python loop over users. Only the aggregated
result returns to pandas; the comparison tests run on those counts.
"""
from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .io.engine import DataLike, as_table, report_exclusions, to_pandas
from .io.schema import DEFAULT_TZ
from .sessions import _cut_as_of, _epoch_us, _interval, _label, _with_sessions
from .io.validate import canonical

__all__ = ["transitions", "step_matrix", "step_flows", "top_paths", "dropped_paths", "compare_paths",
           "plot_transition_heatmap", "plot_flow", "abandonment_causes", "CAUSES", "lapse_signals",
           "plot_lapse_signals", "SIGNALS"]

ENDED = "(ended)"
SEP = " > "
_PER = ("user", "session")


# --------------------------------------------------------------------------- sequences
def _check_int(name, value, low):
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"{name}={value!r} is not allowed; use an integer >= {low}")


def _sequence(events, *, column, per, collapse_repeats, as_of, timeout, tz):
    """Each path's steps: path keys, ``state``, ``time``, ``_pos`` (1, 2, ...), plus the
    number of events dropped after ``as_of``."""
    if per not in _PER:
        raise ValueError(f"per={per!r} is not allowed; use one of {list(_PER)}")
    t = canonical(events, "events", tz=tz)
    if not isinstance(column, str) or column not in t.columns or column in ("user_id", "time"):
        raise ValueError(f"column={column!r} is not allowed; use a column of events other than user_id and time")
    t, n_after = _cut_as_of(t, "time", as_of, tz)
    if per == "session":
        t, _ = _with_sessions(t, timeout, False)
    keys = ["user_id", "session_id"] if per == "session" else ["user_id"]
    s = t.select(*keys, "time", state=_label(t[column]))
    s = s.mutate(_pos=ibis.row_number().over(group_by=keys, order_by=[s.time, s.state]) + 1)
    if collapse_repeats:
        s = s.mutate(_prev=s.state.lag().over(ibis.window(group_by=keys, order_by=s._pos)))
        s = s.filter(s._prev.isnull() | (s._prev != s.state)).drop("_prev")
        s = s.mutate(_pos=ibis.row_number().over(group_by=keys, order_by=s._pos) + 1)
    return s, keys, n_after


def _seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz):
    return dict(column=column, per=per, collapse_repeats=collapse_repeats, as_of=as_of, timeout=timeout, tz=tz)


def _pairs(s: ir.Table, keys) -> ir.Table:
    """Consecutive steps: ``source``, ``target``, ``seconds`` between them (exact to the µs)."""
    w = ibis.window(group_by=keys, order_by=s._pos)
    p = s.mutate(target=s.state.lead().over(w), _t_next=s.time.lead().over(w))
    p = p.filter(p.target.notnull())
    return p.select(*keys, source=p.state, target=p.target,
                    seconds=(_epoch_us(p._t_next) - _epoch_us(p.time)).cast("float64") / 1e6)


def _exact_median(t: ir.Table, group: list[str], col: str, name: str) -> ir.Table:
    """Exact median per group in the engine (the mean of the middle one or two values), the
    same on every backend (Spark's ``median`` is approximate)."""
    w = ibis.window(group_by=group, order_by=t[col])
    r = t.mutate(_rn=ibis.row_number().over(w), _cnt=t.count().over(ibis.window(group_by=group)))
    mid = r.filter((r._rn == ((r._cnt - 1) / 2).floor()) | (r._rn == ((r._cnt - 1) / 2).ceil()))
    return mid.group_by(group).agg(**{name: mid[col].mean()})


# --------------------------------------------------------------------------- transitions
def transitions(events: DataLike, *, column: str = "event", per: str = "user", collapse_repeats: bool = False,
                as_of=None, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Transitions between consecutive steps of the paths (module docstring, "transition").

    Returns ``source``, ``target``, ``transitions``, ``users``, ``probability`` (out of the
    source; sums to 1 per source), ``median_seconds``, sorted by source then count.
    ``attrs["excluded"]`` counts the events after ``as_of``.
    """
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz))
    p = _pairs(s, keys)
    g = p.group_by(["source", "target"]).agg(transitions=p.count(), users=p.user_id.nunique())
    med = _exact_median(p, ["source", "target"], "seconds", "median_seconds")
    out = to_pandas(g, tz).merge(to_pandas(med, tz), on=["source", "target"], how="left")
    out["probability"] = out["transitions"] / out.groupby("source")["transitions"].transform("sum")
    out = out[["source", "target", "transitions", "users", "probability", "median_seconds"]]
    for c in ("transitions", "users"):
        out[c] = out[c].astype("int64")
    out = out.sort_values(["source", "transitions", "target"], ascending=[True, False, True], kind="stable")
    return report_exclusions(out.reset_index(drop=True), {"events after as_of": n_after}, "transitions")


# --------------------------------------------------------------------------- step matrix and flows
def _n_paths(s: ir.Table, keys) -> int:
    return int(to_pandas(s.select(*keys).distinct().aggregate(n=lambda x: x.count()), None)["n"].iloc[0])


def step_matrix(events: DataLike, *, max_steps: int = 10, column: str = "event", per: str = "user",
                collapse_repeats: bool = False, as_of=None, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Share of paths at each state at step 1..``max_steps`` (module docstring, "step matrix").

    Returns tidy ``step``, ``state``, ``paths``, ``share`` (``"(ended)"`` rows for paths that
    had ended), sorted by step then share; the shares of a step sum to 1. Pivot with
    ``.pivot(index="state", columns="step", values="share")`` for retentioneering's layout.
    """
    _check_int("max_steps", max_steps, 1)
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz))
    n = _n_paths(s, keys)
    c = s.filter(s._pos <= max_steps)
    c = to_pandas(c.group_by([c._pos.name("step"), "state"]).agg(paths=c.count()), tz)
    ended = c.groupby("step")["paths"].sum().reindex(range(1, max_steps + 1), fill_value=0)
    ended = pd.DataFrame({"step": ended.index, "state": ENDED, "paths": n - ended.to_numpy()})
    out = pd.concat([c, ended[ended["paths"] > 0]], ignore_index=True)
    out["step"] = out["step"].astype("int64")
    out["paths"] = out["paths"].astype("int64")
    out["share"] = out["paths"] / n if n else np.nan
    out = out.sort_values(["step", "paths", "state"], ascending=[True, False, True], kind="stable")
    out = out.reset_index(drop=True)
    out.attrs["paths"] = n
    return report_exclusions(out, {"events after as_of": n_after}, "step_matrix")


def step_flows(events: DataLike, *, max_steps: int = 5, top: int | None = 6, column: str = "event",
               per: str = "user", collapse_repeats: bool = False, as_of=None, timeout="30min",
               tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Paths moving from each state at step k to each state at step k+1 (k < ``max_steps``),
    the data of a Sankey diagram (retentioneering's ``StepSankey``).

    States outside the ``top`` most frequent of their step are grouped as ``"(other)"``
    (``top=None`` keeps all); a path that ends goes to ``"(ended)"`` and stays out of later
    steps. Returns ``step`` (of the source), ``source``, ``target``, ``paths``.
    """
    _check_int("max_steps", max_steps, 2)
    if top is not None:
        _check_int("top", top, 1)
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz))
    s = s.filter(s._pos <= max_steps)
    if top is not None:  # the top states of each step, by paths (ties by name)
        cnt = s.group_by([s._pos.name("_p"), s.state.name("_s")]).agg(_n=s.count())
        cnt = cnt.mutate(_r=ibis.row_number().over(group_by="_p", order_by=[ibis.desc(cnt._n), cnt._s]))
        keep = cnt.filter(cnt._r < top).select("_p", "_s")
        j = s.left_join(keep, [s._pos == keep._p, s.state == keep._s])
        s = j.select(*keys, "time", "_pos", state=j._s.notnull().ifelse(j.state, "(other)"))
    w = ibis.window(group_by=keys, order_by=s._pos)
    f = s.mutate(target=s.state.lead().over(w).fill_null(ENDED))
    f = f.filter(f._pos < max_steps)
    g = f.group_by([f._pos.name("step"), f.state.name("source"), "target"]).agg(paths=f.count())
    out = to_pandas(g, tz).sort_values(["step", "paths", "source", "target"], ascending=[True, False, True, True],
                                       kind="stable").reset_index(drop=True)
    out["step"] = out["step"].astype("int64")
    out["paths"] = out["paths"].astype("int64")
    return report_exclusions(out, {"events after as_of": n_after}, "step_flows")


# --------------------------------------------------------------------------- top paths
def _path_strings(s: ir.Table, keys, anchor: ir.Table, length: int, backward: bool) -> ir.Table:
    """Each anchored path's steps from ``anchor._a`` (``length`` before or after it) as text."""
    j = s.join(anchor, [s[k] == anchor[f"_k_{k}"] for k in keys])
    lo, hi = (j._a - length, j._a) if backward else (j._a, j._a + length)
    j = j.filter((j._pos >= lo) & (j._pos <= hi))
    offset = j._pos - lo  # 0..length
    cols = {f"_s{i}": (offset == i).ifelse(j.state, ibis.null("string")).max() for i in range(length + 1)}
    g = j.group_by(keys).agg(**cols)
    path = ibis.literal("")
    for i in range(length + 1):  # missing steps (the path began or ended) are left out
        piece = g[f"_s{i}"]
        path = path + (piece.isnull()).ifelse("", ibis.ifelse(path == "", piece, SEP + piece))
        path = path.name("path")
    return g.select(*keys, path=path)


def _count_paths(p: ir.Table, top, tz, extra=()) -> pd.DataFrame:
    g = p.group_by([*extra, "path"]).agg(paths=p.count(), users=p.user_id.nunique())
    out = to_pandas(g, tz)
    denom = out.groupby(list(extra))["paths"].transform("sum") if extra else out["paths"].sum()
    out["share"] = out["paths"] / denom
    out = out.sort_values([*extra, "paths", "path"], ascending=[True] * len(extra) + [False, True], kind="stable")
    if top is not None:
        out = out.groupby(list(extra), sort=False).head(top) if extra else out.head(top)
    for c in ("paths", "users"):
        out[c] = out[c].astype("int64")
    return out.reset_index(drop=True)


def top_paths(events: DataLike, *, to: str | None = None, start: str | None = None, length: int = 3,
              top: int | None = 10, column: str = "event", per: str = "user", collapse_repeats: bool = False,
              as_of=None, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """The most frequent paths to a target state (``to``) or from a start state (``start``).

    Give exactly one of ``to`` and ``start`` (module docstring, "top paths"). Returns
    ``path`` (steps joined with ``" > "``), ``paths``, ``users``, ``share`` (of the paths
    holding the anchor), the ``top`` most frequent (``None``: all). ``attrs["excluded"]``
    counts the paths without the anchor and the events after ``as_of``.
    """
    if per not in _PER:
        raise ValueError(f"per={per!r} is not allowed; use one of {list(_PER)}")
    if (to is None) == (start is None):
        raise ValueError(f"to={to!r}, start={start!r} is not allowed; give exactly one of to and start")
    _check_int("length", length, 1)
    if top is not None:
        _check_int("top", top, 1)
    anchor_state = to if to is not None else start
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz))
    hit = s.filter(s.state == str(anchor_state))
    anchor = hit.group_by(keys).agg(_a=hit._pos.min())
    anchor = anchor.select(**{f"_k_{k}": anchor[k] for k in keys}, _a=anchor._a)
    p = _path_strings(s, keys, anchor, length, backward=to is not None)
    out = _count_paths(p, top, tz)
    n_without = _n_paths(s, keys) - int(to_pandas(anchor.aggregate(n=lambda x: x.count()), None)["n"].iloc[0])
    out.attrs["anchor"] = {"to": to, "start": start}
    return report_exclusions(out, {"paths without the anchor": n_without, "events after as_of": n_after},
                             "top_paths")


def dropped_paths(events: DataLike, steps, *, length: int = 3, top: int | None = 10, column: str = "event",
                  as_of=None, tz: str = DEFAULT_TZ, **funnel_kwargs) -> pd.DataFrame:
    """What users who dropped out of a funnel did next: for each user of
    :func:`crmlab.funnel.dropped_users` (same ``steps`` and keyword arguments), the path of
    their events from the first one at or after the last step they reached (usually that
    step's event; an event tied with it may come first in path order) and ``length`` more.

    Returns ``last_step_name``, ``path``, ``paths``, ``users``, ``share`` (within the step),
    the ``top`` most frequent per step. Paths are per user.
    """
    from .funnel import dropped_users

    _check_int("length", length, 1)
    if top is not None:
        _check_int("top", top, 1)
    d = dropped_users(events, steps, as_of=as_of, tz=tz, **funnel_kwargs)
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, "user", False, as_of, "30min", tz))
    if not len(d):
        return pd.DataFrame(columns=["last_step_name", "path", "paths", "users", "share"])
    dd = as_table(d[["user_id", "last_step_name", "time_reached"]], tz)
    dd = dd.select(_k_user_id=dd.user_id.cast(s.schema()["user_id"]), last_step_name=dd.last_step_name,
                   _tr=dd.time_reached)
    j = s.join(dd, s.user_id == dd._k_user_id)
    j = j.filter(j.time >= j._tr)
    anchor = j.group_by(["_k_user_id", "last_step_name"]).agg(_a=j._pos.min())
    p = _path_strings(s, keys, anchor, length, backward=False)
    p = p.join(anchor, p.user_id == anchor._k_user_id).select("user_id", "last_step_name", "path")
    return _count_paths(p, top, tz, extra=("last_step_name",))


# --------------------------------------------------------------------------- comparison
def _two_groups(groups, tz):
    g = as_table(groups, tz) if isinstance(groups, pd.DataFrame) else groups
    other = [c for c in g.columns if c != "user_id"]
    if "user_id" not in g.columns or len(other) != 1:
        raise ValueError(f"groups: a frame with columns user_id and exactly one other column is needed, "
                         f"got {list(g.columns)}")
    g = g.select("user_id", group=g[other[0]].cast("string"))
    names = sorted(to_pandas(g.select("group").distinct(), None)["group"].dropna().tolist())
    if len(names) != 2:
        raise ValueError(f"groups: exactly two groups are compared, got {names}")
    return g, names


def compare_paths(events: DataLike, groups, *, kind: str = "transitions", max_steps: int = 10,
                  column: str = "event", per: str = "user", collapse_repeats: bool = False, alpha: float = 0.05,
                  as_of=None, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Do two groups of users (segments, arms) differ in their transitions or step matrix?

    ``groups`` is a frame ``user_id`` + one column with exactly two values. The unit is the
    user: for ``kind="transitions"`` the share of the group's users (with events) having at
    least one ``source -> target`` transition; for ``kind="step_matrix"`` the share of the
    group's paths at ``state`` at ``step`` (``per="user"`` for independent units). Each
    difference is tested with the two-proportion z-test with pooled variance
    (``statsmodels.stats.proportion.proportions_ztest``; Agresti, *Categorical Data
    Analysis*, 3rd ed., sec. 3.1.3, equivalent to the 2x2 chi-square test without continuity
    correction), and the p-values across rows are adjusted with Holm's step-down method
    (``statsmodels.stats.multitest.multipletests(method="holm")``).

    Returns the keys (``source``, ``target`` or ``step``, ``state``), then for groups a and b
    (sorted names; ``group_a``, ``group_b``) ``users_a``/``n_a``/``share_a``, the same for b,
    ``difference = share_b - share_a``, ``z``, ``p_value``, ``p_holm``, ``significant``
    (``p_holm < alpha``) and ``method``. Users without a group are counted in
    ``attrs["excluded"]``.
    """
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest

    from .io.checks import alpha as check_alpha
    alpha = check_alpha(alpha, "alpha")
    if kind not in ("transitions", "step_matrix"):
        raise ValueError(f"kind={kind!r} is not allowed; use 'transitions' or 'step_matrix'")
    s, keys, n_after = _sequence(events, **_seq_kwargs(column, per, collapse_repeats, as_of, timeout, tz))
    g, (a_name, b_name) = _two_groups(groups, tz)
    g = g.select(_g_uid=g.user_id.cast(s.schema()["user_id"]), group=g.group)
    sg = s.left_join(g, s.user_id == g._g_uid).select(*s.columns, "group")
    n_no_group = int(to_pandas(sg.filter(sg.group.isnull()).select("user_id").distinct()
                               .aggregate(n=lambda x: x.count()), None)["n"].iloc[0])
    sg = sg.filter(sg.group.notnull())
    denom = to_pandas(sg.select("group", *keys).distinct().group_by("group").agg(n=lambda x: x.count()), None)
    denom = dict(zip(denom["group"], denom["n"].astype("int64")))
    if kind == "transitions":
        p = _pairs(sg, keys)
        p = p.join(sg.select(*keys, "group").distinct(), keys)
        cnt = p.select("group", "user_id", "source", "target").distinct()
        cnt = cnt.group_by(["group", "source", "target"]).agg(users=cnt.count())
        on = ["source", "target"]
    else:
        _check_int("max_steps", max_steps, 1)
        c = sg.filter(sg._pos <= max_steps)
        cnt = c.group_by(["group", c._pos.name("step"), "state"]).agg(users=c.count())
        on = ["step", "state"]
    wide = to_pandas(cnt, tz).pivot_table(index=on, columns="group", values="users", fill_value=0)
    wide = wide.reindex(columns=[a_name, b_name], fill_value=0).reset_index()
    rows = []
    for r in wide.itertuples(index=False):
        xa, xb = int(r[len(on)]), int(r[len(on) + 1])
        na, nb = denom.get(a_name, 0), denom.get(b_name, 0)
        z, pv = (proportions_ztest([xb, xa], [nb, na]) if na and nb and 0 < xa + xb < na + nb
                 else (np.nan, np.nan))
        rows.append({**dict(zip(on, r[:len(on)])), "group_a": a_name, "users_a": xa, "n_a": na,
                     "share_a": xa / na if na else np.nan, "group_b": b_name, "users_b": xb, "n_b": nb,
                     "share_b": xb / nb if nb else np.nan, "z": float(z), "p_value": float(pv)})
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    out["difference"] = out["share_b"] - out["share_a"]
    ok = out["p_value"].notna()
    out["p_holm"] = np.nan
    if ok.any():
        out.loc[ok, "p_holm"] = multipletests(out.loc[ok, "p_value"], method="holm")[1]
    out["significant"] = out["p_holm"] < alpha
    out["method"] = "two-proportion z-test (pooled), Holm-adjusted"
    cols = on + ["group_a", "users_a", "n_a", "share_a", "group_b", "users_b", "n_b", "share_b", "difference",
                 "z", "p_value", "p_holm", "significant", "method"]
    out = out[cols].sort_values(["p_value"] + on, kind="stable", na_position="last").reset_index(drop=True)
    return report_exclusions(out, {"users without a group": n_no_group, "events after as_of": n_after},
                             "compare_paths")


# --------------------------------------------------------------------------- plots
def plot_transition_heatmap(result: pd.DataFrame, *, value: str = "probability", top: int | None = 12, ax=None):
    """Heatmap of :func:`transitions` (rows: source, columns: target), the ``top`` most
    frequent states; annotated with the values (probabilities as %). Returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import setup
    if value not in ("probability", "transitions", "users", "median_seconds"):
        raise ValueError(f"value={value!r} is not allowed; use probability, transitions, users or median_seconds")
    setup()
    vol = result.groupby("source")["transitions"].sum().add(result.groupby("target")["transitions"].sum(), fill_value=0)
    states = vol.sort_values(ascending=False).index.tolist()
    if top is not None:
        states = states[:top]
    m = result[result["source"].isin(states) & result["target"].isin(states)]
    m = m.pivot(index="source", columns="target", values=value).reindex(index=states, columns=states)
    n = len(states)
    ax = ax or plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.6 * n))[1]
    fmt = ".0%" if value == "probability" else ".0f"
    sns.heatmap(m, annot=n <= 15, fmt=fmt, cmap="Blues", linewidths=0.5, linecolor="white",
                cbar_kws={"label": value}, ax=ax, vmin=0, vmax=1 if value == "probability" else None)
    ax.grid(False)  # the style's grid would cross the cells
    ax.set_xlabel("next (target)")
    ax.set_ylabel("from (source)")
    ax.set_title(f"transitions: {value}" + (" out of each source" if value == "probability" else ""))
    ax.tick_params(axis="x", rotation=45)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    return ax


def plot_flow(flows: pd.DataFrame, *, ax=None, min_share: float = 0.0):
    """Sankey-style flow diagram of :func:`step_flows`: one column of nodes per step (height
    proportional to paths), bands between consecutive steps (width proportional to the paths
    moving); bands below ``min_share`` of the paths are not drawn. Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MPath

    from .plotting import setup
    setup()
    if not len(flows):
        raise ValueError("flows is empty: nothing to draw")
    steps = sorted(flows["step"].unique())
    last = steps[-1] + 1
    nodes = {}  # (step, state) -> paths
    for r in flows.itertuples():
        nodes[(r.step, r.source)] = nodes.get((r.step, r.source), 0) + r.paths
    for r in flows[flows["target"] != ENDED].itertuples():
        nodes.setdefault((r.step + 1, r.target), 0)
    into = flows[flows["target"] != ENDED].groupby(["step", "target"])["paths"].sum()
    for (k, st), v in into.items():
        if (k + 1, st) not in nodes or k + 1 == last:
            nodes[(k + 1, st)] = max(nodes.get((k + 1, st), 0), v)
    total = sum(v for (k, _), v in nodes.items() if k == steps[0])
    states = sorted({st for (_, st) in nodes})
    cmap = plt.get_cmap("tab20")
    colour = {st: cmap(i % 20) for i, st in enumerate(sorted(states, key=lambda x: (x == "(other)", x)))}
    ax = ax or plt.subplots(figsize=(2.6 * len(steps) + 2, 6))[1]
    gap, width = 0.02 * total, 0.12
    pos = {}  # (step, state) -> [bottom, top, out_cursor, in_cursor]
    for k in range(steps[0], last + 1):
        col = sorted([(st, v) for (kk, st), v in nodes.items() if kk == k and v > 0], key=lambda x: -x[1])
        y = 0.0
        for st, v in col:
            pos[(k, st)] = [y, y + v, y, y]
            ax.add_patch(Rectangle((k - width / 2, y), width, v, color=colour[st], lw=0))
            if v / total >= 0.03:
                ax.text(k + width / 2 + 0.03, y + v / 2, f"{st}\n{v:,}", va="center", fontsize=8)
            y += v + gap
    for r in flows.sort_values(["step", "paths"], ascending=[True, False]).itertuples():
        if r.target == ENDED or r.paths / total < min_share:
            continue
        s, t = pos.get((r.step, r.source)), pos.get((r.step + 1, r.target))
        if s is None or t is None:
            continue
        y0, y1 = s[2], t[3]
        s[2] += r.paths
        t[3] += r.paths
        x0, x1 = r.step + width / 2, r.step + 1 - width / 2
        xm = (x0 + x1) / 2
        verts = [(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 + r.paths), (xm, y1 + r.paths),
                 (xm, y0 + r.paths), (x0, y0 + r.paths), (x0, y0)]
        codes = [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4, MPath.LINETO, MPath.CURVE4,
                 MPath.CURVE4, MPath.CURVE4, MPath.CLOSEPOLY]
        ax.add_patch(PathPatch(MPath(verts, codes), color=colour[r.source], alpha=0.35, lw=0))
    ax.set_xlim(steps[0] - 0.3, last + 0.8)
    ax.set_ylim(0, max(p[1] for p in pos.values()) * 1.03)
    ax.set_xticks(range(steps[0], last + 1))
    ax.set_xticklabels([f"step {k}" for k in range(steps[0], last + 1)])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title("flow of paths between steps (band width = paths; ended paths leave the diagram)")
    return ax


# --------------------------------------------------------------------------- why carts are abandoned
CAUSES = ("price", "checkout friction", "new visitor", "unclear")


def abandonment_causes(events: DataLike, orders: DataLike | None = None, customers: DataLike | None = None, *,
                       window="24h", lookback="7D", timeout="30min", as_of=None,
                       tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """The likely cause of each cart abandonment, read from the abandoner's flow, with the evidence.

    Abandoners are those of :func:`crmlab.segments.cart_abandonment` (same ``window`` and
    ``as_of``). For each, the events from ``lookback`` before the abandonment (the latest cart
    or checkout action) to ``window`` after it are read:

    - ``removals``: ``remove_from_cart`` events;
    - ``cheaper_views``: ``product_view`` events of the category of the user's latest
      ``add_to_cart`` at a lower ``price`` than that item (``carted_category``,
      ``carted_price``; none when either is missing);
    - ``reached_checkout``: the abandonment happened at checkout (``stage == "checkout"``);
    - ``first_visit``: no event of the user before the session of the abandonment
      (sessions: ``session_id``, else ``timeout`` of inactivity); ``signed_up``: the customer's
      ``signup_time`` is at or before the abandonment (missing without ``customers``).

    ``likely_cause`` takes the first that applies, in this order: ``"price"`` (a removal or a
    cheaper view), ``"checkout friction"`` (reached checkout), ``"new visitor"`` (first visit
    and not signed up; needs ``customers``), else ``"unclear"``. The order is a rule of thumb
    for choosing a reminder (a price message, a checkout-help message, a welcome offer), not
    an estimate; measure each cause's reminder with :mod:`crmlab.uplift`. ``evidence`` says it
    in words. Returns one row per abandoner, sorted by user.
    """
    from .io.checks import duration
    from .segments import cart_abandonment

    back = duration(lookback, "lookback")
    ahead = duration(window, "window")
    ab = cart_abandonment(events, orders, window=window, as_of=as_of, tz=tz)
    cols = ["user_id", "stage", "abandoned_time", "removals", "cheaper_views", "carted_category", "carted_price",
            "reached_checkout", "first_visit", "signed_up", "likely_cause", "evidence"]
    if not len(ab):
        return report_exclusions(pd.DataFrame(columns=cols), ab.attrs.get("excluded", {}), "abandonment_causes")
    t = canonical(events, "events", tz=tz)
    t, _ = _cut_as_of(t, "time", as_of, tz)
    t, _ = _with_sessions(t, timeout, False)
    a = as_table(ab[["user_id", "stage", "abandoned_time"]], tz)
    a = a.select(_a_uid=a.user_id.cast(t.schema()["user_id"]), stage=a.stage, _at=a.abandoned_time)
    j = t.join(a, t.user_id == a._a_uid)
    # the item behind the abandonment: the latest add_to_cart at or before it
    adds = j.filter((j.event == "add_to_cart") & (j.time <= j._at))
    adds = adds.mutate(_rn=ibis.row_number().over(group_by="user_id", order_by=[ibis.desc(adds.time),
                                                                                  ibis.desc(adds.price)]))
    item = adds.filter(adds._rn == 0).select(_i_uid=adds.user_id, carted_category=adds.category,
                                             carted_price=adds.price)
    j = j.left_join(item, j.user_id == item._i_uid).select(*j.columns, "carted_category", "carted_price")
    near = j.filter((j.time >= j._at - _interval(back)) & (j.time <= j._at + _interval(ahead)))
    cheaper = ((near.event == "product_view") & (near.category == near.carted_category)
               & (near.price < near.carted_price)).fill_null(False)
    ev = near.group_by("user_id").agg(removals=(near.event == "remove_from_cart").ifelse(1, 0).sum(),
                                      cheaper_views=cheaper.ifelse(1, 0).sum())
    # the abandonment's session: the session of the user's last event at or before it
    upto = j.filter(j.time <= j._at)
    upto = upto.mutate(_rn=ibis.row_number().over(group_by="user_id", order_by=[ibis.desc(upto.time), upto.session_id]))
    sess = upto.filter(upto._rn == 0).select(_s_uid=upto.user_id, _sid=upto.session_id)
    js = j.join(sess, [j.user_id == sess._s_uid, j.session_id == sess._sid])
    starts = js.group_by("user_id").agg(_start=js.time.min())
    first = t.group_by("user_id").agg(_first=t.time.min())
    fv = starts.join(first, "user_id").select("user_id", first_visit=lambda x: x._first >= x._start)
    base = j.select("user_id", "stage", "_at", "carted_category", "carted_price").distinct()
    out = base.left_join(ev, "user_id").select(base.user_id, base.stage, base._at, base.carted_category,
                                               base.carted_price, ev.removals, ev.cheaper_views)
    out = out.left_join(fv, "user_id").select(*out.columns, "first_visit")
    df = to_pandas(out, tz).rename(columns={"_at": "abandoned_time"})
    for c in ("removals", "cheaper_views"):
        df[c] = df[c].fillna(0).astype("int64")
    df["reached_checkout"] = df["stage"] == "checkout"
    df["first_visit"] = df["first_visit"].fillna(False).astype(bool)
    df["signed_up"] = _signed_up(df, customers, tz)
    df["likely_cause"] = _likely_cause(df)
    df["evidence"] = [_evidence(r) for r in df.itertuples()]
    df = df[cols].sort_values("user_id", kind="stable").reset_index(drop=True)
    return report_exclusions(df, ab.attrs.get("excluded", {}), "abandonment_causes")


def _signed_up(df: pd.DataFrame, customers, tz) -> pd.Series:
    if customers is None:
        return pd.Series(pd.NA, index=df.index, dtype="boolean")
    c = to_pandas(canonical(customers, "customers", tz=tz).select("user_id", "signup_time"), tz)
    m = df[["user_id", "abandoned_time"]].merge(c, on="user_id", how="left")
    return pd.Series((m["signup_time"].notna() & (m["signup_time"] <= m["abandoned_time"])).to_numpy(),
                     index=df.index, dtype="boolean")


def _likely_cause(df: pd.DataFrame) -> np.ndarray:
    price = (df["removals"] > 0) | (df["cheaper_views"] > 0)
    new = df["first_visit"] & (df["signed_up"] == False).fillna(False)  # noqa: E712 -- NA stays not new
    return np.select([price, df["reached_checkout"], new], list(CAUSES[:3]), CAUSES[3])


def _evidence(r) -> str:
    parts = []
    if r.removals:
        parts.append(f"removed {r.removals} item(s)")
    if r.cheaper_views:
        parts.append(f"viewed {r.cheaper_views} cheaper {r.carted_category} product(s) (carted at {r.carted_price:,.0f})")
    if r.reached_checkout:
        parts.append("reached checkout and left")
    if r.first_visit:
        parts.append("first visit" + ("" if pd.isna(r.signed_up) else (", signed up" if r.signed_up else ", not signed up")))
    return "; ".join(parts) or "no sign in the flow"


# --------------------------------------------------------------------------- signals before lapse
SIGNALS = ("long_product_view", "cart_removal", "repeated_category_views", "search", "sessions_per_week")


def _user_signals(t: ir.Table, *, last_sessions: int, dwell_s: float, repeat_views: int, weeks: int) -> ir.Table:
    """Per user, over their last ``last_sessions`` sessions: 0/1 flags of each behaviour, and
    sessions per week over the ``weeks`` weeks up to their last session's start."""
    w = ibis.window(group_by=["user_id", "session_id"], order_by=[t.time, t.event])
    e = t.mutate(_next=t.time.lead().over(w))
    e = e.mutate(_dwell=(_epoch_us(e._next) - _epoch_us(e.time)).cast("float64") / 1e6)
    s = e.group_by(["user_id", "session_id"]).agg(
        _start=e.time.min(),
        _long=((e.event == "product_view") & (e._dwell >= dwell_s)).fill_null(False).ifelse(1, 0).max(),
        _removal=(e.event == "remove_from_cart").ifelse(1, 0).max(),
        _search=(e.event == "search").ifelse(1, 0).max())
    pv = e.filter((e.event == "product_view") & e.category.notnull())
    cat = pv.group_by(["user_id", "session_id", "category"]).agg(_n=pv.count())
    cat = cat.group_by(["user_id", "session_id"]).agg(_maxcat=cat._n.max())
    s = s.left_join(cat, ["user_id", "session_id"]).select(*s.columns, _rep=(cat._maxcat >= repeat_views).fill_null(False))
    s = s.mutate(_rk=ibis.row_number().over(group_by="user_id", order_by=[ibis.desc(s._start), ibis.desc(s.session_id)]),
                 _last=s._start.max().over(group_by="user_id"))
    recent = s.filter(s._rk < last_sessions)
    flags = recent.group_by("user_id").agg(long_product_view=recent._long.max(), cart_removal=recent._removal.max(),
                                           repeated_category_views=recent._rep.ifelse(1, 0).max(),
                                           search=recent._search.max())
    span = s.filter(s._start > s._last - _interval(pd.Timedelta(weeks=weeks)))
    freq = span.group_by("user_id").agg(sessions_per_week=span.count().cast("float64") / weeks)
    return flags.join(freq, "user_id").select(flags.user_id, *[c for c in SIGNALS[:4]], "sessions_per_week")


def lapse_signals(events: DataLike, orders: DataLike, *, as_of=None, last_sessions: int = 3, min_dwell="3min",
                  repeat_views: int = 3, weeks: int = 4, factor: float = 1.0, lapse_days: float = 60,
                  alpha: float = 0.05, timeout="30min", tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Behaviour in the last sessions of customers who lapse, against retained customers'.

    Groups: ``lapsing`` are the buyers :func:`crmlab.segments.churn_risk` flags at ``as_of``
    (inactive longer than their own repurchase cycle times ``factor``, or ``lapse_days`` for
    one-time buyers: churn-risk and churned alike); ``retained`` are the other buyers with
    events. For each user, over their last ``last_sessions`` sessions up to ``as_of``:

    - ``long_product_view``: a product view followed, in the session, by the next event at
      least ``min_dwell`` later (the dwell rule of :func:`crmlab.segments.explorers`);
    - ``cart_removal``: a ``remove_from_cart``;
    - ``repeated_category_views``: ``repeat_views`` or more product views of one category in
      one session;
    - ``search``: a ``search`` event;
    - ``sessions_per_week``: sessions started in the ``weeks`` weeks up to the user's last
      session start, divided by ``weeks`` (a rate before the lapse, not diluted by it).

    Returns one row per signal: ``signal``, for each group ``n_*``, ``value_*`` (share of users
    with the signal, or the mean sessions per week), ``ci_low_*``, ``ci_high_*`` (Wilson
    score intervals, :func:`crmlab.abtest.frequentist.wilson_interval`; for the mean, the t
    interval ``mean +- t_{n-1} s / sqrt(n)``), ``difference = value_lapsing - value_retained``,
    ``p_value`` (two-proportion z-test, statsmodels ``proportions_ztest``; Welch's t-test,
    ``scipy.stats.ttest_ind(equal_var=False)``, for the mean) and ``method``. Buyers without
    events are counted in ``attrs["excluded"]``.
    """
    from scipy import stats
    from statsmodels.stats.proportion import proportions_ztest

    from .abtest.frequentist import wilson_interval
    from .io.checks import alpha as check_alpha
    from .io.checks import duration
    from .segments import churn_risk

    _check_int("last_sessions", last_sessions, 1)
    _check_int("repeat_views", repeat_views, 2)
    _check_int("weeks", weeks, 1)
    alpha = check_alpha(alpha, "alpha")
    dwell_s = duration(min_dwell, "min_dwell").total_seconds()
    risk = churn_risk(orders, events, as_of=as_of, factor=factor, lapse_days=lapse_days, tz=tz)
    o = canonical(orders, "orders", tz=tz)
    o, _ = _cut_as_of(o, "time", risk.attrs["as_of"], tz)
    buyers = to_pandas(o.select("user_id").distinct(), tz)["user_id"]
    t = canonical(events, "events", tz=tz)
    t, n_after = _cut_as_of(t, "time", risk.attrs["as_of"], tz)
    t, _ = _with_sessions(t, timeout, False)
    sig = to_pandas(_user_signals(t, last_sessions=last_sessions, dwell_s=dwell_s, repeat_views=repeat_views,
                                  weeks=weeks), tz)
    sig = sig[sig["user_id"].isin(set(buyers))]
    sig["group"] = np.where(sig["user_id"].isin(set(risk["user_id"])), "lapsing", "retained")
    rows = []
    for name in SIGNALS:
        row = {"signal": name}
        g = {k: sig.loc[sig["group"] == k, name].astype(float) for k in ("lapsing", "retained")}
        for k, x in g.items():
            n = len(x)
            row[f"n_{k}"] = n
            if name == "sessions_per_week":
                m, se = x.mean(), x.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
                tq = stats.t.ppf(1 - alpha / 2, max(n - 1, 1))
                row.update({f"value_{k}": m, f"ci_low_{k}": m - tq * se, f"ci_high_{k}": m + tq * se})
            else:
                lo, hi = wilson_interval(x.sum(), n, alpha)
                row.update({f"value_{k}": x.mean() if n else np.nan, f"ci_low_{k}": float(lo), f"ci_high_{k}": float(hi)})
        a, b = g["lapsing"], g["retained"]
        if name == "sessions_per_week":
            p = stats.ttest_ind(a, b, equal_var=False).pvalue if len(a) > 1 and len(b) > 1 else np.nan
            method = "Welch t-test; t interval"
        else:
            ok = len(a) and len(b) and 0 < a.sum() + b.sum() < len(a) + len(b)
            p = proportions_ztest([a.sum(), b.sum()], [len(a), len(b)])[1] if ok else np.nan
            method = "two-proportion z-test; Wilson interval"
        row.update(difference=row["value_lapsing"] - row["value_retained"], p_value=float(p), method=method)
        rows.append(row)
    out = pd.DataFrame(rows)
    n_no_events = int((~buyers.isin(set(sig["user_id"]))).sum())
    out.attrs["as_of"] = risk.attrs["as_of"]
    return report_exclusions(out, {"buyers without events": n_no_events, "events after as_of": n_after},
                             "lapse_signals")


def plot_lapse_signals(result: pd.DataFrame, *, ax=None):
    """The share of users with each signal, lapsing against retained, with their intervals
    (sessions per week, another unit, stays in the table). Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from .plotting import setup
    setup()
    d = result[result["signal"] != "sessions_per_week"].reset_index(drop=True)
    ax = ax or plt.subplots(figsize=(7.5, 0.7 * len(d) + 1.5))[1]
    y = np.arange(len(d))
    for off, k, colour in ((-0.12, "lapsing", "#c0392b"), (0.12, "retained", "#2e86c1")):
        v = d[f"value_{k}"]
        # clip: at a share of 0 the Wilson bound can come out as -1e-18 in floating point
        err = np.clip(np.vstack([v - d[f"ci_low_{k}"], d[f"ci_high_{k}"] - v]), 0, None)
        ax.errorbar(v, y + off, xerr=err, fmt="o", color=colour, capsize=3, label=k)
    ax.set_yticks(y)
    ax.set_yticklabels([s.replace("_", " ") for s in d["signal"]])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of users (last sessions), with interval")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.set_title("behaviour in the last sessions: lapsing vs retained customers")
    return ax
