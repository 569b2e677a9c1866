"""Customer lifetime value: BG/NBD purchase counts, Gamma-Gamma spend, value per customer and segment.

Models
------
BG/NBD
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way:
    an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284. While alive a
    customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after each
    purchase the customer dies with probability ``p ~ Beta(a, b)``.
Gamma-Gamma
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
    customer base analysis. *Journal of Marketing Research* 42(4), 415-430; and Fader & Hardie
    (2013), "The Gamma-Gamma model of monetary value" (note). Transaction values of a customer
    are ``Gamma(p, nu)`` with ``nu ~ Gamma(q, gamma)``, independent of the purchase process.

Inputs are the ``frequency`` (repeat purchases ``x``), ``recency`` (``t_x``), ``T`` and
``monetary`` (mean repeat-purchase value ``m_x``) of :func:`crmlab.rfm.rfm_table` with
``definition="lifetimes"``; every time is in the table's period unit (days, or weeks with
``freq="W"`` or ``freq="D", freq_multiplier=7``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = ["BGNBD", "GammaGamma", "fit_bgnbd", "fit_gamma_gamma", "bgnbd_loglik", "gamma_gamma_loglik",
           "customer_value", "value_by_segment"]


def _arr(*xs):
    return [np.asarray(x, dtype=float) for x in xs]


def _check_rft(x, t_x, T):
    if np.any(~np.isfinite(x)) or np.any(~np.isfinite(t_x)) or np.any(~np.isfinite(T)):
        raise ValueError("frequency, recency and T must be finite numbers (no missing values)")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < t_x):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T for every customer")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0 (lifetimes definition); "
                         "use rfm_table(..., definition='lifetimes')")


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------
def bgnbd_loglik(params, frequency, recency, T, weights=None) -> float:
    """Total BG/NBD log-likelihood at ``params = (r, alpha, a, b)``.

    Fader, Hardie & Lee (2005), eq. (6)::

        L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
            + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

    computed on the log scale (``logaddexp``).
    """
    r, alpha, a, b = params
    x, t_x, T_ = _arr(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    lb = special.betaln(a, b)
    a2 = special.betaln(a, b + x) - lb - (r + x) * np.log(alpha + T_)
    pos = x > 0
    a3 = np.full_like(x, -np.inf)
    a3[pos] = (special.betaln(a + 1, b + x[pos] - 1) - lb - (r + x[pos]) * np.log(alpha + t_x[pos]))
    return float(np.sum(w * (a1 + np.logaddexp(a2, a3))))


@dataclass(frozen=True)
class BGNBD:
    """A fitted BG/NBD model (Fader, Hardie & Lee 2005). Times are in the data's period unit."""
    r: float
    alpha: float
    a: float
    b: float
    loglik: float
    n: int
    converged: bool = True

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def expected_purchases(self, t):
        """E[X(t)]: expected purchases in (0, t] of a customer who starts at 0 (FHL 2005 eq. 9)::

            (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; t/(alpha+t))]

        The expression holds for any ``a != 1`` (for ``a < 1`` both factors are negative).
        """
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=float)
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)

    def _inactive_odds(self, x, t_x, T):
        # delta_{x>0} * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), on the log scale
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        out = np.zeros(np.broadcast(x, t_x, T).shape)
        x, t_x, T = np.broadcast_arrays(x, t_x, T)
        pos = x > 0
        out[pos] = np.exp(np.log(a) - np.log(b + x[pos] - 1)
                          + (r + x[pos]) * (np.log(alpha + T[pos]) - np.log(alpha + t_x[pos])))
        return out

    def conditional_expected_purchases(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] of a customer with history
        (x, t_x, T) (FHL 2005 eq. 10)::

            (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
            / (1 + [x > 0] a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))

        ``2F1`` is the Gaussian hypergeometric function (``scipy.special.hyp2f1``).
        """
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T_ = _arr(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + T_ + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T_) / (alpha + T_ + t)) ** (r + x) * hyp)
        return num / (1 + self._inactive_odds(x, t_x, T_))

    def p_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
        (FHL 2005, eq. 11 of the technical note "Computing P(alive) using the BG/NBD model").
        A customer with no repeat purchase is alive with probability 1: in the BG/NBD a customer
        can only drop out right after a purchase."""
        x, t_x, T_ = _arr(frequency, recency, T)
        return 1.0 / (1.0 + self._inactive_odds(x, t_x, T_))


