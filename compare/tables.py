"""Tables of numbers from the runs: per config (mean and std over seeds), the parity checks, by
sweep axis, width × batch size, the summary, failed runs and per-class scores. compare/display.py
turns them into text."""

import numpy as np
import pandas as pd

from experiments import names

from .runs import (
    PARITY_BOUND,
    PARITY_STEPS,
    config_columns,
    delta,
    frameworks,
    is_failure,
    others,
    parity_dev,
    parity_step,
    ratio,
    samples,
    settings,
)
from .verdicts import KEYS

PARITY = KEYS + ("vs", "parity_seeds", "parity_dev", "parity_step", "parity_steps", "parity_flagged")


def gmean(values):
    values = pd.Series(values, dtype=float).dropna()
    return float(np.exp(np.log(values).mean())) if len(values) else np.nan


def reasons(row):
    """Why a run (a row of the pairs, as a dict) failed: its parent's status, failed frameworks
    and reason, and each failed child's status and reason."""
    found = []
    for who in ["parent"] + [fw for fw in names.FRAMEWORKS if f"{fw}_status" in row]:
        status, reason = ((row["status"], row["reason"]) if who == "parent"
                          else (row[f"{who}_status"], row[f"{who}_reason"]))
        if is_failure(status):
            listed = row["failed_frameworks"] if who == "parent" and pd.notna(row["failed_frameworks"]) else None
            found.append(f"{who} {status}" + (f" ({listed} failed)" if listed else "") +
                         (f": {reason}" if pd.notna(reason) else ""))
    return found


def _positions(pairs):
    """Per config, in the order of its first run: the positions of its rows in `pairs`."""
    codes = pairs.groupby(list(KEYS), sort=False).ngroup().to_numpy(dtype=float)
    kept = np.flatnonzero(codes == codes)  # a run without a config key is in no config
    order = kept[np.argsort(codes[kept], kind="stable")]
    return np.split(order, np.cumsum(np.bincount(codes[kept].astype(int)))[:-1]) if len(kept) else []


def _failures(pairs):
    """{position: reasons} of the runs with a failed parent or child."""
    statuses = ["status"] + [f"{fw}_status" for fw in frameworks(pairs)]
    failed = np.flatnonzero(np.logical_or.reduce([pairs[c].map(is_failure).to_numpy(dtype=bool) for c in statuses]))
    needed = ["status", "reason", "failed_frameworks"] + [f"{fw}_reason" for fw in frameworks(pairs)] + statuses[1:]
    return dict(zip(failed, map(reasons, pairs.iloc[failed][needed].to_dict("records"))))


def _framework_values(pairs, fw):
    """A function of a config's positions giving its values of `fw` (as a Series of its seeds gives them)."""
    ok = samples(pairs, [fw]).to_numpy(dtype=bool)
    acc, fit = pairs[f"{fw}_acc"].astype(float).to_numpy(), pairs[f"{fw}_fit_s"].astype(float).to_numpy()
    listed = [not isinstance(v, str) or fw in v.split(",") for v in pairs["asked"]]
    asked = np.array(listed, dtype=bool) | pairs[f"{fw}_status"].notna().to_numpy(dtype=bool)

    def values(positions):
        mine = positions[ok[positions]]
        a, f = pd.Series(acc[mine]), pd.Series(fit[mine])
        return {f"{fw}_finished": len(mine), f"{fw}_asked": int(asked[positions].sum()),
                f"{fw}_acc": a.mean(), f"{fw}_acc_std": a.std() if a.count() > 1 else np.nan,
                f"{fw}_acc_n": int(a.count()), f"{fw}_fit_s": f.mean(), f"{fw}_fit_s_n": int(f.count())}
    return values


def per_config(pairs):
    """One row per config: experiment, config_id, settings, seeds (failed, running), failures, and per
    framework the mean and std of test accuracy, the mean fit time, how many seeds finished and how
    many were asked to run it (a parent's frameworks tag; every seed for runs from before the tag)."""
    settings_ = [c for c in names.CONFIG_PARAMS if c != "seed"] + [c for c in pairs.columns if "." in c]
    groups = _positions(pairs)
    columns = {c: pairs[c].array for c in (*KEYS, *settings_)}  # a cell as the column's own scalar
    firsts = [{c: values[g[0]] for c, values in columns.items()} for g in groups]
    failed, running = (pairs["state"] == "failed").to_numpy(), (pairs["state"] == "running").to_numpy()
    failures, per_fw = _failures(pairs), [_framework_values(pairs, fw) for fw in frameworks(pairs)]
    rows = []
    for positions, first in zip(groups, firsts):
        row = {**first, "seeds": len(positions), "failed": int(failed[positions].sum()),
               "running": int(running[positions].sum()),
               "failures": "; ".join(sorted({r for p in positions for r in failures.get(p, [])}))}
        for values in per_fw:
            row.update(values(positions))
        rows.append(row)
    return pd.DataFrame(rows)


