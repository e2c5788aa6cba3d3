"""Sweeps through Hydra's launchers: parallel joblib, failure isolation, kill-and-resume, submitit."""

import os
import signal

import mlflow
import pytest

from experiments import claims
from harness import FAST_BEAT, assert_complete, command, new_store, run, runs, start, wait_for

pytestmark = pytest.mark.e2e
EXPERIMENT = "sweep-smoke"
BOTH = ("scratchnn", "keras")


def run_sweep(uri, out, *overrides):
    result = run(command(uri, out, "+sweep=smoke", *overrides, sweep=True))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_parallel_smoke_sweep_with_joblib(tmp_path):
    uri = new_store(tmp_path)
    output = run_sweep(uri, tmp_path / "out", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train.threads=1")
    assert "sweep: 4 finished, 0 failed, 0 skipped" in output
    df = runs(uri, EXPERIMENT)
    assert len(df) == 12
    assert_complete(df, 4, BOTH)


@pytest.mark.slow
def test_a_diverging_config_fails_and_the_sweep_goes_on(tmp_path):
    uri = new_store(tmp_path)
    output = run_sweep(uri, tmp_path / "out", "model.depth=1", "model.width=32", "optimizer.lr=0.1,100",
                       "model.width=32,33")
    assert "sweep: 2 finished, 2 failed, 0 skipped" in output
    df = runs(uri, EXPERIMENT)
    failed = df[(df["tags.role"] == "parent") & (df.status == "FAILED")]
    assert len(failed) == 2 and set(failed["params.optimizer.lr"]) == {"100.0"}
    assert (failed["tags.failed_frameworks"] == "scratchnn,keras").all()
    children = df[df["tags.mlflow.parentRunId"].isin(failed.run_id)]
    assert len(children) == 4 and children["tags.failure_reason"].str.contains("training diverged").all()
    assert "RUNNING" not in set(df.status)


@pytest.mark.slow
def test_bad_config_in_a_sweep_is_recorded_as_failed(tmp_path):
    uri = new_store(tmp_path)
    output = run_sweep(uri, tmp_path / "out", "model.depth=1", "model.width=0,16")
    assert "sweep: 1 finished, 1 failed, 0 skipped" in output
    df = runs(uri, EXPERIMENT)
    failed = df[df.status == "FAILED"]
    assert len(failed) == 1 and "Received: model.width=0" in failed["tags.failure_reason"].iloc[0]


def started_second_after_first_finished(uri):
    df = runs(uri, EXPERIMENT)
    # numpy's False is not False
    return bool((df["tags.role"] == "parent").sum() >= 2 and (df.status == "FINISHED").any())


def all_open_runs_stale(uri, stale_after_s):
    """True once every RUNNING run's last heartbeat is older than the window (the event the resumed
    sweep's stale check waits for, read the way it reads it)."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    return bool(running) and all(claims.silent_for(r, stale_after_s) is not None for r in running)


@pytest.mark.slow
def test_killed_sweep_resumes_without_repeating_finished_configs(tmp_path):
    uri = new_store(tmp_path)
    fast = [o for o in FAST_BEAT if "stale_after_s" not in o] + ["mlflow.stale_after_s=3"]  # stale after 3 s
    process = start(command(uri, tmp_path / "out1", "+sweep=smoke", *fast, sweep=True))
    try:  # kill once the first config has finished and the second has begun
        wait_for(lambda: started_second_after_first_finished(uri), process, timeout=300,
                 what="the second config to start after the first finished")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    before = runs(uri, EXPERIMENT)
    finished_before = before[(before["tags.role"] == "parent") & (before.status == "FINISHED")]
    assert "RUNNING" in set(before.status) and 1 <= len(finished_before) < 4

    wait_for(lambda: all_open_runs_stale(uri, 3), timeout=120, what="the killed sweep's runs to go stale")
    output = run_sweep(uri, tmp_path / "out2", *fast)
    running = int((before.status == "RUNNING").sum())
    assert (f"sweep: marked {running} run(s) KILLED: RUNNING, but their process is gone from this host "
            "or sent no heartbeat for over 3 s" in output.splitlines()), output
    assert f"sweep: {4 - len(finished_before)} finished, 0 failed, {len(finished_before)} skipped" in output
    after = runs(uri, EXPERIMENT)
    assert_complete(after, 4, BOTH)
    assert "KILLED" in set(after.status)
    kept = after[after.run_id.isin(finished_before.run_id)]
    assert set(kept.status) == {"FINISHED"}  # the finished configs were not run again

    output = run_sweep(uri, tmp_path / "out3", "model.depth=1", "model.width=16", "rerun=true")
    assert "sweep: 1 finished, 0 failed, 0 skipped" in output


@pytest.mark.slow
def test_submitit_local_launcher_runs_the_smoke_sweep(tmp_path):
    uri = new_store(tmp_path)
    output = run_sweep(uri, tmp_path / "out", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                       "train.threads=1")
    assert "sweep: 4 finished, 0 failed, 0 skipped" in output
    assert_complete(runs(uri, EXPERIMENT), 4, BOTH)
