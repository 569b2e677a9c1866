"""The words a report shows, in English and Korean, and the functions that turn findings and
result frames into plain sentences a stakeholder can act on.

Three things are kept apart:

* **words**: the message catalogue, package data ``crmlab/report/messages/{en,ko}.toml``
  (sections ``[text]`` and ``[columns]``), loaded with :mod:`tomllib`; both languages have the
  same keys and placeholders (``tests/test_report.py`` checks it);
* **numbers**: :func:`pct`, :func:`money`, ... format with Babel in the shop's locale and
  currency (:func:`use_shop`, from :mod:`crmlab.report.shop`);
* **decisions**: win / loss / inconclusive / insufficient come from the comparison engine via
  :mod:`crmlab.report.findings`; this module only words them.

Notebooks never hold prose: they call :func:`t` for headings and labels and the ``summary_*``
/ ``explain_*`` functions for sentences built from numbers.
"""
from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from typing import Any, Mapping

import pandas as pd

LANGS = ("en", "ko")


def _catalogue(lang: str) -> dict[str, dict[str, str]]:
    with resources.files("crmlab.report").joinpath("messages", f"{lang}.toml").open("rb") as f:
        return tomllib.load(f)


_CATALOGUES = {lang: _catalogue(lang) for lang in LANGS}
#: lang -> key -> message (``{placeholder}`` syntax of :meth:`str.format`).
TEXT: dict[str, dict[str, str]] = {lang: c["text"] for lang, c in _CATALOGUES.items()}
#: lang -> column name -> header (English falls back on the column name with spaces).
COLUMNS: dict[str, dict[str, str]] = {lang: c.get("columns", {}) for lang, c in _CATALOGUES.items()}


def t(key: str, lang: str = "en", **kw: Any) -> str:
    """The text ``key`` in ``lang``, formatted with ``kw``.

    Raises
    ------
    ValueError
        If ``lang`` is not ``"en"`` or ``"ko"``.
    KeyError
        If ``key`` is unknown.
    """
    if lang not in TEXT:
        raise ValueError(f"lang={lang!r}: allowed values are {list(TEXT)}")
    return TEXT[lang][key].format(**kw) if kw else TEXT[lang][key]


def report_title(name: str, lang: str = "en") -> str:
    key = f"title_{name}"
    return t(key, lang) if key in TEXT.get(lang, {}) else name.replace("_", " ").capitalize()


def col_label(col: Any, lang: str = "en") -> str:
    """A column header in ``lang`` (unknown columns are shown with spaces for underscores)."""
    c = str(col)
    return COLUMNS.get(lang, {}).get(c, c.replace("_", " "))


# -- number formatting ----------------------------------------------------------------------
def _holm_significant(p: pd.Series, alpha: float) -> pd.Series:
    """Which p-values Holm's procedure rejects at ``alpha`` within their family."""
    from ..abtest.corrections import adjust_pvalues
    if p.empty:
        return p.astype(bool)
    return pd.Series(adjust_pvalues(p.to_numpy(float), "holm") < alpha, index=p.index)


def _nan(x) -> bool:
    try:
        return x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x)
    except (TypeError, ValueError):
        return False


#: The shop's currency and number locale used by :func:`money`, :func:`num` and :func:`pct`
#: (set once per report by :meth:`crmlab.report.nb.Report` from the shop settings).
SHOP = {"currency": "KRW", "locale": "en"}


def use_shop(currency: str, locale: str) -> None:
    """Format every later number of this process with ``currency`` and ``locale`` (Babel)."""
    SHOP.update(currency=currency, locale=locale)


def pct(x: float, digits: int = 1) -> str:
    """0.1234 -> '12.3%' (in the shop's locale)."""
    from babel.numbers import format_percent
    return "–" if _nan(x) else format_percent(x, format="#,##0" + ("." + "0" * digits if digits else "") + "%",
                                              locale=SHOP["locale"])


#: Keeps a sign with its number and a unit with its value when a line wraps.
WJ, NBSP = "\u2060", "\u00a0"
_LOOSE_SIGN = re.compile(r"(?<![\w\u2060])([+\-\u2212])(?=[$\u00a2-\u00a5\u20a0-\u20cf])")  # currency symbols


def bind_signs(text: str) -> str:
    """A word joiner after every sign that precedes a currency symbol (``-₩5``, ``+$3``), so a
    line never breaks between them (a sign before a digit never breaks anyway). Applied to every
    string a page shows (:class:`crmlab.report.nb.Report`); the formatters stay plain."""
    return _LOOSE_SIGN.sub(lambda m: m.group(1) + WJ, text)


def pp(x: float, digits: int = 1) -> str:
    """A difference of two rates in percentage points: 0.012 -> '+1.2 pp' (a no-break space)."""
    return "–" if _nan(x) else f"{x * 100:+.{digits}f}{NBSP}pp"


