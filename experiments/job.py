"""One Hydra job (a single run, or one config of a sweep): validate, supervise, record, report.

The config is validated here, before TensorFlow is imported. Training runs in a supervised
child process (`isolate.supervise`); whatever happens to it, the store ends up telling the
truth: a bad value in a sweep is recorded as a FAILED parent run, a killed child's runs are
ended FAILED by this process, and SIGTERM/SIGINT end every open run KILLED. Each job writes
`status.json` (finished, failed, skipped or killed) in its output folder for the sweep summary.
"""

import contextlib
import json
import math
import os
import sys
import threading
import uuid
from pathlib import Path

from . import isolate, tracking
from .config import validate, validate_objective
from .lifecycle import reason, terminate, warn
from .names import CONFIG_HASH, CONFIG_ID, FRAMEWORKS_TAG, JOB, ROLE, ROLE_PARENT
from .frameworks import preload as framework_modules
from .runner import train_config
from .signals import Interrupted, deferred, handled, leave

MAIN_PID = "SCRATCHNN_MAIN_PID"  # set by the entry point: the process that owns the whole command


def write_status(output_dir, status, why=""):
    Path(output_dir, "status.json").write_text(json.dumps({"status": status, "reason": why}))


def preload(cfg):
    """Modules the forkserver imports once for every job it forks."""
    return ["experiments.runner", *framework_modules(cfg.frameworks)]


def why(exc):
    """The one-line reason of a job's failure (a JobError already carries its child's)."""
    return str(exc) if isinstance(exc, isolate.JobError) else reason(exc)


def record_job_end(cfg, name, job_id, exc, *, status="FAILED", placeholder=True):
    """The store's record of a job that ended badly: the runs its process left RUNNING (it could
    not close them: killed, store locked) are ended with `status`; if it has none in the store at
    all and `placeholder`, a FAILED parent run says what happened."""
    text = why(exc)
    try:
        with deferred():  # a signal meanwhile is raised once the record is written
            client, experiment_id = tracking.connect(cfg.mlflow)
            if tracking.end_job_runs(client, experiment_id, job_id, text, status=status) or not placeholder:
                return
            tags = {ROLE: ROLE_PARENT, JOB: job_id, FRAMEWORKS_TAG: ",".join(cfg.frameworks)}
            with contextlib.suppress(Exception):  # a config too broken to hash is still recorded
                tags[CONFIG_HASH], tags[CONFIG_ID] = tracking.config_hashes(cfg)
            terminate(client, client.create_run(experiment_id, run_name=name, tags=tags).info.run_id, "FAILED", text)
    except Exception as store_exc:
        warn(f"could not record the end of {name} ({text}): {reason(store_exc)}")


def error_text(exc):
    """One `error:` line; a message of several lines (every mirror tried, say) follows it whole."""
    lines = getattr(exc, "details", "").splitlines()
    if len(lines) > 1:
        return "\n".join([f"error: {exc.kind}: {lines[0]}", *lines[1:]])
    return "error: " + str(exc).split("\n")[0]


def objective(cfg, metrics):
    value = metrics.get(cfg.objective, math.nan)
    return float(value) if value is not None else math.nan


def _leave_if_worker(exc):
    """A worker process (joblib, submitit) ends with the signal's code, so the sweep's main
    process, which forwarded the signal and waits for its workers, can stop."""
    if os.environ.get(MAIN_PID) not in (None, str(os.getpid())):
        leave(exc.exit_code)


def run(cfg, name, output_dir, *, sweeping, searching=False):
    """The job: returns the objective (NaN for a failed or skipped-without-result config).
    A single run that fails exits 1 with one `error:` line."""
    job_id = uuid.uuid4().hex
    in_main_thread = threading.current_thread() is threading.main_thread()
    with handled() if in_main_thread else contextlib.nullcontext():
        try:
            validate(cfg)
            if searching:
                validate_objective(cfg)
            metrics = isolate.supervise(train_config, {"cfg": cfg, "name": name, "job_id": job_id,
                                                     "skip_finished": sweeping and not cfg.rerun}, preload(cfg))
        except Interrupted as exc:
            record_job_end(cfg, name, job_id, exc, status="KILLED", placeholder=False)
            write_status(output_dir, "killed", str(exc))
            _leave_if_worker(exc)
            raise
        except Exception as exc:
            died = isinstance(exc, isolate.JobDied)
            if sweeping or died or isinstance(exc, isolate.JobError):
                record_job_end(cfg, name, job_id, exc, placeholder=sweeping or died)
            write_status(output_dir, "failed", why(exc))
            if not sweeping:
                print(error_text(exc), file=sys.stderr)
                sys.exit(1)
            print(f"failed: {name}: {exc}", file=sys.stderr, flush=True)
            return math.nan
    write_status(output_dir, "skipped" if metrics.get("skipped") else "finished")
    return objective(cfg, metrics)
