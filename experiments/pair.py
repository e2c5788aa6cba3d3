"""train_pair(cfg): scratchnn and its Keras twin on the same data, timed alike, logged to MLflow.

MLflow layout: one parent run per config, with a child run per framework carrying identical
params (the flattened config). Seeds come from one np.random.SeedSequence(train.seed):
the validation split, scratchnn's weights, the batch order (one Generator per framework,
both from the same seed, so both see the same batches), Keras's weights and the warm-up model.
"""

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

import scratchnn as sn
from scratchnn import datasets, preprocessing as pp

from . import artifacts, keras_twin, tracking
from .config import optimizer_label, validate
from .lifecycle import CONFIG_HASH, CONFIG_ID, FAILED_FRAMEWORKS, FRAMEWORK, JOB, ROLE, Recorder, reason


class ExperimentFailed(RuntimeError):
    """At least one framework failed; its child run is FAILED with a failure_reason tag."""


def prepare_data(cfg, seed_sequence):
    """Flattened [0, 1] float32 images and int64 labels: train, validation (or None) and test."""
    (X, y), (Xt, yt) = datasets.load_mnist(cfg.data.name, data_dir=cfg.data.dir)
    X, Xt = pp.scale(pp.flatten(X)), pp.scale(pp.flatten(Xt))
    (X, y), (Xv, yv) = pp.train_val_split(X, y.astype(np.int64), cfg.data.val_size, np.random.default_rng(seed_sequence))
    n_train, n_test = cfg.data.train_size or len(X), cfg.data.test_size or len(Xt)
    return {"train": (X[:n_train], y[:n_train]), "val": (Xv, yv) if len(Xv) else None,
            "test": (Xt[:n_test], yt[:n_test].astype(np.int64)), "n_out": 10}


def build_scratchnn(cfg, seed_sequence, input_dim=784, n_out=10):
    m = cfg.model
    return sn.mlp(input_dim, m.depth, m.width, n_out, m.activation, "softmax", m.init, m.dropout, m.l2,
                  optimizer=instantiate(cfg.optimizer), rng=np.random.default_rng(seed_sequence))


def _history(logs_per_epoch):
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time")
    return {k: [logs.get(k, float("nan")) for logs in logs_per_epoch] for k in keys}


def _finish(model_eval, model_predict, Xt):
    """(test metrics, probabilities): evaluate, then time one predict call."""
    test_loss, test_acc = model_eval()
    start = time.perf_counter()
    probabilities = model_predict(Xt)
    return {"test/loss": test_loss, "test/acc": test_acc, "predict_time_s": time.perf_counter() - start}, probabilities


def run_scratchnn(job, net, on_epoch_end):
    from threadpoolctl import threadpool_limits

    cfg, data, seeds = job.cfg, job.data, job.seeds
    (X, y), (Xt, yt), M = data["train"], data["test"], cfg.train.batch_size
    with threadpool_limits(limits=cfg.train.threads, user_api="blas"):
        start = time.perf_counter()
        if cfg.train.warmup_steps:  # a throwaway twin, so the timed model is untouched
            n = min(len(X), cfg.train.warmup_steps * M)
            build_scratchnn(cfg, seeds["warmup"]).fit(X[:n], y[:n], 1, M, data["val"], shuffle=False, verbose=False)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        history = net.fit(X, y, cfg.train.epochs, M, data["val"], shuffle=np.random.default_rng(seeds["order"]),
                          verbose=cfg.train.verbose, on_epoch_end=on_epoch_end, max_loss=cfg.train.max_loss)
        fit_time = time.perf_counter() - start
        metrics, probabilities = _finish(lambda: net.evaluate(Xt, yt), net.predict, Xt)
    return history, probabilities, {**metrics, "fit_time_s": fit_time, "warmup_time_s": warmup}


def run_keras(job, model, on_epoch_end):
    cfg, data = job.cfg, job.data
    (X, y), (Xt, yt), M = data["train"], data["test"], cfg.train.batch_size
    start = time.perf_counter()
    keras_twin.warm_up(model, X, y, M, cfg.train.warmup_steps)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    logs = keras_twin.fit(model, X, y, cfg.train.epochs, M, np.random.default_rng(job.seeds["order"]), data["val"],
                          on_epoch_end=on_epoch_end, max_loss=cfg.train.max_loss)
    fit_time = time.perf_counter() - start
    metrics, probabilities = _finish(lambda: model.evaluate(Xt, yt, batch_size=4096, verbose=0),
                                     lambda X_: model.predict(X_, batch_size=4096, verbose=0), Xt)
    return _history(logs), probabilities, {**metrics, "fit_time_s": fit_time, "warmup_time_s": warmup}


