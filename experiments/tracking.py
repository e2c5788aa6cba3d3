"""The MLflow store: connecting (with errors that name the path or URI), config hashes,
environment tags, ending a run by id with its reason, and the runs of a job. Which configs are
done, which runs are live and which were left RUNNING by a dead process: experiments/claims.py.
"""

import contextlib
import hashlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from omegaconf import OmegaConf

from . import locations
from .config import PROJECT_ROOT
from .errors import reason
from .locations import sqlite_file
from .names import EXPERIMENT_KIND, FAILURE_REASON, HOST, JOB, PID, TRAINING_KIND
from .signals import deferred

VERSIONED = ("numpy", "tensorflow", "keras", "torch", "mlflow", "hydra-core", "pandas")
SERVER_WAIT_S = 20


class StoreError(RuntimeError):
    """The tracking store cannot be reached or written; the message names the path or URI."""


def artifact_root(tracking_uri):
    """Artifacts live beside a sqlite store (<db folder>/mlartifacts), whatever the working directory."""
    db, parsed = sqlite_file(tracking_uri), urlparse(tracking_uri)
    if db is not None:
        return db.resolve().parent / locations.ARTIFACTS
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).resolve()
    return None  # a server decides


def artifact_location(tracking_uri, name):
    """The artifact location of a new experiment `name`: a folder directly inside the store's artifact
    root, whatever the name holds (`../`, `/`, HTML: locations.folder_name), or None where the server decides."""
    root = artifact_root(tracking_uri)
    return locations.inside(root, name).as_uri() if root else None


def _check_folder(uri):
    folder = sqlite_file(uri).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StoreError(f"the store folder {folder} (from {uri}) is not writable: {reason(exc)}") from None


def _check_server(uri, wait_s=SERVER_WAIT_S):
    deadline, last = time.monotonic() + wait_s, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:  # URLError and HTTPError are OSErrors
            last = exc
        time.sleep(1)
    raise StoreError(f"the tracking server {uri} did not answer within {wait_s} s: "
                     f"{reason(last) if last else 'no reply'}")


@contextlib.contextmanager
def _schema_lock(uri):
    """For sqlite, an exclusive lock on `<db>.lock` beside the file, so that processes opening a new
    store at the same moment do not both create its tables; elsewhere nothing."""
    if sqlite_file(uri) is None:
        yield
        return
    with locations.file_lock(sqlite_file(uri)):
        yield


def connect(mlflow_cfg):
    """(MlflowClient, experiment id) for the configured store, creating the experiment if needed."""
    uri = mlflow_cfg.tracking_uri
    if sqlite_file(uri):
        _check_folder(uri)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    for logger in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..." is not news
        logging.getLogger(logger).setLevel(logging.WARNING)
    name = mlflow_cfg.experiment
    try:
        with _schema_lock(uri):  # MlflowClient opens its store at once: the first to open a new file creates its tables
            client = mlflow.MlflowClient(uri)
            experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return client, experiment.experiment_id
        try:
            return client, client.create_experiment(name, artifact_location=artifact_location(uri, name),
                                                    tags={EXPERIMENT_KIND: TRAINING_KIND})
        except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel job
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return client, experiment.experiment_id
    except Exception as exc:
        raise StoreError(f"cannot open experiment {name!r} in {uri}: {reason(exc)}") from exc


def flatten(container, prefix=""):
    """{'model': {'depth': 1}} -> {'model.depth': 1}; lists are kept as their JSON."""
    flat = {}
    for key, value in container.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def config_hashes(cfg):
    """(config_hash, config_id): sha256 of the resolved config without where it is logged,
    with and without the seed. Runs of one config with other seeds share config_id."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in ("mlflow", "objective", "rerun", "search"):  # where and how it is logged, not what runs
        data.pop(key, None)
    data["train"].pop("verbose", None)
    data["data"].pop("dir", None)  # where the files are is not what they are

    def digest(d):
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    full = digest(data)
    data["train"].pop("seed")
    return full, digest(data)


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_tags():
    tags = {"git_commit": git_commit(), "cpu": cpu_model(), "python": sys.version.split()[0],
            HOST: socket.gethostname(), PID: os.getpid()}
    for package in VERSIONED:
        try:
            tags[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            tags[f"version.{package}"] = "absent"
    return tags


def terminate(client, run_id, status, why=None):
    """Set a run's final status, with its reason first; a signal waits until both are written."""
    with deferred():
        if why:
            client.set_tag(run_id, FAILURE_REASON, why)
        client.set_terminated(run_id, status)


def runs(client, experiment_id, where):
    return client.search_runs([experiment_id], filter_string=where, max_results=50000)


def end_job_runs(client, experiment_id, job_id, why, *, status="FAILED"):
    """End with `status` the runs of job `job_id` that its process left RUNNING; returns how many
    runs the job has in the store, whatever their status."""
    found = runs(client, experiment_id, f"tags.{JOB} = '{job_id}'")
    for run in found:
        if run.info.status == "RUNNING":
            terminate(client, run.info.run_id, status, why)
    return len(found)