def fit_bgnbd(frequency, recency, T, *, init=(1.0, 1.0, 1.0, 1.0)) -> BGNBD:
    """Maximum-likelihood fit of the BG/NBD model (Fader, Hardie & Lee 2005).

    The log-likelihood (eq. 6, :func:`bgnbd_loglik`) is maximised over the logs of
    ``(r, alpha, a, b)`` with Nelder-Mead followed by L-BFGS-B (scipy.optimize); identical
    ``(x, t_x, T)`` rows are collapsed to weights first.

    Parameters
    ----------
    frequency, recency, T : array-like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T`` of each customer
        (``rfm_table(..., definition="lifetimes")``).
    init : starting values of ``(r, alpha, a, b)``.

    Returns
    -------
    BGNBD
        ``r, alpha, a, b``, the maximised ``loglik``, the number of customers ``n``.
    """
    x, t_x, T_ = _arr(frequency, recency, T)
    if not (len(x) == len(t_x) == len(T_)) or len(x) == 0:
        raise ValueError("frequency, recency and T must be non-empty and of equal length")
    _check_rft(x, t_x, T_)
    key = pd.DataFrame({"x": x, "t_x": t_x, "T": T_}).value_counts().reset_index()
    ux, ut, uT, w = (key[c].to_numpy(float) for c in ("x", "t_x", "T", "count"))

    def nll(theta):
        v = -bgnbd_loglik(np.exp(theta), ux, ut, uT, w)
        return v if np.isfinite(v) else 1e300

    theta0 = np.log(np.asarray(init, dtype=float))
    nm = optimize.minimize(nll, theta0, method="Nelder-Mead",
                           options={"xatol": 1e-9, "fatol": 1e-7, "maxiter": 20_000, "maxfev": 20_000})
    lb = optimize.minimize(nll, nm.x, method="L-BFGS-B")
    best = lb if lb.fun <= nm.fun else nm
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha), float(a), float(b), float(-best.fun), int(len(x)),
                 bool(nm.success))


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------
def gamma_gamma_loglik(params, frequency, monetary) -> float:
    """Gamma-Gamma log-likelihood of mean spend ``m_x`` over ``x`` transactions at
    ``params = (p, q, gamma)`` (Fader & Hardie 2013, eq. 3)::

        f(m_x | x) = G(px+q) / (G(px) G(q)) * gamma^q m_x^(px-1) x^(px) / (gamma + m_x x)^(px+q)
    """
    p, q, g = params
    x, m = _arr(frequency, monetary)
    ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(g)
          + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))
    return float(np.sum(ll))


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie 2013)."""
    p: float
    q: float
    gamma: float
    loglik: float
    n: int
    converged: bool = True

    @property
    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def mean_spend(self) -> float:
        """Population mean transaction value ``p gamma / (q - 1)`` (nan when ``q <= 1``)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")

    def conditional_expected_spend(self, frequency, monetary):
        """E[M | p, q, gamma, m_x, x] = p (gamma + x m_x) / (p x + q - 1)  (Fader & Hardie 2013, eq. 5),

        a weighted mean of the population mean ``p gamma/(q-1)`` and the customer's own ``m_x``.
        For ``x = 0`` it is the population mean."""
        x, m = _arr(frequency, monetary)
        m = np.where(x > 0, m, 0.0)
        return self.p * (self.gamma + x * m) / (self.p * x + self.q - 1)


