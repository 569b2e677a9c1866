"""Report charts (seaborn/matplotlib, labels in the report's language). Each returns an Axes."""
from __future__ import annotations

import textwrap
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import text as T


def _ax(ax, size=(8, 4)):
    from crmlab import plotting
    plotting.setup()
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


#: Colour per verdict (the engine's, after correction): only wins are green, only losses red.
VERDICT_COLOURS = {"win": "#2b8a3e", "loss": "#c92a2a", "inconclusive": "#868e96", "insufficient": "#ced4da"}


def _verdict_colours(verdicts, lo, hi):
    if verdicts is None:  # no verdicts given: grey unless the interval is clear of zero
        return ["#2b8a3e" if (a > 0) else "#c92a2a" if (b < 0) else "#868e96" for a, b in zip(lo, hi)]
    return [VERDICT_COLOURS.get(str(v), "#868e96") for v in verdicts]


def _verdict_legend(ax, verdicts, lang: str) -> None:
    """A legend of the verdicts shown, below the axes (never over the data)."""
    from matplotlib.lines import Line2D
    if verdicts is None:
        return
    shown = [v for v in VERDICT_COLOURS if v in set(map(str, verdicts))]
    handles = [Line2D([0], [0], color=VERDICT_COLOURS[v], lw=3, marker="o", label=T.verdict_name(v, lang))
               for v in shown]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.18 - 0.4 / max(len(ax.get_yticks()), 1)),
                  ncol=len(handles), frameon=False)


def _symmetric(ax, lo, hi) -> None:
    """An x range that always shows zero and the whole of every interval."""
    vals = np.r_[np.asarray(lo, float), np.asarray(hi, float), 0.0]
    vals = vals[np.isfinite(vals)]
    if vals.size:
        a, b = vals.min(), vals.max()
        pad = 0.08 * (b - a or 1.0)
        ax.set_xlim(a - pad, b + pad)


def _wrap(label: str, width: int = 14) -> str:
    """Wrap a long (e.g. Korean) label onto lines instead of rotating it."""
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def lift_plot(results: pd.DataFrame, lang: str = "en", *, alpha: float = 0.05, ax=None):
    """Relative change of each arm against the control, with its interval, per metric
    (rows of :func:`crmlab.abtest.compare`); coloured by ``verdict`` when the rows have one."""
    ax = _ax(ax, (8, 0.6 * max(len(results), 2) + 1.2))
    df = results.reset_index(drop=True)
    labels = [f"{v} · {T.metric_name(m, lang)}" for v, m in zip(df["variant"], df["metric"])]
    y = np.arange(len(df))
    est = df["rel_lift"].to_numpy(float) * 100
    lo = df["rel_ci_low"].to_numpy(float) * 100
    hi = df["rel_ci_high"].to_numpy(float) * 100
    verdicts = df["verdict"].tolist() if "verdict" in df.columns else None
    colors = _verdict_colours(verdicts, lo, hi)
    ax.hlines(y, lo, hi, colors=colors, linewidth=3)
    ax.scatter(est, y, color=colors, zorder=3, s=40)
    ax.axvline(0, color="#333", linewidth=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(df) - 0.5, -0.5)
    _symmetric(ax, lo, hi)
    ax.set_xlabel({"en": f"relative change vs control, % ({(1 - alpha) * 100:g}% interval)",
                   "ko": f"대조군 대비 상대 변화, % ({(1 - alpha) * 100:g}% 신뢰구간)"}[lang])
    _verdict_legend(ax, verdicts, lang)
    return ax


def _tidy_chart(draw, df: pd.DataFrame, x: str, y: str, lang: str, hue: str | None, percent: bool, ax,
                title: str | None):
    """Draw ``draw(data=, x=, y=, hue=, ax=)`` (a seaborn function) on ``df`` with y in % when
    ``percent``, then label axes and legend in ``lang``."""
    ax = _ax(ax)
    data = df.copy()
    if percent:
        data[y] = data[y] * 100
    draw(data=data, x=x, y=y, hue=hue, ax=ax)
    if hue and ax.get_legend() is not None:
        # the legend sits to the right of the axes, never over the data
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False, title=T.col_label(hue, lang))
    lo, hi = ax.get_ylim()
    vals = pd.to_numeric(data[y], errors="coerce")
    if np.nanmin(vals) >= 0:
        # honest axes: non-negative values are drawn from zero, with room above the highest
        # point (the autoscaled margin was fitted to the data's own range and cut markers off)
        ax.set_ylim(0, max(hi, float(np.nanmax(vals)) * 1.08))
    ax.set_xlabel(T.col_label(x, lang))
    ax.set_ylabel(T.col_label(y, lang) + (" (%)" if percent else ""))
    if title:
        ax.set_title(title)
    return ax


