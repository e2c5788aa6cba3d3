"""train_config end to end on a shrunken real config, validation and failure paths."""

import re
from importlib import metadata

import mlflow
import numpy as np
import pytest

from experiments import names
from experiments.config import CONF_DIR, ConfigError, register_configs, validate
from experiments.frameworks.keras import optimizer as keras_optimizer
from experiments.runner import ExperimentFailed, train_config
from harness import SMALL, runs_of

register_configs()
pytestmark = pytest.mark.usefixtures("quiet_warnings")


def test_a_run_logs_one_parent_two_children_with_all_metrics_and_artifacts(make_cfg):
    cfg = make_cfg()
    metrics = train_config(cfg, name="small")
    runs = runs_of(cfg)
    assert len(runs) == 3 and set(runs.status) == {"FINISHED"}
    parent = runs[runs["tags.role"] == "parent"].iloc[0]
    children = runs[runs["tags.framework"].notna()]
    assert sorted(children["tags.framework"]) == ["keras", "scratchnn"]
    assert set(children["tags.mlflow.parentRunId"]) == {parent.run_id}
    params = [c for c in runs.columns if c.startswith("params.") and c != f"params.{names.GUARD_EVERY}"]
    assert len(params) > 20 and (children[params].nunique(dropna=False) == 1).all()
    assert children["params.model.width"].iloc[0] == "128" and children["params.optimizer.name"].iloc[0] == "sgd"
    for column in ["test/acc", "test/loss", "fit_time_s", "predict_time_s", "train/loss", "train/acc",
                   "val/loss", "val/acc", "epoch_time_s"]:
        assert children[f"metrics.{column}"].notna().all(), column
    assert children["metrics.test/acc"].min() > 0.7  # 63 SGD steps on 2000 examples
    delta, ratio = names.versus("keras", names.ACC_DELTA_PP), names.versus("keras", names.TIME_RATIO)
    assert parent[f"metrics.{delta}"] == pytest.approx(metrics[delta]) == pytest.approx(
        100 * (metrics["scratchnn/test/acc"] - metrics["keras/test/acc"]))
    assert parent[f"metrics.{ratio}"] == pytest.approx(metrics["scratchnn/fit_time_s"] / metrics["keras/fit_time_s"])
    assert parent["tags.frameworks"] == "scratchnn,keras" and parent["tags.mlflow.runName"] == "small"
    assert sorted(children["params.divergence_check_every"]) == ["1", str(cfg.keras.steps_per_execution)]
    assert children["params.keras.jit_compile"].iloc[0] == "False"
    assert parent["tags.config_hash"] and parent["tags.config_hash"] == children["tags.config_hash"].iloc[0]
    for package in ("tensorflow", "torch", "numpy", "mlflow"):  # installed here, so never "absent"
        assert parent[f"tags.version.{package}"] == metadata.version(package), package
    assert parent["tags.git_commit"]
    client = mlflow.MlflowClient(cfg.mlflow.tracking_uri)
    assert {f.path for f in client.list_artifacts(parent.run_id)} == {"config.yaml", "learning_curves.png"}
    for _, child in children.iterrows():
        files = {f.path for f in client.list_artifacts(child.run_id)}
        model = "model.npz" if child["tags.framework"] == "scratchnn" else "model.keras"
        assert files == {"predictions.csv", "confusion_matrix.csv", model}
        assert len(client.get_metric_history(child.run_id, "train/loss")) == 1
        C = np.loadtxt(client.download_artifacts(child.run_id, "confusion_matrix.csv"), delimiter=",")
        assert C.sum() == 1000 and np.trace(C) / 1000 == pytest.approx(child["metrics.test/acc"], abs=1e-6)


