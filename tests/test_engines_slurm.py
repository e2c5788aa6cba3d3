"""Sweeps through sbatch on the one-node SLURM cluster of scripts/slurm-local (the `slurm` fixture):
every config finishes; a job that is cancelled, passes its time limit or is requeued ends its runs
KILLED with the reason, and a relaunch runs the config."""

import re
import subprocess

import pytest

from harness import TINY, assert_complete, command, run, running_children, runs, start, store, wait_for

pytestmark = pytest.mark.engines
EXPERIMENT = "slurm"
SLURM = ["hydra/launcher=slurm", f"mlflow.experiment={EXPERIMENT}"]
ONE = ["model.depth=1", "model.width=16"]
MINUTE = ["model.depth=2", "model.width=256", "data.train_size=5000", "train.epochs=40"]  # a minute or more of training


def tiny(*overrides):
    """TINY with `overrides` in place of its values for the same keys, then the SLURM launcher."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [*(o for o in TINY if o.split("=", 1)[0] not in keys), *SLURM, *overrides]


def squeue(*options):
    """Job ids squeue lists (all of this cluster's jobs, or as `options` select)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i", *options], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def slurmctl(*cmd):
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
    return done.stdout


def started(uri, out, *overrides):
    """A sweep through sbatch, and the id of its (only) job once that job's child run is RUNNING."""
    process = start(command(uri, out, *tiny(*overrides), sweep=True))
    wait_for(lambda: running_children(uri, EXPERIMENT), process, timeout=600, what="the SLURM job training")
    return process, wait_for(lambda: squeue("-t", "R") or None, process, what="squeue listing the job")[0]


def ended(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    return out + err


def no_jobs_left():
    wait_for(lambda: not squeue(), timeout=120, what="the queue to empty")


def test_a_smoke_sweep_through_sbatch_finishes_its_4_configs(tmp_path, slurm):
    uri = store(tmp_path)
    result = run(command(uri, tmp_path / "out", "+sweep=smoke", "frameworks=[scratchnn]", "train.threads=1", *SLURM,
                         sweep=True), timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep: 4 finished, 0 failed, 0 skipped in" in result.stdout
    assert_complete(runs(uri, EXPERIMENT), 4)
    tasks = [p.name for p in (tmp_path / "out" / ".submitit").iterdir() if re.fullmatch(r"\d+_\d", p.name)]
    assert len(tasks) == 4, tasks  # one task of a SLURM job array per config, by <job id>_<task>


def test_scancel_of_a_running_job_ends_its_runs_killed_and_a_relaunch_runs_the_config(tmp_path, slurm):
    uri = store(tmp_path)
    process, job = started(uri, tmp_path / "a", *MINUTE)
    slurmctl("scancel", job)
    ended(process)
    no_jobs_left()
    df = runs(uri, EXPERIMENT)
    assert "RUNNING" not in set(df.status) and set(df.status) == {"KILLED"}, df[["status", "tags.failure_reason"]]
    assert df["tags.failure_reason"].str.contains("interrupted by SIGTERM", regex=False).all()
    relaunch = run(command(uri, tmp_path / "b", *tiny(*MINUTE), sweep=True), timeout=1200)
    assert (relaunch.returncode == 0
            and "sweep: 1 finished, 0 failed, 0 skipped" in relaunch.stdout), relaunch.stderr[-3000:]
    assert_complete(runs(uri, EXPERIMENT).query("status != 'KILLED'"), 1)


def test_a_job_past_its_time_limit_ends_killed_with_the_reason_and_a_relaunch_runs_it(tmp_path, slurm):
    uri = store(tmp_path)
    forever = [*ONE, "train.epochs=100000", "hydra.launcher.timeout_min=2"]
    process, _ = started(uri, tmp_path / "a", *forever)
    ended(process, timeout=400)
    no_jobs_left()
    df = runs(uri, EXPERIMENT)
    assert set(df.status) == {"KILLED"}, df[["status", "tags.failure_reason"]]
    assert df["tags.failure_reason"].str.contains("time limit", regex=False).all(), df["tags.failure_reason"]
    first = set(df.run_id)
    relaunch, job = started(uri, tmp_path / "b", *forever)  # not skipped: its job trains the config again
    fresh = running_children(uri, EXPERIMENT)
    assert fresh is not None and not set(fresh.run_id) & first
    slurmctl("scancel", job)
    ended(relaunch)
    no_jobs_left()


def test_a_requeued_job_ends_its_first_runs_killed_and_runs_the_config_again(tmp_path, slurm):
    uri = store(tmp_path)
    process, job = started(uri, tmp_path / "a", *MINUTE)
    requeue = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    if requeue.returncode != 0:
        pytest.skip(f"this SLURM does not requeue here: {requeue.stderr.strip()}")
    output = ended(process, timeout=1200)
    no_jobs_left()
    df = runs(uri, EXPERIMENT)
    assert "RUNNING" not in set(df.status), output[-3000:]
    killed = df[df.status == "KILLED"]
    assert len(killed) == 2 and killed["tags.failure_reason"].str.contains("SIGTERM", regex=False).all()
    assert_complete(df[df.status != "KILLED"], 1)
    assert "sweep: 1 finished" in output
