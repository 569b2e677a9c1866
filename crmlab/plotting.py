"""Plot defaults shared by every crmlab chart."""
from __future__ import annotations


def setup() -> None:
    """Make Hangul render in matplotlib (koreanize-matplotlib's NanumGothic) and set a clean
    seaborn style. Safe to call many times."""
    import matplotlib
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="notebook")
    try:
        import koreanize_matplotlib  # noqa: F401  (registers and selects NanumGothic on import)
    except ImportError:  # pragma: no cover - it is a declared dependency
        pass
    matplotlib.rcParams["font.family"] = "NanumGothic"
    matplotlib.rcParams["axes.unicode_minus"] = False
    # Labels are data (campaign names, segments): a name like "$\badcmd$" must be drawn as
    # written, not parsed as mathtext (which draws "$x$" as math or fails the whole chart).
    matplotlib.rcParams["text.parse_math"] = False
