"""The message performance, cohort and funnel pages, rendered end to end on a small generated
shop: each states its windows and denominators ("What is counted"), and its summary and
section sentences are the findings' (issue 13: other pages no longer write their own)."""
from __future__ import annotations

import html as H
import re

import pytest

from crmlab.report import text as T

WEEK = "2026-W47"
PAGES = ("message_performance", "cohort_rfm", "funnel")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from crmlab.__main__ import main
    from crmlab.datasets import synthetic_shop
    folder = tmp_path_factory.mktemp("shop")
    synthetic_shop(n_users=600, weeks=12, seed=3).to_parquet(folder)
    out = tmp_path_factory.mktemp("reports")
    for name in PAGES:
        assert main(["report", name, "--week", WEEK, "--source", str(folder), "--out", str(out), "--no-progress"]) == 0
    return {n: H.unescape((out / WEEK / f"{n}.html").read_text(encoding="utf-8")) for n in PAGES}


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", page))


@pytest.mark.parametrize("name", PAGES)
def test_page_states_its_windows_and_denominators(pages, name):
    page = pages[name]
    assert f">{T.t('sec_windows', 'en')}<" in page
    body = _text(page)
    head = body.split(T.t("sec_windows", "en"), 1)[1][:3000]
    expect = {"message_performance": ["(the report week): delivery per sent message (",
                                      "within each channel's attribution window (3 d; sms, lms, kakao_alimtalk 1 d; "
                                      "receipt basis, last_touch rule): rates per delivered message ("],
              "cohort_rfm": ["Customers grouped by the week of their first purchase, orders up to 2026-11-22: "
                             "retention per customer of a cohort"],
              "funnel": ["Sessions from 2026-11-16 to 2026-11-22", "with 24 hours to complete the funnel"]}[name]
    for e in expect:
        assert e in head, (e, head[:600])


def test_message_summary_is_the_findings(pages):
    body = _text(pages["message_performance"])
    assert re.search(r"[\d,]+ messages went out this week \([\d,]+ the week before\)", body)
    assert "Do: " in body


def test_funnel_device_sentence_says_it_is_descriptive(pages):
    body = _text(pages["funnel"])
    if "had the highest conversion per session" in body:
        assert "descriptive, not tested" in body
