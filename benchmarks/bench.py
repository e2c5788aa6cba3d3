"""Training speed and memory: scratchnn against Keras and against a pure-GEMM baseline.

    python -m benchmarks.bench [--quick] [--threads 2] [--repeats 3] [--max-steps 300] [--mlflow]

For each config (width × depth × batch size, plus the default run's config) one process times
a training epoch of scratchnn, of the matching Keras model (same threads, same batch order),
and of the bare matrix products a step of that network needs (same shapes, preallocated
outputs). An epoch is measured over min(S, --max-steps) steps (fewer for configs whose steps
cost more than --flop-budget in all, at least 5) and scaled to the full S =
ceil(N / M) steps: a one-step call is timed too, so a call's fixed cost counts once and the
per-step cost S times. Warm-up runs are excluded and the median over --repeats is reported.
Peak memory is the rise of the process's peak RSS (VmHWM, reset first) above its RSS before
the first epoch of a fresh model: everything training allocates counts. memory_ratio is
(data + parameters + that rise) / (data + parameters + one batch of activations). Results: a printed table, plus CSV and Markdown in benchmarks/results/.
"""

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from experiments import keras_twin  # noqa: E402
from experiments.config import Config, SGDConfig  # noqa: E402
from experiments.pair import build_scratchnn, prepare_data  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = (1, 128, 32)  # depth, width, batch size of conf/config.yaml


def grid(quick):
    if quick:
        return [DEFAULT, (1, 512, 128), (3, 128, 512)]
    configs = [(d, w, b) for w in (32, 128, 512, 2048) for d in (1, 3) for b in (32, 128, 512)]
    return configs if DEFAULT in configs else [DEFAULT] + configs


def make_cfg(depth, width, batch_size, threads):
    cfg = OmegaConf.structured(Config(optimizer=SGDConfig()))
    cfg.model.depth, cfg.model.width, cfg.train.batch_size, cfg.train.threads = depth, width, batch_size, threads
    return cfg


def rss_reset():
    """Reset the kernel's peak-RSS mark and return the current RSS in bytes (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status("VmRSS")


def rss_peak():
    return _status("VmHWM")


def _status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def layer_sizes(depth, width):
    return [784] + [width] * depth + [10]


def gemm_shapes(depth, width, M):
    """(m, k, n) of every product in one step: forward W A, BP3.2 Delta A^T, BP2.2 W^T Delta (not for layer 1)."""
    n = layer_sizes(depth, width)
    shapes = []
    for l in range(1, len(n)):
        shapes.append((n[l], n[l - 1], M))  # Z = W A_prev
        shapes.append((n[l], M, n[l - 1]))  # dW = Delta A_prev^T
        if l > 1:
            shapes.append((n[l - 1], n[l], M))  # W^T Delta
    return shapes


def flops_per_step(depth, width, M):
    return sum(2 * m * k * n for m, k, n in gemm_shapes(depth, width, M))


def time_gemm(depth, width, M, steps, rng):
    """Seconds for `steps` steps' worth of the same products, float32, preallocated outputs."""
    operands = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32),
                 np.empty((m, n), dtype=np.float32)) for m, k, n in gemm_shapes(depth, width, M)]
    start = time.perf_counter()
    for _ in range(steps):
        for a, b, out in operands:
            np.matmul(a, b, out=out)
    return time.perf_counter() - start


def first_call_peak(fn):
    """Peak RSS rise (bytes) over the RSS before a call: used on a fresh model's first epoch, so
    that every buffer, gradient, optimizer slot and (for Keras) traced graph it creates counts."""
    base = rss_reset()
    fn()
    return max(0, rss_peak() - base)


