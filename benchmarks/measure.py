"""The measuring side of the benchmark: what runs inside the worker processes.

Process layout (bench.py starts it): one *driver* process per framework module, spawned fresh,
imports only that framework's plug-in (`experiments.frameworks.<module>`) and the data, then
forks one *job* process per measurement. So every measurement runs in a process of its own that
no other framework has touched (no TensorFlow in the PyTorch process, no thread pool of one in
another), and the imports are paid once per framework, as the harness's forkserver pays them.

A job measures through the plug-in code the harness runs (`experiments.runner.build`,
`Framework.configure`, `warm_up`, `fit`), under the harness's BLAS limit (threadpoolctl):

1. configure (threads), build, the harness's `warm_up`;
2. one untimed epoch (the benchmark's own warm-up), over which the peak memory is taken;
3. `repeats` epochs, each one `fit` call timed directly with `timed`.

An "epoch" is a fit over the training slice: the whole training set (S = ceil(N / M) steps), or
exactly `steps` batches when a job asks for fewer; s/epoch is then the time of those `steps`
steps times S / steps (never a difference of two timings). The GEMM floor (`GemmFloor`) does
only the matrix products of the same steps, in NumPy, into buffers reused from step to step.
"""

import math
import os
import statistics
import time
from pathlib import Path

N_IN, N_OUT = 784, 10
PRELOAD = {  # driver module -> what its process imports before forking jobs
    "scratchnn": ("experiments.runner", "experiments.frameworks.scratchnn"),
    "keras": ("experiments.runner", "experiments.frameworks.keras"),
    "torch": ("experiments.runner", "experiments.frameworks.torch"),
    "gemm": ("experiments.runner",),  # the data only; the floor itself is NumPy
}


def timed(fn, clock=time.perf_counter):
    """(seconds, fn()) for one call, on a monotonic clock; never a negative time (asserted)."""
    start = clock()
    result = fn()
    elapsed = clock() - start
    assert elapsed >= 0, f"negative time {elapsed} s from {clock}"
    return elapsed, result


