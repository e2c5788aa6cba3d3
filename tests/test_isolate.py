"""The forked job process: what it inherits from the forkserver is left out of garbage collection."""

import gc
import subprocess
import sys

import pytest

from experiments import job


def census():
    """(objects frozen, objects the collector still walks) in the calling process."""
    return gc.get_freeze_count(), len(gc.get_objects())


@pytest.mark.e2e
def test_the_job_process_freezes_what_it_inherits_so_collections_skip_it():
    """gc.freeze() in the child moves every object the forkserver made (for a sweep, TensorFlow and
    MLflow as imported) out of the collector's generations; the job starts with few left to walk."""
    frozen, walked = job.supervise(census, {}, preload=("json",))
    code = "import gc, json; print(len(gc.get_objects()))"  # what a bare interpreter with the preload tracks
    bare = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    print(f"frozen {frozen}, still walked {walked}, a bare interpreter's {bare}")
    assert frozen >= bare  # all of that, and the forkserver's own imports, were frozen
    assert walked < bare / 4
