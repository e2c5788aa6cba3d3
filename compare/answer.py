"""The grid-level answer as the report shows it: the lines that open the summary, the "where do they
differ" table, and the seeds advice (compare/grid.py computes them)."""

import math

import pandas as pd

from experiments import names

from . import power, stats
from .display import interval, pp, pvalue, sig3
from .grid import describe
from .runs import value_text


def configs(k):
    return f"{k} config" + ("" if k == 1 else "s")


def _tau(tau2, i2, unit):
    if tau2 != tau2:
        return "heterogeneity n/a"
    return f"τ² = {tau2:.2g} {unit}, I² = {i2:.0%}"


def _seeds(a, margin_pp):
    """The seeds advice for one framework pair's grid answer."""
    d = a["delta"]
    if a["verdict"] != stats.INCONCLUSIVE:
        return f"seeds: {a['max_seeds']} per config decide the grid answer"
    if a["sd"] != a["sd"]:
        return "seeds: run ≥ 2 seeds of some config to measure the seed-to-seed spread (e.g. train.seed=0,1,2)"
    if a["seeds"] != a["seeds"]:
        return (f"seeds: no number up to {power.MAX_SEEDS} per config gives 80% power: the configs differ among "
                f"themselves ({_tau(d['tau2'], d['i2'], 'pp²')}); more configs would tell, or a wider margin than "
                f"±{margin_pp:g} pp")
    n = int(a["seeds"])
    return f"seeds: {n} per config would give the grid answer 80% power; run {power.command(n)}"


def lines(grid, kernels, margin_pp):
    """Per framework compared: the grid answer, its time ratio with the BLAS kernel, the seeds advice,
    and a warning when the runs used different kernels."""
    out = []
    for other, a in grid.items():
        d, r, ref = a["delta"], a["ratio"], names.REFERENCE
        spread = "" if d["weights"].startswith("random") else f"; weights: {d['weights']}"
        out.append(f"{ref} − {other} over {configs(d['k'])}: Δacc {pp(d['mean'])} pp, 95% CI "
                   f"{interval(d['lo'], d['hi'], pp)}, between configs {_tau(d['tau2'], d['i2'], 'pp²')}"
                   f"{spread}: {a['verdict']} (margin ±{margin_pp:g} pp)")
        out.append(f"time ratio {ref}/{other} (fit time, < 1: {ref} faster) over {configs(r['k'])}: "
                   f"{sig3(_exp(r['mean']))}, 95% CI {interval(_exp(r['lo']), _exp(r['hi']), sig3)}, between configs "
                   f"{_tau(r['tau2'], r['i2'], '(log scale)')}; {describe(kernels.get(other, {}))}")
        out.append(_seeds(a, margin_pp))
        if len(kernels.get(other, {})) > 1:
            out.append(f"warning: the runs compared with {other} used different BLAS kernels "
                       f"({', '.join(kernels[other])}): their time ratios are not comparable")
    return out


def _exp(x):
    return math.exp(x) if x == x else math.nan


def where(table, multiplicity, kernel=None):
    """The "where do they differ" table as text: framework, setting (`width=64`), configs, Δacc with CI, I²,
    the adjusted p-values and verdict, and the time ratio with its CI."""
    label = {"bh": "BH", "holm": "Holm", "none": "unadjusted"}[multiplicity]
    rows = table.to_dict("records")
    return pd.DataFrame({
        "vs": table["vs"].tolist(), "setting": [f"{k}={value_text(v)}" for k, v in zip(table["key"], table["value"])],
        "configs": table["configs"].astype(str).tolist(), "Δacc pp": [pp(r["delta_pp"]) for r in rows],
        "95% CI": [interval(r["delta_lo"], r["delta_hi"], pp) for r in rows],
        "I²": ["n/a" if r["i2"] != r["i2"] else f"{r['i2']:.0%}" for r in rows],
        f"p diff ({label})": [pvalue(r["p_diff_adj"]) for r in rows],
        f"p equiv ({label})": [pvalue(r["p_tost_adj"]) for r in rows],
        "verdict": ["n/a" if r["verdict"] is None else r["verdict"] for r in rows],
        "time ratio" + (f" ({kernel})" if kernel else ""): [sig3(r["time_ratio"]) for r in rows],
        "ratio 95% CI": [interval(r["ratio_lo"], r["ratio_hi"], sig3) for r in rows]})
