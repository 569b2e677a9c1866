"""Calibration of the always-valid confidence sequences under weekly looks, where CRM data lives.

Seeded simulation of many experiments at once, as per-look sufficient statistics (numpy,
vectorised over experiments): conversion as binomial counts per look; revenue per user as
per-look buyer counts (5 % buyers, 95 % non-buyers) and the buyers' spend sums of powers 1-3
(lognormal sigma 1, sigma 2, or Lomax / Pareto II with tail index 2.5). Each experiment is
read at ``looks`` equally spaced looks through the public
:func:`crmlab.abtest.sequential.confidence_sequence_diff` / ``confidence_sequence_prop``
with ``n_opt`` = the planned total.

Columns of :func:`sequential_grid`:

``shape, split`` (treatment/control share), ``n_control`` (final control size), ``n_treatment``,
``looks``, ``scale`` (absolute | relative), ``method``, ``n_sims``,
``false_win`` / ``false_loss`` (A/A: share of experiments whose sequence excludes 0 above /
below at some analysed look), ``false_total`` (either), ``mcse`` (Monte Carlo SE of a per-side
rate at its target ``alpha / 2``), ``coverage`` (true lift of +20 % relative: share of
experiments whose sequence contains the truth at every analysed look), ``insufficient_share``
(share of looks the method refused, A/A), ``insufficient_final`` (share of experiments whose
final look was refused), ``power`` (share of the +20 % experiments declared winners at some
look).

    python -m bench.calibration_sequential                  # full grid, 4,000 experiments per cell
    python -m bench.calibration_sequential --variance arm --min-arm-size 2   # the plug-in as it was
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from crmlab.abtest import sequential as seq

ALPHA = 0.05
LIFT = 0.20
BUY_P = 0.05
LOOKS = 20
SHAPES = {
    "conversion 1%": ("binary", 0.01),
    "conversion 3%": ("binary", 0.03),
    "conversion 10%": ("binary", 0.10),
    "revenue lognormal sigma 1": ("lognormal", 1.0),
    "revenue lognormal sigma 2": ("lognormal", 2.0),
    "revenue Lomax alpha 2.5": ("lomax", 2.5),
}
SPLITS = {"50/50": 1.0, "80/20": 4.0, "20/80": 0.25, "90/10": 9.0}   # treatment / control
N_CONTROL = (400, 2_000, 20_000)
COLUMNS = ["shape", "split", "n_control", "n_treatment", "looks", "scale", "method", "n_sims",
           "false_win", "false_loss", "false_total", "mcse", "coverage", "insufficient_share",
           "insufficient_final", "power"]


def _spend(rng, kind, par, size, scale):
    if kind == "lognormal":
        return scale * rng.lognormal(0.0, par, size)
    return scale * rng.pareto(par, size)           # Lomax (Pareto II), scale 1


def spend_mean(kind, par) -> float:
    """Mean buyer spend of the generator (lognormal mu = 0; Lomax scale 1)."""
    return math.exp(par ** 2 / 2) if kind == "lognormal" else 1.0 / (par - 1.0)


def simulate_arm(rng, shape, n_final, looks, n_sims, lift=0.0):
    """Cumulative per-look statistics of one arm, arrays ``(n_sims, looks)``: ``n`` and either
    ``conversions`` (binary) or ``mean, var, skew`` (revenue)."""
    kind, par = SHAPES[shape]
    m = n_final // looks
    n = m * np.arange(1, looks + 1, dtype=float)
    if kind == "binary":
        conv = rng.binomial(m, min(par * (1 + lift), 1.0), size=(n_sims, looks)).cumsum(axis=1)
        return {"n": n, "conversions": conv}
    buyers = rng.binomial(m, BUY_P, size=(n_sims, looks))
    sums = np.zeros((3, n_sims * looks))
    cells = n_sims * looks
    per = max(1, int(4_000_000 // max(1, m * BUY_P * looks)))   # experiments per chunk
    flat = buyers.ravel()
    for start in range(0, n_sims, per):
        lo, hi = start * looks, min(n_sims, start + per) * looks
        k = flat[lo:hi]
        v = _spend(rng, kind, par, int(k.sum()), 1 + lift)
        idx = np.repeat(np.arange(hi - lo), k)
        for p in range(3):
            sums[p, lo:hi] = np.bincount(idx, weights=v ** (p + 1), minlength=hi - lo)
    s1, s2, s3 = (x.reshape(n_sims, looks).cumsum(axis=1) for x in sums[:, :cells])
    mean, var, skew = seq.moments_from_sums(n, s1, s2, s3)
    return {"n": n, "mean": mean, "var": var, "skew": skew}


def _cs(a, b, scale, n_opt, options):
    rel = scale == "relative"
    if "conversions" in a:
        return seq.confidence_sequence_prop(a["conversions"], a["n"], b["conversions"], b["n"], alpha=ALPHA,
                                            n_opt=n_opt, relative=rel, **options)
    return seq.confidence_sequence_diff(a["n"], a["mean"], a["var"], b["n"], b["mean"], b["var"], alpha=ALPHA,
                                        n_opt=n_opt, relative=rel, skew_a=a["skew"], skew_b=b["skew"],
                                        **options)


def cell(shape, split, n_control, scale, n_sims, seed, looks=LOOKS, **options):
    """One grid cell: A/A error rates and coverage under a +20 % lift (tidy row dict).

    ``options`` (``variance``, ``max_skew``, ``min_arm_size``) go to the sequence functions."""
    n_treat = int(round(n_control * SPLITS[split]))
    n_opt = n_control + n_treat
    rng = np.random.default_rng(seed)
    a, b = simulate_arm(rng, shape, n_control, looks, n_sims), simulate_arm(rng, shape, n_treat, looks, n_sims)
    cs = _cs(a, b, scale, n_opt, options)
    with np.errstate(invalid="ignore"):
        win = (cs["ci_low"] > 0).any(axis=1)
        loss = (cs["ci_high"] < 0).any(axis=1)
    bad = cs["status"] == "insufficient"
    a1, b1 = (simulate_arm(rng, shape, n_control, looks, n_sims),
              simulate_arm(rng, shape, n_treat, looks, n_sims, lift=LIFT))
    cs1 = _cs(a1, b1, scale, n_opt, options)
    kind, par = SHAPES[shape]
    base = par if kind == "binary" else BUY_P * spend_mean(kind, par)
    truth = LIFT if scale == "relative" else LIFT * base
    with np.errstate(invalid="ignore"):
        miss = (cs1["ci_low"] > truth) | (cs1["ci_high"] < truth)
        power = (cs1["ci_low"] > 0).any(axis=1)
    method = "confidence sequence, n_opt=planned" + "".join(f", {k}={v}" for k, v in sorted(options.items()))
    return {"shape": shape, "split": split, "n_control": n_control, "n_treatment": n_treat, "looks": looks,
            "scale": scale, "method": method if options else method + ", defaults", "n_sims": n_sims,
            "false_win": float(win.mean()), "false_loss": float(loss.mean()),
            "false_total": float((win | loss).mean()), "mcse": math.sqrt(0.025 * 0.975 / n_sims),
            "coverage": float(1 - miss.any(axis=1).mean()), "insufficient_share": float(bad.mean()),
            "insufficient_final": float(bad[:, -1].mean()), "power": float(power.mean())}


def sequential_grid(n_sims: int = 4000, seed: int = 20261201, shapes=None, splits=None, n_controls=None,
                    scales=("absolute", "relative"), looks: int = LOOKS, **options) -> pd.DataFrame:
    """Every cell of the sequential calibration grid as a tidy frame (columns ``COLUMNS``).

    Seeded: cell ``i`` uses ``seed + i``, so a subset reproduces the full grid's rows.
    ``options`` (e.g. ``variance="arm"`` for the plug-in as it was) go to :func:`cell`.
    """
    rows = []
    i = 0
    for shape in SHAPES:
        for split in SPLITS:
            for n_c in N_CONTROL:
                for scale in ("absolute", "relative"):
                    i += 1
                    if ((shapes and shape not in shapes) or (splits and split not in splits)
                            or (n_controls and n_c not in n_controls) or scale not in scales):
                        continue
                    rows.append(cell(shape, split, n_c, scale, n_sims, seed + i, looks, **options))
    return pd.DataFrame(rows, columns=COLUMNS)


def worst(grid: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The ``k`` cells with the largest per-side excess over ``alpha / 2`` (or total over alpha)."""
    excess = np.maximum(np.maximum(grid["false_win"], grid["false_loss"]) - ALPHA / 2,
                        grid["false_total"] - ALPHA)
    return grid.assign(excess=excess).sort_values("excess", ascending=False).head(k)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--variance", default=None, choices=list(seq.VARIANCES),
                    help="variance plug-in ('arm' = as it was before issue 12)")
    ap.add_argument("--max-skew", default=None, help="skewness rule: a number or 'none'")
    ap.add_argument("--min-arm-size", type=float, default=None, help="fewest units per arm analysed")
    ap.add_argument("--out", default=None, help="write the grid as CSV here")
    args = ap.parse_args(argv)
    options = {}
    if args.variance is not None:
        options["variance"] = args.variance
    if args.max_skew is not None:
        options["max_skew"] = None if args.max_skew.lower() == "none" else float(args.max_skew)
    if args.min_arm_size is not None:
        options["min_arm_size"] = args.min_arm_size
    grid = sequential_grid(args.n_sims, args.seed, **options)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    print(grid.drop(columns=["method"]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print("\nworst cells:")
    print(worst(grid).drop(columns=["method"]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if args.out:
        grid.to_csv(args.out, index=False)
    return grid


if __name__ == "__main__":
    main()