def num(x: float, digits: int = 0) -> str:
    from babel.numbers import format_decimal
    return "–" if _nan(x) else format_decimal(x, format="#,##0" + ("." + "0" * digits if digits else ""),
                                              locale=SHOP["locale"])


def money(x: float) -> str:
    """In the shop's currency and locale (Babel): 12345.6 -> '₩12,346' (KRW), '$12,345.60' (USD)."""
    from babel.numbers import format_currency
    return "–" if _nan(x) else format_currency(x, SHOP["currency"], locale=SHOP["locale"])


def pval(p: float) -> str:
    if _nan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_eq(p: float) -> str:
    """'p = 0.012' or 'p < 0.001' for a sentence."""
    v = pval(p)
    return f"p {v}" if v.startswith("<") else f"p = {v}"


def prob(x: float) -> str:
    """A probability as a percentage, never rounded to a certain 0% or 100%."""
    if _nan(x):
        return "–"
    if x >= 0.999:
        return "> 99.9%"
    if x <= 0.001:
        return "< 0.1%"
    return pct(x, 1)


_FORMATTERS = {"prob": prob, "pct": pct, "pp": pp, "int": lambda x: num(x, 0), "money": money, "p": pval,
               "float": lambda x: num(x, 3)}


def format_frame(df: pd.DataFrame, formats: Mapping[str, str], lang: str = "en") -> pd.DataFrame:
    """A copy of ``df`` with numbers as display strings (see :meth:`Report.table`)."""
    out = df.copy()
    for c in out.columns:
        f = formats.get(c)
        s = out[c]
        if f is None:
            if pd.api.types.is_float_dtype(s):
                f = "p" if str(c) in ("p_value", "pvalue") else "float"
            elif pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
                f = "int"
            elif isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
                out[c] = s.dt.strftime("%Y-%m-%d")
                continue
            else:
                out[c] = s.astype(object).where(s.notna(), "–").astype(str)
                continue
        fn = _FORMATTERS.get(f) or (lambda x, _f=f: "–" if _nan(x) else _f.format(x))
        out[c] = [fn(v) for v in s]
    return out


def sureness(p_value: float, alpha: float, lang: str = "en") -> str:
    """'we are confident ...' or 'this could be chance ...' for a p-value against ``alpha``."""
    key = "sure_yes" if (not _nan(p_value) and p_value < alpha) else "sure_no"
    return t(key, lang, p=p_eq(p_value), alpha=f"{alpha:g}")


# -- experiment readout ---------------------------------------------------------------------
RATE_METRICS = ("conversion", "visit", "converted", "open_rate", "click_rate", "conversion_rate", "visit_rate",
                "delivery_rate", "unsubscribe_rate", "ctr")


def metric_name(metric: str, lang: str = "en") -> str:
    key = f"metric_{metric}"
    return t(key, lang) if key in TEXT[lang] else str(metric).replace("_", " ")


def metric_value(metric: str, x: float) -> str:
    """A metric's value: rates as percentages, amounts in won."""
    return pct(x, 2) if metric in RATE_METRICS else money(x) if abs(x) >= 100 else num(x, 2)


def metric_diff(metric: str, x: float) -> str:
    """A signed difference; the sign is joined to its number (no line break between them)."""
    if _nan(x):
        return "–"
    if metric in RATE_METRICS:
        return pp(x, 2)
    return ("+" + WJ if x >= 0 else "") + (money(x) if abs(x) >= 100 else num(x, 2))


def rel(x: float) -> str:
    return "–" if _nan(x) else f"{x * 100:+.1f}%"


def _p(row) -> float:
    return float(row["p_adjusted"]) if "p_adjusted" in row and not _nan(row["p_adjusted"]) else float(row["p_value"])


# -- findings -------------------------------------------------------------------------------
def verdict_name(verdict: str, lang: str = "en") -> str:
    return t(f"verdict_{verdict}", lang)


def _say(f, alpha: float, lang: str) -> str:
    """The verdict clause of one finding; the p-value shown is the one the verdict rests on."""
    k = max(f.family_size, 1)
    corr = f.correction if f.correction not in ("", "none") else "–"
    if f.verdict == "insufficient":
        return verdict_name("insufficient", lang)
    if not f.corrected:
        return t("say_uncorrected", lang, k=k, p=p_eq(f.p_value))
    if f.verdict in ("win", "loss"):
        return t(f"say_{f.verdict}", lang, p=p_eq(f.p_shown), correction=corr, k=k, metric=metric_name(f.metric, lang))
    return t("say_inconclusive", lang, p=p_eq(f.p_shown), correction=corr, k=k)


