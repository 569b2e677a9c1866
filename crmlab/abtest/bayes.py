"""Bayesian A/B readouts from sufficient statistics: Beta-Binomial and Normal models.

Two models, both computed in closed form (no sampling needed for the headline numbers):

* :func:`beta_binomial` for conversion rates. Posterior ``Beta(prior_a + conversions,
  prior_b + n - conversions)`` per arm; the chance that B beats A uses the exact finite
  sum of Evan Miller, "Formulas for Bayesian A/B testing" (2015), evaluated with
  log-Beta functions, and the expected losses use the closed forms of Chris Stucchio,
  "Bayesian A/B testing at VWO" (VWO whitepaper, 2015), section 4.
* :func:`normal_means` for means (revenue per user, orders per user, ...). Each arm's
  mean has the asymptotic posterior ``Normal(mean, var / n)`` (flat prior; the CLT
  approximation used by GrowthBook's gbstats and by Stucchio's normal model), so the
  difference is Normal and the chance to beat and the expected loss are closed forms;
  an optional Normal prior on the effect is combined conjugately.

Everywhere, ``a`` is the control and ``b`` the treatment; "chance to beat" is
``P(b > a)`` and ``expected_loss_x`` is the expected shortfall if arm ``x`` is shipped:
``expected_loss_a = E[max(b - a, 0)]`` and ``expected_loss_b = E[max(a - b, 0)]``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from scipy import integrate, special, stats
from ..io.checks import alpha as alpha_check
from ..io.checks import choice

__all__ = ["beta_binomial", "normal_means", "prob_beta_greater"]


# --------------------------------------------------------------------------------------
# parameter checks
# --------------------------------------------------------------------------------------


def _check_count(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}") from None
    if not math.isfinite(as_float) or as_float < 0 or as_float != int(as_float):
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}")
    return int(as_float)


def _is_int(v: float) -> bool:
    return float(v).is_integer()


# --------------------------------------------------------------------------------------
# P(X2 > X1) for independent Beta variables
# --------------------------------------------------------------------------------------
def _miller_sum(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X2 > X1), X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), for integer ``a2`` (Miller 2015).

    ``sum_{i=0}^{a2-1} B(a1 + i, b1 + b2) / ((b2 + i) B(1 + i, b2) B(a1, b1))``,
    summed in log space (``scipy.special.betaln`` + ``logsumexp``).
    """
    i = np.arange(int(a2), dtype=float)
    log_terms = (special.betaln(a1 + i, b1 + b2) - np.log(b2 + i)
                 - special.betaln(1 + i, b2) - special.betaln(a1, b1))
    return float(np.exp(special.logsumexp(log_terms)))


