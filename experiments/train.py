"""python -m experiments.train [key=value ...]: one paired run, or a sweep with --multirun.

A single run that fails exits 1 with a one-line reason. In a sweep every failure is recorded
as a FAILED run and the sweep goes on; finished configs are skipped unless rerun=true.
SIGTERM or SIGINT end every open run KILLED, print one line and exit 143 or 130.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a "View run at" line per run on http stores

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402

from experiments import job, sweep_info  # noqa: E402
from experiments.config import CONF_DIR, normalize, register_configs  # noqa: E402
from experiments.signals import Interrupted, handled  # noqa: E402

register_configs()
SILENT = ("mlflow.", "hydra.", "rerun", "sweep")  # overrides that do not name what is trained


def run_name(hydra_cfg, swept_keys=None):
    """The parent run's name: the values of the `swept_keys` in a sweep (all command-line overrides in a
    single run: None), each key by its last part where that is unambiguous: `depth=2,width=64`."""
    pairs = [o.lstrip("+").split("=", 1) for o in hydra_cfg.overrides.task if "=" in o]
    pairs = [(k, v) for k, v in pairs if (k in swept_keys if swept_keys is not None else not k.startswith(SILENT))]
    short = [k.rsplit(".", 1)[-1] for k, _ in pairs]
    return ",".join(f"{s if short.count(s) == 1 else k}={v}" for s, (k, v) in zip(short, pairs)) or "default"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg):
    hydra_cfg = HydraConfig.get()
    normalize(cfg)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    searching = sweeping and "optuna" in str(hydra_cfg.sweeper.get("_target_", "")).lower()
    info = sweep_info.read(hydra_cfg.sweep.dir) if sweeping else None
    swept_keys = (info.swept_keys if info else ()) if sweeping else None
    name = cfg.mlflow.run_name or run_name(hydra_cfg, swept_keys)
    if sweeping:
        job.announce(name, hydra_cfg.job.num, info and info.size)
    return job.run(cfg, name, hydra_cfg.runtime.output_dir, sweeping=sweeping, searching=searching,
                   first=not sweeping or hydra_cfg.job.num == 0, worker=bool(info and info.in_worker()))


if __name__ == "__main__":
    try:
        with handled():
            main()
    except Interrupted as exc:
        print(f"interrupted by {exc.name}: open runs were ended KILLED; run the same command again to resume",
              file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
