"""The runs of one job, opened, logged to and ended by id (MlflowClient, never "whatever run is active").

`Recorder.run(...)` opens a run and ends it exactly once: FINISHED when its block ends normally,
KILLED (with the signal's name) on SIGTERM/SIGINT, FAILED with a one-line root cause
(errors.reason) on any other exception. If the store refuses even that last write, the failure is
printed on stderr; a run that could not be closed FINISHED is never reported as finished (the
error propagates, so its parent ends FAILED), and a run left RUNNING stops beating and is marked
KILLED by the next sweep's stale check. While a run is open a thread refreshes its `heartbeat`
tag every `heartbeat_s` seconds: that is how other processes tell a live run from a dead one.
Only the runner (experiments/runner.py) records through it.
"""

import contextlib
import threading
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from .errors import reason, warn
from .names import FAILURE_REASON, HEARTBEAT, HEARTBEAT_S, PARENT
from .signals import Interrupted, deferred, raise_pending
from .tracking import terminate


def status_for(exc):
    return "KILLED" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "FAILED"


class Recorder:
    """The runs of one job: opened, logged to and ended by id; a heartbeat while any is open."""

    def __init__(self, client, experiment_id, base_tags=None, heartbeat_s=30.0):
        self.client, self.experiment_id = client, experiment_id
        self.base_tags, self.heartbeat_s = {**(base_tags or {}), HEARTBEAT_S: heartbeat_s}, heartbeat_s
        self.open_ids, self.missed = [], 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self):
        while not self._stop.wait(self.heartbeat_s):
            self.heartbeat()

    def heartbeat(self):
        now = f"{time.time():.0f}"
        for run_id in list(self.open_ids):
            try:
                self.client.set_tag(run_id, HEARTBEAT, now)
                self.missed = 0
            except Exception as exc:  # one missed beat is harmless; a run of them makes the run look dead
                self.missed += 1
                if self.missed == 3:
                    warn(f"3 heartbeats of run {run_id} in a row could not be written ({reason(exc)}); "
                         f"other sweeps will take it for dead after their stale window")

    def _create(self, name, tags, parent_id=None):
        tags = {key: str(value) for key, value in {**self.base_tags, **tags}.items()}
        tags[HEARTBEAT] = f"{time.time():.0f}"
        if parent_id:
            tags[PARENT] = parent_id
        with deferred(hold=True):  # a signal during creation is raised once the run is owned
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self.open_ids.append(run_id)
        return run_id

    @contextlib.contextmanager
    def run(self, name, tags, parent_id=None):
        """Open a run and end it exactly once; yields its id."""
        run_id = self._create(name, tags, parent_id)
        try:
            raise_pending()
            yield run_id
        except BaseException as exc:
            tags = getattr(exc, "run_tags", None)  # an exception that is no failure (pruning.Pruned): FINISHED, tagged
            if tags:
                self.set_tags(run_id, tags)
            self.end(run_id, *(("FINISHED",) if tags else (status_for(exc), reason(exc))))
            raise
        else:
            if run_id in self.open_ids:  # not withdrawn
                self.end(run_id, "FINISHED")
        finally:
            if run_id in self.open_ids:
                self.open_ids.remove(run_id)

    def end(self, run_id, status, why=None):
        """Set the final status (and reason). A store error is printed; for FINISHED it is raised,
        since a run the store does not hold as finished must not count as finished. A run that
        finishes after another process marked it stale loses that stale reason."""
        try:
            if status == "FINISHED" and FAILURE_REASON in self.client.get_run(run_id).data.tags:
                self.client.delete_tag(run_id, FAILURE_REASON)
            terminate(self.client, run_id, status, why)
        except Exception as exc:
            warn(f"could not record run {run_id} as {status}" + (f" ({why})" if why else "") +
                 f": {reason(exc)}; its supervisor or a sweep's stale check will end it")
            if status == "FINISHED":
                raise
        finally:
            if run_id in self.open_ids:
                self.open_ids.remove(run_id)

    def withdraw(self, run_id):
        """Delete a run that lost a claim (see claims.claim): it never trained anything; the
        `with` that opened it then leaves it alone."""
        with deferred():
            self.client.delete_run(run_id)
            self.open_ids.remove(run_id)

    def log_metrics(self, run_id, metrics, step=0):
        now = int(time.time() * 1000)
        self._batches(run_id, "metrics", [Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_params(self, run_id, params):
        self._batches(run_id, "params", [Param(k, str(v)) for k, v in params.items()])

    def set_tags(self, run_id, tags):
        self._batches(run_id, "tags", [RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, run_id, text, path):
        with deferred():
            self.client.log_text(run_id, text, path)

    def _batches(self, run_id, kind, items, size=100):
        with deferred():
            for i in range(0, len(items), size):
                self.client.log_batch(run_id, **{kind: items[i:i + size]})

    def log_artifacts(self, run_id, folder):
        """Log every file of `folder`, then check each stored size. On any failure the files of
        this call are deleted from the run's artifacts, so no truncated file stays behind."""
        names = sorted(p.name for p in Path(folder).iterdir() if p.is_file())
        try:
            with deferred():
                self.client.log_artifacts(run_id, str(folder))
            stored = {f.path: f.file_size for f in self.client.list_artifacts(run_id)}
            for name in names:
                expected = (Path(folder) / name).stat().st_size
                if stored.get(name) != expected:
                    raise OSError(f"artifact {name} of run {run_id} holds {stored.get(name)} bytes, "
                                  f"expected {expected}")
        except BaseException:
            self._delete_artifacts(run_id, names)
            raise

    def _delete_artifacts(self, run_id, names):
        try:
            repo = get_artifact_repository(self.client.get_run(run_id).info.artifact_uri,
                                           tracking_uri=self.client.tracking_uri)
            for name in names:
                with contextlib.suppress(Exception):
                    repo.delete_artifacts(name)
        except Exception as exc:
            warn(f"could not remove the partial artifacts {names} of run {run_id}: {reason(exc)}")