def measure(fn, repeats):
    """Median seconds over `repeats` calls of fn(), after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def epoch_estimate(t_steps, t_one, steps, S):
    """Seconds for S steps from `steps` timed steps and one timed single-step call: the fixed cost of
    a call (t_one - one step) counts once, the per-step cost S times."""
    if steps >= S:
        return t_steps
    per_step = (t_steps - t_one) / (steps - 1)
    return t_one + per_step * (S - 1)


def bench_config(depth, width, M, data, args, rng):
    (X, y) = data["train"]
    S = math.ceil(len(X) / M)
    steps = max(5, min(S, args.max_steps, math.ceil(args.flop_budget / flops_per_step(depth, width, M))))
    Xs, ys = X[:steps * M], y[:steps * M]
    cfg = make_cfg(depth, width, M, args.threads)
    seeds = np.random.SeedSequence(0).spawn(3)
    row = {"depth": depth, "width": width, "batch_size": M, "steps_timed": steps, "steps_per_epoch": S}

    net = build_scratchnn(cfg, seeds[0])
    order = np.random.default_rng(1)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        peak = first_call_peak(lambda: net.fit(Xs, ys, 1, M, shuffle=order, verbose=False))
        t = measure(lambda: net.fit(Xs, ys, 1, M, shuffle=order, verbose=False), args.repeats)
        t_one = measure(lambda: net.fit(Xs[:M], ys[:M], 1, M, shuffle=order, verbose=False), args.repeats)
        row["scratchnn_s_epoch"], row["scratchnn_peak_mb"] = epoch_estimate(t, t_one, steps, S), peak / 2**20
        t_gemm = statistics.median(time_gemm(depth, width, M, steps, rng) for _ in range(args.repeats))
        row["gemm_s_epoch"] = t_gemm * S / steps

    model = keras_twin.build(cfg, 784, 10, seeds[1])
    order = np.random.default_rng(1)

    def keras_epoch(n):
        idx = order.permutation(n)
        model.fit(Xs[idx], ys[idx], batch_size=M, epochs=1, shuffle=False, verbose=0)

    peak = first_call_peak(lambda: keras_epoch(len(Xs)))
    t = measure(lambda: keras_epoch(len(Xs)), args.repeats)
    t_one = measure(lambda: keras_epoch(M), args.repeats)
    row["keras_s_epoch"], row["keras_peak_mb"] = epoch_estimate(t, t_one, steps, S), peak / 2**20

    flops = flops_per_step(depth, width, M) * S
    row["ratio"] = row["scratchnn_s_epoch"] / row["keras_s_epoch"]
    row["scratchnn_gflops"] = flops / row["scratchnn_s_epoch"] / 1e9
    row["keras_gflops"] = flops / row["keras_s_epoch"] / 1e9
    row["gemm_gflops"] = flops / row["gemm_s_epoch"] / 1e9
    row["pct_of_gemm"] = 100 * row["gemm_s_epoch"] / row["scratchnn_s_epoch"]
    row["step_over_matmul"] = row["scratchnn_s_epoch"] / row["gemm_s_epoch"]
    n = layer_sizes(depth, width)
    data_mb = Xs.nbytes / 2**20
    params_mb = sum(a * b + a for a, b in zip(n[1:], n[:-1])) * 4 / 2**20
    acts_mb = sum(n) * M * 4 / 2**20
    row["memory_bound_mb"] = data_mb + params_mb + acts_mb
    # the weights exist before fit; what fit adds comes on top of data and parameters
    row["memory_ratio"] = (data_mb + params_mb + row["scratchnn_peak_mb"]) / row["memory_bound_mb"]
    return row


def markdown(df):
    cols = ["depth", "width", "batch_size", "scratchnn_s_epoch", "keras_s_epoch", "ratio", "scratchnn_gflops",
            "gemm_gflops", "pct_of_gemm", "step_over_matmul", "scratchnn_peak_mb", "keras_peak_mb", "memory_ratio"]
    head = "| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n"
    return head + "\n".join("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |"
                            for row in df[cols].itertuples(index=False))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three configs and few steps (the CI smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--flop-budget", type=float, default=60e9, help="fewer timed steps for big configs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--mlflow", action="store_true", help="also log the table to MLflow (experiment 'benchmark')")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_steps, args.repeats = min(args.max_steps, 30), min(args.repeats, 2)
    threads = keras_twin.import_tensorflow(args.threads)
    cfg = make_cfg(*DEFAULT, args.threads)
    cfg.data.dir = os.environ.get("SCRATCHNN_DATA_DIR")
    cfg.data.val_size = 0
    data = prepare_data(cfg, np.random.SeedSequence(0))
    rng = np.random.default_rng(0)
    rows = []
    for depth, width, M in grid(args.quick):
        rows.append(bench_config(depth, width, M, data, args, rng))
        r = rows[-1]
        print(f"depth={depth} width={width} batch={M}: scratchnn {r['scratchnn_s_epoch']:.3f} s/epoch, "
              f"keras {r['keras_s_epoch']:.3f} s/epoch, ratio {r['ratio']:.3f}, {r['pct_of_gemm']:.0f}% of GEMM", flush=True)
    df = pd.DataFrame(rows)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        blas = [(i["internal_api"], i["num_threads"], i.get("architecture")) for i in threadpool_info() if i["user_api"] == "blas"]
    import keras
    import tensorflow as tf

    env = (f"threads={args.threads} blas={blas} {threads} numpy={np.__version__} tensorflow={tf.__version__} "
           f"keras={keras.__version__} cpu={platform.processor() or platform.machine()} "
           f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "full"
    df.to_csv(args.out / f"bench_{name}.csv", index=False)
    text = f"{env}\n\n{markdown(df)}\n"
    (args.out / f"bench_{name}.md").write_text(text)
    print("\n" + text)
    faster = (df.ratio < 1).mean()
    print(f"scratchnn faster than Keras in {100 * faster:.0f}% of {len(df)} configs; "
          f"default config ratio {df[(df.depth == 1) & (df.width == 128) & (df.batch_size == 32)].ratio.iloc[0]:.3f}")
    if args.mlflow:
        import mlflow

        from experiments.config import DEFAULT_TRACKING_URI

        mlflow.set_tracking_uri(DEFAULT_TRACKING_URI)
        mlflow.set_experiment("benchmark")
        with mlflow.start_run(run_name=name, tags={"role": "benchmark", "environment": env}):
            mlflow.log_table(df, "bench.json")
            mlflow.log_metrics({"share_faster": float(faster)})
    return df


if __name__ == "__main__":
    main()
