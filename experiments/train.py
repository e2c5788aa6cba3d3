"""python -m experiments.train [key=value ...]: one paired run, or a sweep with --multirun.

A single run that fails exits 1 with a one-line reason. In a sweep every failure is recorded
as a FAILED run and the sweep goes on; finished configs are skipped unless rerun=true.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402

from experiments.config import CONF_DIR, register_configs  # noqa: E402
from experiments.pair import train_pair  # noqa: E402
from experiments.sweep import write_status  # noqa: E402
from experiments.tracking import one_line  # noqa: E402

register_configs()


def run_name(hydra_cfg):
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith(("mlflow.", "hydra.", "rerun"))]
    return ",".join(overrides) or "default"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg):
    hydra_cfg = HydraConfig.get()
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        metrics = train_pair(cfg, run_name=run_name(hydra_cfg), skip_finished=sweeping and not cfg.rerun,
                             record_setup_failures=sweeping)
    except Exception as exc:
        write_status(hydra_cfg.runtime.output_dir, "failed", one_line(exc))
        if not sweeping:
            print("error: " + " ".join(str(exc).split()), file=sys.stderr)
            sys.exit(1)
        print(f"failed: {one_line(exc)}", file=sys.stderr)
        return float("nan")
    write_status(hydra_cfg.runtime.output_dir, "skipped" if metrics.get("skipped") else "finished")
    return metrics.get("scratchnn/val_acc", float("nan"))  # what the Optuna search maximises


if __name__ == "__main__":
    main()