def bar_plot(df: pd.DataFrame, x: str, y: str, lang: str = "en", *, hue: str | None = None, percent: bool = False,
             ax=None, title: str | None = None):
    """A labelled bar chart of a tidy frame (``percent`` shows y as %)."""
    data = df.copy()
    categorical = not pd.api.types.is_numeric_dtype(data[x])
    if categorical and (data[x].nunique() > 8 or (data[x].nunique() > 5 and data[x].astype(str).str.len().max() > 12)):
        # many named categories (RFM segments, in Korean too): horizontal bars, labels read across
        ax = _ax(ax, (8, 0.32 * len(data) + 1.5))
        if percent:
            data[y] = data[y] * 100
        sns.barplot(data=data, y=x, x=y, hue=hue, ax=ax, orient="h")
        if hue and ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False, title=T.col_label(hue, lang))
        ax.set_xlim(0, ax.get_xlim()[1])
        ax.set_ylabel(T.col_label(x, lang))
        ax.set_xlabel(T.col_label(y, lang) + (" (%)" if percent else ""))
        if title:
            ax.set_title(title)
        return ax
    if categorical:
        data[x] = [_wrap(v, 10) for v in data[x]]  # wrapped, not rotated: Korean labels stay readable
    ax = _tidy_chart(sns.barplot, data, x, y, lang, hue, percent, ax, title)
    return ax


def line_plot(df: pd.DataFrame, x: str, y: str, lang: str = "en", *, hue: str | None = None, percent: bool = False,
              ax=None, title: str | None = None):
    """A labelled line chart of a tidy frame."""
    return _tidy_chart(partial(sns.lineplot, marker="o"), df, x, y, lang, hue, percent, ax, title)


def heatmap(matrix: pd.DataFrame, lang: str = "en", *, percent: bool = True, ax=None, title: str | None = None,
            xlabel: str | None = None, ylabel: str | None = None, counts: pd.DataFrame | None = None,
            min_count: int = 0):
    """A heatmap (e.g. cohort retention) with values written in the cells.

    With ``counts`` (same shape), each cell also shows its n, and cells with fewer than
    ``min_count`` are greyed and carry no colour or rate: the darkest cells are never ones from a
    handful of messages."""
    data = matrix * 100 if percent else matrix
    wide = counts is not None
    # a page shows a chart about 1,150 px wide: a narrower figure keeps the cells' text legible
    ax = _ax(ax, (max(9, 0.45 * data.shape[1] + 1.5) if wide else 9, (0.6 if wide else 0.45) * max(len(matrix), 4) + 1.5))
    if counts is None:
        sns.heatmap(data, annot=True, fmt=".0f" if percent else ".2g", cmap="Blues", cbar=False, ax=ax,
                    annot_kws={"size": 8})
    else:
        n = counts.reindex(index=data.index, columns=data.columns)
        # a cell without a rate (receipt-only channels have no clicks) is shown like a small one
        small = n.isna() | (n < min_count) | data.isna()
        ax.set_facecolor("#f1f3f5")  # masked cells show the grey background
        fmt = "{:.1f}" if percent else "{:.2g}"
        annot = pd.DataFrame("", index=data.index, columns=data.columns)
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                if not small.iat[i, j]:
                    annot.iat[i, j] = f"{fmt.format(data.iat[i, j])}\nn={int(n.iat[i, j])}"
        # seaborn derives the colour range from the unmasked cells and fails when there are none
        span = {} if not small.to_numpy().all() else {"vmin": 0.0, "vmax": 100.0 if percent else 1.0}
        sns.heatmap(data.mask(small), annot=annot.to_numpy(), fmt="", cmap="Blues", cbar=False, ax=ax,
                    annot_kws={"size": 8}, linewidths=0.5, linecolor="white", **span)
        ax.grid(False)  # the style's grid would draw over the greyed cells
        for i in range(data.shape[0]):  # masked cells: grey, only their n (seaborn does not annotate them)
            for j in range(data.shape[1]):
                if small.iat[i, j] and not pd.isna(n.iat[i, j]):
                    ax.text(j + 0.5, i + 0.5, f"n={int(n.iat[i, j])}", ha="center", va="center", size=8,
                            color="#868e96")
    ax.tick_params(axis="y", rotation=0)  # row labels (weekdays, cohorts; Korean too) read horizontally
    ax.tick_params(axis="x", rotation=0)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def retention_heatmap(matrix: pd.DataFrame, lang: str = "en", *, period_name: str = "", ax=None,
                      xlabel: str | None = None, ylabel: str | None = None):
    """Cohort retention (cohorts x period index, shares) with the colour scale fitted to the
    cells after period 0.

    Period 0 is the first purchase itself, 100 % by definition: on one scale with the rest it
    takes the darkest colour and washes every other cell out. So it is drawn uncoloured (grey
    background, its value written) and labelled as the first purchase; the colours run from the
    smallest to the largest share of periods 1 and later (``vmin``/``vmax`` of the mesh)."""
    data = matrix * 100
    first = [c for c in data.columns if str(c) == "0"]
    rest = data.drop(columns=first)
    vals = rest.to_numpy(float)
    vals = vals[np.isfinite(vals)]
    vmin, vmax = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 100.0)
    if vmax <= vmin:
        vmax = vmin + 1.0
    ax = _ax(ax, (9, 0.45 * max(len(matrix), 4) + 1.5))
    ax.set_facecolor("#f1f3f5")
    shown = data.copy()
    shown[first] = np.nan  # no colour for period 0
    sns.heatmap(shown, annot=True, fmt=".0f", cmap="Blues", vmin=vmin, vmax=vmax, cbar=False, ax=ax,
                annot_kws={"size": 8}, linewidths=0.5, linecolor="white")
    for j, c in enumerate(data.columns):
        if c in first:
            for i in range(data.shape[0]):
                v = data.iat[i, j]
                if np.isfinite(v):
                    ax.text(j + 0.5, i + 0.5, f"{v:.0f}", ha="center", va="center", size=8, color="#495057")
    zero = "\n".join(textwrap.wrap(T.t("period_zero", lang), 6, break_long_words=False))
    ticks = [zero if c in first else str(c) for c in data.columns]
    ax.set_xticks(np.arange(len(ticks)) + 0.5, ticks)
    ax.grid(False)  # the style's grid would draw over the uncoloured cells
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=0)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    return ax