def finding_sentence(f, alpha: float, lang: str = "en") -> str:
    """One sentence per finding: the arms' values, the difference with the interval that goes
    with its p-value (absolute, before correction) and the engine's verdict after correction."""
    m = f.metric
    if f.verdict == "insufficient":
        reason = f"why_{f.reason}"
        return t("upl_insufficient", lang, campaign=f.subject + (f" · {segment_label(f.segment, lang)}" if f.analysis == "segment" else ""), metric=metric_name(m, lang),
                 t=metric_value(m, f.estimate), c=metric_value(m, f.estimate_control), diff=metric_diff(m, f.abs_lift),
                 why=t(reason, lang) if reason in TEXT[lang] else f.reason,
                 need=num(f.n_needed, 0) if not _nan(f.n_needed) else "?")
    key = {"holdout": "find_row_holdout", "experiment": "find_row_exp"}.get(f.analysis, "find_row")
    return t(key, lang, subject=_subject(f, lang), arm=f.arm, control=f.control, metric=metric_name(m, lang),
             t=metric_value(m, f.estimate), c=metric_value(m, f.estimate_control), diff=metric_diff(m, f.abs_lift),
             level=f"{(1 - alpha) * 100:g}%", lo=metric_diff(m, f.ci_low), hi=metric_diff(m, f.ci_high),
             verdict=_say(f, alpha, lang))


def _subject(f, lang: str) -> str:
    if f.analysis == "segment":
        return f"'{f.subject}' · {segment_label(f.segment, lang)}"
    if f.analysis == "holdout":
        return t("win_what_holdout", lang)
    return f"'{f.subject}'" if f.analysis != "experiment" else f.subject


def _what(f, lang: str) -> str:
    return t(f"sum_what_{f.analysis}", lang, subject=f.subject, segment=segment_label(f.segment, lang), arm=f.arm)


def summary_findings(findings, alpha: float, lang: str = "en") -> list[str]:
    """Every claim (win or loss after correction) of the page, losses first and in the same
    words as wins; totals over claims only, naming what they add up; a note of how many
    comparisons have no verdict."""
    from .findings import claimed_total, claims
    fs = list(findings)
    cl = claims(fs)
    out = []
    for f in cl:
        v = verdict_name(f.verdict, lang)
        out.append(t("sum_claim", lang, verdict_cap=v[:1].upper() + v[1:], what=_what(f, lang),
                     metric=metric_name(f.metric, lang), t=metric_value(f.metric, f.estimate),
                     c=metric_value(f.metric, f.estimate_control), diff=metric_diff(f.metric, f.abs_lift),
                     p=p_eq(f.p_shown)))
    camp = [f for f in fs if f.analysis == "campaign"]
    conv, names = claimed_total(camp, "conversion_rate")
    if names:
        out.append(t("sum_total_conv", lang, names=", ".join(f"'{n}'" for n in names), conv=num(conv, 0)))
    rev, rnames = claimed_total(camp, "revenue_per_user")
    if rnames:
        out.append(t("sum_total_rev", lang, names=", ".join(f"'{n}'" for n in rnames), rev=money(rev)))
    for f in cl:
        if f.analysis == "campaign" and f.verdict == "win" and f.counts_people and not _nan(f.cost_per_incremental):
            out.append(t("sum_cost", lang, campaign=f.subject, cost=money(f.cost_per_incremental)))
    if not cl:
        out.append(t("sum_none", lang))
    rest = sum(1 for f in fs if not f.is_claim)
    if rest and cl:
        out.append(t("sum_rest", lang, k=rest))
    return out


def recommendations(findings, lang: str = "en") -> list[str]:
    """What to do, from claims only (:func:`crmlab.report.findings.recommendable`)."""
    from .findings import recommendable
    fs = [f for f in findings if recommendable(f)]
    out = []
    segs = [f for f in fs if f.analysis == "segment" and f.verdict == "win" and f.metric == "conversion_rate"]
    wins = [f for f in fs if f.analysis == "campaign" and f.verdict == "win" and f.metric == "conversion_rate"]
    for f in sorted(wins, key=lambda f: -f.abs_lift):
        mine = sorted((s for s in segs if s.subject == f.subject), key=lambda s: -s.abs_lift)
        where = t("rec_where", lang, segment=segment_label(mine[0].segment, lang)) if mine else ""
        out.append(t("rec_scale", lang, campaign=f.subject, where=where))
    stopped = set()
    for f in fs:
        if f.analysis == "campaign" and f.verdict == "loss" and f.subject not in stopped:
            stopped.add(f.subject)
            out.append(t("rec_stop", lang, campaign=f.subject, metric=metric_name(f.metric, lang)))
        if f.analysis == "holdout":
            out.append(t(f"rec_programme_{f.verdict}", lang, metric=metric_name(f.metric, lang),
                         diff=metric_diff(f.metric, f.abs_lift)))
    return out or [t("rec_wait", lang)]


