"""A real `mlflow server` on 127.0.0.1 as the shared store: a 2-worker joblib sweep and a second
sweep at the same time, then the same invariants as with the embedded sqlite store."""

import pytest

from harness import assert_complete, mlflow_server, runs, two_sweeps_at_once

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path):
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, "--artifacts-destination",
                       str(tmp_path / "art")) as uri:
        yield uri


@pytest.mark.slow
def test_two_sweeps_against_one_server_run_every_config_exactly_once(tmp_path, server):
    outputs = two_sweeps_at_once(server, tmp_path, "shared")
    for out, _ in outputs:
        assert "View run" not in out and "View experiment" not in out  # MLflow's per-run URL lines are noise
    df = runs(server, "shared")
    assert_complete(df, 4)
    assert "KILLED" not in set(df.status) and "FAILED" not in set(df.status)
    assert sum(int(out.split("sweep: ")[1].split(" finished")[0]) for out, _ in outputs) == 4
    artifacts = list((tmp_path / "art").rglob("model.npz"))
    assert len(artifacts) == 4  # each finished child's weights went through the server
