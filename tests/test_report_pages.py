"""Report pages: the charts' scales and axes (issue 13, items 3 and 4) and the pages rendered
from findings (message performance, cohort, funnel)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crmlab.report import plots  # noqa: E402
from crmlab.report import text as T  # noqa: E402


# ------------------------------------------------------------------------------ retention heatmap
def _retention():
    # period 0 is 100 % by definition; later shares between 4 % and 30 %
    return pd.DataFrame([[1.0, 0.30, 0.12, 0.04], [1.0, 0.20, 0.10, np.nan]],
                        index=["2026-10-05", "2026-10-12"], columns=pd.Index([0, 1, 2, 3], name="period_index"))


def test_retention_colours_are_scaled_on_the_periods_after_the_first_purchase():
    """Defect: the month-0 column (always 100 %) took the darkest colour and washed out the rest."""
    ax = plots.retention_heatmap(_retention(), "en")
    mesh = ax.collections[0]
    assert mesh.norm.vmin == pytest.approx(4.0) and mesh.norm.vmax == pytest.approx(30.0)
    arr = mesh.get_array().reshape(2, 4)
    assert np.ma.getmaskarray(arr)[:, 0].all()            # period 0: no colour
    assert not np.ma.getmaskarray(arr)[0, 1:].any()
    # the largest later share gets the darkest colour of the map, not a pale one
    assert mesh.norm(30.0) == pytest.approx(1.0) and mesh.norm(4.0) == pytest.approx(0.0)
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("100") == 2                          # period 0 still shows its value
    assert ax.get_xticklabels()[0].get_text() == T.t("period_zero", "en")
    assert [t.get_text() for t in ax.get_xticklabels()[1:]] == ["1", "2", "3"]
    plt.close(ax.figure)


def test_retention_period_zero_label_in_korean():
    ax = plots.retention_heatmap(_retention(), "ko")
    assert ax.get_xticklabels()[0].get_text() == "0 (첫 구매)"
    plt.close(ax.figure)


# ------------------------------------------------------------------------------ send-time heatmap
def _heat():
    # messages at 9:00 and 14:00 on Monday, 9:00 on Thursday; nothing at 1:00 or any other hour
    return pd.DataFrame({"weekday": [0, 0, 3], "hour": [9, 14, 9], "delivered": [400, 12, 300],
                         "click_rate": [0.05, 0.5, 0.04]})


def test_sendtime_heatmap_shows_all_24_hours_and_7_days():
    """Defect: the hour axis skipped hours with no message at all (hour 1)."""
    rate, n = plots.sendtime_grid(_heat(), "en")
    assert list(rate.columns) == list(range(24)) and list(n.columns) == list(range(24))
    assert list(rate.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert n.loc["Mon", 1] == 0 and np.isnan(rate.loc["Mon", 1])
    assert n.loc["Mon", 9] == 400 and rate.loc["Thu", 9] == pytest.approx(0.04)
    assert int(n.to_numpy().sum()) == 712                  # nothing lost or invented
    ax = plots.sendtime_heatmap(_heat(), "en", min_count=30)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(h) for h in range(24)]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("n=0") == 7 * 24 - 3                # empty slots: grey, n=0
    assert "n=12" in texts and "5.0\nn=400" in texts        # the 12-message slot carries no rate
    mesh = ax.collections[0].get_array()
    assert np.ma.getmaskarray(mesh).sum() == 7 * 24 - 2
    plt.close(ax.figure)


def test_sendtime_grid_korean_weekdays():
    rate, _ = plots.sendtime_grid(_heat(), "ko")
    assert list(rate.index) == T.t("weekday_names", "ko").split(",")
