"""An `mlflow server` on a private PostgreSQL cluster (tests/engines.py) as the shared store: two sweeps
at once into one experiment, one of them with 2 joblib workers."""

import mlflow
import pytest

from harness import assert_complete, runs, two_sweeps_at_once

pytestmark = pytest.mark.engines


def test_two_sweeps_at_once_into_one_experiment_on_postgres_finish_each_config_once(tmp_path, pg_server):
    uri, artifacts = pg_server
    outputs = two_sweeps_at_once(uri, tmp_path, "pg-shared", timeout=900)
    df = runs(uri, "pg-shared")
    assert_complete(df, 4)
    assert set(df.status) == {"FINISHED"}, df[["run_id", "status", "tags.failure_reason"]]
    finished = [int(out.split("sweep: ")[1].split(" finished")[0]) for out, _ in outputs]
    assert sum(finished) == 4, [out[-500:] for out, _ in outputs]
    parents = df[df["tags.role"] == "parent"]
    assert len(parents) == 4  # a claim that lost was withdrawn, not left as a second parent
    experiment_id = mlflow.MlflowClient(uri).get_experiment_by_name("pg-shared").experiment_id
    assert len(list((artifacts / experiment_id).rglob("model.npz"))) == 4  # each child's weights, through the server
