"""One call from assignments and per-user outcomes to an experiment readout.

:func:`readout` runs, in order: the sample-ratio-mismatch check (first, because an SRM
invalidates everything after it), the engine aggregation to sufficient statistics, a test of
each variant against the control for each metric (:func:`crmlab.abtest.compare`), a
multiple-comparison correction over an explicit family, an omnibus chi-square for 0/1
metrics with several variants, and heavy-tail checks for skewed metrics such as revenue.
:func:`plot_forest` draws the relative-lift intervals.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..io.engine import DataLike, to_pandas
from ..io.schema import DEFAULT_TZ
from ..io.checks import choice
from .corrections import CORRECTIONS, SCOPES, correct
from .frequentist import compare, mean_test, proportions_chisquare
from .intervals import _check_relative
from .srm import SRMResult, srm_check
from .sufficient import SampleStats, joined_outcomes, parse_metrics, sufficient_stats

__all__ = ["Readout", "readout", "plot_forest", "heavy_tail_checks"]

HEAVY_COLUMNS = ["metric", "variant", "control", "scale", "estimate", "ci_low", "ci_high", "p_value", "method"]


@dataclass
class Readout:
    """An experiment readout.

    Attributes
    ----------
    srm : SRMResult
        Sample ratio mismatch check; read it first. When ``srm.flagged`` the results below
        should not be trusted.
    table : DataFrame
        One row per metric and variant: ``metric, variant, control, n, n_control, estimate,
        estimate_control, abs_lift, abs_ci_low, abs_ci_high, rel_lift, rel_ci_low, rel_ci_high,
        p_value, rel_p_value, method, p_adjusted, correction``.
    omnibus : DataFrame
        Chi-square test that all arms share one rate, per 0/1 metric (``metric, statistic,
        df, p_value``).
    heavy_tail : DataFrame
        Robust checks of heavy-tailed metrics (``metric, variant, control, scale, estimate,
        ci_low, ci_high, p_value, method``); empty when none ran.
    stats : DataFrame
        The sufficient statistics everything was computed from.
    settings : dict
        ``experiment, control, alpha, correction, scope, relative``.
    notes : list of str
        What was skipped and why, exclusions.
    """

    srm: SRMResult
    table: pd.DataFrame
    omnibus: pd.DataFrame
    heavy_tail: pd.DataFrame
    stats: pd.DataFrame
    settings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            parts = [str(self.srm), "", "Results:", self.table.to_string(index=False)]
            if len(self.omnibus):
                parts += ["", "Omnibus chi-square (all arms equal):", self.omnibus.to_string(index=False)]
            if len(self.heavy_tail):
                parts += ["", "Heavy-tail checks:", self.heavy_tail.to_string(index=False)]
            if self.notes:
                parts += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#b00020" if self.srm.flagged else "#1b5e20"
        html = [f'<p style="color:{colour}"><b>{self.srm}</b></p>', self.table.to_html(index=False)]
        if len(self.omnibus):
            html += ["<p>Omnibus chi-square (all arms equal)</p>", self.omnibus.to_html(index=False)]
        if len(self.heavy_tail):
            html += ["<p>Heavy-tail checks</p>", self.heavy_tail.to_html(index=False)]
        if self.notes:
            html += ["<ul>"] + [f"<li>{n}</li>" for n in self.notes] + ["</ul>"]
        return "\n".join(html)


def heavy_tail_checks(assignments: DataLike, outcomes: DataLike, *, metric: str, control: str,
                      experiment: str | None = None, alpha: float = 0.05, cap_quantile: float = 0.99,
                      n_boot: int = 2000, seed: int = 0, arm: str = "variant", user: str = "user_id",
                      tz: str = DEFAULT_TZ, notes: list | None = None) -> pd.DataFrame:
    """Checks of a heavy-tailed (for example revenue) metric that do not lean on the mean's
    normal approximation alone.

    - ``winsorized mean``: values above the ``cap_quantile`` quantile of the *nonzero* values
      (pooled over arms, so every arm is capped at the same level; zero-inflated revenue would
      otherwise be capped at 0) are set to that cap, in the engine; then Welch's test with the
      log-ratio interval. The estimand changes (the capped mean), in exchange for variance.
    - ``bootstrap``: BCa bootstrap interval of the relative lift of the plain means
      (:func:`crmlab.abtest.robust.bootstrap_diff`; Efron & Tibshirani 1993).
    - ``mann_whitney``: rank test p-value (:func:`crmlab.abtest.robust.mann_whitney`), which
      tests a shift of the distribution, not of the mean.

    The last two need the per-user values, so the metric column is brought to pandas; they are
    skipped (with a note) when :mod:`crmlab.abtest.robust` is not available.
    """
    notes = notes if notes is not None else []
    j, _, _ = joined_outcomes(assignments, outcomes, [metric], experiment=experiment, arm=arm, user=user, tz=tz)
    v = j[metric]
    cap_expr = j.filter(v > 0).aggregate(cap=j.filter(v > 0)[metric].quantile(cap_quantile))
    cap = to_pandas(cap_expr, None)["cap"].iloc[0]
    rows = []
    if pd.notna(cap):
        cap = float(cap)
        w = v.clip(upper=cap)
        agg = to_pandas(j.group_by("_arm").aggregate(n=j.count(), s=w.sum(), q=(w * w).sum()), None)
        st = {r["_arm"]: SampleStats(float(r["n"]), float(r["s"]), float(r["q"])) for _, r in agg.iterrows()}
        for arm in sorted(st):
            if arm == control:
                continue
            res = mean_test(st[control], st[arm], alpha=alpha, method="welch", relative="log")
            label = f"winsorized mean (cap {cap:.4g} = q{cap_quantile:g} of nonzero), Welch"
            rows.append({"metric": metric, "variant": arm, "control": control, "scale": "absolute",
                         "estimate": float(res["abs_lift"]), "ci_low": float(res["abs_ci_low"]),
                         "ci_high": float(res["abs_ci_high"]), "p_value": float(res["p_value"]), "method": label})
            rows.append({"metric": metric, "variant": arm, "control": control, "scale": "relative",
                         "estimate": float(res["rel_lift"]), "ci_low": float(res["rel_ci_low"]),
                         "ci_high": float(res["rel_ci_high"]), "p_value": float(res["rel_p_value"]),
                         "method": label + ", log ratio"})
    try:
        from . import robust
    except ImportError:  # pragma: no cover - depends on the parallel module landing
        notes.append(f"{metric}: bootstrap and Mann-Whitney skipped (crmlab.abtest.robust not available)")
        return pd.DataFrame(rows, columns=HEAVY_COLUMNS)
    values = to_pandas(j.select("_arm", metric), None)
    groups = {a: g[metric].to_numpy(float) for a, g in values.groupby("_arm")}
    for arm in sorted(groups):
        if arm == control:
            continue
        x, y = groups[control], groups[arm]
        try:
            b = robust.bootstrap_diff(x, y, stat="mean", relative=True, n_boot=n_boot, alpha=alpha, seed=seed)
            rows.append({"metric": metric, "variant": arm, "control": control, "scale": "relative",
                         "estimate": b["estimate"], "ci_low": b["ci_low"], "ci_high": b["ci_high"],
                         "p_value": np.nan, "method": b.get("method", "bootstrap")})
        except Exception as exc:  # keep the readout going; say what failed
            notes.append(f"{metric}/{arm}: bootstrap failed ({exc})")
        try:
            m = robust.mann_whitney(x, y)
            rows.append({"metric": metric, "variant": arm, "control": control, "scale": "distribution",
                         "estimate": m.get("prob_superiority", m.get("statistic", np.nan)),
                         "ci_low": np.nan, "ci_high": np.nan, "p_value": m["p_value"],
                         "method": m.get("method", "Mann-Whitney U")
                         + (" (estimate: P(variant > control) + ties/2)" if "prob_superiority" in m else "")})
        except Exception as exc:
            notes.append(f"{metric}/{arm}: Mann-Whitney failed ({exc})")
    return pd.DataFrame(rows, columns=HEAVY_COLUMNS)


def readout(assignments: DataLike, outcomes: DataLike, *, metrics, experiment: str | None = None,
            control: str = "control", alpha: float = 0.05, correction: str = "holm", scope: str = "both",
            relative: str | None = None, heavy_tail: Sequence[str] = ("spend",), expected: Mapping[str, float] | None = None,
            srm_alpha: float = 0.001, covariates: Mapping[str, str] | None = None,
            kinds: Mapping[str, str] | None = None, n_boot: int = 2000, seed: int = 0, arm: str = "variant",
            user: str = "user_id", tz: str = DEFAULT_TZ) -> Readout:
    """Read out an experiment: SRM check, per-metric tests, correction, heavy-tail checks.

    Parameters
    ----------
    assignments : canonical ``assignments`` (DataFrame, path or Ibis table).
    outcomes : per-user table with ``user`` and the metric columns (users without a row count 0).
    metrics : str, list or mapping (see :func:`crmlab.abtest.sufficient_stats`); 0/1 metrics
        are tested as proportions (z-test), others as means (Welch), ratio metrics by the delta
        method, metrics with a ``covariates`` entry with CUPED.
    experiment : which experiment of ``assignments``.
    control : the control arm.
    alpha : level of the intervals and tests.
    correction : ``"holm"`` | ``"bh"`` | ``"bonferroni"`` | ``"none"`` for ``p_adjusted``.
    scope : the family corrected together: ``"variants"``, ``"metrics"``, ``"both"``, ``"none"``.
    relative : relative-lift interval: ``None`` (default) inverts each comparison's own test,
        so the relative and absolute verdicts agree; ``"log"`` / ``"delta"`` switch to the
        unpooled z / Welch tests with that (non-dual) interval.
    heavy_tail : metrics that also get :func:`heavy_tail_checks` (names absent from
        ``metrics`` are ignored with a note).
    expected : planned allocation ``variant -> weight`` for the SRM check (default equal).
    srm_alpha : SRM flag threshold (default 0.001).
    covariates : ``metric -> pre-period column`` for CUPED.
    kinds : ``metric -> "proportion" | "mean"`` overrides.
    n_boot, seed : bootstrap settings of the heavy-tail checks.

    Returns
    -------
    Readout
        ``srm`` first, then ``table``, ``omnibus``, ``heavy_tail``, ``stats``, ``notes``.
    """
    choice(correction, "correction", CORRECTIONS)
    choice(scope, "scope", SCOPES)
    if relative is not None:
        _check_relative(relative)
    srm = srm_check(assignments, expected=expected, alpha=srm_alpha, experiment=experiment, arm=arm, tz=tz)
    stats = sufficient_stats(assignments, outcomes, metrics=metrics, experiment=experiment, arm=arm, user=user,
                             covariates=covariates, tz=tz)
    notes: list[str] = []
    if srm.flagged:
        notes.append("SAMPLE RATIO MISMATCH: arm sizes differ from the planned allocation; "
                     "find the cause before trusting any result below")
    excl = stats.attrs.get("excluded", {})
    for k, v in excl.items():
        if v:
            notes.append(f"excluded {v:,} {k}")
    if stats.attrs.get("filled_zero"):
        notes.append(f"{stats.attrs['filled_zero']:,} assigned users had no outcome row and count as 0")
    table = compare(stats, control=control, alpha=alpha, relative=relative, kinds=dict(kinds or {}))
    table = correct(table, correction=correction, scope=scope)

    omni = []
    arms = stats["variant"].nunique()
    if arms > 2:
        for metric, g in stats.groupby("metric", sort=False):
            binary = bool(g["binary"].all()) and (kinds or {}).get(metric, "proportion") == "proportion"
            if binary:
                r = proportions_chisquare(g["sum"].to_numpy(), g["n"].to_numpy())
                omni.append({"metric": metric, "statistic": r["statistic"], "df": r["df"], "p_value": r["p_value"]})
    omnibus = pd.DataFrame(omni, columns=["metric", "statistic", "df", "p_value"])

    names = list(parse_metrics(metrics))
    specs = parse_metrics(metrics)
    heavy = []
    for m in heavy_tail or ():
        if m not in names:
            notes.append(f"heavy_tail metric {m!r} is not among metrics; skipped")
            continue
        if specs[m][1] is not None:
            notes.append(f"heavy_tail metric {m!r} is a ratio metric; skipped")
            continue
        heavy.append(heavy_tail_checks(assignments, outcomes, metric=specs[m][0], control=control,
                                       experiment=experiment, alpha=alpha, n_boot=n_boot, seed=seed, arm=arm,
                                       user=user, tz=tz, notes=notes).assign(metric=m))
    heavy_df = pd.concat(heavy, ignore_index=True) if heavy else pd.DataFrame(columns=HEAVY_COLUMNS)
    settings = {"experiment": experiment, "control": control, "alpha": alpha, "correction": correction,
                "scope": scope, "relative": relative}
    return Readout(srm=srm, table=table, omnibus=omnibus, heavy_tail=heavy_df, stats=stats, settings=settings,
                   notes=notes)


def plot_forest(result, *, ax=None, percent: bool = True):
    """Forest plot of relative-lift intervals: one line per metric and variant.

    Parameters
    ----------
    result : Readout or its ``table`` (needs ``metric, variant, rel_lift, rel_ci_low,
        rel_ci_high``; ``p_adjusted`` is printed when present).
    ax : matplotlib Axes, optional.
    percent : label the axis in percent.

    Returns
    -------
    matplotlib Axes
    """
    from ..plotting import setup
    setup()
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    table = result.table if isinstance(result, Readout) else result
    need = ["metric", "variant", "rel_lift", "rel_ci_low", "rel_ci_high"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"result: columns {missing} missing; pass a Readout or compare()'s table")
    t = table.reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.55 * len(t) + 1.2))
    variants = list(dict.fromkeys(t["variant"]))
    palette = dict(zip(variants, sns.color_palette("deep", len(variants))))
    ypos = np.arange(len(t))[::-1]
    for y, (_, r) in zip(ypos, t.iterrows()):
        c = palette[r["variant"]]
        ax.plot([r["rel_ci_low"], r["rel_ci_high"]], [y, y], color=c, lw=2.5, solid_capstyle="butt")
        ax.plot(r["rel_lift"], y, "o", color=c, ms=7)
        if "p_adjusted" in t.columns and pd.notna(r["p_adjusted"]):
            ax.annotate(f"adj. p = {r['p_adjusted']:.3g}", (r["rel_ci_high"], y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.3")
    ax.axvline(0, color="0.4", lw=1, ls="--")
    ax.set_yticks(ypos)
    ax.set_yticklabels([f"{m} | {v}" for m, v in zip(t["metric"], t["variant"])])
    ctrl = t["control"].iloc[0] if "control" in t.columns and len(t) else "control"
    ax.set_xlabel(f"relative lift vs {ctrl}")
    if percent:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Relative lift with confidence intervals")
    ax.margins(x=0.15)
    return ax