def sendtime_grid(heat: pd.DataFrame, lang: str = "en", value: str = "click_rate",
                  count: str = "delivered") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The send-time heatmap's rate and count grids over **all** 7 weekdays x 24 hours: a slot
    with no message is a cell with n = 0 (greyed), never a missing column that shifts the axis."""
    days = T.t("weekday_names", lang).split(",")
    full = pd.MultiIndex.from_product([range(7), range(24)], names=["weekday", "hour"])
    h = heat.assign(weekday=heat["weekday"].astype(int), hour=heat["hour"].astype(int)).set_index(["weekday", "hour"])
    rate = h[value].reindex(full).unstack("hour")
    n = h[count].reindex(full).fillna(0).astype(int).unstack("hour")
    rate.index = n.index = [days[d] for d in rate.index]
    rate.columns.name = n.columns.name = None
    return rate, n


def sendtime_heatmap(heat: pd.DataFrame, lang: str = "en", *, min_count: int = 30, ax=None):
    """Click rate by weekday and send hour (:func:`sendtime_grid`), cells with fewer than
    ``min_count`` delivered messages on click-reporting channels greyed with their n (n = 0 where nothing was sent)."""
    # the click rate's denominator: deliveries on channels that report clicks
    rate, n = sendtime_grid(heat, lang, count="delivered_click_tracked" if "delivered_click_tracked" in heat else "delivered")
    return heatmap(rate, lang, percent=True, xlabel=T.col_label("hour", lang), ylabel="", counts=n,
                   min_count=min_count, ax=ax)


def interval_plot(df: pd.DataFrame, labels, est: str, lo: str, hi: str, *, xlabel: str, scale: float = 100.0,
                  ax=None, lang: str = "en"):
    """Point estimates with intervals, one row per label; coloured by the finding's ``verdict``
    (a column of ``df``) when there is one (green win, red loss, grey no verdict), else green when
    the interval is above 0, red when below, grey when it crosses 0."""
    ax = _ax(ax, (8, 0.55 * max(len(df), 2) + 1.2))
    y = np.arange(len(df))
    e = df[est].to_numpy(float) * scale
    l_ = df[lo].to_numpy(float) * scale
    h_ = df[hi].to_numpy(float) * scale
    verdicts = df["verdict"].tolist() if "verdict" in df.columns else None
    colors = _verdict_colours(verdicts, l_, h_)
    ax.hlines(y, l_, h_, colors=colors, linewidth=3)
    ax.scatter(e, y, color=colors, zorder=3, s=40)
    ax.axvline(0, color="#333", linewidth=1)
    ax.set_yticks(y, [_wrap(x, 28) for x in labels])
    ax.set_ylim(len(df) - 0.5, -0.5)  # top to bottom, no point on the frame
    _symmetric(ax, l_, h_)
    ax.set_xlabel(xlabel)
    _verdict_legend(ax, verdicts, lang)
    return ax


def uplift_plot(rows: pd.DataFrame, lang: str = "en", *, label: str = "experiment", ax=None):
    """Absolute conversion uplift (percentage points) with its interval, per campaign or segment."""
    xlabel = {"en": "uplift in conversion, percentage points (interval)",
              "ko": "전환율 업리프트, %p (신뢰구간)"}[lang]
    rows = rows.reset_index(drop=True)
    lo, hi = ("abs_ci_low", "abs_ci_high") if "abs_ci_low" in rows.columns else ("ci_low", "ci_high")
    return interval_plot(rows, rows[label].astype(str), "abs_lift", lo, hi, xlabel=xlabel, ax=ax, lang=lang)