def _quantile_integral(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X2 > X1) = int_0^1 S_2(F_1^{-1}(u)) du, a smooth integrand on [0, 1] (fallback)."""
    val, _ = integrate.quad(lambda u: stats.beta.sf(stats.beta.ppf(u, a1, b1), a2, b2),
                            0.0, 1.0, limit=200, epsabs=1e-12, epsrel=1e-10)
    return float(val)


def prob_beta_greater(a1: float, b1: float, a2: float, b2: float) -> tuple[float, str]:
    """``P(X2 > X1)`` for independent ``X1 ~ Beta(a1, b1)`` and ``X2 ~ Beta(a2, b2)``.

    Exact when any of the four parameters is an integer, through one of four equivalent
    forms of Evan Miller's sum ("Formulas for Bayesian A/B testing", 2015): summing over
    ``a2``, or ``1 -`` the sum over ``a1``, or (by ``1 - X``) over ``b1`` or ``b2``. The
    form with the fewest terms is used. Otherwise the probability is integrated
    numerically (``scipy.integrate.quad`` on the quantile scale).

    Returns
    -------
    (probability, how) where ``how`` names the form used.
    """
    forms = []
    if _is_int(a2):
        forms.append((a2, "sum over a2", lambda: _miller_sum(a1, b1, a2, b2)))
    if _is_int(a1):
        forms.append((a1, "1 - sum over a1", lambda: 1.0 - _miller_sum(a2, b2, a1, b1)))
    if _is_int(b1):
        # X2 > X1  <=>  1 - X1 > 1 - X2, with 1 - X ~ Beta(b, a)
        forms.append((b1, "sum over b1", lambda: _miller_sum(b2, a2, b1, a1)))
    if _is_int(b2):
        forms.append((b2, "1 - sum over b2", lambda: 1.0 - _miller_sum(b1, a1, b2, a2)))
    if not forms:
        return _quantile_integral(a1, b1, a2, b2), "quadrature"
    _, how, fn = min(forms, key=lambda f: f[0])
    return min(1.0, max(0.0, fn())), how


# --------------------------------------------------------------------------------------
# Beta-Binomial
# --------------------------------------------------------------------------------------
def beta_binomial(conversions_a, n_a, conversions_b, n_b, prior=(1, 1), alpha: float = 0.05,
                  draws: int = 100_000, seed: int = 0) -> dict:
    """Bayesian comparison of two conversion rates (Beta-Binomial model).

    Model: ``p_x ~ Beta(prior[0], prior[1])`` a priori, ``conversions_x ~ Binomial(n_x, p_x)``,
    so the posterior is ``p_x ~ Beta(prior[0] + conversions_x, prior[1] + n_x - conversions_x)``
    (written ``Beta(alpha_x, beta_x)`` below).

    * ``chance_to_beat = P(p_b > p_a)``, exact: Evan Miller, "Formulas for Bayesian A/B
      testing" (2015), ``sum_{i=0}^{alpha_b-1} B(alpha_a+i, beta_a+beta_b) /
      ((beta_b+i) B(1+i, beta_b) B(alpha_a, beta_a))`` (the same result as Chris Stucchio's
      ``h`` function), computed with log-Beta functions; see :func:`prob_beta_greater` for
      the equivalent forms used when another parameter gives a shorter sum, and the
      quadrature fallback for non-integer priors.
    * Expected losses, exact: Chris Stucchio, "Bayesian A/B testing at VWO" (2015), eq. 4.
      Using ``x Beta(x; a, b) = a/(a+b) Beta(x; a+1, b)``::

          expected_loss_a = E[max(p_b - p_a, 0)]
              = E[p_b] P(p_b' > p_a) - E[p_a] P(p_b > p_a'),
          expected_loss_b = E[max(p_a - p_b, 0)] = expected_loss_a - (E[p_b] - E[p_a]),

      with ``p_a' ~ Beta(alpha_a + 1, beta_a)`` and ``p_b' ~ Beta(alpha_b + 1, beta_b)``.
    * Equal-tailed ``1 - alpha`` credible intervals of each posterior (``beta.ppf``).
    * Credible intervals of the difference ``p_b - p_a`` and of the lift ``p_b / p_a - 1``
      from ``draws`` seeded posterior draws (no closed form exists); set ``draws=0`` to skip.

    Parameters
    ----------
    conversions_a, n_a, conversions_b, n_b : int
        Converted users and exposed users per arm (``a`` = control, ``b`` = treatment).
    prior : (float, float)
        Beta prior ``(alpha, beta)`` shared by both arms; default uniform ``(1, 1)``.
    alpha : float
        One minus the credible level of the intervals.
    draws, seed : int
        Monte Carlo draws (and seed) for the difference and lift intervals only.

    Returns
    -------
    dict with ``chance_to_beat`` (P(b > a)), ``expected_loss_a``, ``expected_loss_b``,
    ``mean_a``, ``mean_b``, ``ci_low_a``, ``ci_high_a``, ``ci_low_b``, ``ci_high_b``,
    ``estimate`` (posterior mean of ``p_b - p_a``), ``ci_low``, ``ci_high``, ``lift``
    (``mean_b / mean_a - 1``), ``lift_ci_low``, ``lift_ci_high``, posterior parameters
    ``alpha_a, beta_a, alpha_b, beta_b`` and ``method``.
    """
    alpha = alpha_check(alpha)
    ca, na = _check_count("conversions_a", conversions_a), _check_count("n_a", n_a)
    cb, nb = _check_count("conversions_b", conversions_b), _check_count("n_b", n_b)
    if ca > na:
        raise ValueError(f"conversions_a must be <= n_a, got conversions_a={ca}, n_a={na}")
    if cb > nb:
        raise ValueError(f"conversions_b must be <= n_b, got conversions_b={cb}, n_b={nb}")
    try:
        pa0, pb0 = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise ValueError(f"prior must be a pair of positive numbers (alpha, beta), got {prior!r}") from None
    if not (pa0 > 0 and pb0 > 0 and math.isfinite(pa0) and math.isfinite(pb0)):
        raise ValueError(f"prior must be a pair of positive numbers (alpha, beta), got {prior!r}")
    if not isinstance(draws, Integral) or draws < 0:
        raise ValueError(f"draws must be a non-negative integer, got {draws!r}")

    aa, ba = pa0 + ca, pb0 + na - ca
    ab, bb = pa0 + cb, pb0 + nb - cb
    mean_a, mean_b = aa / (aa + ba), ab / (ab + bb)

    p_b_beats_a, how = prob_beta_greater(aa, ba, ab, bb)
    p_b1_beats_a, _ = prob_beta_greater(aa, ba, ab + 1, bb)   # p_b' ~ Beta(ab + 1, bb)
    p_b_beats_a1, _ = prob_beta_greater(aa + 1, ba, ab, bb)   # p_a' ~ Beta(aa + 1, ba)
    loss_a = max(0.0, mean_b * p_b1_beats_a - mean_a * p_b_beats_a1)
    loss_b = max(0.0, loss_a - (mean_b - mean_a))

    out = {
        "chance_to_beat": p_b_beats_a,
        "expected_loss_a": loss_a,
        "expected_loss_b": loss_b,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "ci_low_a": float(stats.beta.ppf(alpha / 2, aa, ba)),
        "ci_high_a": float(stats.beta.ppf(1 - alpha / 2, aa, ba)),
        "ci_low_b": float(stats.beta.ppf(alpha / 2, ab, bb)),
        "ci_high_b": float(stats.beta.ppf(1 - alpha / 2, ab, bb)),
        "estimate": mean_b - mean_a,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "lift": mean_b / mean_a - 1,
        "lift_ci_low": math.nan,
        "lift_ci_high": math.nan,
        "alpha_a": aa, "beta_a": ba, "alpha_b": ab, "beta_b": bb,
        "method": f"beta-binomial exact (Miller 2015, {how}; losses Stucchio 2015)",
    }
    if draws:
        rng = np.random.default_rng(seed)
        sa = rng.beta(aa, ba, size=draws)
        sb = rng.beta(ab, bb, size=draws)
        q = [alpha / 2, 1 - alpha / 2]
        out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(sb - sa, q))
        out["lift_ci_low"], out["lift_ci_high"] = (float(v) for v in np.quantile(sb / sa - 1, q))
    return out


# --------------------------------------------------------------------------------------
# Normal model for means
# --------------------------------------------------------------------------------------
def _normal_update(est: float, var: float, prior) -> tuple[float, float]:
    """Conjugate Normal update of a Normal likelihood ``N(est, var)`` with prior ``(m0, v0)``."""
    if prior is None:
        return est, var
    m0, v0 = prior
    prec = 1.0 / v0 + 1.0 / var
    return (m0 / v0 + est / var) / prec, 1.0 / prec


def _expected_positive_part(m: float, s: float) -> float:
    """E[max(D, 0)] for D ~ Normal(m, s^2): ``m Phi(m/s) + s phi(m/s)``."""
    if s == 0:
        return max(m, 0.0)
    z = m / s
    return float(m * special.ndtr(z) + s * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


def normal_means(n_a, mean_a, var_a, n_b, mean_b, var_b, prior=None, alpha: float = 0.05,
                 prior_scale: str = "relative") -> dict:
    """Bayesian comparison of two means under a Normal (large-sample) model.

    Model (as in GrowthBook's gbstats and Stucchio's normal model): with a flat prior each
    arm's mean has the posterior ``mu_x ~ Normal(mean_x, var_x / n_x)`` (CLT with the sample
    variance plugged in), so

    * the absolute difference ``d = mu_b - mu_a ~ Normal(mean_b - mean_a, var_a/n_a + var_b/n_b)``;
    * the lift ``l = mu_b / mu_a - 1`` is approximately ``Normal(mean_b/mean_a - 1,
      var_b/(n_b mean_a^2) + mean_b^2 var_a/(n_a mean_a^4))`` (delta method; needs
      ``mean_a > 0``, else the lift fields are NaN).

    ``prior = (m0, v0)`` adds a Normal prior on the effect, combined conjugately
    (precision-weighted mean). It is stated on the scale ``prior_scale``: ``"relative"``
    (lift, as in gbstats, e.g. ``(0, 0.3**2)``) or ``"absolute"`` (difference); on the
    other scale it is converted with the control mean (``d = l * mean_a``).

    Then, from the posterior ``Normal(m, s^2)`` of ``d``:
    ``chance_to_beat = P(d > 0) = Phi(m / s)``,
    ``expected_loss_a = E[max(d, 0)] = m Phi(m/s) + s phi(m/s)`` and
    ``expected_loss_b = E[max(-d, 0)] = -m Phi(-m/s) + s phi(m/s)``
    (the Normal partial expectation). The same formulas on the lift posterior give
    ``expected_loss_a_rel`` and ``expected_loss_b_rel``.

    Parameters
    ----------
    n_a, mean_a, var_a, n_b, mean_b, var_b : float
        Units, sample mean and sample variance (ddof=1) per arm (``a`` = control).
        For a proportion use ``var = p (1 - p)``.
    prior : (float, float) or None
        Normal prior ``(mean, variance)`` on the effect; ``None`` = flat.
    alpha : float
        One minus the credible level.
    prior_scale : {"relative", "absolute"}
        Scale on which ``prior`` is stated.

    Returns
    -------
    dict with ``estimate`` (posterior mean of ``d``), ``ci_low``, ``ci_high``, ``lift``,
    ``lift_ci_low``, ``lift_ci_high``, ``chance_to_beat``, ``expected_loss_a``,
    ``expected_loss_b``, ``expected_loss_a_rel``, ``expected_loss_b_rel``, ``se``
    (posterior sd of ``d``), ``lift_se`` and ``method``.
    """
    choice(prior_scale, "prior_scale", ("relative", "absolute"))
    alpha = alpha_check(alpha)
    vals = {"n_a": n_a, "mean_a": mean_a, "var_a": var_a, "n_b": n_b, "mean_b": mean_b, "var_b": var_b}
    for name, v in vals.items():
        if not isinstance(v, (Real, np.number)) or not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    n_a, mean_a, var_a, n_b, mean_b, var_b = (float(vals[k]) for k in vals)
    for name, v in (("n_a", n_a), ("n_b", n_b)):
        if v < 2:
            raise ValueError(f"{name} must be at least 2, got {v!r}")
    for name, v in (("var_a", var_a), ("var_b", var_b)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    if prior is not None:
        try:
            m0, v0 = (float(v) for v in prior)
        except (TypeError, ValueError):
            raise ValueError(f"prior must be None or a pair (mean, variance), got {prior!r}") from None
        if not (v0 > 0 and math.isfinite(v0) and math.isfinite(m0)):
            raise ValueError(f"prior variance must be positive and finite, got prior={prior!r}")
    if prior is not None and prior_scale == "relative" and not mean_a > 0:
        raise ValueError(f"a prior on the relative scale needs mean_a > 0, got mean_a={mean_a!r}")

    diff = mean_b - mean_a
    var_diff = var_a / n_a + var_b / n_b
    lift_ok = mean_a > 0
    if lift_ok:
        lift = mean_b / mean_a - 1
        var_lift = var_b / (n_b * mean_a ** 2) + mean_b ** 2 * var_a / (n_a * mean_a ** 4)
    else:
        lift, var_lift = math.nan, math.nan

    if prior is None:
        prior_abs = prior_rel = None
    elif prior_scale == "relative":
        prior_rel = (m0, v0)
        prior_abs = (m0 * mean_a, v0 * mean_a ** 2)
    else:
        prior_abs = (m0, v0)
        prior_rel = (m0 / mean_a, v0 / mean_a ** 2) if lift_ok else None

    if var_diff == 0:
        m_d, v_d = diff, 0.0
    else:
        m_d, v_d = _normal_update(diff, var_diff, prior_abs)
    s_d = math.sqrt(v_d)
    z = stats.norm.ppf(1 - alpha / 2)

    if lift_ok and var_lift > 0:
        m_l, v_l = _normal_update(lift, var_lift, prior_rel)
    else:
        m_l, v_l = lift, (0.0 if lift_ok else math.nan)
    s_l = math.sqrt(v_l) if lift_ok else math.nan

    if s_d > 0:
        ctb = float(special.ndtr(m_d / s_d))
    else:
        ctb = 1.0 if m_d > 0 else (0.0 if m_d < 0 else 0.5)
    method = "normal means, flat prior" if prior is None else f"normal means, Normal prior on {prior_scale} effect"
    return {
        "estimate": m_d,
        "ci_low": m_d - z * s_d,
        "ci_high": m_d + z * s_d,
        "se": s_d,
        "lift": m_l,
        "lift_ci_low": m_l - z * s_l if lift_ok else math.nan,
        "lift_ci_high": m_l + z * s_l if lift_ok else math.nan,
        "lift_se": s_l,
        "chance_to_beat": ctb,
        "expected_loss_a": _expected_positive_part(m_d, s_d),
        "expected_loss_b": _expected_positive_part(-m_d, s_d),
        "expected_loss_a_rel": _expected_positive_part(m_l, s_l) if lift_ok else math.nan,
        "expected_loss_b_rel": _expected_positive_part(-m_l, s_l) if lift_ok else math.nan,
        "method": method + " (CLT posterior; loss = Normal partial expectation)",
    }
