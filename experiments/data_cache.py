"""Decoded data sets kept for the life of a process, so that a sweep decodes MNIST once, not per job.

The supervisor names the data set in SCRATCHNN_PRELOAD_DATA before its forkserver starts; the
forkserver imports this module (job.preload) and decodes it, and every job forked from it starts
with the arrays in memory (shared copy-on-write). Warnings raised while loading are kept with the
arrays, so each job can still say them.
"""

import functools
import json
import os
import warnings

from scratchnn import datasets

PRELOAD = "SCRATCHNN_PRELOAD_DATA"  # JSON [name, data_dir]


@functools.lru_cache(maxsize=2)
def load(name, data_dir):
    """((X, y), (Xt, yt)) as datasets.load_mnist gives them, and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays = datasets.load_mnist(name, data_dir=data_dir)
    return arrays, tuple(caught)


def request(name, data_dir):
    """Ask the forkserver that starts after this call to decode `name` (the first request wins)."""
    os.environ.setdefault(PRELOAD, json.dumps([name, data_dir]))


if os.environ.get(PRELOAD):  # imported by a forkserver: decode now, before any job is forked
    try:
        load(*json.loads(os.environ[PRELOAD]))
    except Exception:  # the job that needs it will load it again and report the error itself
        load.cache_clear()
