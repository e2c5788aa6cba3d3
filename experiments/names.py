"""Every name the harness writes to MLflow and the reports read back: one owner, stdlib only.
(And the one line that tells how to open them in the MLflow UI.)

The writer (`experiments/`) and the reader (`compare/`) both import these; a name spelled as a
string literal anywhere else is a bug. Layout of a store:

- one **parent** run per config and seed (tag ROLE=ROLE_PARENT), with a **child** run per
  framework (tag FRAMEWORK=<name>, MLflow's PARENT tag pointing at the parent);
- children log the per-epoch metrics of EPOCH_METRICS and the final metrics of FINAL_METRICS,
  and the artifacts PREDICTIONS, CONFUSION and a saved model;
- the parent logs every framework's final metrics as `<framework>/<metric>` (`of(...)`), and
  for each other framework `vs_<other>/acc_delta_pp` and `vs_<other>/time_ratio` (`versus(...)`),
  with REFERENCE (scratchnn) on the left of every difference and ratio.
"""

import sys
from pathlib import Path

from .locations import absolute_uri

# frameworks: the plug-in registry's keys (experiments/frameworks/<name>.py), in report order
FRAMEWORKS = ("scratchnn", "keras", "torch")
REFERENCE = "scratchnn"  # the implementation every other framework is compared against

# liveness: a RUNNING run whose heartbeat is older than this (its writer's and its reader's default,
# mlflow.stale_after_s and compare.report --stale-after) belongs to a dead process; runs beat every ~30 s
STALE_AFTER_S = 300.0

# tags
ROLE, FRAMEWORK, PARENT = "role", "framework", "mlflow.parentRunId"
ROLE_PARENT, ROLE_REPORT, ROLE_BENCHMARK = "parent", "report", "benchmark"
FRAMEWORKS_TAG = "frameworks"  # on a parent: the frameworks it was asked to run, comma-separated
CONFIG_HASH, CONFIG_ID = "config_hash", "config_id"  # sha256 of the config with / without the seed
FAILURE_REASON, FAILED_FRAMEWORKS = "failure_reason", "failed_frameworks"
HEARTBEAT, HEARTBEAT_S, JOB, CLAIM = "heartbeat", "heartbeat_s", "job_id", "claim"
HOST, PID = "host", "pid"  # the machine (hostname) and process that opened the run: liveness without waiting
RUN_NAME, NOTE = "mlflow.runName", "mlflow.note.content"  # NOTE: the run's description in the UI
BLAS_TAGS = ("blas.internal_api", "blas.version", "blas.architecture")  # NumPy's BLAS (threadpoolctl), every run
# on a parent and its child stopped by a search's pruner (FINISHED, without test metrics): why, and the epoch (1-based)
PRUNED, PRUNED_EPOCH = "pruned", "pruned_epoch"
EXPERIMENT_KIND, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"  # a training experiment

# child metrics: per epoch (step = epoch index), under the history keys every framework's fit returns
EPOCH_METRICS = {"loss": "train/loss", "accuracy": "train/acc", "val_loss": "val/loss",
                 "val_accuracy": "val/acc", "epoch_time": "epoch_time_s"}
TEST_LOSS, TEST_ACC = "test/loss", "test/acc"
FIT_TIME, WARMUP_TIME, PREDICT_TIME = "fit_time_s", "warmup_time_s", "predict_time_s"
EPOCH_TIME, VAL_ACC = EPOCH_METRICS["epoch_time"], "val_acc"  # VAL_ACC: the parent's final validation accuracy
FINAL_METRICS = (TEST_LOSS, TEST_ACC, FIT_TIME, WARMUP_TIME, PREDICT_TIME)

# parent metrics
ACC_DELTA_PP, TIME_RATIO = "acc_delta_pp", "time_ratio"
PARITY_DEV, PARITY_STEP = "max_rel_loss_dev", "first_step_over_bound"
PARITY_BOUND = 1e-5  # the largest relative per-step loss deviation parity accepts
# McNemar's discordant counts on the parent, per framework compared (versus(other, ...)): test images only
# REFERENCE classifies right (b), only the other one does (c), and the test set's size
MCNEMAR_B, MCNEMAR_C, MCNEMAR_N = "mcnemar_b", "mcnemar_c", "mcnemar_n"


def of(framework, metric):
    """A framework's final figure on the parent, e.g. of("keras", TEST_ACC) == "keras/test/acc"."""
    return f"{framework}/{metric}"


def versus(other, metric):
    """REFERENCE against `other` on the parent, e.g. versus("keras", TIME_RATIO) == "vs_keras/time_ratio"."""
    return f"vs_{other}/{metric}"


def parity(other, metric):
    """The parity check of REFERENCE against `other`, e.g. "parity/keras/max_rel_loss_dev"."""
    return f"parity/{other}/{metric}"


# params: the flattened config (`model.depth`, ...), plus these
OPTIMIZER_NAME = "optimizer.name"  # sgd, momentum, nesterov, rmsprop or adam
GUARD_EVERY = "divergence_check_every"  # on a child: the divergence guard sees the loss every this many steps
MACHINE_PARAMS = ("data.dir", "mlflow.tracking_uri")  # where things are on one machine: never in a report
CONFIG_PARAMS = {  # report column -> param
    "dataset": "data.name", "depth": "model.depth", "width": "model.width", "activation": "model.activation",
    "batch_size": "train.batch_size", "lr": "optimizer.lr", "optimizer": OPTIMIZER_NAME,
    "epochs": "train.epochs", "dropout": "model.dropout", "l2": "model.l2", "seed": "train.seed",
}

# artifacts
PREDICTIONS, CONFUSION = "predictions.csv", "confusion_matrix.csv"  # on each child
CONFIG_FILE, CURVES, PARITY_LOSSES = "config.yaml", "learning_curves.png", "parity_losses.csv"  # on the parent

# the MLflow UI
UI_RUNS_PAGE = "/#/experiments/{experiment_id}?workflowType=machine_learning"  # the runs table, model-training mode
REPORTS_SUFFIX = "-reports"  # compare.report logs to <experiment>-reports, never among the training runs
SHARED_VIEW = "mlflow.sharedViewState."  # experiment tag <this><key>: a saved view of the runs table (ui_links)
DATASET_CONTEXT = "mlflow.data.context"  # a dataset input's tag: which set it is, one of DATASET_CONTEXTS
DATASET_CONTEXTS = {"train": "training", "val": "validation", "test": "test"}  # the runner's sets -> context


def view_hint(tracking_uri, experiment_id=None, page=None):
    """How to see an experiment's runs, working as printed from any folder: `open <url>` for a server, else
    the command that starts the UI on the store (venv active or not; a sqlite file by its absolute path),
    then the URL of `page` (a path from experiments/ui_links.py), by default the experiment's runs table."""
    if page is None:
        page = UI_RUNS_PAGE.format(experiment_id=experiment_id) if experiment_id else ""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri.rstrip('/')}{page}"
    script = Path(sys.executable).with_name("mlflow")
    command = str(script) if script.exists() else f"{sys.executable} -m mlflow"
    return f"{command} ui --backend-store-uri {absolute_uri(tracking_uri)}, then open http://127.0.0.1:5000{page}"
