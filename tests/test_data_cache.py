"""A sweep's forkserver decodes and prepares the data once; each job it forks starts with them."""

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import data_cache
from experiments.runner import prepare_data, seeds_of, split_of

TESTS = Path(__file__).resolve().parent

RUN = '''
import pickle, sys
from experiments import data_cache, job
name, data_dir, requested, asked = pickle.loads(bytes.fromhex(sys.argv[1]))
data_cache.request(name, data_dir, requested)
from test_data_cache import probe  # after the request: this module imports data_cache's users
results = []
for split in asked:  # jobs forked one after the other from the one forkserver the request started
    try:
        results.append(("ok", job.supervise(probe, {"name": name, "data_dir": data_dir, "split": split},
                                                preload=["test_data_cache"])))
    except job.JobError as exc:
        results.append(("error", str(exc)))
sys.stdout.write(pickle.dumps(results).hex())
'''


def _fingerprints(data):
    """Each set's shape, dtype and sha1."""
    sets = [*data["train"], *(data["val"] or ()), *data["test"]]
    return [(a.shape, a.dtype.str, hashlib.sha1(a.tobytes()).hexdigest()) for a in sets]


def probe(name, data_dir, split):
    """Run in the job: whether the forkserver prepared sets, whether prepare hands out those very
    arrays, and the fingerprints of the sets it hands out."""
    preloaded = data_cache._preloaded.cache_info().currsize == 1 and data_cache._preloaded()
    data = data_cache.prepare(name, data_dir, split)
    shared = bool(preloaded) and data["train"][0] is preloaded[1]["train"][0]
    return bool(preloaded), shared, _fingerprints(data)


def _jobs(tmp_path, cfg, requested, asked):
    """probe(...) in one job per split of `asked`, forked from a forkserver started after request(requested)."""
    args = pickle.dumps((cfg.data.name, cfg.data.dir, requested, asked)).hex()
    env = {k: v for k, v in os.environ.items() if k != data_cache.PRELOAD}
    out = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env={**env, "PYTHONPATH": f"{TESTS}:{TESTS.parent}"})
    assert out.returncode == 0, out.stderr[-2000:]
    return pickle.loads(bytes.fromhex(out.stdout))


def _own(cfg):
    """The fingerprints of what the config's own preparation makes, in this process."""
    return _fingerprints(prepare_data(cfg, seeds_of(cfg)["split"], warn=False))


@pytest.mark.parametrize("sizes", [(), pytest.param(("data.train_size=null", "data.test_size=null"),
                                                     marks=pytest.mark.slow)], ids=["cut", "whole"])
def test_a_job_gets_the_sets_its_forkserver_prepared_and_only_for_its_own_split(make_cfg, tmp_path, sizes):
    """The job whose config splits the data as the request did reads the forkserver's arrays, equal
    to what it would prepare itself; a job of another seed, val_size or test_size prepares its own."""
    cfgs = [make_cfg(*sizes), make_cfg(*sizes, "train.seed=1"), make_cfg(*sizes, "data.val_size=300"),
            make_cfg(*sizes, "data.test_size=400")]
    splits = [split_of(cfg, seeds_of(cfg)["split"]) for cfg in cfgs]
    results = _jobs(tmp_path, cfgs[0], splits[0], splits)
    assert [r[0] for r in results] == ["ok"] * 4
    assert [r[1][:2] for r in results] == [(True, True)] + [(True, False)] * 3
    for (_, (_, _, got)), cfg in zip(results, cfgs, strict=True):
        assert got == _own(cfg)
    assert len({r[1][2][2][2] for r in results[:2]}) == 2  # another seed, another validation set


def test_a_split_that_cannot_be_made_fails_its_job_with_the_reason_and_the_forkserver_lives_on(make_cfg, tmp_path):
    bad, good = make_cfg("data.val_size=70000"), make_cfg()
    bad_split, good_split = (split_of(c, seeds_of(c)["split"]) for c in (bad, good))
    (kind, text), (kind_after, (preloaded, shared, got)) = _jobs(tmp_path, bad, bad_split, [bad_split, good_split])
    assert kind == "error" and "val_size=70000" in text
    assert kind_after == "ok" and not preloaded and not shared and got == _own(good)


def test_outside_a_forkserver_nothing_is_kept(make_cfg):
    """The test process (or a single run) prepares its own sets on each call: a caller that writes
    into them changes no one else's."""
    cfg = make_cfg()
    a = prepare_data(cfg, seeds_of(cfg)["split"], warn=False)
    b = prepare_data(cfg, seeds_of(cfg)["split"], warn=False)
    assert a["train"][0] is not b["train"][0]
    assert data_cache._preloaded.cache_info().currsize == 0
