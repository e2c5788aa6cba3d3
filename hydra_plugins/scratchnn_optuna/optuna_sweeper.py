"""OptunaSweeper: ask a batch of trials, launch it, tell the study how each job ended; until n_trials.

The search space is `hydra.sweeper.params` merged with the sweep overrides of the command line
(a later key replaces an earlier one, so `model.width=16` on the command line fixes a searched
key); every other override is passed to each trial unchanged. A trial whose job raises, returns
NaN or anything but a finite number is recorded as FAIL with one warning line, and the search
goes on. With a storage, relaunching the same search resumes it (see `_study`).
"""

import logging
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

log = logging.getLogger(__name__)
DIRECTIONS = ("minimize", "maximize")
RESULTS_FILE = "optimization_results.yaml"


def check_settings(direction, n_trials, n_jobs):
    """Reject settings that make no search, naming the field and the value."""
    if direction not in DIRECTIONS:
        raise ValueError(f"hydra.sweeper.direction must be one of {DIRECTIONS}. Received: {direction!r}")
    if n_trials < 0:
        raise ValueError(f"hydra.sweeper.n_trials must be >= 0. Received: {n_trials}")
    if n_jobs < 1:
        raise ValueError(f"hydra.sweeper.n_jobs must be >= 1. Received: {n_jobs}")


class OptunaSweeper(Sweeper):
    """A Hydra sweeper on an Optuna study with a TPE sampler; fields in `config.OptunaSweeperConf`."""

    def __init__(self, *, direction, study_name, storage, n_trials, n_jobs, sampler, params):
        check_settings(direction, n_trials, n_jobs)
        self.direction, self.study_name, self.storage = direction, study_name, storage
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.seed = sampler.get("seed") if sampler else None
        self.params = dict(params or {})
        self.config = self.launcher = None
        self.job_idx = 0

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
        study = _study.open_study(self.study_name, self.storage, self.direction, self.seed)
        requeued = _study.requeue_interrupted(study)
        left = self.n_trials - len(_study.finished_trials(study))
        rerun = f"; re-running trials {requeued}, left RUNNING by a killed search" if requeued else ""
        log.info(f"Optuna study {study.study_name!r} in {self.storage or 'memory'}: "
                 f"{max(left, 0)} of {self.n_trials} trials to run{rerun}")
        while left > 0:
            batch = [study.ask(fixed_distributions=space) for _ in range(min(self.n_jobs, left))]
            self.run_batch(study, batch, fixed)
            left -= len(batch)
        self.report(study)

    def run_batch(self, study, trials, fixed):
        """Launch one batch of trials and record how each ended; a launcher error fails the batch."""
        from . import _space, _study

        overrides = [_space.trial_overrides(trial.params, fixed) for trial in trials]
        first, self.job_idx = self.job_idx, self.job_idx + len(trials)
        try:
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
        log.info(f"Optuna search: {results['n_complete']} complete, {results['n_failed']} failed; "
                 f"best {results['best_value']} with {results['best_params']} -> {sweep_dir / RESULTS_FILE}")

