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

Notebooks never hold prose: they call :func:`t` for headings and labels, and render every
sentence from findings: :func:`finding_sentence` / :func:`copy_sentence` for comparisons,
:func:`fact_sentence` / :func:`facts_text` for descriptive numbers
(:class:`crmlab.report.findings.Fact`, built by :mod:`crmlab.report.facts`), the ``summary_*``
functions for the summary box and :func:`counted_notes` for "What is counted".
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
               "float": lambda x: num(x, 3), "float1": lambda x: num(x, 1)}


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


# -- facts (descriptive findings) ----------------------------------------------------------
def _moved_pair(v, lang: str) -> str:
    now, before = v
    return moved(now, before, lang)


#: How a fact's value is shown, by its kind (:class:`crmlab.report.findings.Fact`).
_KINDS = {
    "int": lambda v, lang: num(v, 0), "pct": lambda v, lang: pct(v), "pct2": lambda v, lang: pct(v, 2),
    "money": lambda v, lang: money(v), "text": lambda v, lang: str(v), "g": lambda v, lang: f"{float(v):g}",
    "rel": lambda v, lang: rel(v), "p": lambda v, lang: pval(v), "p_eq": lambda v, lang: p_eq(v),
    "moved": _moved_pair, "segment": lambda v, lang: segment_name(v, lang),
    "step": lambda v, lang: step_name(v, lang), "behaviour": lambda v, lang: behaviour_name(v, lang),
    "period": lambda v, lang: period_name(v, lang), "key": lambda v, lang: t(v, lang),
    "weekday": lambda v, lang: t("weekday_names", lang).split(",")[int(v)],
    "segments": lambda v, lang: ", ".join(f"'{segment_name(x, lang)}'" for x in v),
}


def fact_sentence(f, lang: str = "en") -> str:
    """The sentence of a :class:`~crmlab.report.findings.Fact` (its catalogue key, its values
    formatted by kind)."""
    return t(f.key, lang, **{name: _KINDS[kind](v, lang) for name, v, kind in f.values})


def facts_text(items, lang: str = "en", *keys: str) -> list[str]:
    """The sentences of the facts among ``items`` whose key is one of ``keys`` (in ``keys``
    order), for a page section; every key when none is given."""
    fs = [f for f in items if getattr(f, "role", "") == "fact"]
    if not keys:
        return [fact_sentence(f, lang) for f in fs]
    return [fact_sentence(f, lang) for k in keys for f in fs if f.key == k]


def caveats(items, lang: str = "en") -> list[str]:
    """The model caveats among a page's facts (shown where they change a reading)."""
    return [fact_sentence(f, lang) for f in items if getattr(f, "role", "") == "caveat"]


def _part(spec: tuple, lang: str) -> str:
    key, params = spec
    return t(key, lang, **{k: num(v, 0) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
                           for k, v in params})


def counted_notes(items, lang: str = "en") -> list[str]:
    """One sentence per distinct window of a page's facts and copy-test findings, naming each
    denominator counted over it: what each number covers and what its rates divide by."""
    from .findings import counted
    by_window: dict[tuple, list[str]] = {}
    for w, d in counted(items):  # one sentence per window, its denominators in order
        per = by_window.setdefault(w, [])
        if d and _part(d, lang) not in per:
            per.append(_part(d, lang))
    return [t("cnt_line", lang, window=_part(w, lang), per="; ".join(per)) if per else _part(w, lang) + "."
            for w, per in by_window.items()]


def summary_facts(items, alpha: float, lang: str = "en", keys: tuple = ()) -> list[str]:
    """A page's summary from its findings: the facts' sentences (those with a key in ``keys``
    when given), every claim of its tests (losses first, in the same words as wins; never
    filtered), then its actions and the recommendations that rest on claims."""
    from .findings import Fact, claims, recommendable
    items = list(items)
    facts = [f for f in items if isinstance(f, Fact) and f.role == "fact" and (not keys or f.key in keys)]
    tests = [f for f in items if not isinstance(f, Fact)]
    out = [fact_sentence(f, lang) for f in facts]
    for f in claims(tests):
        v = verdict_name(f.verdict, lang)
        out.append(t("sum_claim", lang, verdict_cap=v[:1].upper() + v[1:], what=_what(f, lang),
                     metric=metric_name(f.metric, lang), t=metric_value(f.metric, f.estimate),
                     c=metric_value(f.metric, f.estimate_control), diff=metric_diff(f.metric, f.abs_lift),
                     p=p_eq(f.p_shown)))
    rest = sum(1 for f in tests if not f.is_claim)
    if tests and rest:
        out.append(t("sum_rest_tests", lang, k=rest, n=len(tests)))
    # one recommendation per copy test and direction, naming every metric it rests on
    recs: dict[tuple, list[str]] = {}
    for f in tests:
        if recommendable(f) and f.analysis == "copy_test":
            recs.setdefault((f.verdict, f.subject, f.arm, f.control), []).append(metric_name(f.metric, lang))
    for (verdict, subject, arm, control), metrics in recs.items():
        out.append(t(f"rec_copy_{verdict}", lang, campaign=subject, variant=arm, control=control,
                     metric=t("and_join", lang, a=", ".join(metrics[:-1]), b=metrics[-1]) if len(metrics) > 1
                     else metrics[0]))
    out += [fact_sentence(f, lang) for f in items if isinstance(f, Fact) and f.role == "action"]
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


