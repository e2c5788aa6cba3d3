"""Data sets kept for the life of a process, so that a sweep decodes and prepares MNIST once, not per job.

The supervisor names the data set, and how a job splits it (a `Split`), in SCRATCHNN_PRELOAD_DATA
before its forkserver starts (`request`, from runner.preload); the forkserver imports this module,
which decodes the files and prepares the split, and every job forked from it starts with the arrays in memory
(shared copy-on-write: a job that wrote into them would write into its own copy). A job whose
config asks for another split (another seed, val_size, train_size or test_size) prepares its own:
the first request wins, so in a sweep over train.seed only the first seed's jobs start with their
sets, and each forkserver (one per joblib worker) holds them beside the decoded files (220 MB for
MNIST). Warnings raised while loading are kept with the arrays, so each job can still say them.
The variable is this module's message to its own copy in the forkserver, a fresh interpreter that
multiprocessing starts with nothing but module names to import and this process's environment.
"""

import contextlib
import dataclasses
import functools
import json
import os
import warnings
from typing import Optional

import numpy as np

from scratchnn import datasets, preprocessing as pp

PRELOAD = "SCRATCHNN_PRELOAD_DATA"  # JSON [name, data_dir, Split's fields or null]


@dataclasses.dataclass(frozen=True)
class Split:
    """How a job splits and cuts the data: the sizes (None: all), and the np.random.SeedSequence
    (entropy, spawn_key) that draws the validation set."""

    val_size: int
    train_size: Optional[int]
    test_size: Optional[int]
    entropy: int
    spawn_key: tuple

    @classmethod
    def from_json(cls, fields):
        return cls(**{**fields, "spawn_key": tuple(fields["spawn_key"])})


@functools.lru_cache(maxsize=2)
def load(name, data_dir):
    """((X, y), (Xt, yt)) as datasets.load_mnist gives them, and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays = datasets.load_mnist(name, data_dir=data_dir)
    return arrays, tuple(caught)


def prepare(name, data_dir, split):
    """Flattened [0, 1] float32 images and int64 labels: {"train", "val" (None if empty), "test",
    "n_out"}, each image set in 64-byte aligned memory, as `split` (a Split) splits and cuts them.
    The forkserver's prepared sets when they are for the same arguments: then
    every framework of the job reads the same arrays, which nothing may write into (they stay
    writeable, for TensorFlow to share them without a copy)."""
    preloaded = _preloaded.cache_info().currsize and _preloaded()
    if preloaded and preloaded[0] == _key(name, data_dir, split):
        return dict(preloaded[1])
    return _prepare(name, data_dir, split)


def _key(name, data_dir, split):
    """(name, data_dir, split) as they come back from the request's JSON."""
    name, data_dir, fields = json.loads(json.dumps([name, data_dir, dataclasses.asdict(split)]))
    return name, data_dir, Split.from_json(fields)


def _prepare(name, data_dir, split):
    (X, y), (Xt, yt) = load(name, data_dir)[0]
    rng = np.random.default_rng(np.random.SeedSequence(split.entropy, spawn_key=split.spawn_key))
    # split the uint8 images, then scale only what is used: the same values as scaling first, less work
    (X, y), (Xv, yv) = pp.train_val_split(pp.flatten(X), y.astype(np.int64), split.val_size, rng)
    n_train, n_test = split.train_size or len(X), split.test_size or len(Xt)
    return {"train": (_scaled(X[:n_train]), y[:n_train]), "val": (_scaled(Xv), yv) if len(Xv) else None,
            "test": (_scaled(pp.flatten(Xt[:n_test])), yt[:n_test].astype(np.int64)), "n_out": 10}


def _scaled(X, align=64):
    """pp.scale(X) in float32, written into memory aligned to `align` bytes, which TensorFlow can
    use as it is (frameworks/keras.py) instead of copying the data set per model."""
    nbytes = X.size * 4
    buffer = np.empty(nbytes + align, np.uint8)
    start = -buffer.ctypes.data % align
    return pp.scale(X, out=buffer[start:start + nbytes].view(np.float32).reshape(X.shape))


def request(name, data_dir, split=None):
    """Ask the forkserver that starts after this call to decode `name` and prepare `split` (see
    `prepare`) from it; the first request wins."""
    os.environ.setdefault(PRELOAD, json.dumps([name, data_dir, None if split is None else dataclasses.asdict(split)]))


@functools.lru_cache(maxsize=1)
def _preloaded():
    """((name, data_dir, split), prepared sets) of the request, made once. Called only when this
    module is imported with the request in the environment (the forkserver, which the supervisor
    starts after `request`), never on demand: a process that did not preload prepares every call."""
    name, data_dir, split = json.loads(os.environ[PRELOAD])
    load(name, data_dir)
    if split is None:
        return None
    key = _key(name, data_dir, Split.from_json(split))
    return key, _prepare(*key)


if os.environ.get(PRELOAD):  # imported by a forkserver: decode and prepare now, before any job is forked
    # On an error nothing is kept of what failed (lru_cache keeps no call that raised; the decoded
    # files stay if only the split failed): the job that needs it tries again and reports the error.
    with contextlib.suppress(Exception):
        _preloaded()
