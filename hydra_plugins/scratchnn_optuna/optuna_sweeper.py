"""OptunaSweeper: ask a batch of trials, launch it, tell the study how each job ended; until n_trials.

The search space is `hydra.sweeper.params` merged with the sweep overrides of the command line
(a later key replaces an earlier one, so `model.width=16` on the command line fixes a searched
key); every other override is passed to each trial unchanged. A trial whose job raises, returns
NaN or anything but a finite number is recorded as FAIL with one warning line, and the search
goes on. With a storage, relaunching the same search resumes it, and several searches started
with the same study share its `n_trials` (see `_study` and `_storage`). Each trial's job gets
`search.storage`, `search.study`, `search.trial` and `search.pruner`, so its training process
reports every epoch's validation accuracy to the trial and stops when the pruner says so.
"""

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

log = logging.getLogger(__name__)
DIRECTIONS = ("minimize", "maximize")
PRUNERS = ("median", "hyperband", "none")  # _storage.PRUNERS (this module imports no Optuna)
RESULTS_FILE = "optimization_results.yaml"


@dataclass
class Settings:
    """How the study is opened and shared (the fields of `config.OptunaSweeperConf` of the same names)."""
    study_name: Optional[str]
    storage: Optional[str]
    direction: str
    seed: Optional[int]
    pruner: str
    heartbeat_interval: Optional[int]
    grace_period: Optional[int]
    max_retry: Optional[int]


def check_settings(settings, n_trials, n_jobs):
    """Reject settings that make no search, naming the field and the value."""
    if settings.direction not in DIRECTIONS:
        raise ValueError(f"hydra.sweeper.direction must be one of {DIRECTIONS}. Received: {settings.direction!r}")
    if n_trials < 0:
        raise ValueError(f"hydra.sweeper.n_trials must be >= 0. Received: {n_trials}")
    if n_jobs < 1:
        raise ValueError(f"hydra.sweeper.n_jobs must be >= 1. Received: {n_jobs}")
    if settings.pruner not in PRUNERS:
        raise ValueError(f"hydra.sweeper.pruner must be one of {PRUNERS}. Received: {settings.pruner!r}")
    if settings.storage is None and settings.pruner != "none":
        raise ValueError("hydra.sweeper.pruner needs a storage that the training processes can open: set "
                         "hydra.sweeper.storage, or hydra.sweeper.pruner=none. Received: hydra.sweeper.storage=null")
    for key in ("heartbeat_interval", "grace_period"):
        value = getattr(settings, key)
        if value is not None and value < 1:
            raise ValueError(f"hydra.sweeper.{key} must be >= 1 (seconds) or null. Received: {value}")


def quoted(value):
    """A string as a quoted Hydra override value."""
    if "'" in value:
        raise ValueError(f"hydra.sweeper.storage must not contain a quote. Received: {value!r}")
    return f"'{value}'"


