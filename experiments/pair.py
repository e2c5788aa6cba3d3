"""train_pair(cfg): scratchnn and its Keras twin on the same data, timed alike, logged to MLflow.

MLflow layout: one parent run per config, with a child run per framework carrying identical
params (the flattened config). Seeds come from one np.random.SeedSequence(train.seed):
the validation split, scratchnn's weights, the batch order (one Generator per framework,
both from the same seed, so both see the same batches), Keras's weights and the warm-up model.
"""

import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

import scratchnn as sn
from scratchnn import datasets, preprocessing as pp

from . import artifacts, keras_twin, tracking
from .config import optimizer_label, validate


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


def run_scratchnn(cfg, data, net, seeds):
    from threadpoolctl import threadpool_limits

    (X, y), (Xt, yt), M = data["train"], data["test"], cfg.train.batch_size
    with threadpool_limits(limits=cfg.train.threads, user_api="blas"):
        start = time.perf_counter()
        if cfg.train.warmup_steps:  # a throwaway twin, so the timed model is untouched
            n = min(len(X), cfg.train.warmup_steps * M)
            build_scratchnn(cfg, seeds["warmup"]).fit(X[:n], y[:n], 1, M, data["val"], shuffle=False, verbose=False)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        history = net.fit(X, y, cfg.train.epochs, M, data["val"], shuffle=np.random.default_rng(seeds["order"]),
                          verbose=cfg.train.verbose, on_epoch_end=tracking.log_epoch, max_loss=cfg.train.max_loss)
        fit_time = time.perf_counter() - start
        test_loss, test_acc = net.evaluate(Xt, yt)
        start = time.perf_counter()
        probabilities = net.predict(Xt)
        predict_time = time.perf_counter() - start
    return history, probabilities, {"test/loss": test_loss, "test/acc": test_acc, "fit_time_s": fit_time,
                                    "predict_time_s": predict_time, "warmup_time_s": warmup}


def run_keras(cfg, data, model, seeds):
    (X, y), (Xt, yt), M = data["train"], data["test"], cfg.train.batch_size
    start = time.perf_counter()
    keras_twin.warm_up(model, X, y, M, cfg.train.warmup_steps)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    logs = keras_twin.fit(model, X, y, cfg.train.epochs, M, np.random.default_rng(seeds["order"]), data["val"],
                          on_epoch_end=tracking.log_epoch, max_loss=cfg.train.max_loss)
    fit_time = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(Xt, yt, batch_size=4096, verbose=0)
    start = time.perf_counter()
    probabilities = model.predict(Xt, batch_size=4096, verbose=0)
    predict_time = time.perf_counter() - start
    return _history(logs), probabilities, {"test/loss": test_loss, "test/acc": test_acc, "fit_time_s": fit_time,
                                           "predict_time_s": predict_time, "warmup_time_s": warmup}


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


def _log_child(framework, experiment_id, params, tags, runner, cfg, data, model, seeds):
    """One child run of the active parent: train with `runner`, log metrics, weights and
    predictions; returns (history, metrics)."""
    with tracking.run(run_name=framework, experiment_id=experiment_id, nested=True,
                      tags={**tags, "framework": framework}):
        mlflow.log_params(params)
        history, probabilities, metrics = runner(cfg, data, model, seeds)
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.save_predictions(Path(tmp), data["test"][1], probabilities)
            model.save(Path(tmp) / ("model.npz" if framework == "scratchnn" else "model.keras"))
            mlflow.log_artifacts(tmp)
        return history, metrics


def _setup(cfg, seeds):
    """Data, both models and the thread settings in force; raises before any training."""
    data = prepare_data(cfg, seeds["split"])
    validate(cfg, n_train=len(data["train"][0]))
    thread_tags = {"threads": cfg.train.threads}
    if "keras" in cfg.frameworks:
        thread_tags.update(keras_twin.import_tensorflow(cfg.train.threads))
    net = build_scratchnn(cfg, seeds["init"])
    model = keras_twin.build(cfg, 784, data["n_out"], seeds["keras"]) if "keras" in cfg.frameworks else None
    if cfg.parity:
        model.set_weights(net.get_weights())
    return data, net, model, thread_tags