def parity_check(cfg, data, net, model, seeds):
    """Copies of both models from net's weights, trained parity_steps identical batches with
    train_on_batch. Returns both per-step loss sequences (the loss before each step)."""
    import keras

    ours = build_scratchnn(cfg, seeds["warmup"])
    ours.set_weights(net.get_weights())
    theirs = keras.models.clone_model(model)
    theirs.set_weights(net.get_weights())
    theirs.compile(optimizer=keras_twin.optimizer(cfg.optimizer), loss="sparse_categorical_crossentropy")
    (X, y), M = data["train"], cfg.train.batch_size
    rng, order, losses = np.random.default_rng(seeds["order"]), np.array([], dtype=np.int64), []
    for step in range(cfg.parity_steps):
        if len(order) < M:
            order = np.concatenate([order, rng.permutation(len(X))])
        batch, order = order[:M], order[M:]
        theirs_loss = theirs.train_on_batch(X[batch], y[batch], return_dict=True)["loss"]
        losses.append((ours.train_on_batch(X[batch], y[batch]), float(theirs_loss)))
    return np.array(losses)


PARITY_BOUND = 1e-5  # the largest relative per-step loss deviation the parity tests accept
EPOCH_METRICS = {"loss": "train/loss", "accuracy": "train/acc", "val_loss": "val/loss",
                 "val_accuracy": "val/acc", "epoch_time": "epoch_time_s"}


@dataclass
class Job:
    """What every framework's run of one config shares."""
    cfg: Any
    data: dict
    seeds: dict
    params: dict
    recorder: Recorder


def _epoch_logger(recorder, run_id):
    """Per-epoch metrics under the names the reports use; NaN (no validation set) is left out."""
    def log(epoch, logs):
        recorder.log_metrics(run_id, {EPOCH_METRICS[k]: v for k, v in logs.items() if k in EPOCH_METRICS and v == v},
                             step=epoch)
    return log


def _run_child(job, parent_id, framework, model):
    """One child run: train, log metrics, weights and predictions; returns (history, metrics)."""
    runner = {"scratchnn": run_scratchnn, "keras": run_keras}[framework]
    with job.recorder.run(framework, {FRAMEWORK: framework}, parent_id=parent_id) as run_id:
        job.recorder.log_params(run_id, job.params)
        history, probabilities, metrics = runner(job, model, _epoch_logger(job.recorder, run_id))
        job.recorder.log_metrics(run_id, metrics)
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.save_predictions(Path(tmp), job.data["test"][1], probabilities)
            model.save(Path(tmp) / ("model.npz" if framework == "scratchnn" else "model.keras"))
            job.recorder.log_artifacts(run_id, tmp)
    return history, metrics


def _setup(cfg, seeds):
    """Data, the models and the thread settings in force; raises before any training."""
    data = prepare_data(cfg, seeds["split"])
    validate(cfg, n_train=len(data["train"][0]))
    thread_tags = {"threads": cfg.train.threads}
    if "keras" in cfg.frameworks:
        thread_tags.update(keras_twin.import_tensorflow(cfg.train.threads))
    models = {"scratchnn": build_scratchnn(cfg, seeds["init"])}
    if "keras" in cfg.frameworks:
        models["keras"] = keras_twin.build(cfg, 784, data["n_out"], seeds["keras"])
    if cfg.parity:
        models["keras"].set_weights(models["scratchnn"].get_weights())
    return data, models, thread_tags


def _log_parity(job, parent_id, models):
    losses = parity_check(job.cfg, job.data, models["scratchnn"], models["keras"], job.seeds)
    deviation = float(np.max(np.abs(losses[:, 0] - losses[:, 1]) / np.abs(losses[:, 1])))
    job.recorder.log_metrics(parent_id, {"parity/max_rel_loss_dev": deviation})
    verdict = "pass" if deviation < PARITY_BOUND else "FAIL"
    print(f"parity: largest relative loss deviation over {len(losses)} steps {deviation:.2e} "
          f"(bound {PARITY_BOUND:.0e}): {verdict}", flush=True)
    job.recorder.log_text(parent_id, "step,scratchnn,keras\n" + "\n".join(
        f"{i + 1},{a!r},{b!r}" for i, (a, b) in enumerate(losses)), "parity_losses.csv")


def _pair_metrics(results):
    """The parent's metrics: each framework's final figures, and Δacc and time ratio of the pair."""
    metrics = {f"{fw}/{k}": v for fw, (_, m) in results.items() for k, v in m.items()}
    metrics.update({f"{fw}/val_acc": h["val_accuracy"][-1] for fw, (h, _) in results.items()
                    if h["val_accuracy"] and h["val_accuracy"][-1] == h["val_accuracy"][-1]})
    if len(results) == 2:
        metrics["acc_delta_pp"] = 100 * (metrics["scratchnn/test/acc"] - metrics["keras/test/acc"])
        metrics["time_ratio"] = metrics["scratchnn/fit_time_s"] / metrics["keras/fit_time_s"]
    return metrics


