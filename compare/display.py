"""Numbers as the report shows them: accuracy in % with 2 decimals, times and ratios with 3
significant digits, p-values in scientific notation, parity deviations in scientific notation
with 2 significant digits (PARITY_FLAG before those at or beyond the bound), config values as set.
Every function returns plain strings or DataFrames of strings (no index), ready for compare/render.py."""

import math

import pandas as pd

from experiments import names

from . import stats
from .power import MAX_SEEDS, command
from .runs import label, value_text
from .verdicts import KEYS

PARITY_FLAG = "⚠"  # before a parity deviation at or beyond the bound (compare/render.py shows the cell red)
PARITY_COLUMN = "parity dev"


def pct(x):
    return "n/a" if pd.isna(x) else f"{100 * x:.2f}"


def sig3(x):
    """3 significant digits, trailing zeros kept (2.00, 0.500); no exponent below 1000."""
    if pd.isna(x):
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:#.3g}".rstrip(".")  # 649. -> 649


def pp(x):
    return "n/a" if pd.isna(x) else f"{x:+.2f}"


def pvalue(p):
    return "n/a" if pd.isna(p) else f"{p:.2e}"


def sci2(x):
    """2 significant digits in scientific notation (3.2e-07); inf for a non-finite deviation."""
    return "n/a" if pd.isna(x) else f"{x:.1e}"


def parity_cell(row):
    """The parity column of a verdict row: `not checked`, the largest deviation over seeds, or the flag,
    the deviation and the first step over the bound."""
    if pd.isna(row.get("parity_seeds")):
        return "not checked"
    if not row["parity_flagged"]:
        return sci2(row["parity_dev"])
    return f"{PARITY_FLAG} {sci2(row['parity_dev'])}" + ("" if pd.isna(row["parity_step"]) else
                                                          f" from step {int(row['parity_step'])}")


def interval(low, high, fmt):
    return "n/a" if pd.isna(low) else f"[{fmt(low)}, {fmt(high)}]"


def configs(table, columns):
    """The config columns of `table` as text: the varying keys, else one `config` column naming all."""
    if columns:
        return pd.DataFrame({c: table[c].map(value_text).tolist() for c in columns})
    return pd.DataFrame({"config": [label(r, []) for r in table.to_dict("records")]})


def _result(mean, extra, counts):
    """A per-config cell: `not run` when no seed asked for the framework, FAILED or running when no
    seed finished, missing when never logged."""
    finished, n, running, asked = counts
    if asked == 0:
        return "not run"
    if finished == 0:
        return "running" if running else "FAILED"
    return "missing" if n == 0 or pd.isna(mean) else mean + extra


def seeds(n, failed, running):
    notes = [f"{k} {what}" for k, what in ((failed, "failed"), (running, "running")) if k]
    return f"{n} ({', '.join(notes)})" if notes else str(n)


def per_config(table, columns, frameworks):
    """Config, seeds, and per framework test accuracy % (mean ± std over seeds) and mean fit time."""
    out = configs(table, columns)
    out["seeds"] = [seeds(*c) for c in zip(table["seeds"], table["failed"], table["running"])]
    for fw in frameworks:
        rows = table.to_dict("records")
        counts = [(r[f"{fw}_finished"], r[f"{fw}_acc_n"], r["running"], r[f"{fw}_asked"]) for r in rows]
        out[f"{fw} acc %"] = [_result(pct(r[f"{fw}_acc"]), "" if pd.isna(r[f"{fw}_acc_std"]) else
                                      f" ± {pct(r[f'{fw}_acc_std'])}", c) for r, c in zip(rows, counts)]
        out[f"{fw} fit s"] = [_result(sig3(r[f"{fw}_fit_s"]), "", (c[0], r[f"{fw}_fit_s_n"], *c[2:]))
                              for r, c in zip(rows, counts)]
    return out


SINGLE_MCNEMAR = "one seed: this run's test only"  # beside the McNemar p of an `inconclusive (n=1)` row
ADJUSTED = {"bh": "BH", "holm": "Holm", "none": "unadjusted"}  # the p-value columns' label per multiplicity


def _mcnemar(row):
    if not row["mcnemar_runs"]:
        return "n/a"
    if row["mcnemar_runs"] == 1:
        return pvalue(row["mcnemar_max"]) + (f" ({SINGLE_MCNEMAR})" if row["n"] == 1 else "")
    return f"≤ {pvalue(row['mcnemar_max'])} ({row['mcnemar_below']}/{row['mcnemar_runs']} < {stats.ALPHA:g})"


