"""The measuring side of the benchmark: what runs inside the worker processes.

Process layout (drivers.py starts it): one *driver* process per framework module, spawned fresh,
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
steps times S / steps (never a difference of two timings). The GEMM floor (floor.py's
`GemmFloor`) does only the matrix products of the same steps, as scratchnn makes them, into buffers reused from
step to step.
"""

import math
import os
import statistics
import time
from pathlib import Path

from benchmarks.floor import GemmFloor, batch_sizes, flops_per_step

PRELOAD = {  # driver module -> what its process imports before forking jobs
    "scratchnn": ("experiments.runner", "experiments.frameworks.scratchnn"),
    "keras": ("experiments.runner", "experiments.frameworks.keras"),
    "torch": ("experiments.runner", "experiments.frameworks.torch"),
    "gemm": ("experiments.runner",),  # the data only; the floor itself is NumPy and SciPy's BLAS
}
# The shortest timed span over which CPU time / wall time is reported. The kernel adds another
# thread's CPU time to the process's clock at scheduler ticks (a few ms), so over a span of ~1 ms
# the ratio can read above the machine's core count; over 0.25 s such a lag is a few percent.
MIN_CPU_SPAN_S = 0.25


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
    """Measure one framework on one config as `job` describes it (plan.py makes jobs); returns
    a dict of plain values. Runs in a fresh process."""
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
            out.update(_run_gemm(job, steps=steps, n=n))
        else:
            out.update(_run_framework(job, data, n=n))
    scale = S / steps
    seconds = [t * scale for t in out.pop("fit_s")]
    out.update(_spread(seconds), epochs_s=seconds, first_s=out.pop("first_fit_s") * scale)
    for key in ("s_epoch", "min", "max", "first_s"):
        assert out[key] >= 0, f"negative time {key}={out[key]}"
    return out


def _epochs(fit, repeats, *, wall_clock=time.perf_counter, cpu_clock=time.process_time):
    """A first fit (reported apart), over which the peak memory is taken, then `repeats` fits
    timed one by one: {"first_fit_s", "peak_mb", "fit_s", "cpu_per_wall"}. cpu_per_wall: the
    process's CPU time (every thread's) over the wall time of the timed fits, so a framework that
    uses more cores than the threads it was given shows above 1 (and one that waits, below); NaN
    when the timed fits took less than MIN_CPU_SPAN_S in all, too short for the ratio to be true."""
    base = rss_reset()
    first, _ = timed(fit, wall_clock)
    peak = rss_peak() - base
    wall, cpu = wall_clock(), cpu_clock()
    seconds = [timed(fit, wall_clock)[0] for _ in range(repeats)]
    wall, cpu = wall_clock() - wall, cpu_clock() - cpu  # over the same span
    return {"first_fit_s": first, "peak_mb": max(0, peak) / 2**20, "fit_s": seconds,
            "cpu_per_wall": cpu / wall if wall >= MIN_CPU_SPAN_S else float("nan")}


def _run_gemm(job, *, steps, n):
    """The GEMM floor's products of `steps` steps over the first n examples, timed as a fit is."""
    import numpy as np

    m, M = job["config"]["model"], job["config"]["train"]["batch_size"]
    floor = GemmFloor(m["depth"], m["width"], batch_sizes(n, M, steps), np.random.default_rng(0))
    return {**_epochs(floor.run, job["repeats"]), "warmup_s": 0.0, "products_per_epoch": floor.count(),
            "flops_per_epoch": sum(flops_per_step(m["depth"], m["width"], b) for b in floor.sizes),
            "settings": {}, "tags": {}, "version": f"numpy {np.__version__}"}


def _run_framework(job, data, *, n):
    """The framework's plug-in, built from the job's config and fitted on the first n examples."""
    import numpy as np
    from omegaconf import OmegaConf

    from experiments import frameworks, runner
    from experiments.config import validate

    cfg = OmegaConf.create(job["config"])
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

    return {**_epochs(epoch, job["repeats"]), "warmup_s": warmup,
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