def _train_under(job, parent_id, name):
    """Everything inside the parent run; raises ExperimentFailed if a framework failed."""
    cfg, recorder = job.cfg, job.recorder
    recorder.log_params(parent_id, job.params)
    recorder.log_text(parent_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    job.data, models, thread_tags = _setup(cfg, job.seeds)
    recorder.set_tags(parent_id, thread_tags)
    if cfg.parity:
        _log_parity(job, parent_id, models)
    results, failures = {}, {}
    for framework in cfg.frameworks:
        try:
            results[framework] = _run_child(job, parent_id, framework, models[framework])
        except sn.TrainingDiverged as exc:
            failures[framework] = reason(exc)
    metrics = _pair_metrics(results)
    recorder.log_metrics(parent_id, {k: v for k, v in metrics.items() if not k.endswith("warmup_time_s")})
    if results:
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.learning_curves(Path(tmp) / "learning_curves.png", {fw: h for fw, (h, _) in results.items()}, name)
            recorder.log_artifacts(parent_id, tmp)
    if failures:
        recorder.set_tags(parent_id, {FAILED_FRAMEWORKS: ",".join(failures)})
        raise ExperimentFailed("; ".join(f"{fw} failed: {why}" for fw, why in failures.items()))
    return metrics


def train_pair(cfg, *, name=None, job_id="", skip_finished=False):
    """Train and log every framework of `cfg` under one parent run; returns the parent's metrics.

    Raises ConfigError for a bad value before any run is opened. Any failure after that ends
    the parent FAILED (KILLED on a signal) with its reason; ExperimentFailed means a framework
    diverged, after its child was logged FAILED. With `skip_finished` (sweeps), a config that is
    complete, or live in another process, is not run: returns {"skipped": ..., "parent_run_id": ...}."""
    name = name or cfg.mlflow.run_name or "default"
    validate(cfg)
    seeds = dict(zip(("split", "init", "order", "keras", "warmup"), np.random.SeedSequence(cfg.train.seed).spawn(5)))
    config_hash, config_id = tracking.config_hashes(cfg)
    client, experiment_id = tracking.connect(cfg.mlflow)
    tags = {CONFIG_HASH: config_hash, CONFIG_ID: config_id, JOB: job_id, **tracking.environment_tags()}
    with Recorder(client, experiment_id, tags, cfg.mlflow.heartbeat_s) as recorder:
        done = tracking.complete_parent(client, experiment_id, config_hash) if skip_finished else None
        if done is not None:
            return _skipped(name, done, "already FINISHED")
        with recorder.run(name, {ROLE: "parent", tracking.FRAMEWORKS_TAG: ",".join(cfg.frameworks)}) as parent_id:
            holder = tracking.claim(client, experiment_id, config_hash, mine=parent_id,
                                    stale_after_s=cfg.mlflow.stale_after_s) if skip_finished else None
            if holder is not None:
                recorder.withdraw(parent_id)
                why = "already FINISHED" if holder.info.status == "FINISHED" else "running elsewhere"
                return _skipped(name, holder, why)
            params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))
            params["optimizer.name"] = optimizer_label(cfg.optimizer)
            metrics = _train_under(Job(cfg, {}, seeds, params, recorder), parent_id, name)
    metrics["parent_run_id"] = parent_id
    print(summary_line(metrics, cfg.mlflow.tracking_uri), flush=True)
    return metrics


def _skipped(name, run, why):
    print(f"skipped: {name} {why} as run {run.info.run_id} (rerun=true runs it again)", flush=True)
    return {"skipped": why, "parent_run_id": run.info.run_id, **run.data.metrics}


def view_hint(tracking_uri):
    """A command that opens the runs as printed, venv active or not, and the page to open."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"view: open {tracking_uri}"
    script = Path(sys.executable).with_name("mlflow")
    command = str(script) if script.exists() else f"{sys.executable} -m mlflow"
    return f"view: {command} ui --backend-store-uri {tracking_uri}, then open http://127.0.0.1:5000"


def summary_line(metrics, tracking_uri):
    parts = [f"{fw} test acc {metrics[f'{fw}/test/acc']:.2%}" for fw in ("scratchnn", "keras") if f"{fw}/test/acc" in metrics]
    if "acc_delta_pp" in metrics:
        parts += [f"delta {metrics['acc_delta_pp']:+.2f} pp", f"time ratio (scratchnn/keras) {metrics['time_ratio']:.2f}"]
    return " | ".join(parts + [view_hint(tracking_uri)])
