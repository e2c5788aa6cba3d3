"""One Hydra job (a single run, or one config of a sweep), in the process that supervises it:
validate, train in a child process, record what the child could not, say what became of it.

The config is validated here, before TensorFlow is imported. Training (runner.train_config)
runs in a child forked from multiprocessing's forkserver, which has the heavy modules (NumPy,
MLflow and, when needed, TensorFlow) imported once but never initialised, and the data prepared
(runner.preload), so a job starts in a fraction of a second. Its death cannot take this process
with it: if the kernel kills the child (out of memory: SIGKILL) or it crashes, `supervise` raises
`JobDied` and this process ends the job's runs FAILED at once; a joblib worker or a serial sweep
goes on with the next config. The child sends itself SIGTERM when its supervisor dies (it never
trains on as an orphan), and raises its own oom_score_adj, so that the out-of-memory killer picks
it rather than the supervisor. Whatever happens, the store ends up telling the truth: a bad value
in a sweep is recorded as a FAILED parent run, and SIGTERM/SIGINT end every open run KILLED. Each
job writes `status.json` (finished, failed, skipped: already finished, elsewhere: running in
another live process, killed, or pruned) in its output folder for the sweep summary.
"""

import contextlib
import gc
import json
import logging
import math
import multiprocessing
import signal
import sys
import threading
import uuid
from pathlib import Path

from . import names, pruning, runner, tracking
from .config import validate, validate_objective
from .errors import error_text, reason, warn
from .names import CONFIG_HASH, CONFIG_ID, FRAMEWORKS_TAG, JOB, ROLE, ROLE_PARENT
from .signals import Interrupted, deferred, handled, leave, received, signal_self
from .summary import report


def announce(name, job_number, total=None):
    """`job i of N: name` at the start of a sweep's job, so a long sweep shows where it is."""
    logging.getLogger("scratchnn").info(f"job {job_number + 1}{f' of {total}' if total else ''}: {name}")


def write_status(output_dir, status, why="", fit_times=None):
    """status.json: what became of the job, and each framework's fit time (the sweep sums them)."""
    Path(output_dir, "status.json").write_text(json.dumps({"status": status, "reason": why,
                                                           "fit_time_s": fit_times or {}}))


def why(exc):
    """The one-line reason of a job's failure (a JobError already carries its child's)."""
    return str(exc) if isinstance(exc, JobError) else reason(exc)


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
            run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
            tracking.terminate(client, run_id, "FAILED", text)
    except Exception as store_exc:
        warn(f"could not record the end of {name} ({text}): {reason(store_exc)}")


def objective(cfg, metrics):
    value = metrics.get(cfg.objective, math.nan)
    return float(value) if value is not None else math.nan


def _leave_if_worker(exc, worker):
    """A worker process (joblib, submitit) ends with the signal's code, so the sweep's main
    process, which forwarded the signal and waits for its workers, can stop."""
    if worker:
        leave(exc.exit_code)


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
            metrics = supervise(runner.train_config, {"cfg": cfg, "name": name, "job_id": job_id,
                                                      "skip_finished": sweeping and not cfg.rerun, "warn_data": first},
                                runner.preload(cfg))
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
            died = isinstance(exc, JobDied)
            # the store could not be opened: nothing to record in
            unreachable = getattr(exc, "kind", "") == "StoreError"
            if (sweeping or died or isinstance(exc, JobError)) and not unreachable:
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


class JobDied(RuntimeError):
    """The job's process ended without reporting: killed by a signal or crashed."""

    def __init__(self, exitcode):
        if exitcode is not None and exitcode < 0:
            name = signal.Signals(-exitcode).name
            hint = " (the kernel's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
            text = f"the training process was killed by {name}{hint}"
        else:
            text = f"the training process exited with code {exitcode} without reporting a result"
        super().__init__(text)
        self.exitcode = exitcode


class JobError(RuntimeError):
    """The job raised; `str()` is the one-line reason, `kind` the exception's class name and
    `details` the whole message (where the one line is not all of it, e.g. every mirror tried)."""

    def __init__(self, text, kind, details=""):
        super().__init__(text)
        self.kind, self.details = kind, details


def _watch_supervisor(lifeline):
    """A thread that sends this process SIGTERM when the supervisor dies (its end of the lifeline
    closes), so the child ends its runs KILLED instead of training on as an orphan."""
    def watch():
        try:
            lifeline.recv()
        except (EOFError, OSError):
            signal_self(signal.SIGTERM, "its supervising process died")

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _volunteer_for_the_oom_killer():
    """Make the kernel pick this process, which holds the data and the models, before its supervisor."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("500")
    except OSError:
        pass


def _report(send, message):
    with contextlib.suppress(OSError):  # the supervisor is gone: the store already says what happened
        send.send(message)


def _child(send, lifeline, target, kwargs):
    # Everything the forkserver imported (TensorFlow's millions of objects) is the garbage collector's
    # to skip: each full collection in the job would walk it all and copy every page it touches.
    gc.freeze()
    _watch_supervisor(lifeline)
    _volunteer_for_the_oom_killer()
    with handled():
        try:
            _report(send, ("ok", target(**kwargs)))
        except Interrupted as exc:
            _report(send, ("interrupted", exc.signum))
            send.close()
            leave(exc.exit_code)
        except Exception as exc:
            _report(send, ("error", (reason(exc), type(exc).__name__, str(exc)[:4000])))
    send.close()


@contextlib.contextmanager
def _stdlib_start_method(context):
    """In a joblib (loky) worker the default start method is 'loky', which the forkserver child
    cannot set up (it is told the parent's default start method); while the child starts, the
    default is the forkserver's method (multiprocessing.set_start_method), then 'loky' again."""
    actual = multiprocessing.get_start_method(allow_none=True)
    if actual in (None, "fork", "spawn", "forkserver"):
        yield
        return
    multiprocessing.set_start_method(context.get_start_method(), force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(actual, force=True)


def supervise(target, kwargs, preload=(), grace_s=60.0):
    """target(**kwargs) in a forkserver child; returns its result, or raises JobError (it raised,
    or was interrupted by a signal sent to it alone), JobDied (it was killed) or Interrupted (this
    process got SIGTERM/SIGINT; the child has ended its runs KILLED by then)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    receive, send = context.Pipe(duplex=False)
    lifeline, held = context.Pipe(duplex=False)  # the child sees EOF on `lifeline` when this process dies
    process = context.Process(target=_child, args=(send, lifeline, target, kwargs), name="scratchnn-job")
    try:
        with _stdlib_start_method(context):
            process.start()
        send.close()
        lifeline.close()
        message = receive.recv()
    except EOFError:
        message = None
    finally:
        _reap(process, grace_s)
        for end in (receive, send, lifeline, held):
            end.close()
    if message is None:
        raise JobDied(process.exitcode)
    kind, payload = message
    if kind == "ok":
        return payload
    if kind == "interrupted":
        if received() is not None:
            raise Interrupted(payload)
        raise JobError(f"the training process was interrupted by {signal.Signals(payload).name} "
                       "(sent to it alone)", "Interrupted")
    raise JobError(*payload)


def _reap(process, grace_s):
    """Wait for the child; one that is still there after `grace_s` is killed."""
    if process.pid is None:
        return
    process.join(grace_s)
    if process.is_alive():
        process.kill()
        process.join()