def train_pair(cfg, run_name=None, skip_finished=False, record_setup_failures=False):
    """Train and log the pair for `cfg`; returns the metrics.

    Raises ConfigError for a bad config, before any run is opened unless
    `record_setup_failures` (sweeps), which records any failure before training as a FAILED
    parent run. Raises ExperimentFailed if a framework failed, after logging it. With
    `skip_finished`, a config whose parent run already FINISHED is not run again."""
    name = run_name or cfg.mlflow.run_name or "default"
    seeds = dict(zip(("split", "init", "order", "keras", "warmup"), np.random.SeedSequence(cfg.train.seed).spawn(5)))
    tags = {}
    try:
        validate(cfg)
        config_hash, config_id = tracking.config_hashes(cfg)
        tags = {"config_hash": config_hash, "config_id": config_id, **tracking.environment_tags()}
        experiment_id = tracking.connect(cfg.mlflow)
        done = tracking.finished_parent(experiment_id, config_hash) if skip_finished else None
        if done:
            print(f"skipped: {name} already FINISHED as run {done} (rerun=true runs it again)")
            return {"skipped": True, "parent_run_id": done}
        data, net, model, thread_tags = _setup(cfg, seeds)
    except Exception as exc:
        if record_setup_failures:
            tracking.record_failure(cfg.mlflow, name, {**tags, "role": "parent"}, exc)
        raise
    tags.update(thread_tags)
    params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))
    params["optimizer.name"] = optimizer_label(cfg.optimizer)
    results, failures = {}, {}
    with tracking.run(run_name=name, experiment_id=experiment_id, tags={**tags, "role": "parent"}) as parent:
        mlflow.log_params(params)
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        if cfg.parity:
            losses = parity_check(cfg, data, net, model, seeds)
            deviation = float(np.max(np.abs(losses[:, 0] - losses[:, 1]) / np.abs(losses[:, 1])))
            mlflow.log_metric("parity/max_rel_loss_dev", deviation)
            mlflow.log_text("step,scratchnn,keras\n" + "\n".join(f"{i + 1},{a!r},{b!r}" for i, (a, b) in enumerate(losses)),
                            "parity_losses.csv")
        runners = {"scratchnn": (run_scratchnn, net), "keras": (run_keras, model)}
        for framework in cfg.frameworks:
            runner, framework_model = runners[framework]
            try:
                results[framework] = _log_child(framework, experiment_id, params, tags, runner,
                                                cfg, data, framework_model, seeds)
            except sn.TrainingDiverged as exc:
                failures[framework] = tracking.one_line(exc)
        metrics = {f"{fw}/{k}": v for fw, (_, m) in results.items() for k, v in m.items()}
        metrics.update({f"{fw}/val_acc": h["val_accuracy"][-1] for fw, (h, _) in results.items()})
        if len(results) == 2:
            metrics["acc_delta_pp"] = 100 * (metrics["scratchnn/test/acc"] - metrics["keras/test/acc"])
            metrics["time_ratio"] = metrics["scratchnn/fit_time_s"] / metrics["keras/fit_time_s"]
            mlflow.log_metrics({k: metrics[k] for k in ("acc_delta_pp", "time_ratio")})
        if results:
            with tempfile.TemporaryDirectory() as tmp:
                artifacts.learning_curves(Path(tmp) / "learning_curves.png", {fw: h for fw, (h, _) in results.items()}, name)
                mlflow.log_artifacts(tmp)
        metrics["parent_run_id"] = parent.info.run_id
        if failures:
            mlflow.set_tag("failed_frameworks", ",".join(failures))
            raise ExperimentFailed("; ".join(f"{fw} failed: {why}" for fw, why in failures.items()))
    print(summary_line(metrics, cfg.mlflow.tracking_uri))
    return metrics


def summary_line(metrics, tracking_uri):
    parts = [f"{fw} test acc {metrics[f'{fw}/test/acc']:.2%}" for fw in ("scratchnn", "keras") if f"{fw}/test/acc" in metrics]
    if "acc_delta_pp" in metrics:
        parts += [f"delta {metrics['acc_delta_pp']:+.2f} pp", f"time ratio (scratchnn/keras) {metrics['time_ratio']:.2f}"]
    return " | ".join(parts) + f" | view: mlflow ui --backend-store-uri {tracking_uri}"
