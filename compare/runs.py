"""Load an experiment's runs from MLflow into one row per paired run (parent).

`load_pairs` returns a DataFrame with the config columns (params cast back to their
types), `config_id` (same for seeds of one config), the parent's `status`, `reason` and
`failed_frameworks`, `state`, and per framework
`<fw>_acc`, `<fw>_loss`, `<fw>_fit_s`, `<fw>_epoch_s`, `<fw>_status`, `<fw>_reason`.
Runs from before a key existed get NaN there, never a KeyError.

A row is a seed sample for some frameworks (`samples`) only if the parent and those children
FINISHED. `state` says what became of the whole paired run: "failed" (the parent or a child
FAILED, KILLED or went STALE), else "running" (the parent or a child still RUNNING), else
"finished". STALE is a RUNNING run whose `heartbeat` tag (its start for runs from before
heartbeats) is older than `stale_after_s`: the process that ran it is gone.
"""

import functools
import operator
import time

import mlflow
import numpy as np
import pandas as pd

FRAMEWORKS = ("scratchnn", "keras")
LIVE = ("RUNNING", "SCHEDULED")
STALE_AFTER_S = 300.0  # ten missed heartbeats (runs refresh theirs every ~30 s)
CONFIG = {  # column: (param, type)
    "dataset": ("data.name", str), "depth": ("model.depth", int), "width": ("model.width", int),
    "activation": ("model.activation", str), "batch_size": ("train.batch_size", int),
    "lr": ("optimizer.lr", float), "optimizer": ("optimizer.name", str), "epochs": ("train.epochs", int),
    "seed": ("train.seed", int),
}
CONFIG_COLUMNS = ["dataset", "depth", "width", "activation", "batch_size", "lr", "optimizer"]
METRICS = {"acc": "test/acc", "loss": "test/loss", "fit_s": "fit_time_s", "epoch_s": "epoch_time_s"}


class ReportError(RuntimeError):
    """The experiment is missing, empty, or holds no paired runs; the message says which."""


def search(experiment, tracking_uri=None):
    """All runs of `experiment` as mlflow.search_runs gives them, report runs left out."""
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"no experiment named {experiment!r} in {client.tracking_uri}; there are: {names}")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    df = mlflow.search_runs([found.experiment_id], max_results=100000)
    if df.empty:
        raise ReportError(f"experiment {experiment!r} has no runs")
    for column in ("tags.role", "tags.framework", "tags.mlflow.parentRunId", "tags.failure_reason", "tags.config_id",
                   "tags.failed_frameworks", "tags.heartbeat"):
        if column not in df:
            df[column] = pd.Series(np.nan, index=df.index, dtype=object)
    return df[df["tags.role"] != "report"]


def _cast(series, kind):
    if kind is str:
        return series.astype("string")
    return pd.to_numeric(series, errors="coerce").astype("Int64" if kind is int else float)


def is_failure(status):
    """FAILED, KILLED, STALE: any status but FINISHED and the live ones (and no run at all)."""
    return isinstance(status, str) and status not in ("FINISHED",) + LIVE


def samples(rows, frameworks=FRAMEWORKS):
    """The rows that count as seed samples for `frameworks`: the parent and those children FINISHED."""
    return functools.reduce(operator.and_, [rows[f"{fw}_status"] == "FINISHED" for fw in frameworks],
                            rows["status"] == "FINISHED")


def with_liveness(df, now=None, stale_after_s=STALE_AFTER_S):
    """`df` with RUNNING runs silent for longer than `stale_after_s` as STALE, with a reason."""
    started = (df["start_time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    beat = pd.to_numeric(df["tags.heartbeat"], errors="coerce").fillna(started)
    silent = (time.time() if now is None else now) - beat
    stale = (df["status"] == "RUNNING") & (silent > stale_after_s)
    df = df.copy()
    df.loc[stale, "status"] = "STALE"
    df.loc[stale, "tags.failure_reason"] = df.loc[stale, "tags.failure_reason"].fillna(
        silent[stale].map(lambda s: f"no heartbeat for {s:.0f} s: the process running it is gone"))
    return df


def load_pairs(df, now=None, stale_after_s=STALE_AFTER_S):
    """One row per parent run with both frameworks' results beside its config."""
    df = with_liveness(df, now, stale_after_s)
    children = df[df["tags.framework"].isin(FRAMEWORKS)]
    parents = df[df["tags.framework"].isna() & df["tags.mlflow.parentRunId"].isna()]
    if parents.empty:
        raise ReportError("no paired runs (parent runs with scratchnn/keras children) in this experiment")
    rows = pd.DataFrame({"run_id": parents.run_id.values, "status": parents.status.values,
                         "reason": parents["tags.failure_reason"].values,
                         "failed_frameworks": parents["tags.failed_frameworks"].values})
    for column, (param, kind) in CONFIG.items():
        values = parents.get(f"params.{param}")
        if values is None or values.isna().all():  # older runs kept params on the children only
            by_parent = children.drop_duplicates("tags.mlflow.parentRunId").set_index("tags.mlflow.parentRunId")
            values = by_parent.get(f"params.{param}", pd.Series(dtype=object)).reindex(parents.run_id)
        rows[column] = _cast(pd.Series(np.asarray(values, dtype=object)), kind)
    config_id = parents["tags.config_id"].values
    fallback = rows[CONFIG_COLUMNS].astype(str).agg("|".join, axis=1)
    rows["config_id"] = np.where(pd.isna(config_id), fallback, config_id)
    for fw in FRAMEWORKS:
        mine = children[children["tags.framework"] == fw].set_index("tags.mlflow.parentRunId")
        mine = mine[~mine.index.duplicated(keep="last")].reindex(rows.run_id)
        rows[f"{fw}_status"] = mine["status"].values
        rows[f"{fw}_reason"] = mine["tags.failure_reason"].values
        for name, metric in METRICS.items():
            rows[f"{fw}_{name}"] = mine[f"metrics.{metric}"].values if f"metrics.{metric}" in mine else np.nan
    statuses = [rows["status"]] + [rows[f"{fw}_status"] for fw in FRAMEWORKS]
    failed = functools.reduce(operator.or_, [s.map(is_failure) for s in statuses])
    running = functools.reduce(operator.or_, [s.isin(LIVE) for s in statuses])
    rows["state"] = np.select([failed, running], ["failed", "running"], "finished")
    finished = samples(rows)
    rows["delta_pp"] = np.where(finished, 100 * (rows["scratchnn_acc"] - rows["keras_acc"]), np.nan)
    rows["time_ratio"] = np.where(finished, rows["scratchnn_fit_s"] / rows["keras_fit_s"], np.nan)
    rows["epoch_ratio"] = np.where(finished, rows["scratchnn_epoch_s"] / rows["keras_epoch_s"], np.nan)
    return rows
