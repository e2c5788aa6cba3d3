"""One answer per framework pair for the whole report, and the same per value of each swept key.

Each config's seed-paired mean Δacc (and mean log time ratio) with its squared standard error goes
into a random-effects meta-analysis over configs (compare/meta.py): the mean over configs with a 95%
interval, the between-config heterogeneity (τ², I²), a verdict (equivalent within ±margin, different,
inconclusive; one test each, unadjusted) and, when inconclusive, the seeds per config that would give
80% power (compare/power.py). `where` is the same per value of each swept key, its verdicts adjusted
as one family (differences and equivalences on their own) by the report's multiplicity method.
"""

import math

import pandas as pd

from . import power, stats
from .meta import random_effects
from .runs import delta, others
from .verdicts import KEYS

WHERE = ("key", "value", "vs", "configs", "delta_pp", "delta_lo", "delta_hi", "tau2", "i2", "p_diff", "p_tost",
         "time_ratio", "ratio_lo", "ratio_hi", "ratio_tau2")


def _verdict(p_tost, p_diff, k):
    return stats.verdict(2 if k else 0, p_tost, p_diff) if p_tost == p_tost else (stats.INCONCLUSIVE if k else None)


def _combine(rows, margin_pp, spread_):
    """The meta-analyses of Δacc and of log time ratio over `rows` (comparison rows of one framework pair)."""
    rows = rows[rows["n"] > 0]
    v = rows["delta_sd"] ** 2 / rows["n"]
    df_within = spread_["delta"].df if spread_["delta"].pooled else float(rows["n"].iloc[0] - 1) if len(rows) else 1
    d = random_effects(rows["delta_pp"], v, margin_pp, df_within)
    timed = rows[rows["ratio_n"] > 0]
    r_df = spread_["ratio"].df if spread_["ratio"].pooled else float(timed["ratio_n"].iloc[0] - 1) if len(timed) else 1
    r = random_effects(timed["log_ratio"], timed["log_ratio_se"] ** 2, 1.0, r_df)
    return d, r


def _tau2(d, rows, s2):
    """τ² of the answer, or with equal weights its moment estimate: the configs' variance of mean Δacc less
    the part the seeds explain (the average s²/n), at least 0."""
    if d["tau2"] == d["tau2"] or d["k"] < 2:
        return d["tau2"]
    rows = rows[rows["n"] > 0]
    return max(0.0, float(rows["delta_pp"].var(ddof=1) - (s2 / rows["n"]).mean()))


def overall(comparisons, spreads, margin_pp):
    """{other: answer}: `delta` and `ratio` (random_effects dicts; the ratio's on the log scale), `verdict`,
    `sd` (the within-config spread behind it) and `seeds` (per config, for 80% power; NaN when decided or
    out of reach)."""
    out = {}
    for other, rows in comparisons.groupby("vs", sort=False):
        d, r = _combine(rows, margin_pp, spreads[other])
        verdict = _verdict(d["p_tost"], d["p_diff"], d["k"])
        s2 = spreads[other]["delta"].s2
        sd = math.sqrt(s2) if s2 == s2 else math.nan
        needed = power.grid_seeds(d["mean"], _tau2(d, rows, s2), sd, d["k"], margin=margin_pp) \
            if verdict == stats.INCONCLUSIVE else math.nan
        out[other] = {"delta": d, "ratio": r, "verdict": verdict, "sd": sd, "seeds": needed,
                      "max_seeds": int(rows["n"].max()) if len(rows) else 0}
    return out


def where(comparisons, table, columns, spreads, *, margin_pp, multiplicity="bh"):
    """Per swept key, value and other framework: the grid answer over the configs with that value (WHERE
    columns, plus `p_diff_adj`, `p_tost_adj` and `verdict`)."""
    merged = comparisons.merge(table[[*KEYS, *[c for c in columns if c not in KEYS]]], on=list(KEYS), how="left")
    rows = []
    for key in columns:
        for (value, other), group in merged.groupby([key, "vs"], sort=True, dropna=False):
            d, r = _combine(group, margin_pp, spreads[other])
            rows.append({"key": key, "value": value, "vs": other, "configs": d["k"], "delta_pp": d["mean"],
                         "delta_lo": d["lo"], "delta_hi": d["hi"], "tau2": d["tau2"], "i2": d["i2"],
                         "p_diff": d["p_diff"], "p_tost": d["p_tost"], "time_ratio": math.exp(r["mean"]),
                         "ratio_lo": math.exp(r["lo"]), "ratio_hi": math.exp(r["hi"]), "ratio_tau2": r["tau2"]})
    out = pd.DataFrame(rows, columns=list(WHERE))
    out["p_diff_adj"] = stats.adjust(out["p_diff"], multiplicity)
    out["p_tost_adj"] = stats.adjust(out["p_tost"], multiplicity)
    out["verdict"] = [_verdict(pt, pd_, k) for pt, pd_, k in zip(out["p_tost_adj"], out["p_diff_adj"], out["configs"])]
    return out


def kernels(pairs):
    """{other: {BLAS description: runs}} over the runs that give a sample of `other`'s comparison."""
    out = {}
    for other in others(pairs):
        used = pairs.loc[pairs[delta(other)].notna(), "blas"] if "blas" in pairs else pd.Series(dtype=object)
        out[other] = {k: int(n) for k, n in used.astype(object).fillna("not recorded").value_counts().items()}
    return out


def describe(found):
    """One BLAS kernel's description, or every one with its runs when they differ."""
    if not found or set(found) == {"not recorded"}:
        return "BLAS not recorded"
    if len(found) == 1:
        return f"BLAS: {next(iter(found))}"
    return "BLAS: " + "; ".join(f"{k} ({n} runs)" for k, n in found.items())
