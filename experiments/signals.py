"""SIGTERM and SIGINT (and SLURM's time-limit warning, SIGUSR2) as an exception that ends every open run KILLED.

`handled()` installs one handler for both signals, in the main thread of whichever process
holds runs or supervises processes that do. On the first signal it forwards the signal to
every descendant process, waits (at most `grace_s`) for those that do not ignore it to end,
then raises `Interrupted` in the main thread. The `with` blocks that own runs (see
`recorder.Recorder.run`) end them KILLED with the signal's name as the reason; the entry
point prints one line and exits 128 + the signal number (143 for SIGTERM, 130 for SIGINT).
A second signal while that cleanup runs is ignored. Inside `deferred()` blocks (every store
write of `recorder.Recorder`) the exception waits for the block's end, so a signal never cuts a
store transaction in half.
"""

import contextlib
import os
import signal
import sys
import time

# SIGUSR2: what SLURM sends hydra.launcher.signal_delay_s before a job's time limit (submitit's --signal)
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
NOTES = {signal.SIGUSR2: "the batch system's warning before the job's time limit"}


class Interrupted(BaseException):
    """A SIGTERM or SIGINT arrived; not an Exception, so `except Exception` does not swallow it."""

    def __init__(self, signum):
        self.signum = signum
        self.name = signal.Signals(signum).name
        cause = _STATE.cause or NOTES.get(signum, "")
        super().__init__(f"interrupted by {self.name}" + (f" ({cause})" if cause else ""))

    @property
    def exit_code(self):
        return 128 + self.signum


def _stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state, parent pid, ...), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # ended while we looked


def process_table():
    """{pid: parent pid} of every process visible in /proc (empty where there is no /proc)."""
    entries = os.listdir("/proc") if os.path.isdir("/proc") else ()
    fields = {int(e): _stat(e) for e in entries if e.isdigit()}
    return {pid: int(f[1]) for pid, f in fields.items() if f}


def descendants(pid=None):
    """Every live process below `pid` (default: this one), children first."""
    table, found, frontier = process_table(), [], [pid or os.getpid()]
    while frontier:
        children = [p for p, parent in table.items() if parent in frontier]
        found += children
        frontier = children
    return found


def ignores(pid, signum):
    """True if process `pid` ignores `signum` (or is gone), from SigIgn in /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        return True
    return False


def forward(signum, grace_s):
    """Send `signum` to every descendant, then wait until those that act on it have ended."""
    targets = [p for p in descendants() if not ignores(p, signum)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        alive = [p for p in targets if os.path.exists(f"/proc/{p}") and not _is_zombie(p)]
        if not alive:
            return
        time.sleep(0.1)


def _is_zombie(pid):
    fields = _stat(pid)
    return fields is None or fields[0] == "Z"


class _State:
    """What the handler knows; one per process, as signal dispositions are."""
    seen = None  # the first signal received
    pending = None  # a signal received inside deferred(), raised when the block ends
    depth = 0  # how many deferred() blocks are open
    cause = ""  # why this process signalled itself, if it did
    handlers = 0  # how many handled() blocks are open


_STATE = _State()


def signal_self(signum, cause):
    """Deliver `signum` to this process's main thread, saying why in the Interrupted it raises."""
    _STATE.cause = cause
    os.kill(os.getpid(), signum)


def leave(code):
    """End this process now with `code`, after flushing what it printed (no cleanup handlers run:
    the caller has closed its runs)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def deferred(hold=False):
    """Hold SIGTERM/SIGINT back for the block: Interrupted is raised when it ends (with `hold`,
    only at the next `raise_pending()` or deferred block)."""
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
        if not hold:
            raise_pending()


def received():
    """The signal this process received inside handled(), or None."""
    return _STATE.seen


def raise_pending():
    """Raise Interrupted now for a signal held back by deferred()."""
    if _STATE.depth == 0 and _STATE.pending is not None:
        signum, _STATE.pending = _STATE.pending, None
        raise Interrupted(signum)


@contextlib.contextmanager
def handled(grace_s=60.0):
    """Within the block, SIGTERM and SIGINT raise Interrupted after the descendants had their say."""
    def handler(signum, frame):
        if _STATE.seen is not None:
            return  # already cleaning up
        _STATE.seen = signum
        forward(signum, grace_s)
        if _STATE.depth:
            _STATE.pending = signum
        else:
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    _STATE.handlers += 1
    try:
        yield
    finally:
        _STATE.handlers -= 1
        if _STATE.handlers == 0:
            _STATE.seen = _STATE.pending = None
            _STATE.cause = ""
        for s, old in previous.items():
            signal.signal(s, old)