def _checked(pairs, other, code):
    """Per config (its code) whose parity against `other` was checked on some seed: its checks' summary."""
    dev, step = pairs[parity_dev(other)].astype(float), pairs[parity_step(other)].astype(float)
    checked = (dev.notna() | step.notna()) & code.notna()
    mine = pd.DataFrame({"code": code, "experiment": pairs["experiment"], "config_id": pairs["config_id"],
                         "dev": dev.fillna(np.inf), "step": step, "steps": pairs[PARITY_STEPS]})[checked]
    return mine.groupby("code").agg(experiment=("experiment", "first"), config_id=("config_id", "first"),
                                    seeds=("dev", "size"), dev=("dev", "max"), step=("step", "min"),
                                    steps=("steps", "max"))


def parity(pairs, bound=PARITY_BOUND):
    """One row per config and framework compared whose parity was checked on some seed (whatever became
    of the training after it): seeds checked, the largest deviation over them, the first step over the
    bound (the earliest over seeds, as the runs logged it), the steps taken, and whether the config is
    flagged: a deviation not below `bound`. A deviation logged as NaN (a non-finite loss) counts as inf."""
    code = pairs.groupby(list(KEYS), sort=False).ngroup()  # configs in the order of their first run
    found = []
    for rank, other in enumerate(others(pairs)):
        for c, g in _checked(pairs, other, code).iterrows():  # only the configs checked
            found.append(((c, rank), {"experiment": g["experiment"], "config_id": g["config_id"], "vs": other,
                                      "parity_seeds": int(g["seeds"]), "parity_dev": float(g["dev"]),
                                      "parity_step": g["step"], "parity_steps": g["steps"],
                                      "parity_flagged": not float(g["dev"]) < bound}))
    return pd.DataFrame([row for _, row in sorted(found, key=lambda f: f[0])], columns=list(PARITY))


def _parity_overview(parity_, bound):
    """{framework compared: configs checked, the largest deviation, the steps taken, the flagged rows}."""
    return {other: {"checked": len(rows), "largest": rows["parity_dev"].max(), "bound": bound,
                    "steps": sorted(int(s) for s in rows["parity_steps"].dropna().unique()),
                    "flagged": rows[rows["parity_flagged"]].to_dict("records")}
            for other, rows in parity_.groupby("vs", sort=False)}


def pivots(pairs):
    """({axis: mean Δacc, geometric-mean time ratio and runs by each value} for every varying config
    key, {other framework: time ratio over width × batch size} when both vary)."""
    by_axis, two_way = {}, {}
    for axis in config_columns(pairs):
        parts = {}
        for other in others(pairs):
            ok = pairs[samples(pairs, [names.REFERENCE, other])]
            grouped = ok.groupby(axis)
            parts.update({delta(other): grouped[delta(other)].mean(), ratio(other): grouped[ratio(other)].agg(gmean),
                          f"runs_vs_{other}": grouped["run_id"].count()})
        if parts and any(len(part) for part in parts.values()):
            by_axis[axis] = pd.DataFrame(parts)
    if {"width", "batch_size"} <= set(config_columns(pairs)):
        for other in others(pairs):
            ok = pairs[samples(pairs, [names.REFERENCE, other])]
            two_way[other] = pd.pivot_table(ok, values=ratio(other), index="width", columns="batch_size", aggfunc=gmean)
    return by_axis, two_way


def _best(table, fw):
    column = f"{fw}_acc"
    if column not in table or not table[column].notna().any():
        return None
    row = table.loc[table[column].idxmax()]
    return {"experiment": row["experiment"], "config_id": row["config_id"], "acc": row[column]}


def _fixed(pairs):
    """The config keys (names.CONFIG_PARAMS, seed aside) with a single value in every run."""
    return {c: pairs[c].dropna().iloc[0] for c in names.CONFIG_PARAMS
            if c != "seed" and pairs[c].nunique(dropna=False) == 1 and pairs[c].notna().any()}


def summary(pairs, table, overview, *, parity_=None, bound=PARITY_BOUND):
    """Configs, the verdict overview, the parity checks (`parity_`: the `parity` table), best configs,
    fixed settings, failures and runs by state."""
    return {
        "configs": len(table),
        "frameworks": frameworks(pairs),
        "overview": overview,
        "parity": _parity_overview(parity_, bound) if parity_ is not None else {},
        "best": {fw: best for fw in frameworks(pairs) if (best := _best(table, fw))},
        "fixed": _fixed(pairs),
        "settings": settings(pairs),
        "seeds": sorted(pairs["seed"].dropna().astype(int).unique().tolist()),
        "seeds_per_config": (int(table["seeds"].min()), int(table["seeds"].max())) if len(table) else (0, 0),
        "failed_runs": {fw: int(pairs[f"{fw}_status"].map(is_failure).sum()) for fw in frameworks(pairs)},
        "runs": {state: int((pairs["state"] == state).sum()) for state in ("finished", "failed", "running", "pruned")},
    }


def unfinished(pairs):
    """The runs that failed or are still running (every column of the pairs), with their reasons."""
    rows = pairs[~pairs["state"].isin(("finished", "pruned"))].reset_index(drop=True)
    return rows.assign(reasons=["; ".join(reasons(record)) for record in rows.to_dict("records")])


def per_class(confusion):
    """Precision, recall and F1 per class from a confusion matrix C[true, predicted]."""
    C = np.asarray(confusion, dtype=float)
    tp = np.diag(C)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / C.sum(axis=0)
        recall = tp / C.sum(axis=1)
        f1 = 2 * precision * recall / (precision + recall)
    table = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": C.sum(axis=1).astype(int)})
    table.index.name = "class"
    return table
