"""A sweep's forkserver decodes and prepares the data once; each job it forks starts with them."""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from experiments import data_cache
from experiments.runner import prepare_data, seeds_of, split_of

REPO = Path(__file__).resolve().parents[1]

PROBE = '''
import numpy as np
from experiments import data_cache

def probe(name, data_dir, split):
    """In the job: whether the forkserver prepared sets, whether prepare hands out those very arrays,
    and the sets themselves (as lists of arrays)."""
    preloaded = data_cache._preloaded.cache_info().currsize == 1 and data_cache._preloaded()
    data = data_cache.prepare(name, data_dir, split)
    shared = bool(preloaded) and data["train"][0] is preloaded[1]["train"][0]
    return bool(preloaded), shared, [*data["train"], *data["val"], *data["test"]]
'''

RUN = '''
import pickle, sys
from experiments import data_cache, isolate
import probe_module
name, data_dir, requested, asked = pickle.loads(bytes.fromhex(sys.argv[1]))
data_cache.request(name, data_dir, requested)
result = isolate.supervise(probe_module.probe, {"name": name, "data_dir": data_dir, "split": asked},
                           preload=["experiments.data_cache"])
sys.stdout.write(pickle.dumps(result).hex())
'''


def _in_a_job(tmp_path, cfg, requested, asked):
    """probe(...) in a job forked from a fresh forkserver started after request(requested)."""
    (tmp_path / "probe_module.py").write_text(textwrap.dedent(PROBE))
    args = pickle.dumps((cfg.data.name, cfg.data.dir, requested, asked)).hex()
    out = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**_env(), "PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert out.returncode == 0, out.stderr[-2000:]
    return pickle.loads(bytes.fromhex(out.stdout))


def _env():
    return {k: v for k, v in os.environ.items() if k != data_cache.PRELOAD}


def test_a_job_gets_the_sets_its_forkserver_prepared_equal_to_its_own(make_cfg, tmp_path):
    cfg = make_cfg()
    split = split_of(cfg, seeds_of(cfg)["split"])
    fresh = prepare_data(cfg, seeds_of(cfg)["split"], warn=False)
    expected = [*fresh["train"], *fresh["val"], *fresh["test"]]

    preloaded, shared, arrays = _in_a_job(tmp_path, cfg, split, split)
    assert preloaded and shared
    for got, want in zip(arrays, expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)

    other_seed = make_cfg("train.seed=1")
    other = split_of(other_seed, seeds_of(other_seed)["split"])
    preloaded, shared, arrays = _in_a_job(tmp_path, cfg, split, other)  # a job of another seed
    assert preloaded and not shared
    theirs = prepare_data(other_seed, seeds_of(other_seed)["split"], warn=False)
    for got, want in zip(arrays, [*theirs["train"], *theirs["val"], *theirs["test"]], strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(arrays[2], expected[2])  # another validation set: the seed matters


def test_outside_a_forkserver_nothing_is_kept(make_cfg):
    """The test process (or a single run) prepares its own sets on each call: a caller that writes
    into them changes no one else's."""
    cfg = make_cfg()
    a = prepare_data(cfg, seeds_of(cfg)["split"], warn=False)
    b = prepare_data(cfg, seeds_of(cfg)["split"], warn=False)
    assert a["train"][0] is not b["train"][0]
    assert data_cache._preloaded.cache_info().currsize == 0
