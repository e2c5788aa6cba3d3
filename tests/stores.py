"""Synthetic MLflow stores for the report tests: real sqlite stores in tmp folders, filled through
MlflowClient with parents and children whose answers are known."""

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag

from experiments import names
from harness import new_store as empty_store  # the one way to make a store; its older name here

# config: (depth, width, batch_size, lr) -> seeds: (scratchnn acc, keras acc, scratchnn fit, keras fit)
CONFIGS = {
    "A": ((1, 32, 32, 0.1), [(0.90, 0.91, 1.0, 4.0), (0.92, 0.91, 1.0, 1.0)]),
    "B": ((1, 64, 128, 0.1), [(0.95, 0.94, 2.0, 1.0)]),
    "C": ((2, 64, 32, 0.01), [("FAILED", 0.80, None, 3.0)]),  # scratchnn diverged
    "D": ((2, 32, 128, 0.01), [(None, 0.85, 1.0, 1.0)]),  # scratchnn finished without test/acc
}
DIVERGED = "TrainingDiverged: loss=nan"


def new_experiment(uri, name, root):
    """An experiment whose artifacts live under `root` (a tmp folder), never in ./mlruns of the project."""
    client = mlflow.MlflowClient(uri)
    return client, client.create_experiment(name, artifact_location=(root / "artifacts").as_uri())


def params(depth=1, width=32, batch=32, lr=0.1, seed=0, activation="relu"):
    """A child's and parent's params (the flattened config) under the names.CONFIG_PARAMS keys."""
    values = {"dataset": "mnist", "depth": depth, "width": width, "activation": activation, "batch_size": batch,
              "lr": lr, "optimizer": "sgd", "seed": seed}
    return {names.CONFIG_PARAMS[k]: v for k, v in values.items()}


def tmp_store(tmp_path, name):
    """(uri, client, experiment id) of a new store under tmp_path."""
    uri = empty_store(tmp_path)
    return (uri, *new_experiment(uri, name, tmp_path))


def _log(client, run_id, run_params, values, status):
    """*.csv keys are text artifacts, other str values tags, lists per-step metrics, numbers metrics;
    RUNNING leaves the run open."""
    metrics, tags = [], [RunTag(k, v) for k, v in values.items() if isinstance(v, str) and not k.endswith(".csv")]
    for key, value in values.items():
        if key.endswith(".csv"):
            client.log_text(run_id, value, key)
        elif not isinstance(value, str):
            metrics += [Metric(key, v, 0, step) for step, v in enumerate(value if isinstance(value, list) else [value])]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in run_params.items()], tags=tags)
    if status != "RUNNING":
        client.set_terminated(run_id, status)


def add_pair(client, experiment, run_params, children, status="FINISHED", **tags):
    """A parent (role=parent, `tags`) ending `status`, a child per {framework: (status, values)}; returns the ids."""
    ids = {"parent": client.create_run(experiment, tags={names.ROLE: names.ROLE_PARENT, **tags}).info.run_id}
    for fw, (child_status, values) in children.items():
        tags = {names.FRAMEWORK: fw, names.PARENT: ids["parent"]}
        ids[fw] = client.create_run(experiment, run_name=fw, tags=tags).info.run_id
        _log(client, ids[fw], run_params, values, child_status)
    _log(client, ids["parent"], run_params, {}, status)
    return ids


def done(acc, fit, **values):
    """A FINISHED child's (status, values); acc None: it never logged test/acc."""
    values = {names.TEST_ACC: acc, names.FIT_TIME: fit, names.EPOCH_TIME: fit / 2, **values}
    return "FINISHED", {k: v for k, v in values.items() if v is not None}


def make_store(uri, root):
    client, experiment = new_experiment(uri, "synthetic", root)
    for config_id, ((depth, width, batch, lr), seeds) in CONFIGS.items():
        for seed, (sn_acc, k_acc, sn_fit, k_fit) in enumerate(seeds):
            children = {fw: ("FAILED", {"failure_reason": DIVERGED}) if acc == "FAILED"
                        else done(acc, fit, **{names.EPOCH_METRICS["loss"]: [1.0, 0.5]})
                        for fw, acc, fit in (("scratchnn", sn_acc, sn_fit), ("keras", k_acc, k_fit))}
            ok = all(status == "FINISHED" for status, _ in children.values())
            ids = add_pair(client, experiment, params(depth, width, batch, lr, seed), children,
                           "FINISHED" if ok else "FAILED", config_id=config_id)
            if config_id == "B":
                for fw, C in (("scratchnn", [[5, 1], [2, 8]]), ("keras", [[6, 0], [1, 9]])):
                    client.log_text(ids[fw], "\n".join(",".join(map(str, r)) for r in C), names.CONFUSION)
    return experiment


N_TEST = 10_000
LABELS = np.arange(N_TEST) % 10
# config: (width, epochs, [(images scratchnn gets wrong, images keras gets wrong) per seed]); the wrong
# images are the first k, so the discordant pairs are exactly the difference
VERDICT_CONFIGS = {
    "same": (32, 2, [(200, 200), (200, 201), (200, 199)]),  # Δacc 0, +0.01, −0.01 pp: identical, then 1 image apart
    "gap": (64, 2, [(200, 400), (200, 410), (200, 390)]),  # Δacc 2.0, 2.1, 1.9 pp
    "single": (128, 1, [(200, 220)]),  # one seed
    "wide": (256, 2, [(200, 250), (200, 150), (200, 210)]),  # Δacc +0.5, −0.5, +0.1 pp: CI covers 0, wider than margin
}


def predictions_csv(wrong):
    """predictions.csv with the first `wrong` test images misclassified."""
    predicted = LABELS.copy()
    predicted[:wrong] = (LABELS[:wrong] + 1) % 10
    rows = "\n".join(f"{a},{b},0.9" for a, b in zip(LABELS, predicted))
    return "label,predicted,probability\n" + rows + "\n"


def child(wrong, fit):
    return done(1 - wrong / N_TEST, fit, **{names.PREDICTIONS: predictions_csv(wrong), "train/loss": [1.0, 0.5]})


def make_verdict_store(tmp_path, name="verdicts"):
    uri, client, experiment = tmp_store(tmp_path, name)
    for config_id, (width, epochs, seeds) in VERDICT_CONFIGS.items():
        for seed, (mine, theirs) in enumerate(seeds):
            add_pair(client, experiment, {**params(width=width, seed=seed), "train.epochs": epochs},
                     {"scratchnn": child(mine, 1.0 + seed / 10), "keras": child(theirs, 2.0)}, config_id=config_id)
    return uri


def synthetic_store(folder):
    """A new store in `folder` holding make_store's experiment "synthetic": configs A to D, one with a
    failed run, B with confusion matrices; returns its URI."""
    uri = empty_store(folder)
    make_store(uri, folder)
    return uri