# ---- memory ---------------------------------------------------------------------------------
def rss_reset():
    """Reset the kernel's peak-RSS mark (VmHWM) and return the current RSS in bytes (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status("VmRSS")


def rss_peak():
    return _status("VmHWM")


def _status(key):
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---- shapes and the GEMM floor --------------------------------------------------------------
def layer_sizes(depth, width):
    return [N_IN] + [width] * depth + [N_OUT]


def gemm_shapes(depth, width, M):
    """(m, k, n) of every matrix product of one training step on a batch of M, in the order the
    step does them: forward Z^l = W^l A^(l-1) for every layer, then backward from the last layer,
    dW^l = Delta^l (A^(l-1))^T (BP3.2) and (W^l)^T Delta^l (BP2.2; not for layer 1, whose input
    needs no gradient: neither scratchnn, Keras nor PyTorch computes it)."""
    n = layer_sizes(depth, width)
    L = len(n) - 1
    shapes = [(n[l], n[l - 1], M) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        shapes.append((n[l], M, n[l - 1]))
        if l > 1:
            shapes.append((n[l - 1], n[l], M))
    return shapes


def flops_per_step(depth, width, M):
    return sum(2 * m * k * n for m, k, n in gemm_shapes(depth, width, M))


def batch_sizes(n, M, steps):
    """The batch sizes of `steps` steps over n examples in batches of M (the last may be partial)."""
    return [min(M, n - s * M) for s in range(steps)]


class GemmFloor:
    """The matrix products of training steps, in scratchnn's layout and nothing else.

    For each layer l, with W^l (n^l, n^(l-1)), A^(l-1) (n^(l-1), M) and Delta^l (n^l, M): forward
    W A into Z, backward Delta A^T into dW and W^T Delta into dA (l > 1), float32, every output
    written with `out=` into a buffer made once per batch size. A^0 is the transpose of an (M, 784)
    batch, as scratchnn's forward pass gets it.

    Args:
        depth, width: the network's hidden layers.
        sizes: the batch size of every step (e.g. `batch_sizes(N, M, S)`).
        rng: a NumPy Generator for the operands' values.
    """

    def __init__(self, depth, width, sizes, rng):
        import numpy as np

        self.sizes = list(sizes)
        self.products = {M: self._operands(depth, width, M, rng, np) for M in set(self.sizes)}
        self.matmul = np.matmul

    @staticmethod
    def _operands(depth, width, M, rng, np):
        n = layer_sizes(depth, width)
        f32 = np.float32
        A = [rng.random((M, n[0]), dtype=f32).T] + [rng.random((k, M), dtype=f32) for k in n[1:-1]]
        W = [rng.random((n[l], n[l - 1]), dtype=f32) * f32(0.01) for l in range(1, len(n))]
        D = [rng.random((n[l], M), dtype=f32) for l in range(1, len(n))]
        forward = [(W[l], A[l], np.empty((n[l + 1], M), f32)) for l in range(len(W))]
        backward = []
        for l in range(len(W) - 1, -1, -1):
            backward.append((D[l], A[l].T, np.empty_like(W[l])))
            if l > 0:
                backward.append((W[l].T, D[l], np.empty((n[l], M), f32)))
        return forward + backward

    def run(self):
        """One pass over every step: only the products, into the preallocated outputs."""
        matmul = self.matmul
        for M in self.sizes:
            for a, b, out in self.products[M]:
                matmul(a, b, out=out)

    def count(self):
        """Products per pass: steps x (3 x layers - 1)."""
        return sum(len(self.products[M]) for M in self.sizes)


# ---- one measurement ------------------------------------------------------------------------
def _spread(seconds):
    return {"s_epoch": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def epoch_plan(n_train, M, steps):
    """(steps timed, steps per epoch S, examples timed): the whole epoch when steps is 0 or >= S."""
    S = math.ceil(n_train / M)
    if not steps or steps >= S:
        return S, S, n_train
    return steps, S, steps * M


def run_job(job, data):
    """Measure one framework on one config as `job` describes it (bench.py makes jobs); returns
    a dict of plain values. Runs in a fresh process."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    c = job["config"]
    M, threads = c["train"]["batch_size"], c["train"]["threads"]
    X, y = data["train"]
    steps, S, n = epoch_plan(len(X), M, job["steps"])
    out = {"steps_timed": steps, "steps_per_epoch": S, "examples_timed": n, "data_mb": X[:n].nbytes / 2**20}
    with threadpool_limits(limits=threads, user_api="blas"):
        out["blas"] = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')} threads={i['num_threads']}"
                       for i in threadpool_info() if i["user_api"] == "blas"]
        if job["module"] == "gemm":
            out.update(_run_gemm(job, c, len(X), M, steps, n, np))
        else:
            out.update(_run_framework(job, c, data, n, np))
    scale = S / steps
    seconds = [t * scale for t in out.pop("fit_s")]
    out.update(_spread(seconds), epochs_s=seconds, first_s=out.pop("first_fit_s") * scale)
    for key in ("s_epoch", "min", "max", "first_s"):
        assert out[key] >= 0, f"negative time {key}={out[key]}"
    return out


def _run_gemm(job, c, N, M, steps, n, np):
    m = c["model"]
    floor = GemmFloor(m["depth"], m["width"], batch_sizes(n, M, steps), np.random.default_rng(0))
    base = rss_reset()
    first, _ = timed(floor.run)
    peak = rss_peak() - base
    return {"fit_s": [timed(floor.run)[0] for _ in range(job["repeats"])], "first_fit_s": first,
            "warmup_s": 0.0, "peak_mb": max(0, peak) / 2**20, "products_per_epoch": floor.count(),
            "flops_per_epoch": sum(flops_per_step(m["depth"], m["width"], b) for b in floor.sizes),
            "settings": {}, "tags": {}, "version": f"numpy {np.__version__}"}


