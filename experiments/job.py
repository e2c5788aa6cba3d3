"""One Hydra job (a single run, or one config of a sweep): validate, supervise, record, report.

The config is validated here, before TensorFlow is imported. Training runs in a supervised
child process (`isolate.supervise`); whatever happens to it, the store ends up telling the
truth: a bad value in a sweep is recorded as a FAILED parent run, a killed child's runs are
ended FAILED by this process, and SIGTERM/SIGINT end every open run KILLED. Each job writes
`status.json` (finished, failed, skipped: already finished, elsewhere: running in another live
process, killed, or pruned) in its output folder for the sweep summary.
"""

import contextlib
import json
import logging
import math
import sys
import threading
import uuid
from pathlib import Path

from . import data_cache, isolate, names, pruning, tracking, ui_links
from .config import validate, validate_objective
from .frameworks import preload as framework_modules
from .lifecycle import reason, terminate, warn
from .names import CONFIG_HASH, CONFIG_ID, FRAMEWORKS_TAG, JOB, ROLE, ROLE_PARENT
from .runner import seeds_of, split_of, summary_line, train_config, view_hint
from .signals import Interrupted, deferred, handled, leave


def announce(name, job_number, total=None):
    """`job i of N: name` at the start of a sweep's job, so a long sweep shows where it is."""
    logging.getLogger("scratchnn").info(f"job {job_number + 1}{f' of {total}' if total else ''}: {name}")


def write_status(output_dir, status, why="", fit_times=None):
    """status.json: what became of the job, and each framework's fit time (the sweep sums them)."""
    Path(output_dir, "status.json").write_text(json.dumps({"status": status, "reason": why,
                                                           "fit_time_s": fit_times or {}}))


def preload(cfg):
    """Modules the forkserver imports once for every job it forks: the runner, the frameworks, what
    MLflow's sqlite store and the learning-curve plot import lazily, and the data, decoded and
    prepared as this config splits it (the first request of the process wins: data_cache)."""
    data_cache.request(cfg.data.name, cfg.data.dir, split_of(cfg, seeds_of(cfg)["split"]))
    return ["experiments.runner", *framework_modules(cfg.frameworks), "mlflow.store.tracking.sqlalchemy_store",
            "matplotlib.pyplot", "experiments.data_cache", *(pruning.PRELOAD if cfg.search.trial is not None else ())]


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


def _leave_if_worker(exc, worker):
    """A worker process (joblib, submitit) ends with the signal's code, so the sweep's main
    process, which forwarded the signal and waits for its workers, can stop."""
    if worker:
        leave(exc.exit_code)


def report(cfg, metrics, *, hint):
    """The result line: on the terminal and in the job's train.log (Hydra's logging config); the
    command to view the runs with it if `hint` (a sweep gives it once, at its end)."""
    log = logging.getLogger("scratchnn")
    if metrics.get("skipped"):
        log.info(f"skipped: {metrics['skipped']}")
    else:
        page = _compare_page(metrics)
        view = [view_hint(cfg.mlflow.tracking_uri, metrics.get("experiment_id"), page)] if hint else []
        log.info(" | ".join([summary_line(metrics), *view]))


def _compare_page(metrics):
    """The MLflow UI page of a finished single run: its frameworks' children side by side (ui_links.run_link)."""
    if not metrics.get("experiment_id"):
        return None
    children = list(metrics.get("child_runs", {}).values())
    return ui_links.run_link(metrics["experiment_id"], metrics["parent_run_id"], children)


def run(cfg, name, output_dir, *, sweeping, searching=False, first=True, worker=False):
    """The job: returns the objective (NaN for a failed or skipped-without-result config; a
    pruning.Pruned, not raised, for a search's trial that was pruned).
    A single run that fails exits 1 with one `error:` line. Only the `first` job of a sweep
    warns about unverified data files. `worker`: this process is a launcher's worker, not the
    sweep's main process (sweep_info.SweepInfo.in_worker)."""
    job_id = uuid.uuid4().hex
    in_main_thread = threading.current_thread() is threading.main_thread()
    with handled() if in_main_thread else contextlib.nullcontext():
        try:
            validate(cfg)
            if searching:
                validate_objective(cfg)
            metrics = isolate.supervise(train_config, {"cfg": cfg, "name": name, "job_id": job_id,
                                                     "skip_finished": sweeping and not cfg.rerun, "warn_data": first},
                                        preload(cfg))
        except Interrupted as exc:
            record_job_end(cfg, name, job_id, exc, status="KILLED", placeholder=False)
            write_status(output_dir, "killed", str(exc))
            _leave_if_worker(exc, worker)
            raise
        except Exception as exc:
            if pruning.was_pruned(exc):  # the search's pruner stopped it (its runs say so): returned to the sweeper
                write_status(output_dir, "pruned", pruning.message(exc))
                logging.getLogger("scratchnn").info(f"pruned: {name} {pruning.message(exc)}")
                return pruning.Pruned(pruning.message(exc))
            died = isinstance(exc, isolate.JobDied)
            # the store could not be opened: nothing to record in
            unreachable = getattr(exc, "kind", "") == "StoreError"
            if (sweeping or died or isinstance(exc, isolate.JobError)) and not unreachable:
                record_job_end(cfg, name, job_id, exc, placeholder=sweeping or died)
            write_status(output_dir, "failed", why(exc))
            logging.getLogger("scratchnn.record").error(error_text(exc))
            if not sweeping:
                print(error_text(exc), file=sys.stderr)
                sys.exit(1)
            print(f"failed: {name}: {exc}", file=sys.stderr, flush=True)
            return math.nan
    report(cfg, metrics, hint=not sweeping)
    fit_times = {fw: metrics[names.of(fw, names.FIT_TIME)] for fw in cfg.frameworks
                 if names.of(fw, names.FIT_TIME) in metrics and not metrics.get("skipped")}
    status = "elsewhere" if metrics.get("elsewhere") else "skipped" if metrics.get("skipped") else "finished"
    write_status(output_dir, status, f"{name} {metrics['elsewhere']}" if metrics.get("elsewhere") else "",
                 fit_times=fit_times)
    return objective(cfg, metrics)
