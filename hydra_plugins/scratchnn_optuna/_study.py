"""The study: open or resume it, count what counts towards n_trials, record each job's result.

Several search processes may share one study (see `_storage`). A trial left RUNNING by a search
that was killed stops beating, is failed by `optuna.storages.fail_stale_trials` once its
heartbeat is older than the grace period, and is enqueued again with the same params
(RetryHeartbeatStaleTrialCallback: the new trial's system attr `failed_trial` names the old one).
A trial that was retried does not count towards `n_trials`; every other trial does: RUNNING ones
(some worker trains them), COMPLETE, PRUNED, and FAIL because its job raised or returned NaN.
"""

import contextlib
import logging
import math
import numbers
import threading
import warnings

import numpy as np
import optuna
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf
from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
from optuna.trial import TrialState

from experiments.pruning import Pruned

from . import _storage

log = logging.getLogger(__name__)
COUNTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def open_study(settings):
    """(study, its RDBStorage or None): the study created, or loaded if the storage already holds one
    of that name. `settings`: the sweeper's Settings (study_name, storage, direction, seed, pruner, ...)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is Hydra's job
    storage = settings.storage
    if storage is not None:
        storage = _storage.open_storage(storage, heartbeat_interval=settings.heartbeat_interval,
                                        grace_period=settings.grace_period, max_retry=settings.max_retry)
    study = optuna.create_study(study_name=settings.study_name, storage=storage, sampler=sampler_for(settings.seed, 0),
                                pruner=_storage.make_pruner(settings.pruner), direction=settings.direction,
                                load_if_exists=True)
    return study, storage


def sampler_for(seed, number):
    """The TPE sampler that asks for trial `number`: seeded with (seed, number), so that searches sharing
    a study with one seed never draw the same params, and a study's draws do not depend on how many
    searches made it (the sampler holds no state but its random generator)."""
    if seed is None:
        return optuna.samplers.TPESampler()
    return optuna.samplers.TPESampler(seed=int(np.random.SeedSequence([seed, number]).generate_state(1)[0]))


def fail_stale(study):
    """Fail the trials whose heartbeat stopped (their search was killed); the storage's callback
    enqueues each again. Returns the numbers of the trials retried so far."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        return sorted(retried_numbers(study.get_trials(deepcopy=False)))


def retried_numbers(trials):
    """Numbers of the trials that failed stale and were enqueued again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return {n for t in trials for n in Retry.retry_history(t)}


def counted(trials):
    """The trials that count towards n_trials: running or finished, and not retried."""
    retried = retried_numbers(trials)
    return [t for t in trials if t.state in COUNTED and t.number not in retried]


def objective(ret):
    """(the finite float a job returned, None), (None, why the trial failed), or (the Pruned it returned, None)."""
    if ret.status != JobStatus.COMPLETED:
        try:
            ret.return_value  # raises the job's exception
        except Exception as exc:  # noqa: BLE001 - any failure of the job is the trial's failure
            return None, f"raised {describe(exc)}"
        return None, f"job status {ret.status.name}"
    value = ret.return_value
    if isinstance(value, Pruned):
        return value, None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"returned {value!r}, not a number"
    if not math.isfinite(value):
        return None, f"returned {value}"
    return float(value), None


def describe(exc):
    """An exception on one line: its type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def record(study, trial, ret):
    """Tell the study how a trial's job ended: COMPLETE with its value, PRUNED, or FAIL with one warning line."""
    value, why = objective(ret)
    if isinstance(value, Pruned):
        study.tell(trial, state=TrialState.PRUNED)
        log.info(f"trial {trial.number} pruned {value}")
    elif why is None:
        study.tell(trial, value)
    else:
        fail(study, trial, why)


def fail(study, trial, why):
    """Record the trial as FAIL and say why in one warning line."""
    study.tell(trial, state=TrialState.FAIL)
    log.warning(f"trial {trial.number} failed: {why}")


def summary(study):
    """Best params and value, and how many trials completed, were pruned and failed (retried ones apart)."""
    trials = study.get_trials(deepcopy=False)
    mine = counted(trials)
    complete = [t for t in mine if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return {
        "name": "optuna",
        "study_name": study.study_name,
        "best_params": dict(best.params) if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "n_complete": len(complete),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in mine),
        "n_failed": sum(t.state == TrialState.FAIL for t in mine),
        "n_running": sum(t.state == TrialState.RUNNING for t in mine),
        "n_retried": len(retried_numbers(trials)),
    }


def write_summary(study, path):
    """Write the summary as YAML and return it."""
    results = summary(study)
    OmegaConf.save(OmegaConf.create(results), path)
    return results


def running(study):
    """Numbers of the trials RUNNING in the study (once a search has told its own: other searches')."""
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def _trial_ids(storage, study_name, trials):
    study_id = storage.get_study_id_from_name(study_name)
    return [storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in trials]


def beat(storage, study_name, trials):
    """Record one heartbeat of each trial now."""
    for trial_id in _trial_ids(storage, study_name, trials):
        storage.record_heartbeat(trial_id)


@contextlib.contextmanager
def beating(storage, study_name, trials, interval):
    """A heartbeat of each trial every `interval` s while the block runs (Optuna's RDBStorage
    heartbeat, as study.optimize records it); nothing without a storage or an interval."""
    if storage is None or not interval:
        yield
        return
    ids, stop = _trial_ids(storage, study_name, trials), threading.Event()

    def loop():
        while not stop.wait(interval):
            try:
                for trial_id in ids:
                    storage.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; many make the trials stale
                log.warning(f"could not record the heartbeat of trials {[t.number for t in trials]}: {describe(exc)}")

    thread = threading.Thread(target=loop, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
