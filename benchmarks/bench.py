"""Training speed and memory of every framework the harness runs, and the GEMM floor.

    python -m benchmarks.bench [--quick] [--threads 1,2] [--repeats 3] [--steps N] [--out DIR]
    python -m benchmarks.bench --keras-settings [--quick] [--threads 1]

Frameworks (columns): `scratchnn`; `keras`, the Keras twin with the harness's execution settings
(conf/config.yaml's `keras` preset, `tuned`); `keras-default`, the same twin as Keras builds it
out of the box (`keras=default`); `torch` when PyTorch is installed; and `gemm`, the GEMM floor:
only the step's matrix products (forward W A, backward Delta A^T and W^T Delta per layer, same
shapes, made with scratchnn's calls: see floor.py) into reused buffers. Each is built from the harness's own config
(Hydra compose of conf/config.yaml with the grid's overrides) and run through its plug-in
(`experiments.runner.build`, `configure`, `warm_up`, `fit`), so the times are the harness's.

Method (details in docs/benchmarks.md): one driver process per framework module imports that
framework only and forks a fresh process per measurement; the measurement runs the harness's
warm-up, one untimed epoch (peak memory is taken over it), then --repeats epochs, each a `fit`
call timed directly. An epoch is the whole MNIST training set (60,000 examples), or for configs
whose epoch does more than --flop-budget of matrix products, a fit over exactly k batches, scaled
by S / k (--steps forces k). Reported: the median and min–max of the repeats, in s/epoch. Jobs
run one at a time; thread counts are the harness's `train.threads` (BLAS, TensorFlow, PyTorch).

--keras-settings times the Keras twin under jit_compile in {false, true} x steps_per_execution
in {1, 8, 64, 256} on the same configs instead, prints the fastest per config and the setting
with the smallest geometric mean of time / fastest, the candidate for conf/keras/tuned.yaml.

Output: the table on stdout, and CSV + Markdown (with the machine, versions and command line)
in --out (default benchmarks/results/).

Modules: this one, the command line; plan.py, the configs, columns and jobs; drivers.py, the
driver processes; measure.py, what runs in them; floor.py, the GEMM floor; tables.py, the rows
and ratios; report.py, the environment lines, the reports and the files.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from benchmarks import report, tables  # noqa: E402
from benchmarks.drivers import Drivers, run_jobs  # noqa: E402
from benchmarks.plan import (  # noqa: E402
    BASE,
    COLUMNS,
    QUICK,
    QUICK_REPEATS,
    QUICK_STEPS,
    default_frameworks,
    grid,
    harness_config,
    make_jobs,
    parse_configs,
    parse_threads,
    variants,
)

ROOT = report.ROOT
RESULTS = Path(__file__).resolve().parent / "results"


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{len(QUICK)} configs, {QUICK_STEPS} steps per fit, {QUICK_REPEATS} repeats "
                             "(the CI smoke run)")
    parser.add_argument("--keras-settings", action="store_true",
                        help="time Keras under jit_compile x steps_per_execution instead of the frameworks")
    parser.add_argument("--threads", type=parse_threads, default=parse_threads(f"1,{os.cpu_count() or 1}"),
                        help="comma-separated thread counts (default: 1 and all cores)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per measurement (median, min–max)")
    parser.add_argument("--steps", type=int, default=None,
                        help="time fits of exactly this many batches (scaled to the epoch); default: whole epochs "
                             "up to --flop-budget")
    parser.add_argument("--flop-budget", type=float, default=300e9,
                        help="an epoch with more matrix-product FLOPs than this is timed on a slice")
    parser.add_argument("--configs", type=parse_configs, default=None,
                        help="depth x width x batch list, e.g. 1x128x32,2x256x128 (default: the grid)")
    parser.add_argument("--frameworks", default=None,
                        help="comma-separated columns among scratchnn, keras, keras-default, torch, gemm "
                             "(default: every one installed)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for the CSV and Markdown (default: %(default)s)")
    parser.add_argument("--mlflow", action="store_true", help="also log the table to MLflow (experiment 'benchmark')")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("error: --repeats must be >= 1")
    configs = args.configs or grid(args.quick)
    steps = args.steps or (QUICK_STEPS if args.quick else None)
    repeats = min(args.repeats, QUICK_REPEATS) if args.quick else args.repeats
    frameworks = args.frameworks.split(",") if args.frameworks else default_frameworks()
    unknown = [fw for fw in frameworks if fw not in COLUMNS]
    if unknown or not frameworks:
        raise SystemExit(f"error: --frameworks must name some of {list(COLUMNS)}. Received: {args.frameworks!r}")
    columns = variants(frameworks, args.keras_settings)
    names = [c[0] for c in columns]
    load_start = os.getloadavg()
    base = harness_config(BASE)
    print(f"{len(configs)} configs x threads {args.threads} x {names}", flush=True)
    results = measure_all(configs, args.threads, columns=columns, base=base, repeats=repeats,
                          flop_budget=args.flop_budget, steps=steps)
    env = report.environment(results, argv, load_start)
    mode = "custom" if args.configs else ("quick" if args.quick else "full")
    if args.keras_settings:
        text, table = report.keras_settings_report(results, names, env)
        stem = f"keras_settings_{mode}"
    else:
        peers = [fw for fw in names if fw not in (tables.REFERENCE, tables.FLOOR)]
        text, table = report.framework_report(results, names, peers, env)
        stem = f"bench_{mode}"
    df = report.write(args.out, stem, text, table)
    if args.mlflow:
        report.log_to_mlflow(df, stem, env)
    failed = [r for r in results if "error" in r]
    if failed:
        print(f"{len(failed)} measurement(s) failed: " + "; ".join(
            f"{r['framework']} {r['depth']}x{r['width']}x{r['batch_size']} threads={r['threads']}: {r['error']}"
            for r in failed), file=sys.stderr)
        return 1
    return 0


def measure_all(configs, thread_counts, *, columns, base, repeats, flop_budget, steps):
    """Start a driver per module on the `base` config, run every job, config by config (a heading
    line each), then close the drivers; returns the results."""
    drivers = Drivers(sorted({c[1] for c in columns}), base)
    try:
        n_train = next(iter(drivers.info.values()))["n_train"]
        jobs = make_jobs(configs, thread_counts, columns, repeats=repeats, flop_budget=flop_budget,
                         n_train=n_train, steps=steps)
        results, per_config = [], len(columns)
        for i in range(0, len(jobs), per_config):
            j = jobs[i]
            print(f"threads={j['threads']} depth={j['depth']} width={j['width']} batch={j['batch_size']}:", flush=True)
            results += run_jobs(drivers, jobs[i:i + per_config], log=lambda line: print(line, flush=True))
    finally:
        drivers.close()
    return results


if __name__ == "__main__":
    sys.exit(main())
