"""python -m experiments.train [key=value ...]: one paired run (or a sweep with --multirun)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402

from experiments.config import CONF_DIR, ConfigError, register_configs  # noqa: E402
from experiments.pair import ExperimentFailed, train_pair  # noqa: E402
from scratchnn.datasets import DownloadError  # noqa: E402
from scratchnn.idx import IDXError  # noqa: E402

register_configs()


def run_name():
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(("mlflow.", "hydra."))]
    return ",".join(overrides) or "default"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg):
    try:
        metrics = train_pair(cfg, run_name=run_name())
    except (ConfigError, ExperimentFailed, DownloadError, IDXError, OSError) as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        sys.exit(1)
    return metrics.get("scratchnn/val_acc")


if __name__ == "__main__":
    main()
