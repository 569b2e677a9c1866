"""Sufficient statistics of an experiment, aggregated inside the engine.

As GrowthBook's ``gbstats`` does, every test in :mod:`crmlab.abtest` runs on a handful of
numbers per variant and metric, never on raw rows: the count ``n``, the sum and the sum of
squares of the metric and, for ratio metrics (numerator over denominator, Deng, Knoblich &
Lu 2018) or for CUPED (a pre-period covariate, Deng, Xu, Kohavi & Walker 2013), the second
variable's sum, sum of squares and the cross sum. These are computed by one Ibis aggregation,
so the same code runs on DuckDB, PySpark or a warehouse, and each statistical method can be
tested on numbers alone.
"""
from __future__ import annotations

from typing import Mapping

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ..io.engine import DataLike, as_table, report_exclusions, to_pandas
from ..io.schema import DEFAULT_TZ
from ..io.validate import canonical, canonical_outcomes
from .samples import PairedStats, SampleStats, parse_metrics, stats_from_frame

__all__ = ["SampleStats", "PairedStats", "sufficient_stats", "stats_from_frame", "parse_metrics"]


def _per_user_outcomes(outcomes: ir.Table, cols: list[str], user: str) -> ir.Table:
    """One row per user: metric columns summed over the user's rows (a per-user table passes
    through unchanged; an event-level table is rolled up)."""
    return outcomes.group_by(user).aggregate(**{c: outcomes[c].cast("float64").sum() for c in cols})


