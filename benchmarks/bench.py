"""Training speed and memory of every framework the harness runs, and the GEMM floor.

    python -m benchmarks.bench [--quick] [--threads 1,2] [--repeats 3] [--steps N] [--out DIR]
    python -m benchmarks.bench --keras-settings [--quick] [--threads 1]

Frameworks (columns): `scratchnn`; `keras`, the Keras twin with the harness's execution settings
(conf/config.yaml's `keras` preset, `tuned`); `keras-default`, the same twin as Keras builds it
out of the box (`keras=default`); `torch` when PyTorch is installed; and `gemm`, the GEMM floor:
NumPy doing only the step's matrix products (forward W A, backward Delta A^T and W^T Delta per
layer, same shapes) into reused buffers. Each is built from the harness's own config (Hydra
compose of conf/config.yaml with the grid's overrides) and run through its plug-in
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
"""

import argparse
import datetime
import math
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from benchmarks import measure, tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = (1, 128, 32)  # depth, width, batch size of conf/config.yaml
# the configs of issue 15's first table, for before/after comparisons
REFERENCE_CONFIGS = [(1, 128, 32), (2, 256, 128), (3, 512, 32), (2, 1024, 256)]
GRID = [(d, w, b) for d in (1, 3) for w in (128, 1024) for b in (32, 512)]
QUICK = [(1, 128, 32), (2, 256, 128), (3, 512, 32)]
QUICK_STEPS, QUICK_REPEATS = 256, 2
KERAS_SETTINGS = [(jit, spe) for jit in (False, True) for spe in (1, 8, 64, 256)]


def grid(quick=False):
    """The configs (depth, width, batch size): depth {1, 3} x width {128, 1024} x batch {32, 512},
    plus issue 15's reference configs (11 in all); --quick: three of them."""
    if quick:
        return list(QUICK)
    return GRID + [c for c in REFERENCE_CONFIGS if c not in GRID]


def parse_configs(text):
    """'1x128x32,2x256x128' -> [(1, 128, 32), (2, 256, 128)] (depth x width x batch size)."""
    configs = []
    for part in text.split(","):
        d, w, b = (int(v) for v in part.lower().split("x"))
        configs.append((d, w, b))
    return configs


def parse_threads(text):
    values = sorted({int(v) for v in text.split(",")})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1. Received: {text!r}")
    return values


def steps_for(depth, width, M, n_train, flop_budget, steps=None):
    """Steps timed per fit: `steps` if given; else the whole epoch, unless its matrix products
    exceed flop_budget, then the fewest multiple of 64 batches that reach the budget."""
    S = math.ceil(n_train / M)
    if steps:
        return min(steps, S)
    per_step = measure.flops_per_step(depth, width, M)
    if per_step * S <= flop_budget:
        return S
    return min(S, 64 * math.ceil(flop_budget / per_step / 64))


# ---- the harness's config ---------------------------------------------------------------------
def harness_config(overrides):
    """conf/config.yaml composed with `overrides`, as a plain dict (what experiments.train would run)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


BASE = ["data.val_size=0", "train.epochs=1", "train.verbose=false"]
COLUMNS = {  # column -> (driver module, overrides): Keras as the harness runs it, and out of the box
    "scratchnn": ("scratchnn", []), "keras": ("keras", []), "keras-default": ("keras", ["keras=default"]),
    "torch": ("torch", []), "gemm": ("gemm", []),
}


def variants(frameworks, keras_settings=False):
    """(column name, driver module, extra overrides) of every column measured."""
    if keras_settings:
        return [(tables.setting_name(j, s), "keras", [f"keras.jit_compile={str(j).lower()}",
                                                        f"keras.steps_per_execution={s}"]) for j, s in KERAS_SETTINGS]
    return [(fw, *COLUMNS[fw]) for fw in frameworks]


def default_frameworks():
    """Every framework the harness can run here: experiments.names.FRAMEWORKS, Keras also out of the
    box, those whose package is installed; and the GEMM floor."""
    from experiments import frameworks, names

    out = []
    for fw in names.FRAMEWORKS:
        if frameworks.missing(fw) is None:
            out.append(fw)
            if fw == "keras":
                out.append("keras-default")
    return out + ["gemm"]


# ---- drivers ------------------------------------------------------------------------------------
class Drivers:
    """One spawned driver process per framework module (measure.driver), started together and
    kept until close(); `run(job)` sends a job to its module's driver and waits for the result."""

    def __init__(self, modules, base_config):
        context = multiprocessing.get_context("spawn")
        self.conns, self.processes, self.info = {}, {}, {}
        for i, module in enumerate(modules):
            parent, child = context.Pipe()
            process = context.Process(target=measure.driver, args=(module, child, base_config, i == 0),
                                      name=f"bench-driver-{module}", daemon=False)
            process.start()
            child.close()
            self.conns[module], self.processes[module] = parent, process
        for module, conn in self.conns.items():
            message = self._receive(module)
            if message[0] != "ready":
                self.close()
                raise RuntimeError(f"the {module} driver failed to start: {message[1]}")
            self.info[module] = message[1]

    def _receive(self, module):
        try:
            return self.conns[module].recv()
        except EOFError:
            return ("error", f"the {module} driver died (exit code {self.processes[module].exitcode})", "")

    def run(self, job):
        self.conns[job["module"]].send(job)
        return self._receive(job["module"])

    def close(self):
        for module, conn in self.conns.items():
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for process in self.processes.values():
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()


