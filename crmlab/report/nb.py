"""What report notebooks call, so that notebooks stay thin.

>>> rep = Report("weekly_uplift", week=week, source=source, lang=lang)   # doctest: +SKIP
>>> rep.header(); rep.summary(bullets); rep.h2("sec_overview"); rep.table(df); rep.plot(ax)   # doctest: +SKIP

Everything shown is HTML (headings, sentences, tables) or PNG (plots), so the exported page is
static and self-contained. Widgets are created only by :meth:`Report.interactive` notebooks
(not when run by ``python -m crmlab report``, which sets ``CRMLAB_REPORT=1``).
"""
from __future__ import annotations

import datetime as dt
import html
import os
from functools import lru_cache
from typing import Any, Mapping

import pandas as pd

from ..io.engine import zoned, zoned_time
from . import text as T
from .params import last_complete_week, parse_week


@lru_cache(maxsize=4)
def _load(source: str, tz: str = "Asia/Seoul"):
    """The source's tables, each checked whole by the data model's row rules before any report
    filters it: a null ``sent_time`` raises :class:`crmlab.DataError` here (as in the library)
    instead of silently falling out of a week filter. Under the report runner, the run's
    validated snapshot (lazy Ibis tables, validated once per run: :mod:`crmlab.report.snapshot`)."""
    from crmlab.datasets import load_source
    from crmlab.report.snapshot import from_environment
    from crmlab.io.validate import canonical
    snap = from_environment(source, tz)
    if snap is not None:
        return snap
    data = load_source(source, tz=tz)
    for table, df in data.tables().items():
        canonical(df, table, tz=tz)
    return data


def source_label(source: Any) -> str:
    """The data's name on the page: a path's last part; for a URL the last part of its path (or
    its host, e.g. the Spark database of ``pyspark://crm``), never its user, password or query
    (``?password=...``, ``?spark.eventLog.dir=...``)."""
    from urllib.parse import urlsplit

    from ..io.engine import is_url
    text = str(source)
    if is_url(text):
        parts = urlsplit(text)
        return parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.hostname or parts.scheme
    return os.path.basename(text.rstrip("/")) or text


def _display(obj) -> None:
    from IPython.display import display
    display(obj)


def _html(markup: str) -> None:
    """Show markup; signs before currency symbols are joined to them (:func:`text.bind_signs`)."""
    from IPython.display import HTML
    _display(HTML(T.bind_signs(markup)))