def summary_messages(result, lang: str = "en", week: str = "", alpha: float = 0.05) -> list[str]:
    """Stakeholder bullets for the weekly message report (a :class:`~crmlab.report.analyses.MessageResult`),
    rendered from its findings (:func:`crmlab.report.facts.message_facts`): the week's volumes
    and rates, each with its window and denominator, every copy-test claim, then what to do."""
    from .facts import message_facts
    fs = list(getattr(result, "findings", None) or message_facts(result, {"week": week}))
    return summary_facts(fs, alpha, lang, MESSAGE_SUMMARY)


#: The facts of the message page that its summary states (the others are in their sections).
MESSAGE_SUMMARY = ("no_messages", "msg_volume", "msg_rates", "msg_rates_no_click", "msg_moved", "msg_moved_conv", "msg_top", "msg_optout", "comp_ok",
                   "comp_bad")


def explain_copy(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    """One sentence per metric of :func:`crmlab.messages.copy_test` (via its finding): the
    variants' values, the difference with the interval dual to its p-value, and the engine's
    verdict on the p-value adjusted over the test's metrics (its family), or "too few users"."""
    from .findings import from_copy_test
    r = dict(row)
    r.setdefault("abs_lift", float(r["estimate"]) - float(r["estimate_control"]))
    r.setdefault("family", "")
    r.setdefault("correction", "holm" if not _nan(r.get("p_adjusted")) else "none")
    if "verdict" not in r:
        from ..abtest.result import verdict as engine_verdict
        r["verdict"] = str(engine_verdict(r.get("status", "ok"), _p(r) if not _nan(r.get("p_value")) else math.nan,
                                          float(r["abs_lift"]), alpha))
    return copy_sentence(from_copy_test(pd.DataFrame([r]))[0], alpha, lang)


def copy_table(findings, lang: str = "en") -> pd.DataFrame:
    """The copy tests' display rows (:func:`findings_table` columns without increments): the
    counts are delivered messages of each copy, the rates per delivered message."""
    tab = findings_table(findings, lang)
    if tab.empty:
        return tab
    tab = tab.drop(columns=["incremental", "cost_per_incremental", "n_treatment", "n_control"])
    tab = tab.rename(columns={"experiment": "campaign"})
    tab.insert(2, "variant", [f.arm for f in findings])
    tab.insert(3, "control", [f.control for f in findings])
    tab.insert(4, "delivered_variant", [num(f.n, 0) for f in findings])
    tab.insert(5, "delivered_control", [num(f.n_control, 0) for f in findings])
    return tab.assign(estimate=[pct(f.estimate, 2) for f in findings],
                      estimate_control=[pct(f.estimate_control, 2) for f in findings])


def copy_sentence(f, alpha: float, lang: str = "en") -> str:
    """The sentence of one copy-test finding."""
    m = f.metric
    if f.verdict == "insufficient":
        verdict = verdict_name("insufficient", lang)
    elif f.verdict in ("win", "loss") and f.corrected:
        verdict = t(f"say_{f.verdict}", lang, p=p_eq(f.p_shown), correction=f.correction, k=max(f.family_size, 1),
                    metric=metric_name(m, lang))
    else:
        verdict = t("say_inconclusive", lang, p=p_eq(f.p_shown), correction=f.correction if f.corrected else "–",
                    k=max(f.family_size, 1))
    lo = "–" if _nan(f.ci_low) else metric_diff(m, f.ci_low)
    hi = "–" if _nan(f.ci_high) else metric_diff(m, f.ci_high)
    return t("copy_row", lang, campaign=f.subject, variant=f.arm, control=f.control, metric=metric_name(m, lang),
             value=pct(f.estimate, 2), control_value=pct(f.estimate_control, 2), diff=metric_diff(m, f.abs_lift),
             rel=rel(f.rel_lift), level=f"{(1 - alpha) * 100:g}%", lo=lo, hi=hi, sure=verdict)


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
                       horizon_weeks: float = 12, as_of: str = "") -> list[str]:
    """Stakeholder bullets for the cohort/RFM/CLV report (a :class:`~crmlab.report.analyses.CohortResult`),
    rendered from its facts (:func:`crmlab.report.facts.cohort_facts`); no test, so no claim."""
    from .facts import cohort_facts
    fs = list(getattr(res, "findings", None) or cohort_facts(
        res, {"period": period, "repurchase_days": repurchase_days, "horizon_weeks": horizon_weeks, "as_of": as_of}))
    return summary_facts(fs, 0.05, lang)


# -- funnel ---------------------------------------------------------------------------------
def step_name(step: str, lang: str = "en") -> str:
    key = f"step_{step}"
    return t(key, lang) if key in TEXT[lang] else str(step).replace("_", " ")


def behaviour_name(seg: str, lang: str = "en") -> str:
    key = f"beh_{seg}"
    return t(key, lang) if key in TEXT[lang] else str(seg).replace("_", " ")


def summary_funnel(res, lang: str = "en", week: str = "") -> list[str]:
    """Stakeholder bullets for the funnel report (a :class:`~crmlab.report.analyses.FunnelResult`),
    rendered from its facts (:func:`crmlab.report.facts.funnel_facts`): KPIs, the biggest drop,
    devices, then what to do."""
    from .facts import funnel_facts
    fs = list(getattr(res, "findings", None) or funnel_facts(res, {"week": week}))
    keys = ("no_data_week", "kpi_sessions", "kpi_conv", "funnel_drop", "device_best")
    return facts_text(fs, lang, *keys) + [fact_sentence(f, lang) for f in fs if f.role == "action"]