def fit_gamma_gamma(frequency, monetary, *, init=(1.0, 1.0, 1.0)) -> GammaGamma:
    """Maximum-likelihood fit of the Gamma-Gamma spend model on repeat buyers.

    Only customers with ``frequency > 0`` and ``monetary > 0`` enter the likelihood
    (Fader & Hardie 2013 fit the 946 repeat buyers of the CDNOW sample); ``monetary`` is the
    mean value of the customer's repeat transactions. The log-likelihood
    (:func:`gamma_gamma_loglik`) is maximised over ``log(p, q, gamma)`` with Nelder-Mead then
    L-BFGS-B. ``n`` counts the customers used.
    """
    x, m = _arr(frequency, monetary)
    if len(x) != len(m):
        raise ValueError("frequency and monetary must be of equal length")
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    if keep.sum() < 3:
        raise ValueError(f"need at least 3 customers with frequency > 0 and monetary > 0, got {int(keep.sum())}")
    x, m = x[keep], m[keep]

    def nll(theta):
        v = -gamma_gamma_loglik(np.exp(theta), x, m)
        return v if np.isfinite(v) else 1e300

    theta0 = np.log(np.asarray(init, dtype=float))
    nm = optimize.minimize(nll, theta0, method="Nelder-Mead",
                           options={"xatol": 1e-9, "fatol": 1e-7, "maxiter": 20_000, "maxfev": 20_000})
    lb = optimize.minimize(nll, nm.x, method="L-BFGS-B")
    best = lb if lb.fun <= nm.fun else nm
    p, q, g = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(g), float(-best.fun), int(keep.sum()),
                      bool(nm.success))


# --------------------------------------------------------------------------------------------
# Customer value
# --------------------------------------------------------------------------------------------
def customer_value(rfm_lifetimes: pd.DataFrame, horizon: float, *, bgnbd: BGNBD | None = None,
                   gamma_gamma: GammaGamma | None = None, discount_rate: float = 0.0,
                   steps: int | None = None) -> pd.DataFrame:
    """Expected purchases, P(alive), expected spend and expected value of each customer.

    Parameters
    ----------
    rfm_lifetimes : DataFrame
        :func:`crmlab.rfm.rfm_table` with ``definition="lifetimes"`` (``user_id``, ``frequency``,
        ``recency``, ``T``, ``monetary``).
    horizon : float
        Length of the future window, in the table's period unit.
    bgnbd, gamma_gamma : fitted models, optional
        Fitted on ``rfm_lifetimes`` (:func:`fit_bgnbd`, :func:`fit_gamma_gamma`) when not given.
    discount_rate : float
        Discount rate per step (0 = no discounting). The horizon is cut into ``steps`` equal
        steps (default ``ceil(horizon)``, one per period); the purchases expected in step
        ``k`` (``E[Y(k h/steps)] - E[Y((k-1) h/steps)]``, eq. 10) are discounted by
        ``(1 + discount_rate)^k``, the scheme of ``lifetimes.utils.customer_lifetime_value``.
    steps : int, optional

    Returns
    -------
    DataFrame
        ``user_id, frequency, recency, T, monetary, expected_purchases, p_alive,
        expected_spend, expected_value``: ``expected_value`` = expected spend per purchase
        (Gamma-Gamma eq. 5) x (discounted) expected purchases over the horizon (BG/NBD eq. 10),
        which assumes spend and purchase process independent, as both papers do.
        ``attrs["bgnbd"]`` and ``attrs["gamma_gamma"]`` hold the parameters.
    """
    need = ["user_id", "frequency", "recency", "T", "monetary"]
    missing = [c for c in need if c not in rfm_lifetimes.columns]
    if missing:
        raise ValueError(f"rfm_lifetimes is missing column(s) {missing}; "
                         "pass rfm_table(..., definition='lifetimes')")
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon={horizon!r} is not allowed; use a positive number of periods")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate={discount_rate!r} is not allowed; use a number >= 0")
    if steps is None:
        steps = max(1, int(np.ceil(horizon)))
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps={steps!r} is not allowed; use a positive integer")
    d = rfm_lifetimes
    x, t_x, T = d["frequency"].to_numpy(float), d["recency"].to_numpy(float), d["T"].to_numpy(float)
    m = d["monetary"].to_numpy(float)
    bg = bgnbd or fit_bgnbd(x, t_x, T)
    gg = gamma_gamma or fit_gamma_gamma(x, m)
    purchases = bg.conditional_expected_purchases(horizon, x, t_x, T)
    spend = gg.conditional_expected_spend(x, m)
    if discount_rate > 0:
        grid = np.linspace(0.0, horizon, steps + 1)
        cum = np.stack([np.zeros_like(x)] + [bg.conditional_expected_purchases(s, x, t_x, T) for s in grid[1:]])
        disc = (1 + discount_rate) ** -np.arange(1, steps + 1)
        discounted = (np.diff(cum, axis=0) * disc[:, None]).sum(axis=0)
    else:
        discounted = purchases
    out = d[need].copy()
    out["expected_purchases"] = purchases
    out["p_alive"] = bg.p_alive(x, t_x, T)
    out["expected_spend"] = spend
    out["expected_value"] = spend * discounted
    out.attrs.update(d.attrs)
    out.attrs["bgnbd"] = bg.params
    out.attrs["gamma_gamma"] = gg.params
    out.attrs["horizon"] = float(horizon)
    out.attrs["discount_rate"] = float(discount_rate)
    return out