def make_jobs(configs, thread_counts, columns, repeats, flop_budget, n_train, steps=None):
    """Every measurement, in the order they run: thread count, then config, then framework."""
    jobs = []
    for threads in thread_counts:
        for depth, width, M in configs:
            k = steps_for(depth, width, M, n_train, flop_budget, steps)
            for name, module, extra in columns:
                overrides = BASE + [f"model.depth={depth}", f"model.width={width}", f"train.batch_size={M}",
                                    f"train.threads={threads}"] + extra
                jobs.append({"framework": name, "module": module, "threads": threads, "depth": depth,
                             "width": width, "batch_size": M, "steps": k, "repeats": repeats,
                             "overrides": overrides})
    return jobs


def run_jobs(drivers, jobs, log=print):
    """Run the jobs one at a time; returns their results (an `error` key where one failed)."""
    results = []
    for job in jobs:
        job = {**job, "config": harness_config(job["overrides"])}
        message = drivers.run(job)
        result = {k: job[k] for k in ("framework", "module", "threads", "depth", "width", "batch_size")}
        if message[0] == "ok":
            result.update(message[1])
            log(f"  {job['framework']:<16} {result['s_epoch']:8.4f} s/epoch "
                f"({result['min']:.4f}–{result['max']:.4f}), "
                f"first epoch {result['first_s']:.4f}, {result['steps_timed']}/{result['steps_per_epoch']} steps, "
                f"peak +{result['peak_mb']:.0f} MB")
        else:
            result["error"] = message[1]
            log(f"  {job['framework']:<16} FAILED: {message[1]}\n{message[2] if len(message) > 2 else ''}")
        results.append(result)
    return results


