"""Calibration grid of the default comparisons, by seeded simulation (``make calibration``).

Every cell simulates many A/A experiments (both arms drawn from one distribution) and as many
A/B experiments with a planted +20 % lift (treatment's rate, or every buyer's spend, times 1.2),
as sufficient statistics (``n``, sums of the metric, its squares and cubes per arm), and runs
them through the *public* functions a readout or report uses by default
(:func:`crmlab.abtest.proportion_test`, :func:`crmlab.abtest.mean_test`). It records, per cell:

- ``insufficient``: share of experiments the method itself declared ``insufficient``;
- ``false_win`` / ``false_loss``: A/A experiments whose interval lies wholly above / below 0,
  among those with a verdict (target 2.5 % each, alpha 0.05 two-sided);
- ``mcse``: the Monte Carlo standard error of a 2.5 % rate at that many experiments;
- ``coverage``: A/B experiments whose interval holds the planted truth (target 95 %).

A cell passes when each side is within ``2.5 % +- max(0.5 pt, 3 mcse)`` and coverage within
``95 +- 1 %`` (``max(1 pt, 3 mcse)``), or when the method says ``insufficient`` in at least
95 % of its experiments. ``python -m bench.calibration`` writes ``docs/calibration.md``.
"""
from __future__ import annotations

import argparse
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crmlab.abtest import SampleStats, mean_test, proportion_test

ALPHA = 0.05
LIFT = 0.2
SPLITS = {"50/50": 1.0, "80/20": 4.0, "20/80": 0.25, "90/10": 9.0}   # treatment / control shares
CONTROL_SIZES = (400, 2_000, 20_000)
SHAPES = ("conversion 1%", "conversion 3%", "conversion 10%",
          "revenue lognormal s=1", "revenue lognormal s=2", "revenue Pareto a=3.5")
BUYER_SHARE = 0.05          # revenue: 95 % of users buy nothing
PARETO_TAIL = 3.5           # Lomax tail index: finite skewness, infinite kurtosis
SCALES = ("absolute", "relative")


@dataclass(frozen=True)
class Cell:
    shape: str
    split: str
    n_control: int

    @property
    def n_treatment(self) -> int:
        return int(round(self.n_control * SPLITS[self.split]))


def _spend(rng, shape, size):
    if shape == "revenue lognormal s=1":
        return rng.lognormal(0.0, 1.0, size)
    if shape == "revenue lognormal s=2":
        return rng.lognormal(0.0, 2.0, size)
    return rng.pareto(PARETO_TAIL, size)


def _rate(shape) -> float:
    return float(shape.split()[1].rstrip("%")) / 100


def simulate(rng, shape: str, n: int, n_exp: int, scale: float = 1.0, chunk: int = 1000) -> SampleStats:
    """Sufficient statistics of ``n_exp`` experiments' arm of ``n`` users (vectorised)."""
    if shape.startswith("conversion"):
        x = rng.binomial(n, min(_rate(shape) * scale, 1.0), n_exp).astype(float)
        return SampleStats(np.full(n_exp, float(n)), x, x, x)
    s1, s2, s3 = np.empty(n_exp), np.empty(n_exp), np.empty(n_exp)
    for start in range(0, n_exp, chunk):
        m = min(chunk, n_exp - start)
        k = rng.binomial(n, BUYER_SHARE, m)
        v = _spend(rng, shape, int(k.sum())) * scale
        idx = np.repeat(np.arange(m), k)
        part = slice(start, start + m)
        s1[part] = np.bincount(idx, weights=v, minlength=m)
        s2[part] = np.bincount(idx, weights=v * v, minlength=m)
        s3[part] = np.bincount(idx, weights=v ** 3, minlength=m)
    return SampleStats(np.full(n_exp, float(n)), s1, s2, s3)


def true_lift(shape: str) -> dict[str, float]:
    """Planted absolute and relative lift of the A/B experiments (control mean times LIFT)."""
    if shape.startswith("conversion"):
        base = _rate(shape)
    elif shape == "revenue lognormal s=1":
        base = BUYER_SHARE * math.exp(0.5)
    elif shape == "revenue lognormal s=2":
        base = BUYER_SHARE * math.exp(2.0)
    else:
        base = BUYER_SHARE / (PARETO_TAIL - 1)
    return {"absolute": base * LIFT, "relative": LIFT}


