"""The search's side of a trial in the training process: report each epoch, stop when pruned.

The Optuna sweeper (hydra_plugins/scratchnn_optuna) gives each trial's job `search.storage`,
`search.study`, `search.trial` and `search.pruner`. The training process opens that trial in
the study, reports the validation accuracy of the objective's framework after every epoch
(step = epoch index) and asks the pruner; when it says stop (never after the last epoch), it
raises `Pruned`. The runs open at that moment, the child and its parent, end FINISHED with the
PRUNED tag (the epoch and why) and PRUNED_EPOCH; the child has no test metrics, so the config is
not complete and a grid sweep would train it. The job then returns a `Pruned` (as its result, not
raised: Hydra would log it as an error) to the sweeper, which tells the study the trial was PRUNED:
a relaunched search counts it as done.
"""

import math

from hydra_plugins.scratchnn_optuna._storage import open_trial

from . import names

KIND = "Pruned"  # the class name a supervised job's job.JobError carries
PRELOAD = ("hydra_plugins.scratchnn_optuna._storage", "optuna.storages._rdb.storage", "optuna.storages._rdb.models")


class Pruned(Exception):
    """The search's pruner stopped this config's training; `str()` says at which epoch and why.
    `run_tags`: what the runs it ends get (recorder.Recorder.run ends them FINISHED with these)."""

    def __init__(self, message, run_tags=None):
        super().__init__(message)
        self.run_tags = run_tags

    def __reduce__(self):
        return Pruned, (str(self), self.run_tags)


def reporter(cfg, framework):
    """A function of (epoch, logs) that reports the epoch's val accuracy to the search's trial and
    raises Pruned when the pruner says so; None outside a search or for another framework than
    the objective's."""
    search = cfg.get("search")
    if search is None or search.trial is None or framework != cfg.objective.partition("/")[0]:
        return None
    trial = open_trial(search.storage, search.study, search.trial, search.pruner)
    epochs = cfg.train.epochs

    def report(epoch, logs):
        value = logs.get("val_accuracy", math.nan)
        if not math.isfinite(value):
            return
        trial.report(float(value), epoch)
        if epoch + 1 < epochs and trial.should_prune():
            why = (f"at epoch {epoch + 1} of {epochs} by the {search.pruner} pruner of trial {search.trial}: "
                   f"{framework} val acc {value:.2%}")
            raise Pruned(why, {names.PRUNED: why, names.PRUNED_EPOCH: epoch + 1})
    return report


def was_pruned(exc):
    """True for a job's exception that is a pruned trial (as an isolated job reports it)."""
    return isinstance(exc, Pruned) or getattr(exc, "kind", None) == KIND


def message(exc):
    """The Pruned message of a job's exception (an isolated job's JobError carries it in `details`)."""
    return getattr(exc, "details", "") or str(exc)


def loggable(container):
    """The config as a dict to log, without `search`: where a trial reports is not what it trains (the
    reports would take search.trial for a config key), and the storage URL may hold a password."""
    return {key: value for key, value in container.items() if key != "search"}
