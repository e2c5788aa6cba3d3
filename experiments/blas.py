"""The BLAS library NumPy calls (threadpoolctl), as tags on every run: a time ratio depends on its kernel."""

from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from .names import BLAS_TAGS

FIELDS = ("internal_api", "version", "architecture")  # threadpoolctl's keys, in BLAS_TAGS order


def numpy_blas(info=None):
    """threadpoolctl's entry for the BLAS library loaded from NumPy's folders (else the first BLAS), or None."""
    found = [lib for lib in (threadpool_info() if info is None else info) if lib.get("user_api") == "blas"]
    home = Path(np.__file__).resolve().parent
    mine = [lib for lib in found if Path(lib.get("filepath", "")).resolve().parent.name.startswith(home.name)]
    return (mine or found or [None])[0]


def tags(info=None):
    """{blas.internal_api, blas.version, blas.architecture: value}; `unknown` for what threadpoolctl does not say."""
    lib = numpy_blas(info) or {}
    return {tag: str(lib.get(field) or "unknown") for tag, field in zip(BLAS_TAGS, FIELDS)}