def default_test(shape, control, variant):
    """What a readout or report runs by default on this metric."""
    if shape.startswith("conversion"):
        return proportion_test(control.sum, control.n, variant.sum, variant.n, alpha=ALPHA)
    return mean_test(control, variant, alpha=ALPHA)


def previous_test(shape, control, variant):
    """The defaults before the calibration work: pooled z / Welch t, Katz log relative interval."""
    if shape.startswith("conversion"):
        return proportion_test(control.sum, control.n, variant.sum, variant.n, alpha=ALPHA, method="pooled_z",
                               relative="log")
    return mean_test(control, variant, alpha=ALPHA, method="welch", relative="log")


METHODS = {"default": default_test, "previous": previous_test}


def _verdicts(res, scale):
    """(has a verdict, claims a win, claims a loss, interval) of each experiment. On the
    absolute scale a claim is what a report prints: p < alpha, signed by the estimate (for a
    dual test the same as the interval excluding 0)."""
    ok = np.asarray(res["status"]) == "ok"
    if scale == "absolute":
        sig = np.asarray(res["p_value"], float) < ALPHA
        est = np.asarray(res["abs_lift"], float)
        return ok, sig & (est > 0), sig & (est < 0), (np.asarray(res["abs_ci_low"]), np.asarray(res["abs_ci_high"]))
    lo, hi = np.asarray(res["rel_ci_low"], float), np.asarray(res["rel_ci_high"], float)
    return ok, lo > 0, hi < 0, (lo, hi)


def n_experiments(cell: Cell, budget: float, cap: int) -> int:
    """Fewer experiments for huge arms: about ``budget`` simulated buyers per cell."""
    users = cell.n_control + cell.n_treatment
    per_exp = users * (BUYER_SHARE if cell.shape.startswith("revenue") else 0.0) + 1
    return int(max(2_000, min(cap, budget / per_exp)))


def run_cell(cell: Cell, *, n_exp: int, seed: int, methods=("default", "previous")) -> list[dict]:
    rng = np.random.default_rng(seed)
    nc, nt = cell.n_control, cell.n_treatment
    c0, t0 = simulate(rng, cell.shape, nc, n_exp), simulate(rng, cell.shape, nt, n_exp)
    c1, t1 = simulate(rng, cell.shape, nc, n_exp), simulate(rng, cell.shape, nt, n_exp, scale=1 + LIFT)
    truth = true_lift(cell.shape)
    rows = []
    for name in methods:
        test = METHODS[name]
        aa, ab = test(cell.shape, c0, t0), test(cell.shape, c1, t1)
        for scale in SCALES:
            ok0, win, loss, _ = _verdicts(aa, scale)
            ok1, _, _, (lo1, hi1) = _verdicts(ab, scale)
            k = int(ok0.sum())
            rows.append({
                "shape": cell.shape, "split": cell.split, "n_control": nc, "n_treatment": nt,
                "looks": 1, "scale": scale, "method": name, "n_sims": n_exp,
                "insufficient": 1 - ok0.mean(),
                "false_win": float(np.mean(win[ok0])) if k else np.nan,
                "false_loss": float(np.mean(loss[ok0])) if k else np.nan,
                "mcse": math.sqrt(0.025 * 0.975 / k) if k else np.nan,
                "coverage": float(np.mean((lo1[ok1] <= truth[scale]) & (truth[scale] <= hi1[ok1])))
                if ok1.any() else np.nan,
                "cov_mcse": math.sqrt(0.95 * 0.05 / max(int(ok1.sum()), 1)),
            })
    return rows


def verdict(row) -> str:
    """``pass`` / ``FAIL`` / ``insufficient`` for one row (see the module docstring)."""
    if row["insufficient"] >= 0.95:
        return "insufficient"
    band = max(0.005, 3 * row["mcse"])
    sides = all(abs(row[s] - 0.025) <= band for s in ("false_win", "false_loss"))
    cov_band = max(0.01, 3 * row["cov_mcse"])
    covered = not np.isfinite(row["coverage"]) or abs(row["coverage"] - 0.95) <= cov_band
    return "pass" if sides and covered else "FAIL"


