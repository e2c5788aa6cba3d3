"""Hydra entry points: a paired scratchnn/Keras run logged to MLflow (`python -m experiments.train`).

The harness needs the `harness` extra; `compare/` imports `experiments.names`, so this one check
covers `python -m experiments.train` and `python -m compare.report`.
"""

import importlib.util
import sys

# the top-level modules of the `harness` extra (pyproject.toml) the harness imports
HARNESS_MODULES = ("hydra", "omegaconf", "mlflow", "pandas", "matplotlib", "optuna", "threadpoolctl")


def missing_harness_modules():
    """The modules of the `harness` extra that cannot be imported, in HARNESS_MODULES order."""
    return [name for name in HARNESS_MODULES if importlib.util.find_spec(name) is None]


if missing_harness_modules():
    sys.exit(f"error: the harness needs the 'harness' extra ({', '.join(missing_harness_modules())} not installed): "
             "pip install 'scratchnn[harness]'")
