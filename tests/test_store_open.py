"""Processes opening one new sqlite store at the same moment: its tables are created once, and each
gets the experiment (MlflowClient opens its store, and creates a new file's tables, when it is made)."""

import subprocess
import sys

import mlflow
import pytest

from experiments.config import PROJECT_ROOT
from harness import environment, wait_for

OPEN = """
import sys, time
from pathlib import Path
from omegaconf import OmegaConf
from experiments import tracking
go = Path(sys.argv[2])
(go.parent / f"ready-{sys.argv[3]}").touch()
while not go.exists():
    time.sleep(0.001)
client, experiment_id = tracking.connect(OmegaConf.create({"tracking_uri": sys.argv[1], "experiment": "together"}))
run = client.create_run(experiment_id)
client.set_terminated(run.info.run_id)
print(experiment_id)
"""


@pytest.mark.e2e
def test_four_processes_opening_a_new_sqlite_store_together_all_get_one_experiment(tmp_path):
    uri, go = f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", OPEN, uri, str(go), str(i)], cwd=PROJECT_ROOT,
                                  env=environment(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i in range(4)]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 4 or any(p.poll() is not None for p in processes),
             what="every process waiting for the file, its imports done")
    go.touch()
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in processes]
    assert [code for code, _, _ in results] == [0] * 4, [err[-1500:] for _, _, err in results]
    assert len({out.strip() for _, out, _ in results}) == 1, results
    runs = mlflow.MlflowClient(uri).search_runs([results[0][1].strip()])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
