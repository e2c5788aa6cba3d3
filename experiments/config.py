"""Structured configs: the schema of every run, registered in Hydra's ConfigStore.

The YAML files in conf/ choose values; these dataclasses fix the keys and their types, so a
typo or a wrong type fails when the config is composed, before anything runs. `validate`
then checks the ranges, naming the field and the value.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from scratchnn import activations, bounds, datasets, initializers, optimizers

from . import frameworks, names
from .locations import DEFAULT_TRACKING_URI  # mlflow.db in the working directory, as MLflow's own default

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"
DEFAULT_FRAMEWORKS = ("scratchnn", "keras")  # torch is an extra: pip install -e ".[torch]"


class ConfigError(ValueError):
    """A config value is out of range; the message names the field and the value."""


@dataclass
class DataConfig:
    name: str = "mnist"
    dir: Optional[str] = None  # a folder holding mnist/ and fashion-mnist/; None: env, cache, download
    val_size: int = 5000  # held out of the training set, seeded
    train_size: Optional[int] = None  # use only this many training examples (tests, smoke sweeps)
    test_size: Optional[int] = None


@dataclass
class ModelConfig:
    depth: int = 1  # hidden layers; 0 is softmax regression
    width: int = 128
    activation: str = "relu"
    init: str = "glorot_uniform"
    dropout: float = 0.0
    l2: float = 0.0


@dataclass
class SGDConfig:
    _target_: str = "scratchnn.optimizers.SGD"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False


@dataclass
class _AdaptiveConfig:  # what RMSprop and Adam share, with Keras's defaults
    lr: float = 0.001
    epsilon: float = 1e-7


@dataclass
class RMSpropConfig(_AdaptiveConfig):
    _target_: str = "scratchnn.optimizers.RMSprop"
    rho: float = 0.9
    momentum: float = 0.0


@dataclass
class AdamConfig(_AdaptiveConfig):
    _target_: str = "scratchnn.optimizers.Adam"
    beta_1: float = 0.9
    beta_2: float = 0.999


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    threads: int = 1  # BLAS threads for NumPy, intra-op threads for TensorFlow and PyTorch (docs/performance.md)
    warmup_steps: int = 20  # untimed steps before timing, reported as warmup_time_s
    max_loss: Optional[float] = 1000.0  # a running epoch loss above this counts as divergence
    verbose: bool = True


@dataclass
class KerasConfig:
    """The Keras twin's execution settings (conf/keras/: `tuned`, the measured fastest, and `default`,
    Keras out of the box)."""
    jit_compile: Any = False  # XLA; "auto" is Keras's default (off on a CPU-only machine)
    steps_per_execution: int = 256  # training steps per call into the compiled function (conf/keras/tuned.yaml)


@dataclass
class MLflowConfig:
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str = "scratchnn"
    run_name: Optional[str] = None  # default: the command-line overrides
    heartbeat_s: float = 30.0  # a live run refreshes its `heartbeat` tag this often
    stale_after_s: float = names.STALE_AFTER_S  # a RUNNING run silent this long belongs to a dead process


@dataclass
class SearchConfig:
    """Set by the Optuna sweeper for each trial: where its training process reports every epoch
    (experiments/pruning.py). Not part of what is trained: left out of the config hash."""
    storage: Optional[str] = None  # the study's SQLAlchemy URL
    study: Optional[str] = None
    trial: Optional[int] = None  # the trial's number in the study; null: no search
    pruner: str = "none"  # the study's pruner: median, hyperband or none


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: Any = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    mlflow: MLflowConfig = field(default_factory=MLflowConfig)
    keras: KerasConfig = field(default_factory=KerasConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    frameworks: List[str] = field(default_factory=lambda: list(DEFAULT_FRAMEWORKS))
    parity: Any = False  # identical initial weights and a step-by-step loss comparison; auto: when dropout is 0
    parity_steps: int = 100
    rerun: bool = False  # in a sweep, run configs again even if they already FINISHED
    objective: str = "scratchnn/val_acc"  # the parent-run metric a sweep job returns (the search maximises it)


def register_configs():
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    for name, node in (("sgd", SGDConfig), ("rmsprop", RMSpropConfig), ("adam", AdamConfig)):
        cs.store(name=f"schema_{name}", node=node)  # not in the optimizer group: --help lists only choices


def optimizer_label(opt_cfg):
    """sgd, momentum, nesterov, rmsprop or adam: the name the reports group by."""
    name = opt_cfg["_target_"].rsplit(".", 1)[-1].lower()
    if name == "sgd" and opt_cfg.get("momentum", 0):
        return "nesterov" if opt_cfg.get("nesterov") else "momentum"
    return name


def validate(cfg, n_train=None):
    """Reject out-of-range values before any training, naming the field and the value."""
    def check(ok, key, value, why):
        if not ok:
            raise ConfigError(f"{key} {why}. Received: {key}={value!r}")

    m, t, o = cfg.model, cfg.train, cfg.optimizer
    check(cfg.data.name in datasets.NAMES, "data.name", cfg.data.name, f"must be one of {list(datasets.NAMES)}")
    check(m.depth >= 0, "model.depth", m.depth, "must be >= 0")
    check(m.width >= 1, "model.width", m.width, "must be >= 1")
    check(m.activation in activations.NAMES, "model.activation", m.activation,
          f"must be one of {sorted(activations.NAMES)}")
    check(m.init in initializers.NAMES, "model.init", m.init, f"must be one of {sorted(initializers.NAMES)}")
    for key, value, name in (("model.dropout", m.dropout, "rate"), ("model.l2", m.l2, "l2")):
        why = bounds.problem(name, value)
        check(why is None, key, value, why)
    target = o.get("_target_", "")
    known = [f"scratchnn.optimizers.{cls.__name__}" for cls in (optimizers.SGD, optimizers.RMSprop, optimizers.Adam)]
    check(target in known, "optimizer._target_", target, f"must be one of {known}")
    for key in (k for k in bounds.BOUNDS if k in o):  # the library's own bounds: what it accepts, this accepts
        why = bounds.problem(key, o[key])
        check(why is None, f"optimizer.{key}", o[key], why)
    check(t.seed >= 0, "train.seed", t.seed, "must be >= 0")
    check(t.epochs >= 1, "train.epochs", t.epochs, "must be >= 1")
    check(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be >= 1")
    if n_train is not None:
        check(t.batch_size <= n_train, "train.batch_size", t.batch_size,
              f"must not exceed the {n_train} training examples")
    check(t.threads >= 1, "train.threads", t.threads, "must be >= 1")
    check(t.max_loss is None or 0 < t.max_loss < math.inf, "train.max_loss", t.max_loss,
          "must be finite and > 0, or null")
    check(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must be >= 0")
    check(cfg.data.val_size >= 0, "data.val_size", cfg.data.val_size, "must be >= 0")
    for key in ("train_size", "test_size"):
        value = cfg.data[key]
        check(value is None or value >= 1, f"data.{key}", value, "must be >= 1 or null")
    _check_frameworks(cfg, check)
    check(cfg.keras.jit_compile in (True, False, "auto"), "keras.jit_compile", cfg.keras.jit_compile,
          "must be true, false or auto")
    check(cfg.keras.steps_per_execution >= 1, "keras.steps_per_execution", cfg.keras.steps_per_execution,
          "must be >= 1")
    ml = cfg.mlflow
    check(0 < ml.heartbeat_s < math.inf, "mlflow.heartbeat_s", ml.heartbeat_s, "must be finite and > 0")
    check(ml.stale_after_s >= 2 * ml.heartbeat_s, "mlflow.stale_after_s", ml.stale_after_s,
          f"must be at least twice mlflow.heartbeat_s ({ml.heartbeat_s})")
    check(cfg.parity in (True, False, "auto"), "parity", cfg.parity, "must be true, false or auto")
    check(cfg.parity_steps >= 1, "parity_steps", cfg.parity_steps, "must be >= 1")
    if cfg.parity is True:
        check(m.dropout == 0, "model.dropout", m.dropout, "must be 0 with parity=true (masks cannot match)")
        check(names.REFERENCE in cfg.frameworks and len(cfg.frameworks) >= 2, "frameworks", list(cfg.frameworks),
              f"must include {names.REFERENCE} and another framework with parity=true")


def normalize(cfg):
    """Spell `data.name` as the library's key (fashion-mnist -> fashion_mnist), so both spellings are one
    config: one hash, one value in the reports. A name the library does not know is left for `validate`."""
    if cfg.data.name in datasets.NAMES:
        cfg.data.name = datasets.canonical(cfg.data.name)
    return cfg


def parity_on(cfg):
    """parity=true, or parity=auto where it can hold: no dropout, scratchnn and another framework."""
    possible = cfg.model.dropout == 0 and names.REFERENCE in cfg.frameworks and len(cfg.frameworks) >= 2
    return cfg.parity is True or (cfg.parity == "auto" and possible)


def _check_frameworks(cfg, check):
    chosen = list(cfg.frameworks)
    check(len(chosen) >= 1 and set(chosen) <= set(names.FRAMEWORKS) and len(set(chosen)) == len(chosen),
          "frameworks", chosen, f"must be a non-empty subset of {list(names.FRAMEWORKS)}, each once")
    for fw in chosen:
        package = frameworks.missing(fw)
        check(package is None, "frameworks", chosen,
              f"names {fw}, but {package} is not installed (pip install -e \".[{fw}]\")")


def validate_objective(cfg):
    """A search needs its objective to exist: `<framework>/val_acc` needs that framework and a validation set."""
    framework, _, metric = cfg.objective.partition("/")
    if framework not in cfg.frameworks or metric not in ("val_acc", "test/acc"):
        raise ConfigError(f"objective must be <framework>/val_acc or <framework>/test/acc for a framework in "
                          f"{list(cfg.frameworks)}. Received: objective={cfg.objective!r}")
    if metric == "val_acc" and cfg.data.val_size == 0:
        raise ConfigError(f"objective {cfg.objective!r} needs a validation set. Received: data.val_size=0")
