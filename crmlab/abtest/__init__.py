"""A/B tests from sufficient statistics: SRM, frequentist tests, corrections, CUPED and
regression adjustment, power, always-valid sequential intervals, Bayesian chance to beat,
heavy-tail methods, and a one-call readout (GrowthBook gbstats style: aggregate in
the engine, then statistics on a few numbers per variant)."""
from . import bayes, group_sequential, robust, sequential
from .adjust import regression_adjust
from .cuped import cuped, cuped_theta
from .corrections import adjust_pvalues, correct, with_family
from .frequentist import compare, lift, mean_test, proportion_test, proportions_chisquare, ratio_test
from .power import adjusted_alpha, minimum_detectable_effect, power, sample_size
from .readout import Readout, heavy_tail_checks, plot_forest, readout
from .bayes import beta_binomial, normal_means
from .robust import bootstrap_diff, mann_whitney, winsorize
from .sequential import always_valid_p_value, confidence_sequence_diff, confidence_sequence_prop, sequential_table
from .group_sequential import group_sequential_boundaries, group_sequential_table, group_sequential_test
from .result import VERDICTS, Comparison, verdict
from .srm import SRMResult, srm_check
from .sufficient import PairedStats, SampleStats, sufficient_stats

__all__ = [
    "SampleStats", "PairedStats", "sufficient_stats", "Comparison", "verdict", "VERDICTS",
    "proportion_test", "mean_test", "ratio_test", "lift", "proportions_chisquare", "compare",
    "adjust_pvalues", "correct",
    "SRMResult", "srm_check",
    "cuped", "cuped_theta", "regression_adjust",
    "power", "sample_size", "minimum_detectable_effect", "adjusted_alpha",
    "Readout", "readout", "plot_forest", "heavy_tail_checks",
    "confidence_sequence_diff", "confidence_sequence_prop", "always_valid_p_value", "sequential_table",
    "group_sequential_boundaries", "group_sequential_test", "group_sequential_table",
    "beta_binomial", "normal_means",
    "winsorize", "mann_whitney", "bootstrap_diff",
    "bayes", "group_sequential", "robust", "sequential",
]