class OptunaSweeper(Sweeper):
    """A Hydra sweeper on an Optuna study with a TPE sampler; fields in `config.OptunaSweeperConf`."""

    def __init__(self, *, direction, study_name, storage, n_trials, n_jobs, sampler, params, pruner="none",
                 heartbeat_interval=10, grace_period=30, max_retry=3):
        seed = sampler.get("seed") if sampler else None
        self.settings = Settings(study_name, storage, direction, seed, pruner,
                                 heartbeat_interval if storage else None, grace_period, max_retry)
        check_settings(self.settings, n_trials, n_jobs)
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.params = dict(params or {})
        self.config = self.launcher = None
        self.job_idx, self.retried = 0, set()

    def setup(self, *, hydra_context, task_function, config):
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def space_lines(self, arguments):
        """`hydra.sweeper.params` as override lines, then the command line's overrides."""
        from ._space import format_value

        return [f"{key}={format_value(value)}" for key, value in self.params.items()] + list(arguments)

    def sweep(self, arguments):
        from . import _space, _study  # Optuna is imported by a search, not by every plugin scan

        space, fixed = _space.parse_space(self.space_lines(arguments))
        study, storage = _study.open_study(self.settings)
        self.retried = set(_study.retried_numbers(study.get_trials(deepcopy=False)))
        self.fail_stale(study)
        left = self.n_trials - len(_study.counted(study.get_trials(deepcopy=False)))
        pruner = f", pruner {self.settings.pruner}" if self.settings.pruner != "none" else ""
        log.info(f"Optuna study {study.study_name!r} in {self.settings.storage or 'memory'}: "
                 f"{max(left, 0)} of {self.n_trials} trials to run{pruner}")
        waiting = None
        while True:
            batch = self.ask(study, storage, space)
            if batch:
                self.run_batch(study, storage, batch, fixed)
                continue
            others = _study.running(study) if self.settings.heartbeat_interval else []
            if not others:
                break
            if others != waiting:
                log.info(f"waiting for trials {others}, running in other searches (or failed after "
                         f"{self.settings.grace_period} s without a heartbeat, then run here)")
                waiting = others
            time.sleep(self.settings.heartbeat_interval)
        self.report(study)

    def fail_stale(self, study):
        """Fail the trials of killed searches (their heartbeat stopped): they run again."""
        from . import _study

        now = set(_study.fail_stale(study))
        if now - self.retried:
            log.info(f"re-running trials {sorted(now - self.retried)}, left RUNNING by a killed search")
        self.retried |= now

    def ask(self, study, storage, space):
        """The next batch (as many trials as are missing from n_trials, at most n_jobs), asked while
        no other search counts or asks; their first heartbeat is recorded at once."""
        from . import _storage, _study

        with _storage.exclusive(self.settings.storage, f"ask:{study.study_name}"):
            self.fail_stale(study)
            left = self.n_trials - len(_study.counted(study.get_trials(deepcopy=False)))
            batch = []
            for _ in range(max(0, min(self.n_jobs, left))):
                study.sampler = _study.sampler_for(self.settings.seed, len(study.get_trials(deepcopy=False)))
                with warnings.catch_warnings():  # "Heartbeat of storage is supposed to be used with Study.optimize"
                    warnings.simplefilter("ignore", UserWarning)
                    batch.append(study.ask(fixed_distributions=space))
            if storage is not None and self.settings.heartbeat_interval:
                _study.beat(storage, study.study_name, batch)
        return batch

    def trial_overrides(self, study, trial, fixed):
        """One trial's overrides: its params, the fixed overrides, and where its training process reports."""
        from . import _space

        where = [] if self.settings.storage is None else [
            f"search.storage={quoted(self.settings.storage)}", f"search.study={quoted(study.study_name)}",
            f"search.trial={trial.number}", f"search.pruner={self.settings.pruner}"]
        return _space.trial_overrides(trial.params, fixed) + where

    def run_batch(self, study, storage, trials, fixed):
        """Launch one batch of trials and record how each ended; a launcher error fails the batch."""
        from . import _study

        overrides = [self.trial_overrides(study, trial, fixed) for trial in trials]
        first, self.job_idx = self.job_idx, self.job_idx + len(trials)
        try:
            with _study.beating(storage, study.study_name, trials, self.settings.heartbeat_interval):
                returns = self.launcher.launch(overrides, initial_job_idx=first)
        except Exception as exc:  # noqa: BLE001 - a bad override, a worker killed by the OS: the search goes on
            for trial in trials:
                _study.fail(study, trial, f"the launcher failed on its batch: {_study.describe(exc)}")
            return
        for trial, ret in zip(trials, returns):
            _study.record(study, trial, ret)

    def report(self, study):
        """Write optimization_results.yaml in the sweep dir and log one line."""
        from . import _study

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        results = _study.write_summary(study, sweep_dir / RESULTS_FILE)
        log.info(f"Optuna search: {results['n_complete']} complete, {results['n_pruned']} pruned, "
                 f"{results['n_failed']} failed; best {results['best_value']} with {results['best_params']} "
                 f"-> {sweep_dir / RESULTS_FILE}")

