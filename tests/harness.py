"""The test helpers for running the harness and reading stores: the real command line in real
processes, and what its store holds. A "store" is always an MLflow tracking URI (a string);
`new_store(folder)` makes an sqlite one. No helper sets MLflow's global tracking URI."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
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
    """os.environ, with SCRATCHNN_DATA_DIR defaulting to ../shared/data beside the project."""
    return {**os.environ, "SCRATCHNN_DATA_DIR": os.environ.get("SCRATCHNN_DATA_DIR",
                                                               str(PROJECT_ROOT.parent / "shared" / "data"))}


def new_store(folder):
    """The URI of a new sqlite store `folder/m.db` whose tables exist before any process under test
    opens it: a copy of an empty store made once per MLflow version in `folder`'s parent (pytest's
    session folder for a tmp_path: creating the schema takes seconds, copying it milliseconds)."""
    folder = Path(folder)
    blank = folder.parent / f"blank-store-mlflow-{mlflow.__version__}.db"
    if not blank.exists():
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            mlflow.MlflowClient(f"sqlite:///{tmp}/m.db").search_experiments(max_results=1)
            os.replace(f"{tmp}/m.db", blank)  # atomic: a concurrent test process sees all of it or nothing
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blank, folder / "m.db")
    return f"sqlite:///{folder / 'm.db'}"


store = new_store  # the name the first tests used


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


def two_sweeps_at_once(uri, folder, experiment, timeout=600):
    """The same 4 tiny configs swept into one experiment by a 2-worker joblib sweep and a serial sweep
    started together; returns both [(stdout, stderr)] once each has exited 0."""
    sweep = [*TINY, "model.depth=1,2", "model.width=16,32", f"mlflow.experiment={experiment}"]
    parallel = start(command(uri, folder / "a", *sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             sweep=True))
    serial = start(command(uri, folder / "b", *sweep, sweep=True))
    outputs = [p.communicate(timeout=timeout) for p in (parallel, serial)]
    for process, (_, err) in zip((parallel, serial), outputs):
        assert process.returncode == 0, err[-3000:]
    return outputs


def runs(uri, experiment):
    """All runs of `experiment` in the store `uri` (none if it does not exist yet), as a DataFrame
    with mlflow.search_runs' columns (run_id, status, tags.*, params.*, metrics.*)."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    found_runs = client.search_runs([found.experiment_id], max_results=50000) if found else []
    rows = [{"run_id": r.info.run_id, "experiment_id": r.info.experiment_id, "status": r.info.status,
             "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True),
             "end_time": pd.to_datetime(r.info.end_time, unit="ms", utc=True) if r.info.end_time else pd.NaT,
             **{f"metrics.{k}": v for k, v in r.data.metrics.items()},
             **{f"params.{k}": v for k, v in r.data.params.items()},
             **{f"tags.{k}": v for k, v in r.data.tags.items()}} for r in found_runs]
    df = pd.DataFrame(rows, columns=None if rows else ["run_id", "experiment_id", "status"])
    for column in ("tags.role", "tags.framework", "tags.failure_reason", "tags.mlflow.parentRunId", "tags.pid",
                   "tags.config_hash"):
        if column not in df:
            df[column] = None
    return df


def wait_for(predicate, process=None, timeout=240, what="the condition"):
    """Poll until `predicate()` is truthy; fails at once if `process` ended meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False and not (isinstance(value, np.bool_) and not value):
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process ended ({process.returncode}) before {what}:\n"
                                 f"{out[-2000:]}\n{err[-3000:]}")
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


def alive(pid):
    """True while process `pid` exists and is not a zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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
    """`mlflow server` on a free port of 127.0.0.1 over `backend_uri`; yields its URL, stops it after
    (its output in folder/server.log)."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with open(folder / "server.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", backend_uri, *options],
            cwd=folder, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: healthy(uri), timeout=300, what=f"mlflow server on {uri}")
            yield uri
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a loaded machine: do not leave it behind
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def runs_of(cfg):
    """Every run of the config's experiment in its store (see runs)."""
    return runs(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
