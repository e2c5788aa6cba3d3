"""The study's storage, shared by several search processes, and the pruners a search can use.

Several searches (on one machine, or SLURM jobs) may share one study in an RDB storage. Two
things must not happen at once there, and `exclusive(url, what)` serialises them:
- creating Optuna's schema in a new database (two processes doing it together on PostgreSQL
  fail with `UniqueViolation ... pg_type_typname_nsp_index`);
- counting the study's trials and asking for the next ones, so that `n_trials` is the total of
  all workers, never more.
On PostgreSQL the lock is a session advisory lock (`pg_advisory_lock`), on sqlite an exclusive
`flock` of `<db file>.lock`; other databases get no lock.

A live search records a heartbeat for each of its running trials (Optuna's RDBStorage heartbeat);
`optuna.storages.fail_stale_trials` fails a trial whose heartbeat stopped for `grace_period`
seconds, and RetryHeartbeatStaleTrialCallback enqueues it again. The training process
(experiments/pruning.py) opens the same study to report each epoch, with `open_trial`.
"""

import contextlib
import warnings
import zlib
from pathlib import Path

from experiments.locations import file_lock

PRUNERS = ("median", "hyperband", "none")


def _url(url):
    from sqlalchemy.engine import make_url

    return make_url(url)


@contextlib.contextmanager
def exclusive(url, what):
    """Hold a lock named `what` on the database of `url` (see the module's doc) for the block;
    nothing for an in-memory study (`url` None)."""
    parsed = _url(url) if url is not None else None
    if parsed is None:
        yield
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with file_lock(Path(parsed.database).resolve()):
            yield
    elif parsed.get_backend_name() == "postgresql":
        import sqlalchemy

        key = zlib.crc32(f"scratchnn-optuna:{what}".encode())
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
        finally:
            engine.dispose()
    else:
        yield


def open_storage(url, *, heartbeat_interval=None, grace_period=None, max_retry=None):
    """An RDBStorage on `url`, its schema created by one process at a time. With a heartbeat, a trial
    whose heartbeat stops is failed after `grace_period` and enqueued again at most `max_retry` times."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval, the callback
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None
        with exclusive(url, "schema"):
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                              heartbeat_stale_trial_callback=retry)


def make_pruner(name):
    """The pruner called `name` (one of PRUNERS), with Optuna's defaults."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"hydra.sweeper.pruner must be one of {PRUNERS}. Received: {name!r}")


def open_trial(url, study_name, number, pruner):
    """The running trial `number` of a study in `url`, loaded with `pruner`: for report() and should_prune()."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(pruner))
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
    return optuna.trial.Trial(study, trial_id)
