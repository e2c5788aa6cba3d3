"""Run one training job in its own process, so that its death cannot take the supervisor with it.

The job runs in a child forked from multiprocessing's forkserver, which has the heavy modules
(NumPy, MLflow and, when needed, TensorFlow) imported once but never initialised, so a job
starts in a fraction of a second. If the kernel kills the child (out of memory: SIGKILL) or it
crashes, `supervise` raises `JobDied` and the caller records the job's runs FAILED at once; a
joblib worker or a serial sweep that supervises it goes on with the next config. The child sends
itself SIGTERM when its supervisor dies (it never trains on as an orphan), and raises its own
oom_score_adj, so that the kernel's out-of-memory killer picks it rather than the supervisor.
"""

import contextlib
import gc
import multiprocessing
import signal
import threading

from .lifecycle import reason
from .signals import Interrupted, handled, leave, received, signal_self


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
    cannot set up; while the child starts, the default is the forkserver context itself."""
    default = multiprocessing.context._default_context
    actual = default._actual_context
    if actual is None or actual._name in ("fork", "spawn", "forkserver"):
        yield
        return
    default._actual_context = context
    try:
        yield
    finally:
        default._actual_context = actual


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
