"""A real `mlflow server` on 127.0.0.1 as the shared store: a 2-worker joblib sweep and a second
sweep at the same time, then the same invariants as with the embedded sqlite store."""

import pytest

from harness import TINY, assert_complete, command, mlflow_server, runs, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path):
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, "--artifacts-destination",
                       str(tmp_path / "art")) as uri:
        yield uri


def test_two_sweeps_against_one_server_run_every_config_exactly_once(tmp_path, server):
    sweep = [*TINY, "model.depth=1,2", "model.width=16,32", "mlflow.experiment=shared"]
    parallel = start(command(server, tmp_path / "a", *sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             sweep=True))
    serial = start(command(server, tmp_path / "b", *sweep, sweep=True))
    outputs = [p.communicate(timeout=600) for p in (parallel, serial)]
    for process, (out, err) in zip((parallel, serial), outputs):
        assert process.returncode == 0, err[-3000:]
        assert "View run" not in out and "View experiment" not in out  # MLflow's per-run URL lines are noise
    df = runs(server, "shared")
    assert_complete(df, 4)
    assert "KILLED" not in set(df.status) and "FAILED" not in set(df.status)
    assert sum(int(out.split("sweep: ")[1].split(" finished")[0]) for out, _ in outputs) == 4
    artifacts = list((tmp_path / "art").rglob("model.npz"))
    assert len(artifacts) == 4  # each finished child's weights went through the server