# ---- environment --------------------------------------------------------------------------------
def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gb():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _git():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{commit}{' (with uncommitted changes)' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(results, argv, load_start):
    """Lines describing the run: command, date, machine, load, versions, BLAS and framework threads."""
    versions = {}
    for r in results:
        if "version" in r:
            versions.setdefault(r["module"], r["version"])
    blas = sorted({b for r in results for b in r.get("blas", [])})
    tags = sorted({f"{k}={v}" for r in results for k, v in r.get("tags", {}).items()})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"command: python -m benchmarks.bench {shlex.join(argv)}".rstrip(),
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; git: {_git()}",
        f"machine: {_cpu_model()}, {cores} cores available of {os.cpu_count()}, {_mem_total_gb():.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}",
        "load average (1, 5, 15 min) at start {:.2f} {:.2f} {:.2f}, at end {:.2f} {:.2f} {:.2f} "
        "(other processes on the machine)".format(*load_start, *os.getloadavg()),
        "versions: " + "; ".join(f"{m}: {v}" for m, v in sorted(versions.items())),
        f"BLAS in the measuring processes: {'; '.join(blas)}",
        f"framework threads in force: {', '.join(tags)}",
        "OPENBLAS_NUM_THREADS={} OMP_NUM_THREADS={} OPENBLAS_CORETYPE={}".format(
            *(os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE"))),
    ]


# ---- main -----------------------------------------------------------------------------------------
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
    peers = [fw for fw in names if fw not in (tables.REFERENCE, tables.FLOOR)]
    load_start = os.getloadavg()
    base = harness_config(BASE)
    print(f"{len(configs)} configs x threads {args.threads} x {names}", flush=True)
    drivers = Drivers(sorted({c[1] for c in columns}), base)
    try:
        n_train = next(iter(drivers.info.values()))["n_train"]
        jobs = make_jobs(configs, args.threads, columns, repeats, args.flop_budget, n_train, steps)
        results, per_config = [], len(columns)
        for i in range(0, len(jobs), per_config):
            j = jobs[i]
            print(f"threads={j['threads']} depth={j['depth']} width={j['width']} batch={j['batch_size']}:", flush=True)
            results += run_jobs(drivers, jobs[i:i + per_config], log=lambda line: print(line, flush=True))
    finally:
        drivers.close()
    env = environment(results, argv, load_start)
    mode = "custom" if args.configs else ("quick" if args.quick else "full")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.keras_settings:
        text, table = keras_settings_report(results, names, env)
        stem = f"keras_settings_{mode}"
    else:
        text, table = framework_report(results, names, peers, env)
        stem = f"bench_{mode}"
    import pandas as pd

    df = pd.DataFrame(table)
    df.to_csv(args.out / f"{stem}.csv", index=False)
    (args.out / f"{stem}.md").write_text(text)
    print("\n" + text, flush=True)
    print(f"written: {args.out / (stem + '.csv')}, {args.out / (stem + '.md')}")
    if args.mlflow:
        log_to_mlflow(df, stem, env)
    failed = [r for r in results if "error" in r]
    if failed:
        print(f"{len(failed)} measurement(s) failed: " + "; ".join(
            f"{r['framework']} {r['depth']}x{r['width']}x{r['batch_size']} threads={r['threads']}: {r['error']}"
            for r in failed), file=sys.stderr)
        return 1
    return 0


def framework_report(results, names, peers, env):
    table = tables.rows(results, names, peers)
    lines = ["# Benchmark: seconds per MNIST training epoch", "", *[f"- {e}" for e in env], "",
             "Times: median (min–max) of the repeats, s/epoch; ratios: the division of the printed medians "
             f"({tables.REFERENCE} / other, below 1 = {tables.REFERENCE} faster). `keras` = the harness's Keras "
             "settings, `keras-default` = Keras out of the box, `gemm` = the GEMM floor. Peak MB: rise of the "
             "peak RSS over the first epoch after the harness's warm-up. memory_ratio: (data + parameters + "
             "scratchnn's rise) / (data + parameters + one batch of activations).", "",
             tables.markdown(table, names, peers), ""]
    lines += tables.summary_lines(table, peers)
    passed, worst = tables.memory_check(table)
    if passed is not None:
        lines.append(f"memory: {tables.REFERENCE} memory_ratio at most {worst['memory_ratio']:.3f} "
                     f"(bound {tables.MEMORY_BOUND}): {'pass' if passed else 'FAIL'}")
    return "\n".join(lines) + "\n", table


def keras_settings_report(results, names, env):
    table = tables.keras_rows(results, names)
    summary, best = tables.keras_summary(table, names)
    preset = harness_config(BASE)["keras"]
    current = tables.setting_name(preset["jit_compile"], preset["steps_per_execution"])
    lines = ["# Keras execution settings: seconds per MNIST training epoch", "", *[f"- {e}" for e in env],
             f"- the harness's preset now (conf/config.yaml -> conf/keras/tuned.yaml): {current}", "",
             "Times: median (min–max) of the repeats, s/epoch; the fastest per config in bold.", "",
             tables.keras_markdown(table, names), ""]
    lines += [f"{r['threads']} thread(s), depth {r['depth']}, width {r['width']}, batch {r['batch_size']}: "
              f"fastest {r['fastest']}" for r in table]
    lines += [""] + summary
    return "\n".join(lines) + "\n", table


def log_to_mlflow(df, name, env):
    import mlflow

    from experiments import names
    from experiments.config import DEFAULT_TRACKING_URI

    mlflow.set_tracking_uri(DEFAULT_TRACKING_URI)
    mlflow.set_experiment("benchmark")
    with mlflow.start_run(run_name=name, tags={names.ROLE: names.ROLE_BENCHMARK, "environment": "\n".join(env)}):
        mlflow.log_table(df, f"{name}.json")


if __name__ == "__main__":
    sys.exit(main())
