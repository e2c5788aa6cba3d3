"""The forked job process: what it inherits from the forkserver is left out of garbage collection."""

import gc

from experiments import isolate


def test_the_job_process_freezes_what_it_inherits_so_collections_skip_it():
    """gc.freeze() in the child moves every object the forkserver made (for a sweep, TensorFlow and
    MLflow as imported) out of the collector's generations; the job starts with none left to walk."""
    frozen = isolate.supervise(gc.get_freeze_count, {}, preload=("json",))
    assert frozen > 1000