def value_by_segment(values: pd.DataFrame, segments: pd.DataFrame, *, by: str = "segment") -> pd.DataFrame:
    """The budget view: customers, expected purchases and expected value per RFM segment.

    Parameters
    ----------
    values : DataFrame
        :func:`customer_value` result (``user_id``, ``expected_purchases``, ``expected_value``,
        ``p_alive``).
    segments : DataFrame
        ``user_id`` and the ``by`` column, e.g. :func:`crmlab.rfm.rfm_scores`.
    by : str
        Segment column of ``segments``.

    Returns
    -------
    DataFrame
        ``segment, customers, expected_purchases, expected_value, value_share,
        value_per_customer, p_alive_mean``. Customers of ``values`` with no segment are
        counted in ``attrs["excluded"]["customers without a segment"]`` (and segmented customers without a
        value in ``"customers without a value"``).
    """
    from .io.engine import report_exclusions
    if by not in segments.columns or "user_id" not in segments.columns:
        raise ValueError(f"segments needs columns 'user_id' and by={by!r}; it has {list(segments.columns)}")
    seg = segments[["user_id", by]]
    joined = values.merge(seg, on="user_id", how="inner", validate="one_to_one")
    no_segment = int((~values["user_id"].isin(seg["user_id"])).sum())
    no_value = int((~seg["user_id"].isin(values["user_id"])).sum())
    g = joined.groupby(by, observed=False, sort=True)
    out = pd.DataFrame({
        "customers": g.size(),
        "expected_purchases": g["expected_purchases"].sum(),
        "expected_value": g["expected_value"].sum(),
        "p_alive_mean": g["p_alive"].mean(),
    })
    total = out["expected_value"].sum()
    out["value_share"] = out["expected_value"] / total if total else np.nan
    out["value_per_customer"] = out["expected_value"] / out["customers"].where(out["customers"] > 0)
    out = out.reset_index().rename(columns={by: "segment"})
    out["segment"] = out["segment"].astype(str)
    out = out[["segment", "customers", "expected_purchases", "expected_value", "value_share",
               "value_per_customer", "p_alive_mean"]]
    return report_exclusions(out, {"customers without a segment": no_segment, "customers without a value": no_value},
                             "value_by_segment")