def windows_notes(findings, lang: str = "en", *, other_page: bool = True) -> list[str]:
    """One sentence per distinct window and denominator of ``findings`` (every page states them)."""
    from .findings import windows
    out = []
    for analysis, subject, days, first, last, as_of, denom in windows(findings):
        what = t(f"win_what_{analysis}", lang, subject=subject)
        if denom == "own":
            out.append(t("win_own", lang, what=what))
        elif days is None:
            out.append(t("win_open", lang, what=what, first=first, last=last, as_of=as_of))
        else:
            out.append(t("win_fixed", lang, what=what, days=num(days, 0), first=first, last=last, as_of=as_of))
        if other_page and analysis == "holdout":
            out.append(t("win_same_holdout", lang, experiment=subject))
        if other_page and analysis == "experiment" and days is None and denom == "all":
            out.append(t("win_same_readout", lang, experiment=subject))
    return out


def findings_table(findings, lang: str = "en") -> pd.DataFrame:
    """The display rows of ``findings`` (values formatted; the verdict in words)."""
    rows = []
    for f in findings:
        m = f.metric
        rows.append({
            "experiment": f.subject + ("" if f.analysis != "segment" else f" · {segment_label(f.segment, lang)}"),
            "metric": metric_name(m, lang), "n_treatment": num(f.n, 0), "n_control": num(f.n_control, 0),
            "estimate": metric_value(m, f.estimate), "estimate_control": metric_value(m, f.estimate_control),
            "uplift": metric_diff(m, f.abs_lift),
            "interval": "–" if _nan(f.ci_low) else f"{metric_diff(m, f.ci_low)} … {metric_diff(m, f.ci_high)}",
            "p_value": pval(f.p_value), "p_adjusted": pval(f.p_adjusted),
            "verdict": verdict_name(f.verdict if f.corrected or f.verdict == "insufficient" else "inconclusive", lang),
            "incremental": (money(f.incremental) if m == "revenue_per_user" else num(f.incremental, 0))
            if not _nan(f.incremental) else "–",
            "cost_per_incremental": money(f.cost_per_incremental) if not _nan(f.cost_per_incremental) else "–",
        })
    return pd.DataFrame(rows)


