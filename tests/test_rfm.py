"""RFM table, tie-safe scores and segments.

References: an independent plain-pandas implementation of lifetimes'
``summary_data_from_transaction_data`` (lifetimes 0.11.3) on the full CDNOW file, and the
published Fader-Hardie-Lee CDNOW calibration summary (in tests/test_clv.py).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmlab.datasets import load_cdnow, load_cdnow_sample
from crmlab.rfm import (DEFAULT_SEGMENT_MAP, SEGMENTS, check_segment_map, plot_segments, rfm_scores,
                        rfm_table, segment_summary)
from conftest import assert_same_frame

TZ = "Asia/Seoul"


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow().orders


@pytest.fixture(scope="module")
def sample():
    return load_cdnow_sample().orders


# --------------------------------------------------------------------------------------------
# Independent references (plain pandas, row by row semantics of lifetimes 0.11.3)
# --------------------------------------------------------------------------------------------
def lifetimes_reference(orders: pd.DataFrame, as_of: str, freq: str, mult: float = 1.0) -> pd.DataFrame:
    end = pd.Timestamp(as_of, tz=TZ)
    d = orders[orders["time"] <= end]
    local = d["time"].dt.tz_convert(TZ).dt.tz_localize(None)
    d = d.assign(period=local.dt.to_period(freq).dt.start_time)
    per = d.groupby(["user_id", "period"], as_index=False)["revenue"].sum()
    g = per.groupby("user_id")
    first, last, n = g["period"].min(), g["period"].max(), g.size()
    end_period = end.tz_localize(None).to_period(freq).start_time
    repeat = per[per["period"] > per["user_id"].map(first)]
    monetary = repeat.groupby("user_id")["revenue"].mean().reindex(first.index).fillna(0.0)
    step = pd.Timedelta(days=7 if freq == "W" else 1)
    return pd.DataFrame({
        "frequency": (n - 1).astype(float),
        "recency": (last - first) / step / mult,
        "T": (end_period - first) / step / mult,
        "monetary": monetary,
    }).sort_index()


@pytest.mark.parametrize("freq,as_of", [("D", "1997-12-31"), ("W", "1997-12-31"), ("D", "1998-06-30"),
                                        ("W", "1998-06-28")])
def test_lifetimes_definition_matches_reference_on_cdnow(cdnow, freq, as_of):
    ours = rfm_table(cdnow, as_of=as_of, definition="lifetimes", freq=freq).set_index("user_id")
    ref = lifetimes_reference(cdnow, as_of, freq)
    assert len(ours) == len(ref) == 23_570
    assert list(ours.index) == list(ref.index)
    for col in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(ours["monetary"].to_numpy(), ref["monetary"].to_numpy(), rtol=1e-12, atol=1e-9)
    # orders after as_of are counted, not lost
    n_after = int((cdnow["time"] > pd.Timestamp(as_of, tz=TZ)).sum())
    assert ours.attrs["excluded"] == {"orders after as_of": n_after}


def test_lifetimes_weeks_start_on_monday(sample):
    out = rfm_table(sample, as_of="1997-09-30", definition="lifetimes", freq="W")
    assert (out["first_time"].dt.dayofweek == 0).all()
    assert (out["last_time"].dt.dayofweek == 0).all()
    # T counts whole weeks from the first purchase week to the week of 1997-09-30 (a Tuesday)
    assert set(np.unique(out["T"])) <= set(range(0, 40))


def test_standard_definition_totals_and_recency(cdnow):
    as_of = "1997-12-31"
    out = rfm_table(cdnow, as_of=as_of)
    kept = cdnow[cdnow["time"] <= pd.Timestamp(as_of, tz=TZ)]
    assert len(out) == kept["user_id"].nunique()
    assert out["frequency"].sum() == len(kept)  # every order counted once
    assert out["monetary"].sum() == pytest.approx(kept["revenue"].sum(), rel=1e-12)
    g = kept.groupby("user_id")
    last = g["time"].max()
    ref_recency = (pd.Timestamp(as_of, tz=TZ) - last).dt.days.sort_index()
    np.testing.assert_array_equal(out.set_index("user_id")["recency"].to_numpy(), ref_recency.to_numpy())
    np.testing.assert_allclose(out["mean_order_value"], out["monetary"] / out["frequency"])
    assert (out["first_time"] <= out["last_time"]).all()
    assert out.attrs["excluded"]["orders after as_of"] == len(cdnow) - len(kept)


def test_as_of_default_is_latest_order(sample):
    out = rfm_table(sample)
    assert out.attrs["excluded"] == {"orders after as_of": 0}
    assert out["recency"].min() == 0
    assert out["frequency"].sum() == len(sample)


def test_bad_parameters_name_the_parameter(sample):
    with pytest.raises(ValueError, match="definition='rfm'"):
        rfm_table(sample, definition="rfm")
    with pytest.raises(ValueError, match="freq='M'"):
        rfm_table(sample, definition="lifetimes", freq="M")
    with pytest.raises(ValueError, match="bins=1"):
        rfm_scores(rfm_table(sample), bins=1)
    with pytest.raises(ValueError, match="lifetimes"):
        rfm_scores(rfm_table(sample, definition="lifetimes"))


@pytest.mark.parametrize("definition,kwargs", [("standard", {}), ("lifetimes", {"freq": "W"}),
                                               ("lifetimes", {"freq": "D", "freq_multiplier": 7})])
def test_rfm_table_duckdb_vs_spark(backend, sample, definition, kwargs):
    ref = rfm_table(sample, as_of="1997-09-30", definition=definition, **kwargs)
    got = rfm_table(backend(sample), as_of="1997-09-30", definition=definition, **kwargs)
    assert_same_frame(ref, got, sort_by="user_id")
    assert got.attrs["excluded"] == ref.attrs["excluded"]


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
def _frame(values):
    v = np.asarray(values, dtype=float)
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(len(v))], "recency": v, "frequency": v,
                         "monetary": v})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=300),
       st.integers(min_value=2, max_value=10))
def test_scores_tie_safe_monotone_in_range(values, bins):
    s = rfm_scores(_frame(values), bins=bins, segment_map=None)
    v = np.asarray(values)
    for col, sign in (("f_score", 1), ("m_score", 1), ("r_score", -1)):
        sc = s[col].to_numpy()
        assert sc.min() >= 1 and sc.max() <= bins
        # equal values -> equal scores
        for val in np.unique(v):
            assert len(np.unique(sc[v == val])) == 1
        # monotone: larger value never a lower score (recency: larger = lower score)
        order = np.argsort(sign * v, kind="stable")
        assert (np.diff(sc[order]) >= 0).all()
    # the documented rule: 1 + floor(bins * (#values strictly below) / n)
    below = (v[None, :] < v[:, None]).sum(axis=1)
    np.testing.assert_array_equal(s["f_score"].to_numpy(), 1 + (bins * below) // len(v))


def test_scores_distinct_values_are_quintiles():
    s = rfm_scores(_frame(np.arange(100)), bins=5)
    assert s["f_score"].value_counts().sort_index().tolist() == [20] * 5
    assert s.loc[s["recency"] == 0, "r_score"].item() == 5  # most recent = 5
    assert s.loc[s["recency"] == 99, "r_score"].item() == 1


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------
def test_default_map_is_total_and_every_segment_reachable():
    owner = check_segment_map(DEFAULT_SEGMENT_MAP)
    cells = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    assert sorted(owner) == cells  # all 125 cells
    for c in cells:  # exactly one segment holds each cell
        assert sum(c in set(v) for v in DEFAULT_SEGMENT_MAP.values()) == 1
    assert set(owner.values()) == set(SEGMENTS) and len(SEGMENTS) == 11
    # sanity of the grid: best cell is Champions, worst is Lost
    assert owner[(5, 5, 5)] == "Champions" and owner[(1, 1, 1)] == "Lost"
    assert owner[(5, 1, 1)] == "New" and owner[(1, 5, 5)] == "Can't Lose"


def test_bad_segment_map_raises_naming_cells():
    missing = {k: [c for c in v if c != (3, 3, 3)] for k, v in DEFAULT_SEGMENT_MAP.items()}
    with pytest.raises(ValueError, match=r"1 cell\(s\) in no segment: 333"):
        check_segment_map(missing)
    overlap = dict(DEFAULT_SEGMENT_MAP)
    overlap["Lost"] = tuple(overlap["Lost"]) + ((5, 5, 5),)
    with pytest.raises(ValueError, match=r"555 in \['Champions', 'Lost'\]"):
        check_segment_map(overlap)
    with pytest.raises(ValueError, match="outside 1..5: 605"):
        check_segment_map({**DEFAULT_SEGMENT_MAP, "Lost": tuple(DEFAULT_SEGMENT_MAP["Lost"]) + ("605",)})
    with pytest.raises(ValueError, match="no segment"):
        rfm_scores(_frame(range(10)), segment_map=missing)


def test_custom_map_strings(sample):
    two = {"recent": [f"{r}{f}{m}" for r in (4, 5) for f in range(1, 6) for m in range(1, 6)],
           "old": [f"{r}{f}{m}" for r in (1, 2, 3) for f in range(1, 6) for m in range(1, 6)]}
    s = rfm_scores(rfm_table(sample), segment_map=two)
    assert ((s["segment"] == "recent") == (s["r_score"] >= 4)).all()


def test_segment_summary_adds_up_and_plots(sample):
    scored = rfm_scores(rfm_table(sample, as_of="1997-09-30"))
    summ = segment_summary(scored)
    assert list(summ["segment"]) == list(DEFAULT_SEGMENT_MAP)
    assert summ["customers"].sum() == len(scored) == 2357
    assert summ["share"].sum() == pytest.approx(1.0)
    assert summ["revenue_share"].sum() == pytest.approx(1.0)
    assert summ["revenue"].sum() == pytest.approx(scored["monetary"].sum())
    champ = scored[scored["segment"] == "Champions"]
    row = summ.set_index("segment").loc["Champions"]
    assert row["frequency_mean"] == pytest.approx(champ["frequency"].mean())
    assert row["recency_mean"] == pytest.approx(champ["recency"].mean())
    # Champions buy more often than Lost customers (they are defined by high F/M scores)
    assert row["frequency_mean"] > summ.set_index("segment").loc["Lost", "frequency_mean"]
    ax = plot_segments(summ)
    assert len(ax.get_yticklabels()) == len(summ)
    assert len(ax.patches) >= 2 * len(summ[summ["customers"] > 0])