def sufficient_stats(assignments: DataLike, outcomes: DataLike, *, metrics, experiment: str | None = None,
                     arm: str = "variant", user: str = "user_id", covariates: Mapping[str, str] | None = None,
                     tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Aggregate an experiment to sufficient statistics per variant and metric, in the engine.

    Parameters
    ----------
    assignments : canonical ``assignments`` table (DataFrame, path or Ibis table)
        One row per user and experiment. Every assigned user counts; a user with no row in
        ``outcomes`` counts as 0 on every metric (the usual convention for conversion and
        revenue metrics; the number of such users is reported).
    outcomes : per-user (or event-level) table with ``user`` and the metric columns
        Several rows per user are summed. Rows of users not assigned in this experiment are
        excluded and counted.
    metrics : str, list of str or mapping
        Column names, or ``{name: column}``, or ``{name: (numerator, denominator)}`` for ratio
        metrics (for example revenue per order).
    experiment : str, optional
        Which experiment of ``assignments``; required when it holds several.
    arm : column of ``assignments`` holding the arm (default ``variant``).
    user : user column (default ``user_id``).
    covariates : mapping ``metric -> column`` of ``outcomes``, optional
        Pre-period covariate per metric for CUPED (:func:`crmlab.abtest.adjust.cuped`). A
        metric cannot have both a denominator and a covariate.
    tz : time zone (default Asia/Seoul).

    Returns
    -------
    DataFrame
        One row per ``variant`` and ``metric``: ``n`` (users), ``sum``, ``sum_sq``, ``sum_cube``,
        ``x_sum``, ``x_sum_sq``, ``xy_sum`` (the denominator or covariate; null for plain
        metrics), ``x_role`` (``denominator`` | ``covariate`` | null) and ``binary`` (every value
        is 0 or 1). ``attrs['excluded']`` counts outcome rows of unassigned users and
        ``attrs['filled_zero']`` the assigned users without outcomes.
    """
    specs = parse_metrics(metrics)
    covariates = dict(covariates or {})
    for m, c in covariates.items():
        if m not in specs:
            raise ValueError(f"covariates={covariates!r}: metric {m!r} is not among metrics {list(specs)}")
        if specs[m][1] is not None:
            raise ValueError(f"covariates: metric {m!r} is a ratio metric; CUPED of ratio metrics is not supported")
    cols = sorted({c for num, den in specs.values() for c in (num, den) if c} | set(covariates.values()))
    j, n_unassigned, n_no_outcome = joined_outcomes(assignments, outcomes, cols, experiment=experiment,
                                                    arm=arm, user=user, tz=tz)

    aggs = {"n": j.count()}
    for i, (name, (num, den)) in enumerate(specs.items()):
        y = j[num]
        x = j[den] if den else (j[covariates[name]] if name in covariates else None)
        aggs[f"s{i}"] = y.sum()
        aggs[f"q{i}"] = (y * y).sum()
        aggs[f"c{i}"] = (y * y * y).sum()
        aggs[f"b{i}"] = ((y != 0) & (y != 1)).ifelse(1, 0).sum()
        if x is not None:
            aggs[f"xs{i}"] = x.sum()
            aggs[f"xq{i}"] = (x * x).sum()
            aggs[f"xy{i}"] = (x * y).sum()
    wide = to_pandas(j.group_by("_arm").aggregate(**aggs), None)

    rows = []
    for _, r in wide.sort_values("_arm").iterrows():
        for i, (name, (num, den)) in enumerate(specs.items()):
            role = "denominator" if den else ("covariate" if name in covariates else None)
            rows.append({
                "variant": r["_arm"], "metric": name, "n": int(r["n"]),
                "sum": float(r[f"s{i}"]), "sum_sq": float(r[f"q{i}"]), "sum_cube": float(r[f"c{i}"]),
                "x_sum": float(r[f"xs{i}"]) if role else np.nan,
                "x_sum_sq": float(r[f"xq{i}"]) if role else np.nan,
                "xy_sum": float(r[f"xy{i}"]) if role else np.nan,
                "x_role": role,
                "binary": bool(r[f"b{i}"] == 0) and role is None,
            })
    out = pd.DataFrame(rows, columns=["variant", "metric", "n", "sum", "sum_sq", "sum_cube", "x_sum", "x_sum_sq",
                                      "xy_sum", "x_role", "binary"])
    out.attrs["filled_zero"] = n_no_outcome
    return report_exclusions(out, {"outcome rows of users not assigned": n_unassigned}, "sufficient_stats")


def joined_outcomes(assignments: DataLike, outcomes: DataLike, cols: list[str], *, experiment: str | None,
                    arm: str = "variant", user: str = "user_id", tz: str = DEFAULT_TZ):
    """Assigned users of one experiment left-joined to their per-user outcome columns ``cols``.

    Returns ``(table, n_unassigned_rows, n_filled_zero)``: an Ibis table with ``_user``,
    ``_arm`` and ``cols`` (nulls filled with 0), the number of outcome rows whose user is not
    assigned, and the number of assigned users without outcomes.
    """
    a = canonical(assignments, "assignments", tz=tz)
    if arm not in a.columns:
        raise ValueError(f"arm={arm!r}: not a column of assignments; columns are {list(a.columns)}")
    if experiment is None:
        exps = to_pandas(a.select("experiment").distinct(), None)["experiment"].tolist()
        if len(exps) > 1:
            raise ValueError(f"experiment=None: assignments hold {len(exps)} experiments {sorted(exps)[:10]}; "
                             "pass experiment=")
    else:
        a = a.filter(a.experiment == experiment)
    # the boundary's rules for outcomes: numbers or true/false, finite, one row per user
    o = canonical_outcomes(outcomes, cols, user=user, tz=tz)
    a = a.select(_user=a[user].cast("string"), _arm=a[arm].cast("string"))
    o = o.mutate(_user=o[user].cast("string"))
    per_user = _per_user_outcomes(o, cols, "_user")
    j = a.left_join(per_user, a._user == per_user._user).select("_user", "_arm", *cols)
    n_unassigned = int(o.anti_join(a, o._user == a._user).count().execute())
    n_no_outcome = int(j.filter(j[cols[0]].isnull()).count().execute()) if cols else 0
    j = j.mutate(**{c: j[c].fill_null(0.0) for c in cols})
    return j, n_unassigned, n_no_outcome
