"""A real `mlflow server` on 127.0.0.1 as the shared store: a 2-worker joblib sweep and a second
sweep at the same time, then the same invariants as with the embedded sqlite store."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from harness import TINY, assert_complete, command, runs, start, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(uri):
    try:
        with urllib.request.urlopen(uri + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art")],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"))
    try:
        wait_for(lambda: healthy(uri), timeout=120, what=f"mlflow server on {uri}")
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_two_sweeps_against_one_server_run_every_config_exactly_once(tmp_path, server):
    sweep = [*TINY, "model.depth=1,2", "model.width=16,32", "mlflow.experiment=shared"]
    parallel = start(command(server, tmp_path / "a", *sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             sweep=True))
    serial = start(command(server, tmp_path / "b", *sweep, sweep=True))
    outputs = [p.communicate(timeout=600) for p in (parallel, serial)]
    for process, (out, err) in zip((parallel, serial), outputs):
        assert process.returncode == 0, err[-3000:]
    df = runs(server, "shared")
    assert_complete(df, 4)
    assert "KILLED" not in set(df.status) and "FAILED" not in set(df.status)
    assert sum(int(out.split("sweep: ")[1].split(" finished")[0]) for out, _ in outputs) == 4
    artifacts = list((tmp_path / "art").rglob("model.npz"))
    assert len(artifacts) == 4  # each finished child's weights went through the server
