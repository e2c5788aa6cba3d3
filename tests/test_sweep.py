"""Sweeps through Hydra's launchers: parallel joblib, failure isolation, kill-and-resume, submitit."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from experiments.config import PROJECT_ROOT


def sweep_command(db, out, *overrides):
    return [sys.executable, "-m", "experiments.train", "-m", "+sweep=smoke", f"mlflow.tracking_uri=sqlite:///{db}",
            f"hydra.sweep.dir={out}", *overrides]


def run_sweep(db, out, *overrides, timeout=600):
    env = {**os.environ, "SCRATCHNN_DATA_DIR": os.environ.get("SCRATCHNN_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data"))}
    result = subprocess.run(sweep_command(db, out, *overrides), capture_output=True, text=True, env=env,
                            cwd=PROJECT_ROOT, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def runs(db):
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    return mlflow.search_runs(experiment_names=["sweep-smoke"])


def assert_complete(df, n_configs):
    """Exactly one FINISHED parent per config, each with two FINISHED children, nothing RUNNING."""
    assert "RUNNING" not in set(df.status)
    parents = df[(df["tags.role"] == "parent") & (df.status == "FINISHED")]
    assert len(parents) == n_configs and parents["tags.config_hash"].is_unique
    for run_id in parents.run_id:
        children = df[df["tags.mlflow.parentRunId"] == run_id]
        assert sorted(children["tags.framework"]) == ["keras", "scratchnn"] and set(children.status) == {"FINISHED"}


def test_parallel_smoke_sweep_with_joblib(tmp_path):
    output = run_sweep(tmp_path / "m.db", tmp_path / "out", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                       "train.threads=1")
    assert "sweep: 4 finished, 0 failed, 0 skipped" in output
    df = runs(tmp_path / "m.db")
    assert len(df) == 12
    assert_complete(df, 4)


def test_a_diverging_config_fails_and_the_sweep_goes_on(tmp_path):
    output = run_sweep(tmp_path / "m.db", tmp_path / "out", "model.depth=1", "model.width=32", "optimizer.lr=0.1,100",
                       "model.width=32,33")
    assert "sweep: 2 finished, 2 failed, 0 skipped" in output
    df = runs(tmp_path / "m.db")
    failed = df[(df["tags.role"] == "parent") & (df.status == "FAILED")]
    assert len(failed) == 2 and set(failed["params.optimizer.lr"]) == {"100.0"}
    assert (failed["tags.failed_frameworks"] == "scratchnn,keras").all()
    children = df[df["tags.mlflow.parentRunId"].isin(failed.run_id)]
    assert len(children) == 4 and children["tags.failure_reason"].str.contains("training diverged").all()
    assert "RUNNING" not in set(df.status)


def test_bad_config_in_a_sweep_is_recorded_as_failed(tmp_path):
    output = run_sweep(tmp_path / "m.db", tmp_path / "out", "model.depth=1", "model.width=0,16")
    assert "sweep: 1 finished, 1 failed, 0 skipped" in output
    df = runs(tmp_path / "m.db")
    failed = df[df.status == "FAILED"]
    assert len(failed) == 1 and "Received: model.width=0" in failed["tags.failure_reason"].iloc[0]


def test_killed_sweep_resumes_without_repeating_finished_configs(tmp_path):
    db = tmp_path / "m.db"
    env = {**os.environ, "SCRATCHNN_DATA_DIR": os.environ.get("SCRATCHNN_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data"))}
    fast = ["mlflow.heartbeat_s=1", "mlflow.stale_after_s=3"]  # a dead process's runs go stale after 3 s
    process = subprocess.Popen(sweep_command(db, tmp_path / "out1", *fast), cwd=PROJECT_ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # kill once the first config has finished and the second has begun
            if (tmp_path / "out1" / "0" / "status.json").exists():  # the store is set up by then
                df = runs(db)
                if not df.empty and (df["tags.role"] == "parent").sum() >= 2 and (df.status == "FINISHED").any():
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the sweep did not get going within 300 s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = runs(db)
    finished_before = before[(before["tags.role"] == "parent") & (before.status == "FINISHED")]
    assert "RUNNING" in set(before.status) and 1 <= len(finished_before) < 4

    time.sleep(4)
    output = run_sweep(db, tmp_path / "out2", *fast)
    running = int((before.status == "RUNNING").sum())
    assert (f"sweep: marked {running} run(s) KILLED: RUNNING with no heartbeat for over 3 s (their process died)"
            in output.splitlines()), output
    assert f"sweep: {4 - len(finished_before)} finished, 0 failed, {len(finished_before)} skipped" in output
    after = runs(db)
    assert_complete(after, 4)
    assert "KILLED" in set(after.status)
    kept = after[after.run_id.isin(finished_before.run_id)]
    assert set(kept.status) == {"FINISHED"}  # the finished configs were not run again

    output = run_sweep(db, tmp_path / "out3", "model.depth=1", "model.width=16", "rerun=true")
    assert "sweep: 1 finished, 0 failed, 0 skipped" in output


def test_submitit_local_launcher_runs_the_smoke_sweep(tmp_path):
    output = run_sweep(tmp_path / "m.db", tmp_path / "out", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                       "train.threads=1")
    assert "sweep: 4 finished, 0 failed, 0 skipped" in output
    assert_complete(runs(tmp_path / "m.db"), 4)
