"""The study: open or resume it, re-run what a killed search left RUNNING, record each job's result.

A search that is killed leaves its trials RUNNING in the storage. The next search marks them
FAIL and enqueues their parameters again, tagging the new trial with `rerun_of` = the old
trial's number. Those interrupted trials do not count towards `n_trials`; every other finished
trial (COMPLETE, or FAIL because its job raised or returned NaN) does. This assumes one search
per study at a time: a second search started on a study that is still running would fail the
first one's trials.
"""

import logging
import math
import numbers

import optuna
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

log = logging.getLogger(__name__)
RERUN_OF = "rerun_of"


def open_study(name, storage, direction, seed):
    """Create the study, or load it if the storage already holds one of that name."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is Hydra's job
    sampler = optuna.samplers.TPESampler(seed=seed)
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction=direction,
                               load_if_exists=True)


def requeue_interrupted(study):
    """Mark the trials a killed search left RUNNING as FAIL and enqueue their params again; their numbers."""
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RERUN_OF: trial.number})
        requeued.append(trial.number)
    return requeued


def interrupted_numbers(trials):
    """Numbers of the trials that a killed search interrupted and a later one re-enqueued."""
    return {t.user_attrs[RERUN_OF] for t in trials if RERUN_OF in t.user_attrs}


def finished_trials(study):
    """The finished trials that count towards n_trials: all but those interrupted and re-run."""
    trials = study.get_trials(deepcopy=False)
    interrupted = interrupted_numbers(trials)
    return [t for t in trials if t.state.is_finished() and t.number not in interrupted]


def objective(ret):
    """(the finite float a job returned, None), or (None, why the trial failed)."""
    if ret.status != JobStatus.COMPLETED:
        try:
            ret.return_value  # raises the job's exception
        except Exception as exc:  # noqa: BLE001 - any failure of the job is the trial's failure
            return None, f"raised {describe(exc)}"
        return None, f"job status {ret.status.name}"
    value = ret.return_value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"returned {value!r}, not a number"
    if not math.isfinite(value):
        return None, f"returned {value}"
    return float(value), None


def describe(exc):
    """An exception on one line: its type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def record(study, trial, ret):
    """Tell the study how a trial's job ended: COMPLETE with its value, or FAIL with one warning line."""
    value, why = objective(ret)
    if why is None:
        study.tell(trial, value)
    else:
        fail(study, trial, why)


def fail(study, trial, why):
    """Record the trial as FAIL and say why in one warning line."""
    study.tell(trial, state=TrialState.FAIL)
    log.warning(f"trial {trial.number} failed: {why}")


def summary(study):
    """Best params and value, and how many trials completed and failed (interrupted ones apart)."""
    trials = finished_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return {
        "name": "optuna",
        "study_name": study.study_name,
        "best_params": dict(best.params) if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "n_complete": len(complete),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "n_interrupted": len(interrupted_numbers(study.get_trials(deepcopy=False))),
    }


def write_summary(study, path):
    """Write the summary as YAML and return it."""
    results = summary(study)
    OmegaConf.save(OmegaConf.create(results), path)
    return results
