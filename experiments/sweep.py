"""Hydra callback for sweeps: prepare the MLflow store once, then count what the sweep did.

Before any job starts, `on_multirun_start` creates the store's schema and the sweep's
experiment (so parallel jobs never race to migrate an empty sqlite file) and marks KILLED the
runs whose heartbeat is older than `mlflow.stale_after_s`: runs of a dead process, never those
of a live sweep. Each job writes `status.json` in its output folder; `on_multirun_end` prints
one line with how many configs finished, failed, were skipped and were killed.
"""

import json
from collections import Counter
from pathlib import Path

from hydra.experimental.callback import Callback

from . import tracking

STATUSES = ("finished", "failed", "skipped", "killed")


def count_statuses(sweep_dir):
    counts = Counter(json.loads(p.read_text())["status"] for p in Path(sweep_dir).glob("*/status.json"))
    return {key: counts.get(key, 0) for key in STATUSES}


class SweepCallback(Callback):
    def on_multirun_start(self, config, **kwargs):
        client, experiment_id = tracking.connect(config.mlflow)
        stale = tracking.mark_stale(client, experiment_id, config.mlflow.stale_after_s)
        if stale:
            print(f"sweep: marked {stale} run(s) KILLED: RUNNING with no heartbeat for over "
                  f"{config.mlflow.stale_after_s:.0f} s (their process died)", flush=True)

    def on_multirun_end(self, config, **kwargs):
        counts = count_statuses(config.hydra.sweep.dir)
        line = ", ".join(f"{counts[k]} {k}" for k in STATUSES if k != "killed" or counts[k])
        print(f"sweep: {line} (experiment {config.mlflow.experiment!r}, {config.mlflow.tracking_uri})", flush=True)
