"""The benchmark's output: the lines describing the run (machine, load, versions), the two reports
(frameworks; Keras execution settings) as Markdown, the CSV and Markdown files, and MLflow."""

import datetime
import os
import platform
import shlex
import subprocess
from pathlib import Path

from benchmarks import tables
from benchmarks.plan import BASE, harness_config
from experiments.tracking import cpu_model

ROOT = Path(__file__).resolve().parents[1]


# ---- environment --------------------------------------------------------------------------------
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
        f"machine: {cpu_model()}, {cores} cores available of {os.cpu_count()}, {_mem_total_gb():.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}",
        "load average (1, 5, 15 min) at start {:.2f} {:.2f} {:.2f}, at end {:.2f} {:.2f} {:.2f} "
        "(other processes on the machine)".format(*load_start, *os.getloadavg()),
        "versions: " + "; ".join(f"{m}: {v}" for m, v in sorted(versions.items())),
        f"BLAS in the measuring processes: {'; '.join(blas)}",
        f"framework threads in force: {', '.join(tags)}",
        "OPENBLAS_NUM_THREADS={} OMP_NUM_THREADS={} OPENBLAS_CORETYPE={}".format(
            *(os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE"))),
    ]


# ---- the reports --------------------------------------------------------------------------------
def framework_report(results, names, peers, env):
    """(Markdown text, table rows) of the frameworks against scratchnn and the GEMM floor."""
    table = tables.rows(results, names, peers)
    lines = ["# Benchmark: seconds per MNIST training epoch", "", *[f"- {e}" for e in env], "",
             "Times: median (min–max) of the repeats, s/epoch; ratios: the division of the printed medians "
             f"({tables.REFERENCE} / other, below 1 = {tables.REFERENCE} faster). `keras` = the harness's Keras "
             "settings, `keras-default` = Keras out of the box, `gemm` = the GEMM floor. Peak MB: rise of the "
             "peak RSS over the first epoch after the harness's warm-up. memory_ratio: (data + parameters + "
             "scratchnn's rise) / (data + parameters + one batch of activations).", "",
             tables.markdown(table, names, peers), ""]
    lines += tables.summary_lines(table, peers, names)
    passed, worst = tables.memory_check(table)
    if passed is not None:
        lines.append(f"memory: {tables.REFERENCE} memory_ratio at most {worst['memory_ratio']:.3f} "
                     f"(bound {tables.MEMORY_BOUND}): {'pass' if passed else 'FAIL'}")
    return "\n".join(lines) + "\n", table


def keras_settings_report(results, names, env):
    """(Markdown text, table rows) of the Keras execution settings, the fastest and the recommendation."""
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


def write(out, stem, text, table):
    """Write `stem`.csv and `stem`.md into the folder `out`, print the text and the paths; returns
    the table as a pandas DataFrame."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(table)
    df.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}.md").write_text(text)
    print("\n" + text, flush=True)
    print(f"written: {out / (stem + '.csv')}, {out / (stem + '.md')}")
    return df


def log_to_mlflow(df, name, env):
    import mlflow

    from experiments import names
    from experiments.config import DEFAULT_TRACKING_URI

    mlflow.set_tracking_uri(DEFAULT_TRACKING_URI)
    mlflow.set_experiment("benchmark")
    with mlflow.start_run(run_name=name, tags={names.ROLE: names.ROLE_BENCHMARK, "environment": "\n".join(env)}):
        mlflow.log_table(df, f"{name}.json")