def verdicts(comparisons, table, columns, parity=None, *, multiplicity="bh", blas=None, kernel=None):
    """The verdict table: config, framework compared, seeds, Δacc (REFERENCE − other) with its CI, the
    adjusted p-values, the verdict, the seeds an inconclusive config would need for 80% power, McNemar's p
    (the largest over seeds, and how many are below ALPHA; for one seed, that run's test only), the parity
    check (when `parity`, the table of tables.parity, has a row), the time ratio (REFERENCE / other) with
    its CI, headed by the BLAS `kernel` when given, and `blas` ({config key: BLAS kernels}) as a column
    when given (the runs used several)."""
    merged = comparisons.merge(table, on=list(KEYS), how="left", suffixes=("", "_config"))
    if parity is not None and len(parity):
        merged = merged.merge(parity, on=[*KEYS, "vs"], how="left")
    out = configs(merged, columns)
    rows = merged.to_dict("records")
    out["vs"] = merged["vs"].tolist()
    out["seeds"] = merged["n"].astype(int).astype(str).tolist()
    out["Δacc pp"] = [pp(r["delta_pp"]) for r in rows]
    out["95% CI"] = [interval(r["delta_lo"], r["delta_hi"], pp) for r in rows]
    label = ADJUSTED[multiplicity]
    out[f"p diff ({label})"] = [pvalue(r["p_diff_adj"]) for r in rows]
    out[f"p equiv ({label})"] = [pvalue(r["p_tost_adj"]) for r in rows]
    out["verdict"] = ["n/a" if pd.isna(r["verdict"]) else r["verdict"] for r in rows]
    if "parity_seeds" in merged:
        out[PARITY_COLUMN] = [parity_cell(r) for r in rows]
    out["seeds for 80% power"] = ["" if r["verdict"] != stats.INCONCLUSIVE else
                                  f"> {MAX_SEEDS}" if pd.isna(r["seeds_80"]) else str(int(r["seeds_80"])) for r in rows]
    out["McNemar p"] = [_mcnemar(r) for r in rows]
    out["time ratio" + (f" ({kernel})" if kernel else "")] = [sig3(r["time_ratio"]) for r in rows]
    out["ratio 95% CI"] = [interval(r["ratio_lo"], r["ratio_hi"], sig3) for r in rows]
    if blas is not None:
        out["BLAS"] = [blas.get((r["experiment"], r["config_id"]), "not recorded") for r in rows]
    return out


def by_axis(pivot, axis):
    """A by-axis pivot as text: the axis value, then Δacc, time ratio and runs per framework compared."""
    out = pd.DataFrame({axis: [value_text(v) for v in pivot.index]})
    for column in pivot.columns:
        kind, other = column.rsplit("_vs_", 1)
        fmt = {"delta_pp": pp, "time_ratio": sig3}.get(kind, lambda v: str(int(v)) if pd.notna(v) else "0")
        title = {"delta_pp": f"Δacc pp vs {other}",
                 "time_ratio": f"time ratio vs {other}"}.get(kind, f"runs vs {other}")
        out[title] = [fmt(v) for v in pivot[column]]
    return out


def two_way(pivot):
    """Width × batch size as text, the width a plain first column."""
    out = pd.DataFrame({"width \\ batch size": [value_text(v) for v in pivot.index]})
    for column in pivot.columns:
        out[value_text(column)] = [sig3(v) for v in pivot[column]]
    return out


def per_class(tables):
    """{framework: per-class table} side by side: precision, recall and F1 in %, support."""
    out = pd.DataFrame({"class": next(iter(tables.values())).index.astype(str)})
    for fw, t in tables.items():
        for column in ("precision", "recall", "f1"):
            out[f"{fw} {column} %"] = [pct(v) for v in t[column]]
        out[f"{fw} support"] = t["support"].astype(str).tolist()
    return out


def mcnemar_runs(tests, pairs, columns):
    """Per run: its config, seed, the framework compared, b, c, test images and McNemar's p."""
    merged = tests.merge(pairs, on="run_id", how="left")
    out = configs(merged, columns)
    out["seed"] = merged["seed"].map(value_text).tolist()
    out["vs"] = merged["vs"].tolist()
    out[f"only {names.REFERENCE} right"] = merged["b"].astype(str).tolist()
    out["only other right"] = merged["c"].astype(str).tolist()
    out["test images"] = merged["n_test"].astype(str).tolist()
    out["McNemar p"] = [pvalue(p) for p in merged["p"]]
    return out


def unfinished(rows, columns, frameworks):
    """The failed and running runs: config, seed, run id, state, statuses and reasons."""
    out = configs(rows, columns)
    for column in ["seed", "run_id", "state", "status"] + [f"{fw}_status" for fw in frameworks] + ["reasons"]:
        out[column.replace("_", " ")] = rows[column].map(value_text).tolist()
    return out