def grid(*, budget: float = 8e7, cap: int = 40_000, seed: int = 2026, shapes=SHAPES, splits=tuple(SPLITS),
         sizes=CONTROL_SIZES, methods=("default", "previous"), progress=False) -> pd.DataFrame:
    rows = []
    for i, (shape, split, n) in enumerate(itertools.product(shapes, splits, sizes)):
        cell = Cell(shape, split, n)
        t = time.perf_counter()
        rows += run_cell(cell, n_exp=n_experiments(cell, budget, cap), seed=seed + i, methods=methods)
        if progress:
            print(f"{shape:24s} {split:6s} {n:>6,}  {time.perf_counter() - t:5.1f} s", flush=True)
    out = pd.DataFrame(rows)
    out["verdict"] = out.apply(verdict, axis=1)
    return out


def _pct(x):
    return "" if not np.isfinite(x) else f"{100 * x:.1f}"


def worst(frame: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The ``k`` cells furthest from 2.5 % on either side, among cells with verdicts."""
    f = frame[frame["insufficient"] < 0.95].copy()
    f["error"] = np.maximum((f["false_win"] - 0.025).abs(), (f["false_loss"] - 0.025).abs())
    return f.sort_values("error", ascending=False).head(k)


def to_markdown(frame: pd.DataFrame, extra: str = "") -> str:
    lines = ["# Calibration of the default comparisons", "",
             "Written by `make calibration` (`python -m bench.calibration`); seeded. Each row is a",
             "grid cell: A/A false wins and false losses per side among experiments with a verdict",
             "(target 2.5 % each at alpha 0.05, band `+- max(0.5 pt, 3 MC SE)`), the share the",
             "method declared `insufficient`, and coverage of a planted +20 % lift (target 95 +- 1 %).",
             "`default` is what `readout`, `campaign_uplift` and the reports run now",
             "(skewness-corrected z with dual intervals and the sufficiency rule, see",
             "`crmlab/abtest/skew.py`); `previous` is the earlier default (pooled z-test or Welch",
             "t-test, Katz log relative interval).", ""]
    for method in ("default", "previous"):
        f = frame[frame["method"] == method]
        if f.empty:
            continue
        counts = f["verdict"].value_counts().to_dict()
        lines += [f"## `{method}`", "", "Cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), "",
                  "| shape | split (t/c) | control n | scale | sims | insufficient % | false win % | false loss % "
                  "| MC SE pt | coverage % | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in f.iterrows():
            lines.append(f"| {r['shape']} | {r['split']} | {r['n_control']:,} | {r['scale']} | {r['n_sims']:,} | "
                         f"{_pct(r['insufficient'])} | {_pct(r['false_win'])} | {_pct(r['false_loss'])} | "
                         f"{_pct(r['mcse'])} | {_pct(r['coverage'])} | {r['verdict']} |")
        lines += ["", f"Five worst cells (`{method}`):", ""]
        for _, r in worst(f).iterrows():
            lines.append(f"- {r['shape']}, {r['split']}, control {r['n_control']:,}, {r['scale']}: "
                         f"{_pct(r['false_win'])} % / {_pct(r['false_loss'])} %, coverage {_pct(r['coverage'])} %")
        lines.append("")
    return "\n".join(lines + [extra]).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/calibration.md")
    ap.add_argument("--budget", type=float, default=8e7, help="simulated buyers per revenue cell")
    ap.add_argument("--cap", type=int, default=40_000, help="experiments per cell at most")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    frame = grid(budget=args.budget, cap=args.cap, seed=args.seed, progress=True)
    extra = ""
    from bench.calibration_sequential import sequential_grid
    seq = sequential_grid(seed=args.seed)
    cols = list(seq.columns)
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |"
             for r in seq.itertuples(index=False)]
    extra = ("## Sequential looks (20 looks, always-valid confidence sequence)\n\n"
             "From `bench/calibration_sequential.py` (same shapes and splits; total and per-side A/A "
             "rates over all looks).\n\n" + "\n".join(rows) + "\n")
    Path(args.out).write_text(to_markdown(frame, extra))
    frame.to_csv(Path(args.out).with_suffix(".csv"), index=False)
    print(f"wrote {args.out} in {time.perf_counter() - t:.0f} s: "
          f"{frame[frame.method == 'default'].verdict.value_counts().to_dict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
