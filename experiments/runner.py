"""train_config(cfg): every framework of `cfg.frameworks` on the same data, timed alike, logged to MLflow.

MLflow layout (names in experiments/names.py): one parent run per config, with a child run per
framework carrying identical params (the flattened config) plus the framework's own. Seeds come
from one np.random.SeedSequence(train.seed): the validation split, each framework's weights and
the batch order (one Generator per framework, all from the same seed, so all see the same batches).
"""

import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

import scratchnn as sn
from scratchnn import datasets

from . import artifacts, blas, claims, data_cache, frameworks, mlflow_ui, names, pairing, parity, pruning, tracking
from .config import optimizer_label, parity_on, validate
from .errors import reason
from .recorder import Recorder
from .summary import summary_line

SEEDS = ("split", "scratchnn", "order", "keras", "warmup", "torch")  # spawn order: never reorder, only append


class ExperimentFailed(RuntimeError):
    """At least one framework failed; its child run is FAILED with a failure_reason tag."""


def prepare_data(cfg, seed_sequence, *, warn=True):
    """Flattened [0, 1] float32 images and int64 labels: train, validation (or None) and test
    (data_cache.prepare: in a job forked from the forkserver, the sets it prepared if the job's
    config splits the data as the request did). Unverified data files
    are named in one `warning:` line on stderr if `warn`."""
    _, caught = data_cache.load(cfg.data.name, cfg.data.dir)
    for w in caught:
        if not issubclass(w.category, datasets.UnverifiedDataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif warn:
            print(f"warning: {w.message}", file=sys.stderr, flush=True)
    return data_cache.prepare(cfg.data.name, cfg.data.dir, split_of(cfg, seed_sequence))


def split_of(cfg, seed_sequence):
    """How prepare_data splits and cuts the data (data_cache.prepare's `split`)."""
    d = cfg.data
    return data_cache.Split(val_size=d.val_size, train_size=d.train_size, test_size=d.test_size,
                            entropy=seed_sequence.entropy, spawn_key=tuple(seed_sequence.spawn_key))


def seeds_of(cfg):
    return dict(zip(SEEDS, np.random.SeedSequence(cfg.train.seed).spawn(len(SEEDS))))


def preload(cfg):
    """Modules the forkserver imports once for every job it forks: this one, the frameworks, what
    MLflow's sqlite store and the learning-curve plot import lazily, and the data, decoded and
    prepared as this config splits it (the first request of the process wins: data_cache)."""
    data_cache.request(cfg.data.name, cfg.data.dir, split_of(cfg, seeds_of(cfg)["split"]))
    return [__name__, *frameworks.preload(cfg.frameworks), "mlflow.store.tracking.sqlalchemy_store",
            "matplotlib.pyplot", data_cache.__name__, *(pruning.PRELOAD if cfg.search.trial is not None else ())]


def build(cfg, framework, seed_sequence, n_out=10):
    """The model of `framework` for this config (its module configured first)."""
    return frameworks.get(framework)(cfg, seed_sequence, 784, n_out)


@dataclass(kw_only=True)
class Job:
    """What every framework's run of one config shares."""
    cfg: Any
    data: dict
    seeds: dict
    params: dict
    recorder: Recorder
    warn_data: bool = True
    predicted: dict = field(default_factory=dict)  # {framework: predicted test classes}, for pairing.metrics
    inputs: list = field(default_factory=list)  # the data sets as MLflow dataset inputs (mlflow_ui), for every run
    child_runs: dict = field(default_factory=dict)  # framework -> its child run's id


def _epoch_logger(job, run_id, framework):
    """Per-epoch metrics under the names the reports use (NaN, no validation set, left out), and one
    line per epoch on the terminal when train.verbose."""
    epochs = job.cfg.train.epochs
    report = pruning.reporter(job.cfg, framework)  # a search's trial: each epoch's val acc, pruned or not

    def log(epoch, logs):
        job.recorder.log_metrics(run_id, {names.EPOCH_METRICS[k]: v for k, v in logs.items()
                                          if k in names.EPOCH_METRICS and v == v}, step=epoch)
        if job.cfg.train.verbose:
            val = (f", val acc {logs['val_accuracy']:.2%}"
                   if logs.get("val_accuracy", np.nan) == logs.get("val_accuracy") else "")
            print(f"{framework:>9} epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, acc {logs['accuracy']:.2%}"
                  f"{val}, {logs['epoch_time']:.2f} s", flush=True)
        if report is not None:
            report(epoch, logs)
    return log


def _timed(job, model, on_epoch_end):
    """Warm up, fit, evaluate and predict; returns (history, probabilities, final metrics)."""
    (Xt, yt) = job.data["test"]
    start = time.perf_counter()
    model.warm_up(job.data)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(job.data, np.random.default_rng(job.seeds["order"]), on_epoch_end)
    fit_time = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(Xt, yt)
    start = time.perf_counter()
    probabilities = model.predict(Xt)
    return history, probabilities, {names.TEST_LOSS: test_loss, names.TEST_ACC: test_acc, names.FIT_TIME: fit_time,
                                    names.WARMUP_TIME: warmup, names.PREDICT_TIME: time.perf_counter() - start}


def _run_child(job, parent_id, model):
    """One child run: train, log metrics, the saved model and predictions; returns (history, metrics)."""
    with job.recorder.run(model.name, {names.FRAMEWORK: model.name}, parent_id=parent_id) as run_id:
        job.recorder.log_params(run_id, {**job.params, **model.params()})
        job.child_runs[model.name] = run_id
        mlflow_ui.log_inputs(job.recorder.client, run_id, job.inputs)
        history, probabilities, metrics = _timed(job, model, _epoch_logger(job, run_id, model.name))
        job.recorder.log_metrics(run_id, metrics)
        job.predicted[model.name] = probabilities.argmax(axis=1)
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.save_predictions(Path(tmp), job.data["test"][1], probabilities)
            model.save(Path(tmp) / model.model_file)
            job.recorder.log_artifacts(run_id, tmp)
    return history, metrics


def _setup(job):
    """Data, every framework configured (threads) and its model built; raises before any training."""
    cfg = job.cfg
    job.data = prepare_data(cfg, job.seeds["split"], warn=job.warn_data)
    job.inputs = mlflow_ui.dataset_inputs(job.data, cfg.data.name)
    validate(cfg, n_train=len(job.data["train"][0]))
    tags = {"threads": cfg.train.threads}
    for fw in cfg.frameworks:
        tags.update(frameworks.get(fw).configure(cfg))
    models = {fw: build(cfg, fw, job.seeds[fw], job.data["n_out"]) for fw in cfg.frameworks}
    if parity_on(cfg):
        weights = models[names.REFERENCE].get_weights()
        for model in models.values():
            model.set_weights(weights)
    return models, tags


def parent_metrics(results):
    """Each framework's final figures, and Δacc (pp) and time ratio of REFERENCE against each other."""
    metrics = {names.of(fw, k): v for fw, (_, m) in results.items() for k, v in m.items() if k != names.WARMUP_TIME}
    metrics.update({names.of(fw, names.VAL_ACC): h["val_accuracy"][-1] for fw, (h, _) in results.items()
                    if h["val_accuracy"] and h["val_accuracy"][-1] == h["val_accuracy"][-1]})
    ref = names.REFERENCE
    for fw in [fw for fw in results if fw != ref] if ref in results else []:
        metrics[names.versus(fw, names.ACC_DELTA_PP)] = 100 * (metrics[names.of(ref, names.TEST_ACC)]
                                                               - metrics[names.of(fw, names.TEST_ACC)])
        metrics[names.versus(fw, names.TIME_RATIO)] = (metrics[names.of(ref, names.FIT_TIME)]
                                                       / metrics[names.of(fw, names.FIT_TIME)])
    return metrics


def _train_under(job, parent_id, name):
    """Everything inside the parent run; raises ExperimentFailed if a framework failed."""
    cfg, recorder = job.cfg, job.recorder
    recorder.log_params(parent_id, job.params)
    recorder.log_text(parent_id, OmegaConf.to_yaml(pruning.loggable(OmegaConf.to_container(cfg, resolve=True))),
                      names.CONFIG_FILE)
    with threadpool_limits(limits=cfg.train.threads, user_api="blas"):
        models, tags = _setup(job)
        recorder.set_tags(parent_id, tags)
        mlflow_ui.log_inputs(recorder.client, parent_id, job.inputs)
        if parity_on(cfg):
            trajectories = parity.losses(job, lambda fw: build(cfg, fw, job.seeds["warmup"]),
                                         models[names.REFERENCE].get_weights())
            parity.record(job, parent_id, trajectories)
        results, failures = {}, {}
        for fw in cfg.frameworks:
            try:
                results[fw] = _run_child(job, parent_id, models.pop(fw))
            except sn.TrainingDiverged as exc:
                failures[fw] = reason(exc)
    metrics = parent_metrics(results)
    recorder.log_metrics(parent_id, {**metrics, **pairing.metrics(job.data["test"][1], job.predicted)})
    recorder.set_tags(parent_id, {names.NOTE: summary_line(metrics)})
    if results:
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.learning_curves(Path(tmp) / names.CURVES, {fw: h for fw, (h, _) in results.items()}, name)
            recorder.log_artifacts(parent_id, tmp)
    if failures:
        recorder.set_tags(parent_id, {names.FAILED_FRAMEWORKS: ",".join(failures)})
        raise ExperimentFailed("; ".join(f"{fw} failed: {why}" for fw, why in failures.items()))
    return metrics


def train_config(cfg, *, name=None, job_id="", skip_finished=False, warn_data=True):
    """Train and log every framework of `cfg` under one parent run; returns the parent's metrics.

    Raises ConfigError for a bad value before any run is opened. Any failure after that ends
    the parent FAILED (KILLED on a signal) with its reason; ExperimentFailed means a framework
    diverged, after its child was logged FAILED. With `skip_finished` (sweeps), a config that is
    complete, or live in another process, is not run: returns {"skipped": ..., "parent_run_id": ...}
    (and for a live one "elsewhere": its host, pid and heartbeat age).
    `warn_data=False` leaves out the line about unverified data files (a sweep says it once)."""
    name = name or cfg.mlflow.run_name or "default"
    validate(cfg)
    config_hash, config_id = tracking.config_hashes(cfg)
    client, experiment_id = tracking.connect(cfg.mlflow)
    tags = {names.CONFIG_HASH: config_hash, names.CONFIG_ID: config_id, names.JOB: job_id,
            **tracking.environment_tags(), **blas.tags()}
    with Recorder(client, experiment_id, tags, cfg.mlflow.heartbeat_s) as recorder:
        done = claims.complete_parent(client, experiment_id, config_hash) if skip_finished else None
        if done is not None:
            return _skipped(name, done, "already FINISHED")
        parent_tags = {names.ROLE: names.ROLE_PARENT, names.FRAMEWORKS_TAG: ",".join(cfg.frameworks)}
        with recorder.run(name, parent_tags) as parent_id:
            holder = claims.claim(client, experiment_id, config_hash, mine=parent_id,
                                  stale_after_s=cfg.mlflow.stale_after_s) if skip_finished else None
            if holder is not None:
                recorder.withdraw(parent_id)
                if holder.info.status == "FINISHED":
                    return _skipped(name, holder, "already FINISHED")
                return {**_skipped(name, holder, f"running elsewhere ({claims.holder_text(holder)})"),
                        "elsewhere": claims.holder_text(holder)}
            params = tracking.flatten(pruning.loggable(OmegaConf.to_container(cfg, resolve=True)))
            params[names.OPTIMIZER_NAME] = optimizer_label(cfg.optimizer)
            job = Job(cfg=cfg, data={}, seeds=seeds_of(cfg), params=params, recorder=recorder, warn_data=warn_data)
            metrics = _train_under(job, parent_id, name)
    metrics.update(parent_run_id=parent_id, experiment_id=experiment_id, child_runs=dict(job.child_runs))
    return metrics


def _skipped(name, run, why):
    return {"skipped": f"{name} {why} as run {run.info.run_id} (rerun=true runs it again)",
            "parent_run_id": run.info.run_id, **run.data.metrics}
