"""Hydra callback for sweeps: prepare the MLflow store once, then count what the sweep did.

Before any job starts, `on_multirun_start` creates the store's schema and the sweep's
experiment (so parallel jobs never race to migrate an empty sqlite file) and marks runs
left RUNNING by a killed sweep as KILLED. Each job writes `status.json` in its output
folder; `on_multirun_end` prints one line with how many configs finished, failed and were skipped.
"""

import json
from collections import Counter
from pathlib import Path

from hydra.experimental.callback import Callback

from . import tracking


def write_status(output_dir, status, reason=""):
    Path(output_dir, "status.json").write_text(json.dumps({"status": status, "reason": reason}))


def count_statuses(sweep_dir):
    counts = Counter(json.loads(p.read_text())["status"] for p in Path(sweep_dir).glob("*/status.json"))
    return {key: counts.get(key, 0) for key in ("finished", "failed", "skipped")}


class SweepCallback(Callback):
    def on_multirun_start(self, config, **kwargs):
        experiment_id = tracking.connect(config.mlflow)
        killed = tracking.mark_killed(experiment_id)
        if killed:
            print(f"sweep: marked {killed} run(s) left RUNNING by a killed sweep as KILLED")

    def on_multirun_end(self, config, **kwargs):
        counts = count_statuses(config.hydra.sweep.dir)
        print(f"sweep: {counts['finished']} finished, {counts['failed']} failed, {counts['skipped']} skipped "
              f"(experiment {config.mlflow.experiment!r}, {config.mlflow.tracking_uri})")
