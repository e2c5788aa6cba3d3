"""What a sweep's main process tells each of its jobs, as a file in the sweep's folder.

A launcher may run a job in another process (joblib), another interpreter (submitit) or another
machine (SLURM); all of them see the sweep's folder (`hydra.sweep.dir`, which is in every job's
config). `SweepCallback.on_multirun_start` writes `sweep.json` there before the first job starts;
a job reads it with `read(hydra_cfg.sweep.dir)`. This module is the one owner of that handoff.
"""

import dataclasses
import json
import os
from pathlib import Path

FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepInfo:
    """size: how many jobs the sweep launches; swept_keys: the keys it varies (a job's run is named
    by their values); main_pid: the process that runs the sweep (a job elsewhere is a worker's)."""

    size: int
    swept_keys: tuple
    main_pid: int

    def in_worker(self):
        """Whether this process is a launcher's worker rather than the sweep's main process."""
        return os.getpid() != self.main_pid


def write(sweep_dir, info):
    folder = Path(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(dataclasses.asdict(info)))
    temporary.replace(folder / FILE)  # a job never reads half a file


def read(sweep_dir):
    """The sweep's SweepInfo, or None when there is none (a single run, or a sweep whose main
    process did not write one: its jobs then count no total and name runs by every override)."""
    try:
        data = json.loads(Path(sweep_dir, FILE).read_text())
    except (OSError, ValueError):
        return None
    return SweepInfo(size=int(data["size"]), swept_keys=tuple(data["swept_keys"]), main_pid=int(data["main_pid"]))
