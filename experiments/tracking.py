"""MLflow plumbing: the store, run status, params, tags and artifact files.

A run opened with `run()` never stays RUNNING: it ends FINISHED, or FAILED (KILLED on
Ctrl-C) with a one-line `failure_reason` tag, and the exception goes on.
"""

import contextlib
import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from omegaconf import OmegaConf

from .config import PROJECT_ROOT

VERSIONED = ("numpy", "tensorflow", "keras", "mlflow", "hydra-core", "pandas")


def artifact_root(tracking_uri):
    """Artifacts live beside a sqlite store (<db folder>/mlartifacts), whatever the working directory."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        return Path(tracking_uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).resolve()
    return None  # a server decides


def connect(mlflow_cfg):
    """Point MLflow at the configured store and return the experiment's id, creating it if needed."""
    uri = mlflow_cfg.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(mlflow_cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(uri)
    location = (root / mlflow_cfg.experiment).as_uri() if root else None
    try:
        return mlflow.create_experiment(mlflow_cfg.experiment, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel job
        return mlflow.get_experiment_by_name(mlflow_cfg.experiment).experiment_id


def one_line(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


@contextlib.contextmanager
def run(**start_kwargs):
    """mlflow.start_run that always ends the run with a final status and a reason on failure."""
    active = mlflow.start_run(**start_kwargs)
    try:
        yield active
    except BaseException as exc:
        mlflow.set_tag("failure_reason", one_line(exc))
        mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    mlflow.end_run("FINISHED")


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
    data.pop("mlflow", None)
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
    tags = {"git_commit": git_commit(), "cpu": cpu_model(), "python": sys.version.split()[0]}
    for package in VERSIONED:
        try:
            tags[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            tags[f"version.{package}"] = "absent"
    return tags


def log_epoch(epoch, logs):
    """Per-epoch metrics under the names the reports use; NaN (no validation set) is left out."""
    names = {"loss": "train/loss", "accuracy": "train/acc", "val_loss": "val/loss",
             "val_accuracy": "val/acc", "epoch_time": "epoch_time_s"}
    metrics = {names[k]: float(v) for k, v in logs.items() if k in names and v == v}
    mlflow.log_metrics(metrics, step=epoch)


def finished_parent(experiment_id, config_hash):
    """The id of a FINISHED parent run of this exact config, or None."""
    runs = mlflow.search_runs(
        [experiment_id], output_format="list", max_results=1,
        filter_string=f"tags.config_hash = '{config_hash}' and tags.role = 'parent' and attributes.status = 'FINISHED'")
    return runs[0].info.run_id if runs else None


def record_failure(mlflow_cfg, name, tags, exc):
    """A FAILED parent run for a config that failed before training (bad value, bad data)."""
    client = mlflow.MlflowClient(mlflow_cfg.tracking_uri)
    experiment_id = connect(mlflow_cfg)
    created = client.create_run(experiment_id, run_name=name, tags={**tags, "failure_reason": one_line(exc)})
    client.set_terminated(created.info.run_id, "FAILED")


def mark_killed(experiment_id, reason="left RUNNING by a process that was killed; marked by the next sweep"):
    """End every RUNNING run of the experiment as KILLED; returns how many there were."""
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=50000)
    for stale in runs:
        client.set_tag(stale.info.run_id, "failure_reason", reason)
        client.set_terminated(stale.info.run_id, "KILLED")
    return len(runs)
