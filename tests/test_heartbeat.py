"""Heartbeat liveness with real processes: a run that trains for longer than `stale_after_s` keeps
beating, so another sweep's stale check at its start leaves it RUNNING (only a dead process's runs
are marked KILLED: test_sweep.py)."""

import time

import mlflow
import pytest

from harness import TINY, command, new_store, run, running_children, runs, wait_for

pytestmark = pytest.mark.e2e
EXPERIMENT = "scratchnn"
STALE_AFTER_S = 10
BEAT = ["mlflow.heartbeat_s=1", f"mlflow.stale_after_s={STALE_AFTER_S}"]
LONG = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=100000"]  # runs until stopped


def lived_past_twice_the_window(uri):
    """True once both open runs of the long training were started over 2 stale windows ago."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    open_runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    return len(open_runs) == 2 and all(time.time() - r.info.start_time / 1000 > 2 * STALE_AFTER_S for r in open_runs)


@pytest.mark.slow
def test_a_run_training_longer_than_the_stale_window_is_not_marked_killed_by_another_sweep(tmp_path, spawn):
    uri = new_store(tmp_path)
    long = spawn(command(uri, tmp_path / "long", *LONG, *BEAT, "model.width=16"))
    wait_for(lambda: running_children(uri, EXPERIMENT), long, what="the long run to train")
    wait_for(lambda: lived_past_twice_the_window(uri), long, timeout=300,
             what=f"the long run to train {2 * STALE_AFTER_S} s")
    other = run(command(uri, tmp_path / "other", *TINY, *BEAT, "model.width=8", sweep=True))
    assert other.returncode == 0, other.stderr[-3000:]
    assert "marked" not in other.stdout and "sweep: 1 finished, 0 failed, 0 skipped" in other.stdout, other.stdout
    df = runs(uri, EXPERIMENT)
    mine = df[df["params.model.width"] == "16"]
    assert len(mine) == 2 and set(mine.status) == {"RUNNING"}, mine[["status", "tags.failure_reason"]]
    assert long.poll() is None  # still training
