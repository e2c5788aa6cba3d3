"""The Optuna search (+sweep=search) through hydra_plugins/scratchnn_optuna: failures, resume, kill, search space."""

import math
import os
import signal
import sys

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from harness import run, start, wait_for
from hydra_plugins.scratchnn_optuna import _space, _study
from hydra_plugins.scratchnn_optuna.config import optuna_storage

STUDY = "scratchnn-search"
FAST_BEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=6",  # a killed search's trial: 6 s
             "mlflow.heartbeat_s=1", "mlflow.stale_after_s=4"]  # and its MLflow runs in 4 s, so the retry trains
TINY = ["data.train_size=1000", "data.val_size=200", "data.test_size=500", "train.epochs=1", "train.warmup_steps=2",
        "frameworks=[scratchnn]", "train.threads=1", "model.depth=1", "model.activation=relu", "train.batch_size=64"]


def search_command(tmp_path, out, *overrides):
    return [sys.executable, "-m", "experiments.train", "-m", "+sweep=search", *TINY,
            f"mlflow.tracking_uri=sqlite:///{tmp_path / 'm.db'}", f"hydra.sweep.dir={tmp_path / out}", *overrides]


def run_search(tmp_path, out, *overrides):
    result = run(search_command(tmp_path, out, *overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def trials(storage):
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials()


def counted(all_trials):
    """The trials that count towards n_trials: finished, and not retried after a kill."""
    retried = {n for t in all_trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in all_trials if t.state.is_finished() and t.number not in retried]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_diverging_trial_fails_and_the_search_completes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"  # an explicit storage, not the default beside m.db
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    for lr, width in ((0.1, 16), (1000, 16), (0.1, 24)):  # the second one diverges; no sampling luck involved
        study.enqueue_trial({"optimizer.lr": lr, "model.width": width})
    output = run_search(tmp_path, "out", f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=3",
                        "optimizer.lr=choice(0.1,1000)", "model.width=range(8,32)")
    states = [t.state for t in trials(storage)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "trial 1 failed" in output and "Optuna search: 2 complete, 0 pruned, 1 failed" in output
    results = (tmp_path / "out" / "optimization_results.yaml").read_text()
    assert "n_complete: 2" in results and "n_failed: 1" in results and "optimizer.lr: 0.1" in results
    assert not (tmp_path / "optuna.db").exists()


@pytest.mark.slow
@pytest.mark.e2e
def test_a_relaunch_runs_only_the_missing_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # the default: beside the MLflow store m.db
    run_search(tmp_path, "out1", "hydra.sweeper.n_trials=2", "model.width=choice(16,32)")
    assert len(counted(trials(storage))) == 2
    output = run_search(tmp_path, "out2", "hydra.sweeper.n_trials=3", "model.width=choice(16,32)")
    assert "1 of 3 trials to run" in output and output.count("Launching 1 jobs") == 1
    after = trials(storage)
    assert len(after) == len(counted(after)) == 3
    assert {t.params["model.width"] for t in after} <= {16, 32}  # the command-line sweep replaced params'
    assert all("model.depth" not in t.params for t in after)  # fixed on the command line: not searched


def second_trial_running(tmp_path, storage):
    """Job #1 has started (so the storage exists) and the storage shows a RUNNING trial."""
    return (tmp_path / "out1" / "1").is_dir() and any(t.state == TrialState.RUNNING for t in trials(storage))


@pytest.mark.slow
@pytest.mark.e2e
def test_a_killed_search_reruns_its_interrupted_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    slow = ["train.epochs=4"]  # a trial RUNNING long enough to be killed while it is
    process = start(search_command(tmp_path, "out1", "hydra.sweeper.n_trials=3", *FAST_BEAT, *slow))
    try:
        wait_for(lambda: second_trial_running(tmp_path, storage), process, timeout=240,
                 what="the search's second trial to run")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    killed = [t for t in trials(storage) if t.state == TrialState.RUNNING]
    assert len(killed) == 1

    output = run_search(tmp_path, "out2", "hydra.sweeper.n_trials=3", *FAST_BEAT, *slow)  # at once: waits out the grace
    assert f"re-running trials [{killed[0].number}]" in output
    after = trials(storage)
    assert len(counted(after)) == 3 and not [t for t in after if not t.state.is_finished()]
    assert after[killed[0].number].state == TrialState.FAIL
    rerun = [t for t in after if t.system_attrs.get("failed_trial") == killed[0].number]
    assert len(rerun) == 1 and rerun[0].params == killed[0].params and rerun[0].state == TrialState.COMPLETE


def test_search_space_syntax():
    space, fixed = _space.parse_space([
        "a=choice(relu, tanh)", "b=range(1, 4)", "c=interval(0.1, 1)", "d=tag(log, interval(0.003, 0.3))",
        "e=int(interval(1, 9))", "f=range(0.5, 2.5, step=0.5)", "g=16", "+sweep=search", "b=2", "g=choice(1,2)"])
    assert space == {
        "a": CategoricalDistribution(["relu", "tanh"]),
        "c": FloatDistribution(0.1, 1.0),
        "d": FloatDistribution(0.003, 0.3, log=True),
        "e": IntDistribution(1, 9),
        "f": FloatDistribution(0.5, 2.5, step=0.5),
        "g": CategoricalDistribution([1, 2]),  # a later override replaces an earlier one...
    }
    assert fixed == {"+sweep": "+sweep=search", "b": "b=2"}  # ...a sweep by a fixed value too
    assert _space.parse_space(["b=range(1, 4)"])[0]["b"] == IntDistribution(1, 4)  # stop included
    assert _space.trial_overrides({"a": "relu", "h": True, "n": None, "x": 0.01}, fixed) == [
        "a=relu", "h=true", "n=null", "x=0.01", "+sweep=search", "b=2"]
    odd = _space.parse_space(['a=choice([1, 2], "b c", 3)'])[0]["a"]
    assert odd == CategoricalDistribution(["[1,2]", "b\\ c", 3])  # read back as [1, 2] and "b c"
    assert _space.parse_space(["a=1,2"])[0]["a"] == CategoricalDistribution([1, 2])  # the grid form is a choice


def test_job_results_become_values_or_failures():
    def job(value, status=JobStatus.COMPLETED):
        return JobReturn(status=status, _return_value=value)

    assert _study.objective(job(0.5)) == (0.5, None)
    assert _study.objective(job(7)) == (7.0, None)
    for value in (math.nan, math.inf, None, "0.5", True):
        assert _study.objective(job(value))[0] is None
    value, why = _study.objective(job(RuntimeError("training diverged"), JobStatus.FAILED))
    assert value is None and why == "raised RuntimeError: training diverged"


def test_default_storage_is_beside_the_mlflow_store():
    assert optuna_storage("sqlite:////srv/runs/mlflow.db") == "sqlite:////srv/runs/optuna.db"
    assert optuna_storage("sqlite:///mlflow.db") == "sqlite:///optuna.db"
    for uri in ("http://localhost:5000", "sqlite://", "file:///tmp/mlruns"):
        with pytest.raises(ValueError, match="hydra.sweeper.storage"):
            optuna_storage(uri)
