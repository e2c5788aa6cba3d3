"""Tables from the paired runs: per config (mean ± std over seeds), pivots, summary, per class."""

import numpy as np
import pandas as pd

from .runs import CONFIG_COLUMNS, FRAMEWORKS, is_failure, samples

AXES = ["depth", "width", "activation", "batch_size", "lr", "optimizer"]
VALUES = {  # per-config column: (pair column, how to average over seeds)
    "scratchnn_acc": ("scratchnn_acc", "mean"), "keras_acc": ("keras_acc", "mean"),
    "delta_pp": ("delta_pp", "mean"), "scratchnn_fit_s": ("scratchnn_fit_s", "mean"),
    "keras_fit_s": ("keras_fit_s", "mean"), "time_ratio": ("time_ratio", "gmean"),
    "epoch_ratio": ("epoch_ratio", "gmean"),
}


def gmean(values):
    values = pd.Series(values, dtype=float).dropna()
    return float(np.exp(np.log(values).mean())) if len(values) else np.nan


def _ok(pairs, fw=None):
    return samples(pairs, [fw] if fw else FRAMEWORKS)


def reasons(row):
    """Why a paired run (a row of the pairs, as a dict) failed: its parent's status, failed frameworks
    and reason, and each failed child's status and reason."""
    found = []
    for who, status, reason in [("parent", row["status"], row["reason"])] + [
            (fw, row[f"{fw}_status"], row[f"{fw}_reason"]) for fw in FRAMEWORKS]:
        if is_failure(status):
            listed = row["failed_frameworks"] if who == "parent" and pd.notna(row["failed_frameworks"]) else None
            found.append(f"{who} {status}" + (f" ({listed} failed)" if listed else "") +
                         (f": {reason}" if pd.notna(reason) else ""))
    return found


def per_config(pairs):
    """One row per config: its settings, seeds (failed, running), failures, and mean and std of each value."""
    rows = []
    for config_id, group in pairs.groupby("config_id", sort=False):
        row = {c: group[c].iloc[0] for c in CONFIG_COLUMNS}
        row.update(config_id=config_id, seeds=len(group), failed=int((group["state"] == "failed").sum()),
                   running=int((group["state"] == "running").sum()))
        row["failures"] = "; ".join(sorted({r for record in group.to_dict("records") for r in reasons(record)}))
        for name, (column, how) in VALUES.items():
            fw = name.split("_")[0] if name.split("_")[0] in FRAMEWORKS else None
            values = group.loc[_ok(group, fw), column].astype(float)
            row[f"{name}_finished"] = len(values)
            row[f"{name}_n"] = int(values.notna().sum())
            row[name] = gmean(values) if how == "gmean" else values.mean()
            row[f"{name}_std"] = values.std() if values.notna().sum() > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean, std, n, finished, running, scale=1.0, digits=2):
    if finished == 0:
        return "running" if running else "FAILED"
    if n == 0 or pd.isna(mean):
        return "missing"
    text = f"{mean * scale:.{digits}f}"
    return text + (f" ± {std * scale:.{digits}f}" if pd.notna(std) else "")


def _seeds(n, failed, running):
    notes = [f"{k} {what}" for k, what in ((failed, "failed"), (running, "running")) if k]
    return f"{n} ({', '.join(notes)})" if notes else str(n)


def display(table):
    """The per-config table as text cells: mean ± std, `running` where no seed finished yet but one
    is running, FAILED where none finished, missing where the metric was never logged."""
    out = table[CONFIG_COLUMNS].copy()
    out["seeds"] = [_seeds(*counts) for counts in zip(table["seeds"], table["failed"], table["running"])]
    formats = {"scratchnn_acc": ("scratchnn acc %", 100, 2), "keras_acc": ("keras acc %", 100, 2),
               "delta_pp": ("Δacc pp", 1, 2), "scratchnn_fit_s": ("scratchnn fit s", 1, 2),
               "keras_fit_s": ("keras fit s", 1, 2), "time_ratio": ("time ratio", 1, 3),
               "epoch_ratio": ("epoch ratio", 1, 3)}
    for name, (label, scale, digits) in formats.items():
        out[label] = [_cell(m, s, n, f, r, scale, digits) for m, s, n, f, r in
                      zip(table[name], table[f"{name}_std"], table[f"{name}_n"], table[f"{name}_finished"],
                          table["running"])]
    return out


def pivots(pairs):
    """Mean Δacc and geometric-mean time ratio by each sweep axis, and width × batch size."""
    ok = pairs[_ok(pairs)]
    by_axis = {axis: ok.groupby(axis).agg(delta_pp=("delta_pp", "mean"), time_ratio_gmean=("time_ratio", gmean),
                                          runs=("run_id", "count"))
               for axis in AXES if ok[axis].nunique() > 1}
    two_way = pd.pivot_table(ok, values="time_ratio", index="width", columns="batch_size", aggfunc=gmean)
    return by_axis, two_way


def summary(pairs, table):
    """Shares, best configs, the Δacc distribution, failed runs per framework, and paired runs by state."""
    done = table[table["time_ratio_n"] > 0]
    with_delta = table[table["delta_pp_n"] > 0]
    best = {}
    for fw in FRAMEWORKS:
        column = f"{fw}_acc"
        if table[column].notna().any():
            row = table.loc[table[column].idxmax()]
            best[fw] = {**{c: row[c] for c in CONFIG_COLUMNS}, "acc": row[column], "config_id": row["config_id"]}
    return {
        "configs": len(table),
        "paired_configs": len(done),
        "share_faster": float((done["time_ratio"] < 1).mean()) if len(done) else np.nan,
        "share_at_least_as_accurate": float((with_delta["delta_pp"] >= 0).mean()) if len(with_delta) else np.nan,
        "best": best,
        "delta_distribution": with_delta["delta_pp"].describe().to_dict(),
        "failed_runs": {fw: int(pairs[f"{fw}_status"].map(is_failure).sum()) for fw in FRAMEWORKS},
        "paired_runs": {state: int((pairs["state"] == state).sum()) for state in ("finished", "failed", "running")},
    }


def unfinished(pairs):
    """The paired runs that failed or are still running, with their statuses and reasons."""
    rows = pairs[pairs["state"] != "finished"]
    out = rows[["config_id", "seed", "run_id", "state", "status"] + [f"{fw}_status" for fw in FRAMEWORKS]].copy()
    out["reasons"] = ["; ".join(reasons(record)) for record in rows.to_dict("records")]
    return out.reset_index(drop=True)


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
