"""The sweeper's config, registered as `hydra/sweeper: optuna`, and the storage resolver.

Hydra imports this module when it scans for plugins, before it composes any config, so the
`scratchnn.optuna_storage` resolver is known by the time `hydra.sweeper.storage` is resolved.
Hydra's scanner may execute the module twice, hence `replace=True`.
"""

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

SQLITE = "sqlite:///"


@dataclass
class SamplerConf:
    seed: Optional[int] = None  # optuna.samplers.TPESampler(seed=...)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.scratchnn_optuna.optuna_sweeper.OptunaSweeper"
    direction: str = "minimize"  # or maximize
    study_name: Optional[str] = None
    storage: Optional[str] = None  # an SQLAlchemy URL (sqlite:///..., postgresql://...); null: in memory
    n_trials: int = 20  # trials the study should hold, all workers together: a relaunch runs only what is missing
    n_jobs: int = 1  # trials asked at once and handed to the launcher as one batch
    pruner: str = "none"  # median, hyperband or none: stops a trial whose epochs' validation accuracy lags
    heartbeat_interval: Optional[int] = 10  # s; with a storage, a search's running trials beat this often
    grace_period: Optional[int] = 30  # s without a beat after which a trial is failed and run again; null: 2 beats
    max_retry: Optional[int] = 3  # times the trial of a killed search is run again; null: no limit
    sampler: SamplerConf = field(default_factory=SamplerConf)
    # the search space, e.g. {model.width: "choice(64, 128)", optimizer.lr: "tag(log, interval(0.001, 0.1))"}
    params: Optional[Dict[str, Any]] = None


def optuna_storage(tracking_uri):
    """The Optuna storage beside an sqlite MLflow store: sqlite:///dir/mlflow.db -> sqlite:///dir/optuna.db."""
    uri = str(tracking_uri)
    path, _, query = uri[len(SQLITE):].partition("?")
    if not uri.startswith(SQLITE) or not PurePosixPath(path).name:
        raise ValueError(
            f"no default Optuna storage for mlflow.tracking_uri={uri!r}: only an sqlite:///<file> store has one "
            "beside it. Set hydra.sweeper.storage to an SQLAlchemy URL (e.g. postgresql://user:pass@host/optuna "
            "or sqlite:////abs/path/optuna.db), or to null to keep the study in memory")
    storage = SQLITE + str(PurePosixPath(path).with_name("optuna.db"))
    return f"{storage}?{query}" if query else storage


def warn_if_shadowed():
    """hydra-optuna-sweeper also registers `hydra/sweeper: optuna`, and the last one scanned wins:
    from the project folder that is the old one, which needs optuna<3."""
    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:
        warnings.warn("hydra-optuna-sweeper is installed too, and its `hydra/sweeper: optuna` config may replace "
                      "scratchnn's; remove it: pip uninstall hydra-optuna-sweeper", stacklevel=2)


warn_if_shadowed()
ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf,
                             provider="scratchnn_optuna")
OmegaConf.register_new_resolver("scratchnn.optuna_storage", optuna_storage, replace=True)
