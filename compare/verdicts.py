"""Per config and framework pair: seed-paired Δacc and time ratio with intervals, tests and a verdict.

`comparisons` returns one row per (experiment, config, other framework) with at least one paired
sample: n, `delta_pp` with its t-interval (`delta_lo`, `delta_hi`), `p_diff` (paired t-test) and
`p_tost` (equivalence within ±margin) before and after the multiplicity adjustment (`*_adj`; each
family, differences and equivalences on their own, being every comparison of the report with n ≥ 2),
`delta_sd` (the spread the errors use: pooled or the config's own, see compare/spread.py),
`seeds_80` (for an inconclusive config: the seeds that would give 80% power, compare/power.py), the
McNemar p-values of its runs (`mcnemar_min`, `mcnemar_max`, `mcnemar_runs`, `mcnemar_below`: runs with
p < ALPHA), `time_ratio` (geometric mean) with `ratio_lo`, `ratio_hi`, and `verdict`.
`spreads(pairs)` says, per other framework, how the errors of Δacc and of the log time ratio were formed.
"""

import numpy as np
import pandas as pd

from . import power, stats
from .runs import delta, others, ratio
from .spread import spread

KEYS = ("experiment", "config_id")  # the key of a config; pandas wants list(KEYS)
COLUMNS = KEYS + ("vs", "n", "delta_pp", "delta_lo", "delta_hi", "delta_sd", "p_diff", "p_tost", "mcnemar_min",
                  "mcnemar_max", "mcnemar_runs", "mcnemar_below", "time_ratio", "ratio_lo", "ratio_hi", "ratio_n",
                  "log_ratio", "log_ratio_se")


def moments(pairs, column):
    """Per config: (n, mean, sample variance) of the finite values of `column` (a Series each)."""
    values = pairs[column].astype(float).where(np.isfinite(pairs[column].astype(float)))
    grouped = values.groupby([pairs[k] for k in KEYS], sort=False)
    return grouped.count(), grouped.mean(), grouped.var(ddof=1)


def _log_ratios(pairs, other):
    values = pairs[ratio(other)].astype(float)
    return pairs.assign(_log=np.log(values.where(values > 0)))


def spreads(pairs):
    """{other: {"delta": Spread, "ratio": Spread}}: the within-config spread of Δacc and of the log time ratio."""
    out = {}
    for other in others(pairs):
        n, _, var = moments(pairs, delta(other))
        n_r, _, var_r = moments(_log_ratios(pairs, other), "_log")
        out[other] = {"delta": spread(n.values, var.values), "ratio": spread(n_r.values, var_r.values)}
    return out


def _mcnemar(tests, pairs, other):
    """Per config: min p, max p, runs tested and runs with p < ALPHA of the McNemar tests against `other`."""
    mine = tests[tests["vs"] == other].dropna(subset=["p"]).merge(pairs[["run_id", *KEYS]], on="run_id")
    grouped = mine.assign(below=mine["p"] < stats.ALPHA).groupby(list(KEYS), sort=False)
    return pd.DataFrame({"mcnemar_min": grouped["p"].min(), "mcnemar_max": grouped["p"].max(),
                         "mcnemar_runs": grouped["p"].count(), "mcnemar_below": grouped["below"].sum()})


def _rows(pairs, other, margin_pp, tests, *, found):
    n, mean, var = moments(pairs, delta(other))
    se, df = found["delta"].errors(n.values, var.values)
    low, high, p_diff, p_tost = stats.t_tests(n.values, mean.values, se, df, margin=margin_pp)
    n_r, mean_r, var_r = moments(_log_ratios(pairs, other), "_log")
    se_r, df_r = found["ratio"].errors(n_r.values, var_r.values)
    r_low, r_high, _, _ = stats.t_tests(n_r.values, mean_r.values, se_r, df_r, margin=1.0)
    table = pd.DataFrame({"vs": other, "n": n.values, "delta_pp": mean.values, "delta_lo": low, "delta_hi": high,
                          "delta_sd": se * np.sqrt(n.values), "p_diff": p_diff, "p_tost": p_tost,
                          "time_ratio": np.exp(mean_r.values), "ratio_lo": np.exp(r_low), "ratio_hi": np.exp(r_high),
                          "ratio_n": n_r.values, "log_ratio": mean_r.values, "log_ratio_se": se_r}, index=n.index)
    if tests is None or tests.empty:
        table = table.assign(mcnemar_min=np.nan, mcnemar_max=np.nan, mcnemar_runs=0, mcnemar_below=0)
    else:
        table = table.join(_mcnemar(tests, pairs, other))
    table["mcnemar_runs"] = table["mcnemar_runs"].fillna(0).astype(int)
    table["mcnemar_below"] = table["mcnemar_below"].fillna(0).astype(int)
    return table.rename_axis(list(KEYS)).reset_index()


def comparisons(pairs, tests=None, margin_pp=0.2, multiplicity="bh", *, found=None, advice=True):
    """The comparison table (see the module docstring); `tests` is the McNemar table of `mcnemar.tests`,
    `found` the `spreads(pairs)` when already computed; `advice=False` leaves `seeds_80` NaN (simulations)."""
    found = found or spreads(pairs)
    parts = [_rows(pairs, other, margin_pp, tests, found=found[other]) for other in others(pairs)]
    parts = [p[(p["n"] > 0) | (p["ratio_n"] > 0)] for p in parts]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMNS))
    table = table[list(COLUMNS)]
    family = table["n"] > 1
    table["p_diff_adj"] = stats.adjust(table["p_diff"].where(family), multiplicity)
    table["p_tost_adj"] = stats.adjust(table["p_tost"].where(family), multiplicity)
    table["verdict"] = [stats.verdict(n, pe, pd_) for n, pe, pd_ in
                        zip(table["n"], table["p_tost_adj"], table["p_diff_adj"])]
    level = stats.ALPHA / max(int(family.sum()), 1) if multiplicity == "holm" else stats.ALPHA
    open_ = (table["verdict"] == stats.INCONCLUSIVE).to_numpy()
    table["seeds_80"] = np.nan
    if advice and open_.any():
        table.loc[open_, "seeds_80"] = power.seeds(table.loc[open_, "delta_pp"], table.loc[open_, "delta_sd"],
                                                   margin_pp, level)
    return table


def overview(table):
    """Per other framework: verdict counts, the number of configs and the size of the tests' family."""
    out = {}
    for other, rows in table.groupby("vs", sort=False):
        counts = rows["verdict"].value_counts()
        needed = rows["seeds_80"].dropna()
        out[other] = {"verdicts": {v: int(counts.get(v, 0)) for v in stats.VERDICTS}, "configs": len(rows),
                      "family": int((table["n"] > 1).sum()), "seeds_median": needed.median() if len(needed) else np.nan,
                      "seeds_max": needed.max() if len(needed) else np.nan,
                      "unreachable": int(((rows["verdict"] == stats.INCONCLUSIVE) & rows["seeds_80"].isna()).sum())}
    return out

# one colour per verdict, for the forest plot and the HTML cells
COLOURS = {stats.EQUIVALENT: "#1a7f37", stats.DIFFERENT: "#cf222e", stats.INCONCLUSIVE: "#bf8700",
           stats.SINGLE: "#6e7781"}