def _find(table, best):
    return table[(table["experiment"] == best["experiment"]) & (table["config_id"] == best["config_id"])].iloc[0]


def per_config_advice(o):
    """The seeds the inconclusive configs of one framework pair would need (one line), or None."""
    n = o["verdicts"][stats.INCONCLUSIVE]
    if not n:
        return None
    if o["seeds_median"] != o["seeds_median"]:
        return f"{n} inconclusive: no number up to {MAX_SEEDS} seeds gives 80% power at their spread"
    median, top = int(math.ceil(o["seeds_median"])), int(o["seeds_max"])
    beyond = f", {o['unreachable']} beyond {MAX_SEEDS}" if o["unreachable"] else ""
    return (f"{n} inconclusive: a median of {median} seeds each (up to {top}{beyond}) would give 80% power; "
            f"run {command(median)}")


def seed_counts(s):
    """`3 per config (0, 1, 2)`, or `1–3 per config (...)` when configs have different numbers of seeds."""
    low, high = s["seeds_per_config"]
    values = ", ".join(map(str, s["seeds"])) or "n/a"
    return f"{low if low == high else f'{low}–{high}'} per config (train.seed={values.replace(' ', '')})"


def summary_lines(s, table, columns, margin_pp, *, multiplicity="bh", spreads=None):
    """The summary after the grid answer: per-config verdict counts with the seeds advice, the tests'
    settings and spread, parity, configs and seeds, fixed settings, execution settings, best configs."""
    lines = []
    for other, o in s["overview"].items():
        counts = ", ".join(f"{n} {v}" for v, n in o["verdicts"].items())
        lines.append(f"{names.REFERENCE} vs {other} per config: {counts} (of {o['configs']} configs)")
        advice = per_config_advice(o)
        lines += [f"{names.REFERENCE} vs {other} per config: {advice}"] if advice else []
    if s["overview"]:
        family = next(iter(s["overview"].values()))["family"]
        lines.append(f"verdicts: equivalence margin ±{margin_pp:g} pp, α = {stats.ALPHA:g}, " +
                     (f"p-values {stats.MULTIPLICITY[multiplicity]} over the {family} comparisons with ≥ 2 seeds"
                      " (see Method)" if family else
                      "no config has 2 seeds or more: run more seeds for a verdict (see Method)"))
        for other, found in (spreads or {}).items():
            lines.append(f"within-config spread vs {other}: Δacc {found['delta'].why}; "
                         f"log time ratio {found['ratio'].why}")
    else:
        lines.append(f"no comparison: no config has {names.REFERENCE} and another framework both finished")
    lines += parity_lines(s, table, columns)
    lines.append(f"configs: {s['configs']}; seeds: {seed_counts(s)}; runs: " +
                 ", ".join(f"{n} {state}" for state, n in s["runs"].items()) + "; failed runs: " +
                 (", ".join(f"{fw} {n}" for fw, n in s["failed_runs"].items()) or "none"))
    if s["fixed"]:
        lines.append("fixed: " + ", ".join(f"{k}={value_text(v)}" for k, v in s["fixed"].items()))
    for fw, found in s["settings"].items():
        lines.append(f"{fw} execution: " + ", ".join(f"{k}={'/'.join(v)}" for k, v in found.items()))
    for fw, best in s["best"].items():
        lines.append(f"best {fw}: {pct(best['acc'])}% ({label(_find(table, best).to_dict(), columns)})")
    return lines


def parity_lines(s, table, columns):
    """Per framework checked: how many configs, the largest deviation; then the configs flagged, if any."""
    lines = []
    for other, p in s["parity"].items():
        steps = f" over {'/'.join(map(str, p['steps']))} steps" if p["steps"] else ""
        lines.append(f"parity {names.REFERENCE} vs {other}: {p['checked']} of {s['configs']} configs checked{steps} "
                     f"from identical weights; largest relative loss deviation {sci2(p['largest'])} "
                     f"(bound {p['bound']:g})" + ("" if p["flagged"] else ": all within the bound"))
        if p["flagged"]:
            named = [f"{label(_find(table, f).to_dict(), columns)} ({sci2(f['parity_dev'])}" +
                     ("" if pd.isna(f["parity_step"]) else f", from step {int(f['parity_step'])}") + ")"
                     for f in p["flagged"]]
            lines.append(f"parity: {len(named)} config(s) where {other} parts from {names.REFERENCE} beyond "
                         f"{p['bound']:g}: " + "; ".join(named))
    return lines
