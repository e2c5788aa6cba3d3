"""Jobs of a sweep logging the same data sets at the same moment: every run gets its inputs, and the
experiment holds each data set once (a store looks for a data set, then inserts it: two jobs racing
both insert, and the later fails the unique key unless the write is made again)."""

import subprocess
import sys

import mlflow
import pytest

from experiments.config import PROJECT_ROOT
from harness import environment, wait_for

JOBS = 8
LOG = """
import sys
from pathlib import Path
import numpy as np
import mlflow
from experiments import mlflow_ui
uri, experiment_id, folder, job = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
client = mlflow.MlflowClient(uri)
run_id = client.create_run(experiment_id).info.run_id
X, y = np.zeros((100, 784), np.float32), np.arange(100) % 10
inputs = mlflow_ui.dataset_inputs({"train": (X, y), "test": (X[:50], y[:50])}, "mnist")
(folder / f"ready-{job}").touch()
go = folder / "go"
while not go.exists():  # spin: released within microseconds of each other
    pass
mlflow_ui.log_inputs(client, run_id, inputs)
client.set_terminated(run_id)
"""


@pytest.mark.e2e
def test_jobs_logging_the_same_data_sets_at_once_all_get_their_inputs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    experiment_id = mlflow.MlflowClient(uri).create_experiment("together")
    processes = [subprocess.Popen([sys.executable, "-c", LOG, uri, experiment_id, str(tmp_path), str(job)],
                                  cwd=PROJECT_ROOT, env=environment(), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for job in range(JOBS)]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == JOBS or any(p.poll() is not None for p in processes),
             what="every job ready to log its inputs")
    (tmp_path / "go").touch()
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    assert [code for code, _ in results] == [0] * JOBS, [err[-1500:] for _, err in results]
    runs = mlflow.MlflowClient(uri).search_runs([experiment_id])
    assert len(runs) == JOBS and {r.info.status for r in runs} == {"FINISHED"}
    assert all(sorted(d.dataset.name for d in r.inputs.dataset_inputs) == ["mnist-test", "mnist-train"] for r in runs)
    assert len({(d.dataset.name, d.dataset.digest) for r in runs for d in r.inputs.dataset_inputs}) == 2
