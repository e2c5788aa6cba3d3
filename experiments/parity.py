"""Parity mode: every framework starts from scratchnn's initial weights and takes the same steps on
the same batches with train_on_batch; their per-step losses must agree to PARITY_BOUND."""

import numpy as np

from . import names

PARITY_BOUND = names.PARITY_BOUND


def batches(data, batch_size, seed_sequence, steps):
    """`steps` batches of indices, drawn as the epochs' permutations would draw them."""
    n, rng, order = len(data["train"][0]), np.random.default_rng(seed_sequence), np.array([], dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(n)])
        yield order[:batch_size]
        order = order[batch_size:]


def losses(job, build, weights):
    """{framework: per-step losses (the loss before each step)} for copies of every framework of the
    config, built by `build(name)` and given `weights`."""
    X, y = job.data["train"]
    copies = {fw: build(fw) for fw in job.cfg.frameworks}
    for model in copies.values():
        model.set_weights(weights)
    out = {fw: [] for fw in copies}
    for batch in batches(job.data, job.cfg.train.batch_size, job.seeds["order"], job.cfg.parity_steps):
        for fw, model in copies.items():
            out[fw].append(model.train_on_batch(X[batch], y[batch]))
    return {fw: np.array(v) for fw, v in out.items()}


def compare(trajectories):
    """{other framework: (max relative deviation from REFERENCE, first step over the bound or None)}."""
    ours, result = trajectories[names.REFERENCE], {}
    for fw, theirs in trajectories.items():
        if fw != names.REFERENCE:
            deviation = np.abs(ours - theirs) / np.abs(theirs)
            over = np.flatnonzero(~(deviation < PARITY_BOUND))
            result[fw] = (float(np.max(deviation)), int(over[0]) + 1 if len(over) else None)
    return result


def record(job, parent_id, trajectories):
    """Log the deviations and the loss table on the parent, print one line per framework; returns
    the comparison."""
    result = compare(trajectories)
    metrics = {}
    for fw, (deviation, first) in result.items():
        metrics[names.parity(fw, names.PARITY_DEV)] = deviation
        if first is not None:
            metrics[names.parity(fw, names.PARITY_STEP)] = first
        where = "" if first is None else f", first over the bound at step {first}"
        verdict = "pass" if first is None else "FAIL"
        print(f"parity {names.REFERENCE} vs {fw}: largest relative loss deviation over {len(trajectories[fw])} steps "
              f"{deviation:.2e} (bound {PARITY_BOUND:.0e}){where}: {verdict}", flush=True)
    job.recorder.log_metrics(parent_id, metrics)
    header = ",".join(["step", *trajectories])
    rows = [",".join([str(i + 1), *(repr(float(v[i])) for v in trajectories.values())])
            for i in range(len(trajectories[names.REFERENCE]))]
    job.recorder.log_text(parent_id, "\n".join([header, *rows]), names.PARITY_LOSSES)
    return result