def _run_framework(job, c, data, n, np):
    from omegaconf import OmegaConf

    from experiments import frameworks, runner
    from experiments.config import validate

    cfg = OmegaConf.create(c)
    validate(cfg, n_train=n)
    X, y = data["train"]
    sliced = {"train": (X[:n], y[:n]), "val": None, "test": data["test"], "n_out": data["n_out"]}
    seeds = runner.seeds_of(cfg)
    module = job["module"]
    tags = frameworks.get(module).configure(cfg)
    model = runner.build(cfg, module, seeds[module], data["n_out"])
    warmup, _ = timed(lambda: model.warm_up(sliced))
    order = np.random.default_rng(seeds["order"])  # one Generator: every epoch its own permutation

    def epoch():
        history = model.fit(sliced, order, lambda epoch, logs: None)
        assert len(history["loss"]) == 1 and math.isfinite(history["loss"][0]), history
        return history

    base = rss_reset()
    first, _ = timed(epoch)
    peak = rss_peak() - base
    fit_s = [timed(epoch)[0] for _ in range(job["repeats"])]
    return {"fit_s": fit_s, "first_fit_s": first, "warmup_s": warmup, "peak_mb": max(0, peak) / 2**20,
            "settings": _settings(model, module), "tags": tags, "version": _version(module, np)}


def _settings(model, module):
    if module != "keras":
        return {}
    keras_model = model.model
    return {"jit_compile": bool(keras_model.jit_compile), "steps_per_execution": int(keras_model.steps_per_execution)}


def _version(module, np):
    if module == "keras":
        import keras
        import tensorflow as tf

        return f"tensorflow {tf.__version__}, keras {keras.__version__}"
    if module == "torch":
        import torch

        return f"torch {torch.__version__}"
    return f"numpy {np.__version__}"


# ---- the driver -----------------------------------------------------------------------------
def _quiet_env():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def load_data(base_config, warn=True):
    """The harness's data (runner.prepare_data) for the benchmark's base config: MNIST, no
    validation split; `warn`: whether unverified data files are named on stderr."""
    import inspect
    import warnings

    from omegaconf import OmegaConf

    from experiments import runner
    from scratchnn import datasets

    cfg = OmegaConf.create(base_config)
    seed = runner.seeds_of(cfg)["split"]
    if "warn" in inspect.signature(runner.prepare_data).parameters:
        return runner.prepare_data(cfg, seed, warn=warn)
    with warnings.catch_warnings():
        warnings.simplefilter("default" if warn else "ignore", datasets.UnverifiedDataWarning)
        return runner.prepare_data(cfg, seed)


def _job_process(job, data, send):
    try:
        result = ("ok", run_job(job, data))
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which goes on
        import traceback

        result = ("error", f"{type(exc).__name__}: {exc}".strip()[:2000], traceback.format_exc()[-4000:])
    send.send(result)
    send.close()


def driver(module, conn, base_config, warn=True):
    """A driver process: import `module`'s plug-in and the data once, then for every job received
    on `conn` fork a fresh process that measures it, and send back ("ok", result) or ("error", why, tb).
    A job process that dies without reporting is reported as an error. None ends the driver."""
    import importlib
    import multiprocessing

    _quiet_env()
    try:
        for name in PRELOAD[module]:
            importlib.import_module(name)
        data = load_data(base_config, warn)
    except BaseException as exc:  # noqa: BLE001
        conn.send(("error", f"{module}: {type(exc).__name__}: {exc}", ""))
        return
    conn.send(("ready", {"n_train": len(data["train"][0])}))
    context = multiprocessing.get_context("fork")  # as a forkserver: imports done, nothing initialised
    while True:
        job = conn.recv()
        if job is None:
            return
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_job_process, args=(job, data, send), name=f"bench-{module}")
        process.start()
        send.close()
        try:
            message = receive.recv()
        except EOFError:
            message = None
        process.join()
        receive.close()
        if message is None:
            message = ("error", f"the job process died (exit code {process.exitcode})", "")
        conn.send(message)
