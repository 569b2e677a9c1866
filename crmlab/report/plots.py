"""Report charts (seaborn/matplotlib, labels in the report's language). Each returns an Axes."""
from __future__ import annotations

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


def lift_plot(results: pd.DataFrame, lang: str = "en", *, alpha: float = 0.05, ax=None):
    """Relative change of each arm against the control, with its interval, per metric
    (rows of :func:`crmlab.abtest.compare`)."""
    ax = _ax(ax, (8, 0.6 * max(len(results), 2) + 1.2))
    df = results.reset_index(drop=True)
    labels = [f"{v} · {T.metric_name(m, lang)}" for v, m in zip(df["variant"], df["metric"])]
    y = np.arange(len(df))
    est = df["rel_lift"].to_numpy(float) * 100
    lo = df["rel_ci_low"].to_numpy(float) * 100
    hi = df["rel_ci_high"].to_numpy(float) * 100
    colors = ["#2b8a3e" if (l > 0) else "#c92a2a" if (h < 0) else "#868e96" for l, h in zip(lo, hi)]
    ax.hlines(y, lo, hi, colors=colors, linewidth=3)
    ax.scatter(est, y, color=colors, zorder=3, s=40)
    ax.axvline(0, color="#333", linewidth=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel({"en": f"relative change vs control, % ({(1 - alpha) * 100:g}% interval)",
                   "ko": f"대조군 대비 상대 변화, % ({(1 - alpha) * 100:g}% 신뢰구간)"}[lang])
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
        ax.get_legend().set_title(T.col_label(hue, lang))
    ax.set_xlabel(T.col_label(x, lang))
    ax.set_ylabel(T.col_label(y, lang) + (" (%)" if percent else ""))
    if title:
        ax.set_title(title)
    return ax


def bar_plot(df: pd.DataFrame, x: str, y: str, lang: str = "en", *, hue: str | None = None, percent: bool = False,
             ax=None, title: str | None = None):
    """A labelled bar chart of a tidy frame (``percent`` shows y as %)."""
    ax = _tidy_chart(sns.barplot, df, x, y, lang, hue, percent, ax, title)
    for label in ax.get_xticklabels():
        label.set_rotation(20)
        label.set_ha("right")
    return ax


def line_plot(df: pd.DataFrame, x: str, y: str, lang: str = "en", *, hue: str | None = None, percent: bool = False,
              ax=None, title: str | None = None):
    """A labelled line chart of a tidy frame."""
    return _tidy_chart(partial(sns.lineplot, marker="o"), df, x, y, lang, hue, percent, ax, title)


def heatmap(matrix: pd.DataFrame, lang: str = "en", *, percent: bool = True, ax=None, title: str | None = None,
            xlabel: str | None = None, ylabel: str | None = None):
    """A heatmap (e.g. cohort retention) with values written in the cells."""
    ax = _ax(ax, (9, 0.45 * max(len(matrix), 4) + 1.5))
    data = matrix * 100 if percent else matrix
    sns.heatmap(data, annot=True, fmt=".0f" if percent else ".2g", cmap="Blues", cbar=False, ax=ax,
                annot_kws={"size": 8})
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def interval_plot(df: pd.DataFrame, labels, est: str, lo: str, hi: str, *, xlabel: str, scale: float = 100.0,
                  ax=None):
    """Point estimates with intervals, one row per label; green when the interval is above 0,
    red when below, grey when it crosses 0."""
    ax = _ax(ax, (8, 0.55 * max(len(df), 2) + 1.2))
    y = np.arange(len(df))
    e = df[est].to_numpy(float) * scale
    l_ = df[lo].to_numpy(float) * scale
    h_ = df[hi].to_numpy(float) * scale
    colors = ["#2b8a3e" if a > 0 else "#c92a2a" if b < 0 else "#868e96" for a, b in zip(l_, h_)]
    ax.hlines(y, l_, h_, colors=colors, linewidth=3)
    ax.scatter(e, y, color=colors, zorder=3, s=40)
    ax.axvline(0, color="#333", linewidth=1)
    ax.set_yticks(y, list(labels))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return ax


def uplift_plot(rows: pd.DataFrame, lang: str = "en", *, label: str = "experiment", ax=None):
    """Absolute conversion uplift (percentage points) with its interval, per campaign or segment."""
    xlabel = {"en": "uplift in conversion, percentage points (interval)",
              "ko": "전환율 업리프트, %p (신뢰구간)"}[lang]
    return interval_plot(rows.reset_index(drop=True), rows[label].astype(str), "abs_lift", "abs_ci_low", "abs_ci_high",
                         xlabel=xlabel, ax=ax)
