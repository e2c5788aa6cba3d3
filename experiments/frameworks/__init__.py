"""The frameworks the harness trains side by side, one plug-in module each, looked up by name.

A framework is a `Framework` subclass (base.py) in `experiments/frameworks/<name>.py`, listed in
`experiments.names.FRAMEWORKS`, with its config keys (if any) in `conf/<name>/`. The runner
knows nothing else about it. Modules are imported on first use, so a run that does not ask for
TensorFlow or PyTorch never imports them.
"""

import importlib
import importlib.util

from .. import names
from .base import Framework

# the module that must be importable for each framework; scratchnn is part of the project
REQUIRES = {"scratchnn": "numpy", "keras": "tensorflow", "torch": "torch"}


def missing(name):
    """The package `name` needs that is not installed, or None."""
    package = REQUIRES[name]
    return None if importlib.util.find_spec(package) is not None else package


def get(name):
    """The Framework subclass registered as `name`."""
    if name not in names.FRAMEWORKS:
        raise ValueError(f"Unknown framework. Expected one of {list(names.FRAMEWORKS)}. Received: framework={name!r}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.FRAMEWORK


def preload(frameworks):
    """Modules worth importing once in a process that will start many jobs (the forkserver)."""
    return [f"{__name__}.{fw}" for fw in frameworks]  # each imports its framework (quietly) at the top


__all__ = ["Framework", "get", "missing", "preload", "REQUIRES"]
