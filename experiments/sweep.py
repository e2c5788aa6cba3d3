"""Hydra callback for sweeps: prepare the MLflow store once, then count what the sweep did.

Before any job starts, `on_multirun_start` creates the store's schema and the sweep's
experiment (so parallel jobs never race to migrate an empty sqlite file), tells the jobs the
sweep's size and swept keys (`sweep_info`), and marks KILLED the runs of a dead process
(claims.mark_stale: gone from this host, or no heartbeat for `mlflow.stale_after_s`), never those
of a live sweep. Each job writes `status.json` in its output folder; `on_multirun_end` prints one
line with how many configs finished, failed, were skipped as already finished, are running elsewhere
(naming who holds them), were killed and pruned (a search's), the wall time, each framework's total
fit time, and how to view the runs.
"""

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback

from . import claims, mlflow_ui, sweep_info, tracking
from .errors import reason, warn
from .summary import view_hint

STATUSES = ("finished", "failed", "skipped", "elsewhere", "killed", "pruned")  # skipped: already finished
LABELS = {"elsewhere": "running elsewhere"}
SHOWN_HOLDERS = 3  # the last line names this many configs running elsewhere, then "and <n> more"


def read_statuses(sweep_dir):
    """({status: count}, {framework: total fit seconds}, [who holds each config running elsewhere])
    over the jobs' status.json files."""
    jobs = [json.loads(p.read_text()) for p in sorted(Path(sweep_dir).glob("*/status.json"))]
    counts, fit = Counter(j["status"] for j in jobs), Counter()
    for j in jobs:
        fit.update(j.get("fit_time_s", {}))
    holders = [j.get("reason", "") for j in jobs if j["status"] == "elsewhere"]
    return {key: counts.get(key, 0) for key in STATUSES}, dict(fit), holders


def counts_line(counts, holders):
    """`3 finished, 0 failed, 1 skipped, 1 running elsewhere (depth=1 on host pid 7, heartbeat 4 s ago)`:
    running elsewhere and killed only when there are any."""
    parts = [f"{counts[k]} {LABELS.get(k, k)}" for k in STATUSES
             if k not in ("elsewhere", "killed", "pruned") or counts[k]]
    if holders:
        more = f" and {len(holders) - SHOWN_HOLDERS} more" if len(holders) > SHOWN_HOLDERS else ""
        index = parts.index(f"{counts['elsewhere']} running elsewhere")
        parts[index] += f" ({'; '.join(holders[:SHOWN_HOLDERS])}{more})"
    return ", ".join(parts)


def swept(config):
    """{key: how many values} for every key the sweep varies (the command line's value of a key
    replaces the preset's, as Hydra does)."""
    preset = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    counts = {}
    for override in OverridesParser.create().parse_overrides(preset + list(config.hydra.overrides.task)):
        counts[override.key_or_group] = _count(override)
    return {key: n for key, n in counts.items() if n > 1}


def _count(override):
    if not override.is_sweep_override():
        return 1
    try:
        return len(list(override.sweep_string_iterator()))
    except HydraException:  # an interval, which a search draws from
        return math.inf


def sweep_size(config):
    """How many jobs the sweep launches: the search's n_trials, else the product of the swept sizes."""
    if config.hydra.sweeper.get("n_trials"):
        return int(config.hydra.sweeper.n_trials)
    return math.prod(swept(config).values())


class SweepCallback(Callback):
    def on_multirun_start(self, config, **kwargs):
        self.started = time.monotonic()
        sweep_info.write(config.hydra.sweep.dir, sweep_info.SweepInfo(
            size=sweep_size(config), swept_keys=tuple(swept(config)), main_pid=os.getpid()))
        self.client, self.experiment_id = tracking.connect(config.mlflow)
        stale = claims.mark_stale(self.client, self.experiment_id, config.mlflow.stale_after_s)
        if stale:
            print(f"sweep: marked {stale} run(s) KILLED: RUNNING, but their process is gone from this host "
                  f"or sent no heartbeat for over {config.mlflow.stale_after_s:.0f} s", flush=True)

    def on_multirun_end(self, config, **kwargs):
        counts, fit, holders = read_statuses(config.hydra.sweep.dir)
        line = counts_line(counts, holders)
        wall = time.monotonic() - getattr(self, "started", time.monotonic())
        fit_line = ", ".join(f"{fw} {seconds:.3g} s" for fw, seconds in fit.items())
        experiment_id = getattr(self, "experiment_id", None)  # opened by on_multirun_start
        page = comparison_view(config, getattr(self, "client", None), experiment_id)
        print(f"sweep: {line} in {wall:.0f} s wall time" + (f" (fit time: {fit_line})" if fit else "")
              + f" | experiment {config.mlflow.experiment!r} | "
              + view_hint(config.mlflow.tracking_uri, experiment_id, page), flush=True)


def comparison_view(config, client, experiment_id):
    """Save the sweep's view of the comparison in its experiment (mlflow_ui) through the client that
    on_multirun_start opened; the page that opens it, or None (the runs table is printed instead) if
    there is no experiment or the store refused the tag."""
    if client is None or experiment_id is None:
        return None
    try:
        return mlflow_ui.save_comparison_view(client, experiment_id, swept(config), config.frameworks)
    except Exception as exc:
        warn(f"could not save the comparison view in experiment {config.mlflow.experiment!r}: {reason(exc)}")
        return None
