"""Helpers for tests that run the real command line in real processes against a real store."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pandas as pd

from experiments.config import PROJECT_ROOT
from experiments.signals import process_table

# one tiny config: scratchnn only, so no TensorFlow import where the fault has nothing to do with Keras
TINY = ["data.train_size=1000", "data.val_size=200", "data.test_size=500", "train.epochs=1", "train.warmup_steps=2",
        "train.verbose=false", "train.threads=1", "frameworks=[scratchnn]"]
# a real config shrunk to one fast epoch (tests of the runner; conftest's make_cfg)
SMALL = ["train.epochs=1", "data.train_size=2000", "data.val_size=500", "data.test_size=1000",
         "train.warmup_steps=2", "train.verbose=false"]
FAST_BEAT = ["mlflow.heartbeat_s=1", "mlflow.stale_after_s=4"]  # a dead process's runs are stale after 4 s


def environment():
    return {**os.environ, "SCRATCHNN_DATA_DIR": os.environ.get("SCRATCHNN_DATA_DIR",
                                                               str(PROJECT_ROOT.parent / "shared" / "data"))}


def store(folder):
    """A new sqlite store whose tables exist before any process under test opens it."""
    uri = f"sqlite:///{folder / 'm.db'}"
    mlflow.MlflowClient(uri).search_experiments(max_results=1)
    return uri


def command(uri, out, *overrides, sweep=False):
    where = f"hydra.sweep.dir={out}" if sweep else f"hydra.run.dir={out}"
    return [sys.executable, "-m", "experiments.train", *(["-m"] if sweep else []), f"mlflow.tracking_uri={uri}",
            where, *overrides]


def start(cmd, **kwargs):
    """The command in its own session (process group), as a terminal would run it."""
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=environment(), start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def run(cmd, timeout=600, **kwargs):
    return subprocess.run(cmd, cwd=PROJECT_ROOT, env=environment(), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def runs(uri, experiment):
    """All runs of `experiment` (none if it does not exist yet), as a DataFrame."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    empty = pd.DataFrame(columns=["run_id", "status", "tags.role", "tags.framework", "tags.config_hash"])
    if found is None:
        return empty
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs([found.experiment_id], max_results=10000)
    if df.empty:
        return empty
    for column in ("tags.role", "tags.framework", "tags.failure_reason", "tags.mlflow.parentRunId", "tags.pid"):
        if column not in df:
            df[column] = None
    return df


def wait_for(predicate, process=None, timeout=240, what="the condition"):
    """Poll until `predicate()` is truthy; fails at once if `process` ended meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process ended ({process.returncode}) before {what}:\n{out[-2000:]}\n{err[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_children(uri, experiment, framework="scratchnn"):
    df = runs(uri, experiment)
    live = df[(df["tags.framework"] == framework) & (df.status == "RUNNING")]
    return live if len(live) else None


def assert_complete(df, n_configs, frameworks=("scratchnn",)):
    """Exactly one FINISHED parent per config, each with FINISHED children of every framework,
    nothing RUNNING, and no FINISHED run carrying a failure reason."""
    assert "RUNNING" not in set(df.status), df[df.status == "RUNNING"][["run_id", "tags.role"]]
    parents = df[(df["tags.role"] == "parent") & (df.status == "FINISHED")]
    assert len(parents) == n_configs and parents["tags.config_hash"].is_unique, parents["tags.config_hash"]
    for run_id in parents.run_id:
        children = df[df["tags.mlflow.parentRunId"] == run_id]
        assert sorted(children["tags.framework"]) == sorted(frameworks) and set(children.status) == {"FINISHED"}
    finished = df[df.status == "FINISHED"]
    assert finished["tags.failure_reason"].isna().all(), finished["tags.failure_reason"].dropna()


def deepest_descendants(pid, skip=("resource_tracker",)):
    """The processes furthest below `pid` (those doing the work: joblib workers, or the training
    children of supervisors), resource trackers left out."""
    table, deepest, frontier = process_table(), [], [pid]
    while frontier:
        frontier = [p for p, parent in table.items() if parent in frontier
                    and not any(word in _cmdline(p) for word in skip)]
        deepest = frontier or deepest
    return deepest


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


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


@contextlib.contextmanager
def mlflow_server(backend_uri, folder, *options):
    """`mlflow server` on a free port of 127.0.0.1 over `backend_uri`; yields its URL, stops it after."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", backend_uri, *options],
        cwd=folder, start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"))
    try:
        wait_for(lambda: healthy(uri), timeout=120, what=f"mlflow server on {uri}")
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # seen with a PostgreSQL backend: a worker waits on its connections
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def runs_of(cfg):
    """Every run of the config's experiment in its store, as mlflow.search_runs gives them."""
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    return mlflow.search_runs(experiment_names=[cfg.mlflow.experiment])
