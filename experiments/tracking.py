"""The MLflow store: connecting (with errors that name the path or URI), config hashes,
environment tags, and the store-wide questions a sweep asks: which configs are done, which
runs are live, which were left RUNNING by a dead process.
"""

import contextlib
import fcntl
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
from .lifecycle import reason, terminate
from .locations import sqlite_file
from .names import (CLAIM, CONFIG_HASH, EXPERIMENT_KIND, FRAMEWORK, FRAMEWORKS_TAG, HEARTBEAT, HEARTBEAT_S, JOB,
                    PARENT, ROLE, ROLE_PARENT, TEST_ACC, TRAINING_KIND)

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
    raise StoreError(f"the tracking server {uri} did not answer within {wait_s} s: {reason(last) if last else 'no reply'}")


@contextlib.contextmanager
def _schema_lock(uri):
    """For sqlite, an exclusive lock on `<db>.lock` beside the file, so that processes opening a new
    store at the same moment do not both create its tables; elsewhere nothing."""
    if sqlite_file(uri) is None:
        yield
        return
    with open(f"{sqlite_file(uri)}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect(mlflow_cfg):
    """(MlflowClient, experiment id) for the configured store, creating the experiment if needed."""
    uri = mlflow_cfg.tracking_uri
    if sqlite_file(uri):
        _check_folder(uri)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    for logger in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..." is not news
        logging.getLogger(logger).setLevel(logging.WARNING)
    client = mlflow.MlflowClient(uri)
    name = mlflow_cfg.experiment
    try:
        with _schema_lock(uri):  # the first use of a new sqlite file creates its tables
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
            "host": socket.gethostname(), "pid": os.getpid()}
    for package in VERSIONED:
        try:
            tags[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            tags[f"version.{package}"] = "absent"
    return tags


def _runs(client, experiment_id, where):
    return client.search_runs([experiment_id], filter_string=where, max_results=50000)


def last_beat(run):
    """Unix time of the run's last heartbeat (its start for runs from before heartbeats)."""
    try:
        return float(run.data.tags[HEARTBEAT])
    except (KeyError, ValueError):
        return run.info.start_time / 1000


def silent_for(run, stale_after_s, now=None):
    """Seconds since the run's last beat if that makes it stale, else None. The window is the
    reader's `stale_after_s`, but never under 3 beats of the writer's own `heartbeat_s`."""
    try:
        own = 3 * float(run.data.tags.get(HEARTBEAT_S, 0))
    except ValueError:
        own = 0.0
    silent = (now or time.time()) - last_beat(run)
    return silent if silent > max(stale_after_s, own) else None


def _parents(client, experiment_id, config_hash, status):
    return _runs(client, experiment_id, f"tags.{CONFIG_HASH} = '{config_hash}' and tags.{ROLE} = '{ROLE_PARENT}' "
                                        f"and attributes.status = '{status}'")


def complete_parent(client, experiment_id, config_hash):
    """A FINISHED parent of this config whose every requested framework has a FINISHED child with
    its test accuracy, or None. Only such a parent counts as done."""
    for parent in _parents(client, experiment_id, config_hash, "FINISHED"):
        wanted = set(filter(None, parent.data.tags.get(FRAMEWORKS_TAG, "").split(",")))
        children = _runs(client, experiment_id, f"tags.`{PARENT}` = '{parent.info.run_id}'")
        done = {c.data.tags.get(FRAMEWORK) for c in children
                if c.info.status == "FINISHED" and TEST_ACC in c.data.metrics}
        if wanted and wanted <= done:
            return parent
    return None


def _order(run):
    return run.info.start_time, run.info.run_id


def _holder(client, experiment_id, config_hash, *, mine, stale_after_s, before=None):
    """A complete parent of this config, or a live confirmed claim other than `mine` (only one
    ordered before `before`, if given)."""
    done = complete_parent(client, experiment_id, config_hash)
    if done is not None:
        return done
    live = [r for r in _parents(client, experiment_id, config_hash, "RUNNING")
            if r.info.run_id != mine and r.data.tags.get(CLAIM) == "confirmed"
            and silent_for(r, stale_after_s) is None and (before is None or _order(r) < before)]
    return min(live, key=_order) if live else None


def claim(client, experiment_id, config_hash, *, mine, stale_after_s):
    """Claim this config for parent run `mine`, created just before. Returns the run that holds the
    config instead (complete, or live and confirmed), or None if `mine` holds it.

    Two phases: with no holder in sight, `mine` is tagged confirmed, then checked again against
    confirmed claims ordered before it (start time, then run id). A claim that became visible
    late is confirmed late and sees the earlier ones; of confirmed live claims every process
    keeps the first, so no two processes train one config."""
    holder = _holder(client, experiment_id, config_hash, mine=mine, stale_after_s=stale_after_s)
    if holder is not None:
        return holder
    client.set_tag(mine, CLAIM, "confirmed")
    me = client.get_run(mine)
    return _holder(client, experiment_id, config_hash, mine=mine, stale_after_s=stale_after_s, before=_order(me))


def mark_stale(client, experiment_id, stale_after_s):
    """End as KILLED every RUNNING run whose heartbeat is stale (read again just before the write);
    returns how many."""
    marked = 0
    for run in _runs(client, experiment_id, "attributes.status = 'RUNNING'"):
        if silent_for(run, stale_after_s) is None:
            continue
        run = client.get_run(run.info.run_id)
        silent = silent_for(run, stale_after_s)
        if run.info.status != "RUNNING" or silent is None:
            continue
        why = (f"no heartbeat for {silent:.0f} s (stale after {stale_after_s:.0f} s): the process running it "
               f"died or was killed; marked by {socket.gethostname()} pid {os.getpid()}")
        terminate(client, run.info.run_id, "KILLED", why)
        marked += 1
    return marked


def end_job_runs(client, experiment_id, job_id, why, *, status="FAILED"):
    """End with `status` the runs of job `job_id` that its process left RUNNING; returns how many
    runs the job has in the store, whatever their status."""
    found = _runs(client, experiment_id, f"tags.{JOB} = '{job_id}'")
    for run in found:
        if run.info.status == "RUNNING":
            terminate(client, run.info.run_id, status, why)
    return len(found)
