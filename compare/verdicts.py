"""Per config and framework pair: seed-paired Δacc and time ratio with intervals, tests and a verdict.

`comparisons` returns one row per (experiment, config, other framework) with at least one paired
sample: n, `delta_pp` with its t-interval (`delta_lo`, `delta_hi`), `p_diff` (paired t-test) and
`p_tost` (equivalence within ±margin) before and after Holm's adjustment (`*_holm`, each family
being every comparison of the report with n ≥ 2), the McNemar p-values of its runs (`mcnemar_min`,
`mcnemar_max`, `mcnemar_runs`, `mcnemar_below`: runs with p < ALPHA), `time_ratio` (geometric mean)
with `ratio_lo`, `ratio_hi`, and `verdict`.
"""

import math

import pandas as pd

from . import stats
from .runs import delta, others, ratio

KEYS = ("experiment", "config_id")  # the key of a config; pandas wants list(KEYS)
COLUMNS = KEYS + ("vs", "n", "delta_pp", "delta_lo", "delta_hi", "p_diff", "p_tost", "mcnemar_min", "mcnemar_max",
                  "mcnemar_runs", "mcnemar_below", "time_ratio", "ratio_lo", "ratio_hi", "ratio_n")


def _mcnemar(tests, run_ids, other):
    """(min p, max p, runs tested, runs with p < ALPHA) of the McNemar tests of these runs against `other`."""
    if tests is None or tests.empty:
        return math.nan, math.nan, 0, 0
    mine = tests[tests["run_id"].isin(run_ids) & (tests["vs"] == other)]["p"].dropna()
    return (mine.min() if len(mine) else math.nan, mine.max() if len(mine) else math.nan,
            len(mine), int((mine < stats.ALPHA).sum()))


def _row(group, other, margin_pp, tests):
    diffs, ratios = group[delta(other)].dropna(), group[ratio(other)].dropna()
    mean, low, high, n = stats.mean_interval(diffs)
    g, g_low, g_high, n_ratio = stats.ratio_interval(ratios)
    tested = group.loc[group[delta(other)].notna(), "run_id"]
    p_min, p_max, runs, below = _mcnemar(tests, tested, other)
    return {"vs": other, "n": n, "delta_pp": mean, "delta_lo": low, "delta_hi": high,
            "p_diff": stats.paired_p(diffs), "p_tost": stats.tost_p(diffs, margin_pp),
            "mcnemar_min": p_min, "mcnemar_max": p_max, "mcnemar_runs": runs, "mcnemar_below": below,
            "time_ratio": g, "ratio_lo": g_low, "ratio_hi": g_high, "ratio_n": n_ratio}


def comparisons(pairs, tests=None, margin_pp=0.2):
    """The comparison table (see the module docstring); `tests` is the McNemar table of `mcnemar.tests`."""
    rows = []
    for (experiment, config_id), group in pairs.groupby(list(KEYS), sort=False):
        for other in others(pairs):
            row = _row(group, other, margin_pp, tests)
            if row["n"] or row["ratio_n"]:
                rows.append({"experiment": experiment, "config_id": config_id, **row})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["p_diff_holm"] = stats.holm(table["p_diff"].where(table["n"] > 1))
    table["p_tost_holm"] = stats.holm(table["p_tost"].where(table["n"] > 1))
    table["verdict"] = [stats.verdict(n, pe, pd_) for n, pe, pd_ in
                        zip(table["n"], table["p_tost_holm"], table["p_diff_holm"])]
    return table


def overview(table):
    """Per other framework: verdict counts and the time ratio over configs (each config's geometric
    mean as one sample) with its t-interval on the logs."""
    out = {}
    for other, rows in table.groupby("vs", sort=False):
        g, low, high, n = stats.ratio_interval(rows["time_ratio"])
        counts = rows["verdict"].value_counts()
        out[other] = {"verdicts": {v: int(counts.get(v, 0)) for v in stats.VERDICTS}, "configs": len(rows),
                      "time_ratio": g, "ratio_lo": low, "ratio_hi": high, "ratio_configs": n,
                      "family": int((table["n"] > 1).sum())}
    return out

# one colour per verdict, for the forest plot and the HTML cells
COLOURS = {stats.EQUIVALENT: "#1a7f37", stats.DIFFERENT: "#cf222e", stats.INCONCLUSIVE: "#bf8700",
           stats.SINGLE: "#6e7781"}