class Report:
    """One report being rendered: its language, week, data, and display helpers.

    Parameters
    ----------
    name : str
        Report name (``weekly_uplift``, ...), used for the title.
    week : str or None
        ISO week ``YYYY-Www``; ``None`` means the last complete ISO week.
    source : str
        Data source for :func:`crmlab.datasets.load_source`.
    lang : {"en", "ko"}
    currency, timezone, locale : str
        Shop settings; empty means ``shop.yaml`` beside the data, else the source's own
        (:func:`crmlab.report.shop.resolve`). Every number on the page uses them.
    tz : str, optional
        Shop time zone for week boundaries (an alias of ``timezone``).
    """

    def __init__(self, name: str, *, week: str | None = None, source: str = "sample", lang: str = "en",
                 currency: str = "", timezone: str = "", locale: str = "", tz: str = ""):
        from .shop import resolve
        if lang not in T.TEXT:
            raise ValueError(f"lang={lang!r}: allowed values are {list(T.TEXT)}")
        self.shop = resolve(source, currency=currency, timezone=timezone or tz, locale=locale, lang=lang)
        self.name, self.lang, self.source, self.tz = name, lang, source, self.shop.timezone
        T.use_shop(self.shop.currency, self.shop.locale)
        self.week = week or last_complete_week()
        monday, next_monday = parse_week(self.week)
        self.start = zoned_time(monday, self.tz)
        self.end = zoned_time(next_monday, self.tz)
        #: The week's last instant: every analysis counts rows up to and including it (the
        #: library's ``as_of`` is inclusive), so nothing at next Monday 00:00 leaks in.
        self.as_of = self.end - pd.Timedelta(microseconds=1)
        self.prev_start = self.start - pd.Timedelta(days=7)
        from crmlab import plotting
        plotting.setup()

    # -- data ------------------------------------------------------------------------------
    @property
    def data(self):
        """The source's :class:`~crmlab.datasets.ShopData` (loaded once per kernel)."""
        return _load(str(self.source), self.tz)

    def in_week(self, df: pd.DataFrame, col: str, *, previous: bool = False) -> pd.DataFrame:
        """Rows of ``df`` whose ``col`` falls in the report week (or the week before)."""
        lo, hi = (self.prev_start, self.start) if previous else (self.start, self.end)
        from ..io.engine import is_table, local_time, to_pandas
        if is_table(df):  # a snapshot table: filtered in the engine, only the week comes back
            return to_pandas(df.filter((df[col] >= local_time(lo, self.tz)) & (df[col] < local_time(hi, self.tz))), self.tz)
        s = pd.to_datetime(df[col])
        if s.dt.tz is None:
            s = zoned(s, self.tz)
        else:
            s = s.dt.tz_convert(self.tz)
        return df[(s >= lo) & (s < hi)]

    # -- text ------------------------------------------------------------------------------
    def t(self, key: str, **kw) -> str:
        return T.t(key, self.lang, **kw)

    @property
    def interactive(self) -> bool:
        """True in a live notebook (JupyterLab), False when rendered as a report."""
        if os.environ.get("CRMLAB_REPORT"):
            return False
        from IPython import get_ipython
        ip = get_ipython()
        return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"

    def progress(self, desc: str, total: int = 1):
        """A :mod:`tqdm.auto` bar for a long cell, shown in a live notebook only (a rendered
        report has no widgets): ``with rep.progress("cohorts") as bar: ...; bar.update()``."""
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, disable=not self.interactive)

    # -- display ---------------------------------------------------------------------------
    def header(self) -> None:
        """Title, the week's dates and the data source."""
        title = T.report_title(self.name, self.lang)
        last_day = (self.end - pd.Timedelta(days=1)).date()
        meta = self.t("meta", week=self.week, start=self.start.date().isoformat(), end=last_day.isoformat(),
                      source=source_label(self.source),
                      generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        _html(f"<h1>{html.escape(title)}</h1><p class='crm-meta'>{html.escape(meta)}</p>")

    def summary(self, bullets: list[str], *, title_key: str = "summary") -> None:
        """The stakeholder summary box: what moved, how sure we are, what to do."""
        items = "".join(f"<li>{html.escape(b)}</li>" for b in bullets if b)
        _html(f"<div class='crm-summary'><h2>{html.escape(self.t(title_key))}</h2><ul>{items}</ul></div>")

    def h2(self, key: str, **kw) -> None:
        _html(f"<h2>{html.escape(self.t(key, **kw))}</h2>")

    def h3(self, key: str, **kw) -> None:
        _html(f"<h3>{html.escape(self.t(key, **kw))}</h3>")

    def say(self, *sentences: str) -> None:
        """One paragraph of plain sentences."""
        body = " ".join(s for s in sentences if s)
        if body:
            _html(f"<p>{html.escape(body)}</p>")

    def note(self, key: str, **kw) -> None:
        _html(f"<p class='crm-note'>{html.escape(self.t(key, **kw))}</p>")

    def warn(self, message: str) -> None:
        _html(f"<div class='crm-warn'>{html.escape(message)}</div>")

    def missing(self, module: str) -> None:
        """Say that a section cannot be shown because ``module`` is not available."""
        self.warn(self.t("missing_module", module=module))

    def table(self, df: pd.DataFrame, *, formats: Mapping[str, str] | None = None, index: bool = False,
              max_rows: int = 30, grey: list[bool] | None = None) -> None:
        """Show a frame as an HTML table with translated headers and formatted numbers.

        ``formats`` maps a column to ``pct`` | ``pp`` | ``int`` | ``money`` | ``float`` | ``p`` or
        a ``str.format`` pattern; unnamed float columns get 3 significant decimals. Rows flagged
        in ``grey`` (e.g. cells with too few users for a verdict) are shown greyed. Cells never
        wrap inside a number (signs and units are joined to their numbers).
        """
        shown = T.format_frame(df.head(max_rows), formats or {}, self.lang)
        if index:
            shown = shown.reset_index()
        shown.columns = [T.col_label(c, self.lang) for c in shown.columns]
        markup = shown.to_html(index=False, escape=True, classes="crm-table", border=0, na_rep="–")
        if grey is not None:
            head, *body = markup.split("<tr>")  # the header row has a style attribute, body rows none
            grey = list(grey)[:max_rows]
            markup = head + "".join(("<tr style='color:#adb5bd'>" if i < len(grey) and grey[i] else "<tr>") + r
                                    for i, r in enumerate(body))
        _html(markup)
        if len(df) > max_rows:
            self.note("rows_shown", shown=max_rows, total=len(df))

    def plot(self, obj: Any) -> None:
        """Show a matplotlib Axes/Figure as an embedded PNG and close it."""
        import matplotlib.pyplot as plt
        fig = getattr(obj, "figure", None) if not isinstance(obj, plt.Figure) else obj
        if fig is None and hasattr(obj, "fig"):  # seaborn grids
            fig = obj.fig
        if fig is None:
            return
        fig.tight_layout()
        _display(fig)
        plt.close(fig)