def explain_comparison(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    """The sentence for one row of an experiment readout table (via its finding)."""
    from .findings import from_readout
    r = dict(row)
    f = from_readout(pd.DataFrame([r]), experiment=str(r.get("experiment", "")), alpha=alpha, window_days=None,
                     family=str(r.get("family", "")) or f"{r.get('experiment', '')}: 1 tested cells")[0]
    return finding_sentence(f, alpha, lang)


def summary_experiment(result, alpha: float, lang: str = "en", primary: str = "conversion") -> list[str]:
    """Stakeholder bullets for one experiment (an :class:`~crmlab.report.analyses.ExperimentResult`):
    every claim (win or loss after correction), then what to do, from claims only."""
    from .findings import from_readout
    exp = result.experiment
    if result.srm is not None and getattr(result.srm, "flagged", False):
        return [t("srm_bad", lang, p=p_eq(result.srm.p_value)), t("exp_do_fix", lang, experiment=exp)]
    res = result.results
    if res is None or res.empty:
        return [t("exp_do_wait", lang, experiment=exp)]
    fs = list(getattr(result, "findings", None) or
              from_readout(res, experiment=exp, alpha=alpha, window_days=None,
                           family=f"{exp}: {len(res)} tested cells"))
    out = []
    for f in sorted((f for f in fs if f.is_claim), key=lambda f: (f.verdict != "loss", -abs(f.abs_lift))):
        v = verdict_name(f.verdict, lang)
        out.append(t("sum_claim", lang, verdict_cap=v[:1].upper() + v[1:], what=_what(f, lang),
                     metric=metric_name(f.metric, lang), t=metric_value(f.metric, f.estimate),
                     c=metric_value(f.metric, f.estimate_control), diff=metric_diff(f.metric, f.abs_lift),
                     p=p_eq(f.p_shown)))
    b = result.bayes
    prim = [f for f in fs if f.metric == primary] or fs
    best = max(prim, key=lambda f: f.abs_lift if not _nan(f.abs_lift) else -math.inf)
    if b is not None and not b.empty and (b["variant"] == best.arm).any():
        p_better = float(b.loc[b["variant"] == best.arm, "prob_better"].iloc[0])
        out.append(t("exp_prob", lang, variant=best.arm, prob=prob(p_better)))
    wins = sorted((f for f in prim if f.is_claim and f.verdict == "win"), key=lambda f: -f.abs_lift)
    losses = sorted((f for f in prim if f.is_claim and f.verdict == "loss"), key=lambda f: f.abs_lift)
    if wins:
        out.append(t("exp_do_ship", lang, variant=wins[0].arm, metric=metric_name(wins[0].metric, lang),
                     rel=rel(wins[0].rel_lift)))
    elif losses:
        out.append(t("exp_do_stop", lang, variant=losses[0].arm, metric=metric_name(losses[0].metric, lang),
                     rel=rel(losses[0].rel_lift)))
    else:
        out.append(t("exp_do_wait", lang, experiment=exp))
    return out


def summary_experiments(results, alpha: float, lang: str = "en", primary: str = "conversion") -> list[str]:
    """One bullet per experiment (its :func:`summary_experiment` sentences joined), so a
    readout of many experiments keeps a short summary."""
    results = list(results)
    if len(results) == 1:
        return summary_experiment(results[0], alpha, lang, primary)
    return [" ".join(summary_experiment(r, alpha, lang, primary)) for r in results]


def explain_heavy_tail(heavy: pd.DataFrame, alpha: float, lang: str = "en") -> list[str]:
    """One sentence per robust check row (winsorized mean, bootstrap, rank test)."""
    if heavy is None or heavy.empty:
        return []
    out = []
    for r in heavy.to_dict("records"):
        sure = sureness(r["p_value"], alpha, lang) if not _nan(r.get("p_value")) else ""
        out.append(f"{r['variant']} · {metric_name(str(r['metric']), lang)} · {r['method']}: "
                   f"{num(r['estimate'], 3)} [{num(r['ci_low'], 3)}, {num(r['ci_high'], 3)}]" + (f"; {sure}." if sure else "."))
    return out


# -- weekly uplift --------------------------------------------------------------------------
def explain_uplift(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    """One sentence for a row of :func:`crmlab.uplift.campaign_uplift` / ``holdout_uplift`` (via its finding)."""
    from .findings import from_uplift
    r = dict(row)
    analysis = "holdout" if r.get("experiment") == "global_holdout" else (
        "segment" if r.get("segment", "all") != "all" else "campaign")
    return finding_sentence(from_uplift(pd.DataFrame([r]), analysis=analysis, window_days=None)[0], alpha, lang)


def uplift_findings(result) -> list:
    """The findings of an :class:`~crmlab.report.analyses.UpliftResult` (built from its frames
    when it carries none)."""
    from .findings import from_uplift
    if getattr(result, "findings", None):
        return list(result.findings)
    return (from_uplift(result.campaigns, analysis="campaign", window_days=None)
            + from_uplift(result.by_segment, analysis="segment", window_days=None)
            + from_uplift(result.holdout, analysis="holdout", window_days=None, control="holdout"))


def explain_segments(by_segment: pd.DataFrame, lang: str = "en", metric: str = "conversion_rate") -> list[str]:
    """Per campaign: the segment where the uplift is largest and smallest, among cells that are
    wins or losses after correction (never from cells with too few users or no verdict)."""
    out = []
    if by_segment is None or by_segment.empty:
        return out
    d = by_segment[by_segment["metric"] == metric]
    if "verdict" in d.columns:  # only cells with a verdict after correction are compared in words
        d = d[d["verdict"].isin(["win", "loss"])]
    for camp, g in d.groupby("experiment", sort=True):
        g = g.dropna(subset=["abs_lift"]).sort_values("abs_lift", ascending=False)
        if len(g) < 2:
            continue
        b, w = g.iloc[0], g.iloc[-1]
        out.append(t("seg_row", lang, campaign=camp, best=segment_label(b["segment"], lang),
                     best_diff=metric_diff(metric, b["abs_lift"]), worst=segment_label(w["segment"], lang),
                     worst_diff=metric_diff(metric, w["abs_lift"])))
    return out


def summary_uplift(result, alpha: float, lang: str = "en", week: str = "", weeks: int = 1,
                   window_days: float | None = None) -> list[str]:
    """Stakeholder bullets for the weekly uplift report (a :class:`~crmlab.report.analyses.UpliftResult`):
    every claim of the page (campaigns, segment cells, holdout; losses included), totals over
    claims only, then recommendations from claims only."""
    camp = result.campaigns
    out: list[str] = []
    if camp is None or camp.empty:
        if result.incomplete:
            out.append(t("upl_pending", lang, cut=num(result.incomplete), days=num(window_days, 0)))
        else:
            out.append(t("no_campaigns", lang, week=week, weeks=weeks))
    fs = uplift_findings(result)
    if fs:
        out += summary_findings(fs, alpha, lang)
        out += recommendations(fs, lang)
    return out


# -- message performance --------------------------------------------------------------------
def moved(now: float, before: float, lang: str = "en", *, rate: bool = True) -> str:
    """'up 0.4 pp' / 'down ...' / 'unchanged' between two values (rates in percentage points)."""
    if _nan(now) or _nan(before):
        return "–"
    d = now - before
    if abs(d) < 5e-5:
        return t("moved_flat", lang)
    text = f"{abs(d) * 100:.1f} pp" if rate else num(abs(d), 2)
    return t("moved_up" if d > 0 else "moved_down", lang, d=text)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summary_messages(result, lang: str = "en", week: str = "") -> list[str]:
    """Stakeholder bullets for the weekly message report (a :class:`~crmlab.report.analyses.MessageResult`)."""
    w, prev = result.week, result.previous
    if w is None or w.empty:
        return [t("no_messages", lang, week=week)]
    sent, delivered = int(w["sent"].sum()), int(w["delivered"].sum())
    out = [t("msg_volume", lang, sent=num(sent), prev_sent=num(prev["sent"].sum() if prev is not None else 0),
             delivered=num(delivered), delivery=pct(_ratio(delivered, sent)))]
    click = _ratio(w["clicked"].sum(), delivered)
    conv = _ratio(w["converted"].sum(), delivered)
    out.append(t("msg_rates", lang, click=pct(click), conv=pct(conv), revenue=money(w["revenue"].sum())))
    if prev is not None and not prev.empty and prev["delivered"].sum():
        pd_ = prev["delivered"].sum()
        out.append(t("msg_moved", lang, click_move=moved(click, prev["clicked"].sum() / pd_, lang),
                     conv_move=moved(conv, prev["converted"].sum() / pd_, lang)))
    top = w.sort_values("revenue", ascending=False).iloc[0]
    out.append(t("msg_top", lang, campaign=top["campaign"], channel=top["channel"], revenue=money(top["revenue"]),
                 conv=pct(top["conversion_rate"])))
    out.append(t("msg_optout", lang, optouts=num(w["optouts"].sum()), rate=pct(_ratio(w["optouts"].sum(), delivered), 2)))
    comp = result.compliance
    bad = comp[comp["violations"] > 0] if comp is not None else None
    if bad is not None and not bad.empty:
        out.append(explain_compliance(comp, lang))
        out.append(t("comp_do", lang, rules=", ".join(bad["rule"].astype(str))))
    else:
        if comp is not None:
            out.append(t("comp_ok", lang))
        out.append(t("msg_do_ok", lang))
    return out


def explain_compliance(comp: pd.DataFrame, lang: str = "en") -> str:
    """How many messages broke a rule and which rule most often (ties: the first listed)."""
    if comp is None:
        return ""
    bad = comp[comp["violations"] > 0]
    if bad.empty:
        return t("comp_ok", lang)
    worst = bad.sort_values("violations", ascending=False, kind="stable").iloc[0]
    return t("comp_bad", lang, n=num(bad["violations"].sum()), rule=worst["rule"], k=num(worst["violations"]))


def explain_fatigue(fat: pd.DataFrame, lang: str = "en") -> str:
    """Opt-out rate of users with the most messages per week against users with one."""
    if fat is None or len(fat) < 2:
        return ""
    one = fat[fat["n_messages"] == 1]
    hi = fat[fat["n_messages"] >= 3]
    if one.empty or hi.empty:
        return ""
    r_hi = hi["optouts"].sum() / hi["user_periods"].sum()
    return t("fatigue_row", lang, hi=3, r_hi=pct(r_hi, 2), r_1=pct(float(one["optout_rate"].iloc[0]), 2))


def explain_sendtime(heat: pd.DataFrame, lang: str = "en", min_delivered: int = 30) -> str:
    if heat is None or heat.empty:
        return ""
    h = heat[heat["delivered"] >= min_delivered].dropna(subset=["click_rate"])
    if h.empty:
        return ""
    b = h.sort_values("click_rate", ascending=False).iloc[0]
    day = t("weekday_names", lang).split(",")[int(b["weekday"])]
    return t("sendtime_best", lang, day=day, hour=int(b["hour"]), rate=pct(b["click_rate"]), min=min_delivered)


def explain_copy(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    m = str(row["metric"])
    return t("copy_row", lang, campaign=row.get("campaign", ""), variant=row["variant"], control=row["control"],
             metric=metric_name(m, lang), value=pct(row["estimate"], 2), control_value=pct(row["estimate_control"], 2),
             rel=rel(row["rel_lift"]), sure=sureness(row["p_value"], alpha, lang))


# -- cohorts, RFM, CLV ----------------------------------------------------------------------
def segment_name(seg: str, lang: str = "en") -> str:
    """An RFM segment's name in ``lang``."""
    key = f"seg_{seg}"
    return t(key, lang) if key in TEXT[lang] else str(seg)


def segment_label(seg: str, lang: str = "en") -> str:
    """A segment's name in ``lang``: an RFM segment or a lifecycle stage; others unchanged."""
    for prefix in ("seg_", "stage_"):
        key = f"{prefix}{seg}"
        if key in TEXT[lang]:
            return t(key, lang)
    return str(seg)


def segment_by_name(kind: str, lang: str = "en") -> str:
    key = f"segby_{kind}"
    return t(key, lang) if key in TEXT[lang] else str(kind)


def period_name(period: str, lang: str = "en") -> str:
    return t(f"period_{period}", lang)


def summary_cohort_rfm(res, lang: str = "en", *, period: str = "W", repurchase_days: float = 30,
                       horizon_weeks: float = 12) -> list[str]:
    """Stakeholder bullets for the cohort/RFM/CLV report (a :class:`~crmlab.report.analyses.CohortResult`)."""
    out: list[str] = []
    pn = period_name(period, lang)
    avg = res.average
    if avg is not None and len(avg) > 1:
        k = int(min(4, avg["period_index"].max()))
        r1 = float(avg.loc[avg["period_index"] == 1, "weighted_share"].iloc[0])
        rk = float(avg.loc[avg["period_index"] == k, "weighted_share"].iloc[0])
        out.append(t("ret_avg", lang, r1=pct(r1), rk=pct(rk), k=k, period_name=pn))
        long = res.retention
        if long is not None:
            done = long[(long["period_index"] == 1) & long["complete"]]
            if not done.empty:
                last = done.sort_values("cohort").iloc[-1]
                d = float(last["share"]) - r1
                move = t("ret_same" if abs(d) < 0.005 else "ret_above" if d > 0 else "ret_below", lang)
                out.append(t("ret_latest", lang, cohort=pd.Timestamp(last["cohort"]).strftime("%Y-%m-%d"),
                             latest=pct(float(last["share"])), move=move, period_name=pn))
    rep = res.repurchase
    if rep is not None and not rep.empty:
        r = rep.iloc[0]
        out.append(t("rep_rate", lang, rate=pct(r["rate"]), days=f"{repurchase_days:g}", lo=pct(r["ci_low"]),
                     hi=pct(r["ci_high"])))
    seg = res.segments
    if seg is not None and not seg.empty and seg["customers"].sum():
        top = seg.sort_values("revenue_share", ascending=False).iloc[0]
        out.append(t("rfm_top", lang, segment=segment_name(top["segment"], lang), share=pct(top["share"]),
                     rev_share=pct(top["revenue_share"])))
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"])]
        risk = risk[risk["customers"] > 0]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            out.append(t("rfm_risk", lang, segment=segment_name(rk_["segment"], lang), n=num(rk_["customers"]),
                         share=pct(rk_["share"]), days=num(rk_["recency_mean"])))
    val = res.value
    if val is not None and not val.empty and not _nan(res.value_total):
        v = val.sort_values("value_share", ascending=False).iloc[0]
        out.append(t("clv_total", lang, total=money(res.value_total), h=f"{horizon_weeks:g}",
                     segment=segment_name(v["segment"], lang), share=pct(v["value_share"])))
    if seg is not None and not seg.empty:
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"]) & (seg["customers"] > 0)]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            top = seg.sort_values("revenue_share", ascending=False).iloc[0]
            out.append(t("rfm_do", lang, segment=segment_name(rk_["segment"], lang), n=num(rk_["customers"]),
                         top=segment_name(top["segment"], lang)))
    return out


def explain_second(second: pd.DataFrame, lang: str = "en") -> str:
    if second is None or second.empty:
        return ""
    s = second.iloc[0]
    if _nan(s.get("km_median_days")):
        return t("second_time_nokm", lang, median=num(s["median_days"], 0))
    return t("second_time", lang, median=num(s["median_days"], 0), km=num(s["km_median_days"], 0))


# -- funnel ---------------------------------------------------------------------------------
def step_name(step: str, lang: str = "en") -> str:
    key = f"step_{step}"
    return t(key, lang) if key in TEXT[lang] else str(step).replace("_", " ")


def behaviour_name(seg: str, lang: str = "en") -> str:
    key = f"beh_{seg}"
    return t(key, lang) if key in TEXT[lang] else str(seg).replace("_", " ")


def explain_steps(steps: pd.DataFrame, lang: str = "en") -> list[str]:
    out = [t("funnel_row", lang, step=step_name(r["step"], lang), n=num(r["sessions"]), start=pct(r["from_start"]),
             prev=pct(r["from_previous"]) if not _nan(r["from_previous"]) else "–")
           for r in steps.to_dict("records")]
    return out


def biggest_drop(steps: pd.DataFrame, lang: str = "en") -> str:
    s = steps.dropna(subset=["from_previous"])
    if s.empty:
        return ""
    i = s["from_previous"].idxmin()
    a = steps.loc[i - 1, "step"] if i - 1 in steps.index else steps.iloc[0]["step"]
    return t("funnel_drop", lang, a=step_name(a, lang), b=step_name(steps.loc[i, "step"], lang),
             rate=pct(steps.loc[i, "from_previous"]))


def explain_device(by_device: pd.DataFrame, lang: str = "en", by: str = "device") -> str:
    if by_device is None or len(by_device) < 2:
        return ""
    d = by_device.dropna(subset=["conversion_rate_per_session"]).sort_values("conversion_rate_per_session")
    if len(d) < 2:
        return ""
    return t("device_best", lang, best=d.iloc[-1][by], best_rate=pct(d.iloc[-1]["conversion_rate_per_session"]),
             worst=d.iloc[0][by], worst_rate=pct(d.iloc[0]["conversion_rate_per_session"]))


def summary_funnel(res, lang: str = "en", week: str = "") -> list[str]:
    """Stakeholder bullets for the funnel report (a :class:`~crmlab.report.analyses.FunnelResult`)."""
    w, p = res.week, res.previous
    if w is None:
        return [t("no_data_week", lang, what="events", week=week, first="–", last="–")]
    out = [t("kpi_sessions", lang, sessions=num(w["sessions"]), visitors=num(w["visitors"]),
             move=rel(w["sessions"] / p["sessions"] - 1) if p is not None and p["sessions"] else "–")]
    if p is not None:
        conv_move = moved(w["conversion_rate_per_session"], p["conversion_rate_per_session"], lang)
    else:
        conv_move = "–"
    out.append(t("kpi_conv", lang, conv=pct(w["conversion_rate_per_session"]), move=conv_move,
                 aov=money(w["average_order_value"])))
    if res.steps is not None:
        out.append(biggest_drop(res.steps, lang))
    if res.by_device is not None:
        out.append(explain_device(res.by_device, lang))
    b = res.behaviour
    if b is not None and not b.empty:
        ab = int(b.loc[b["segment"].str.startswith("abandoned"), "users"].sum())
        ex = int(b.loc[b["segment"] == "explorers", "users"].sum())
        out.append(t("funnel_do", lang, n=num(ab), m=num(ex)))
    elif res.steps is not None:
        s = res.steps.dropna(subset=["from_previous"])
        if not s.empty:
            out.append(t("funnel_do_plain", lang, a=step_name(s.loc[s["from_previous"].idxmin(), "step"], lang)))
    return [x for x in out if x]


def explain_ordered(ordered: pd.DataFrame, lang: str = "en", hours: float = 24) -> list[str]:
    """Sentences for a :func:`crmlab.funnel.funnel` result (without ``by``)."""
    if ordered is None or ordered.empty:
        return []
    first, last = ordered.iloc[0], ordered.iloc[-1]
    out = [t("ordered_row", lang, n=num(first["users"]), first=step_name(first["step_name"], lang),
             last=step_name(last["step_name"], lang), rate=pct(last["conversion_from_start"]), hours=f"{hours:g}")]
    rest = ordered.iloc[1:]
    if not rest.empty:
        w = rest.loc[rest["drop_off"].idxmax()]
        prev = ordered.loc[ordered["step"] == w["step"] - 1].iloc[0]
        out.append(t("ordered_drop", lang, a=step_name(prev["step_name"], lang), b=step_name(w["step_name"], lang),
                     drop=num(w["drop_off"]), rate=pct(1 - w["conversion_from_previous"])))
    return out


def explain_groups(test: pd.DataFrame, alpha: float = 0.05, lang: str = "en") -> str:
    """Whether step conversion differs between groups (:func:`crmlab.funnel.compare_groups`)."""
    if test is None or test.empty:
        return ""
    col = "p_adjusted" if "p_adjusted" in test.columns else "p_value"
    sig = test[test[col] < alpha]
    if sig.empty:
        return t("groups_same", lang, p=pval(test[col].min()))
    r = sig.sort_values(col).iloc[0]
    return t("groups_diff", lang, step=step_name(r["step_name"], lang), min=pct(r["min_rate"]), max=pct(r["max_rate"]),
             p=p_eq(r[col]))


def explain_ttc(ttc: pd.DataFrame, first: str, lang: str = "en") -> str:
    if ttc is None or ttc.empty:
        return ""
    last = ttc.iloc[-1]
    return t("ttc_row", lang, m=num(last["median_seconds"] / 60, 0), first=step_name(first, lang),
             last=step_name(last["step_name"], lang))