@pytest.mark.e2e
def test_the_view_hint_works_as_printed(tmp_path):
    import shlex
    import subprocess

    from experiments.summary import view_hint

    hint = view_hint(f"sqlite:///{tmp_path / 'm.db'}", "7")
    assert hint.endswith(", then open http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning")
    command = shlex.split(hint[len("view: "):hint.index(" ui ")])
    result = subprocess.run([*command, "ui", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--backend-store-uri" in result.stdout


def test_divergence_fails_both_children_and_the_parent_with_a_reason(make_cfg):
    cfg = make_cfg("optimizer.lr=1e30")  # the README's example: weights overflow within a few steps
    with pytest.raises(ExperimentFailed, match="scratchnn failed: TrainingDiverged.*keras failed: TrainingDiverged"):
        train_config(cfg)
    runs = runs_of(cfg)
    assert len(runs) == 3 and set(runs.status) == {"FAILED"}
    for framework in ("scratchnn", "keras"):
        child = runs[runs["tags.framework"] == framework].iloc[0]
        assert "training diverged" in child["tags.failure_reason"] and "epoch 1, step" in child["tags.failure_reason"]
    parent = runs[runs["tags.role"] == "parent"].iloc[0]
    assert parent["tags.failed_frameworks"] == "scratchnn,keras"
    assert "ExperimentFailed" in parent["tags.failure_reason"]


@pytest.mark.parametrize("override,message", [
    ("model.depth=-1", "Received: model.depth=-1"),
    ("model.width=0", "Received: model.width=0"),
    ("model.activation=swish", "Received: model.activation='swish'"),
    ("optimizer.lr=0", "Received: optimizer.lr=0.0"),
    ("optimizer.lr=-0.5", "Received: optimizer.lr=-0.5"),
    ("train.batch_size=0", "Received: train.batch_size=0"),
    ("train.epochs=0", "Received: train.epochs=0"),
    ("model.dropout=1.0", "Received: model.dropout=1.0"),
    ("model.dropout=-0.1", "Received: model.dropout=-0.1"),
    ("frameworks=[jax]", "Received: frameworks=['jax']"),
    ("frameworks=[keras,keras]", "Received: frameworks=['keras', 'keras']"),
    ("keras.steps_per_execution=0", "keras.steps_per_execution must be >= 1. Received: keras.steps_per_execution=0"),
    ("keras.jit_compile=maybe", "keras.jit_compile must be true, false or auto. Received: keras.jit_compile='maybe'"),
    ("train.seed=-1", "train.seed must be >= 0. Received: train.seed=-1"),
    ("optimizer.lr=inf", "optimizer.lr must be a finite number > 0. Received: optimizer.lr=inf"),
    ("optimizer.lr=nan", "Received: optimizer.lr=nan"),
    ("optimizer=momentum optimizer.momentum=1",
     "optimizer.momentum must be a number in [0, 1). Received: optimizer.momentum=1.0"),
    ("optimizer=adam optimizer.beta_1=2",
     "optimizer.beta_1 must be a number in [0, 1). Received: optimizer.beta_1=2.0"),
    ("optimizer=adam optimizer.epsilon=0", "Received: optimizer.epsilon=0.0"),
    ("optimizer=rmsprop optimizer.rho=1", "Received: optimizer.rho=1.0"),
    ("train.max_loss=inf", "Received: train.max_loss=inf"),
    ("model.l2=inf", "Received: model.l2=inf"),
    ("mlflow.stale_after_s=10",
     "must be at least twice mlflow.heartbeat_s (30.0). Received: mlflow.stale_after_s=10.0"),
])
def test_bad_values_are_rejected_before_any_run(make_cfg, override, message):
    cfg = make_cfg(*override.split())
    with pytest.raises(ConfigError, match=re.escape(message)):
        train_config(cfg)
    assert runs_of(cfg).empty


def test_a_batch_larger_than_the_data_fails_its_parent_run_with_the_reason(make_cfg):
    cfg = make_cfg("train.batch_size=2001")  # known only once the data is loaded, inside the parent run
    with pytest.raises(ConfigError,
                       match=r"must not exceed the 2000 training examples. Received: train.batch_size=2001"):
        train_config(cfg)
    runs = runs_of(cfg)
    assert len(runs) == 1 and runs.status.iloc[0] == "FAILED"
    assert runs["tags.failure_reason"].iloc[0].startswith("ConfigError: train.batch_size must not exceed")


@pytest.mark.parametrize("override,message", [
    ("optimizer=adagrad", "Could not find 'optimizer/adagrad'"),
    ("model.widht=3", "Could not override 'model.widht'"),
    ("model.width=abc", "Error merging override model.width=abc"),
    ("train.epochs=1.5", "Error merging override train.epochs=1.5"),
])
def test_unknown_keys_and_wrong_types_fail_at_composition_naming_them(make_cfg, override, message):
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with pytest.raises((HydraException, OmegaConfBaseException)) as caught:
        make_cfg(override)
    cause = caught.value.__cause__
    assert message in str(caught.value)
    assert cause is None or "could not be converted to Integer" in str(cause) or "Key 'widht' not in" in str(cause)


@pytest.mark.parametrize("group,cls,hyper", [
    ("sgd", "SGD", {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}),
    ("momentum", "SGD", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": False}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}),
    ("adam", "Adam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
])
def test_each_optimizer_group_builds_the_same_optimizer_in_both_frameworks(make_cfg, group, cls, hyper):
    from hydra.utils import instantiate

    cfg = make_cfg(f"optimizer={group}")
    validate(cfg, n_train=2000)  # the shipped configs are valid
    ours = instantiate(cfg.optimizer)
    theirs = keras_optimizer(cfg.optimizer)
    assert type(ours).__name__ == type(theirs).__name__ == cls
    config = theirs.get_config()
    for key, value in hyper.items():
        assert config[key] == pytest.approx(value), key
        assert getattr(ours, "lr" if key == "learning_rate" else key) == pytest.approx(value), key


def test_any_exception_leaves_no_run_running(make_cfg, monkeypatch):
    from experiments.frameworks.keras import Keras

    def broken(*args):
        raise MemoryError("out of memory in the Keras child")

    monkeypatch.setattr(Keras, "fit", broken)
    cfg = make_cfg()
    with pytest.raises(MemoryError):
        train_config(cfg)
    runs = runs_of(cfg).set_index("tags.mlflow.runName")
    assert runs.loc["scratchnn", "status"] == "FINISHED"
    assert runs.loc["keras", "status"] == "FAILED" and runs.loc["default", "status"] == "FAILED"
    assert runs.loc["keras", "tags.failure_reason"] == "MemoryError: out of memory in the Keras child"


@pytest.mark.e2e
def test_command_line_exits_nonzero_with_one_line_reason(data_root, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SCRATCHNN_DATA_DIR": str(data_root)}
    result = subprocess.run([sys.executable, "-m", "experiments.train", "model.width=0", *SMALL,
                             f"mlflow.tracking_uri=sqlite:///{tmp_path / 'm.db'}", f"hydra.run.dir={tmp_path}"],
                            capture_output=True, text=True, env=env, cwd=CONF_DIR.parent, timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: model.width must be >= 1. Received: model.width=0"]


@pytest.mark.slow
def test_default_run_reaches_97_5_percent_for_both(data_root, tmp_path):
    """The README's main job: the default config, in full, on real MNIST."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"data.dir={data_root}",
                                           f"mlflow.tracking_uri=sqlite:///{tmp_path / 'm.db'}",
                                           "train.verbose=false"])
    metrics = train_config(cfg)
    print(f"default run: scratchnn {metrics['scratchnn/test/acc']:.4f}, keras {metrics['keras/test/acc']:.4f}, "
          f"time ratio {metrics['vs_keras/time_ratio']:.3f}")
    assert metrics["scratchnn/test/acc"] >= 0.975 and metrics["keras/test/acc"] >= 0.975
