"""The Optuna search at a fixed wall-time budget, with and without pruning.

    python -m benchmarks.pruning [--budget-s 600] [--seeds 0 1 2] [--pruners median none]
                                 [--out docs/measurements/pruning.md] [-- override ...]

For each pruner and sampler seed, in a new folder of its own: `python -m experiments.train -m
+sweep=search` with n_trials too many to finish, that pruner and seed, and the overrides after
`--`; SIGTERM to its process group when the budget is spent (the search ends its open runs KILLED).
Then, from its study: the trials that completed and were pruned before the budget's end, and the
best validation accuracy of those completed. The runs are made one after another, never together.
Prints a Markdown table (and writes it to --out) with the conditions: commit, budget, load average.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import optuna
from optuna.trial import TrialState

from experiments.config import PROJECT_ROOT
from experiments.tracking import git_commit

STUDY = "scratchnn-search"  # conf/sweep/search.yaml's study_name


def search(folder, pruner, seed, *, budget_s, overrides):
    """Run one search for `budget_s` seconds; returns its storage URL and the budget's end."""
    cmd = [sys.executable, "-m", "experiments.train", "-m", "+sweep=search", "hydra.sweeper.n_trials=100000",
           f"hydra.sweeper.pruner={pruner}", f"hydra.sweeper.sampler.seed={seed}",
           f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}", f"hydra.sweep.dir={folder / 'out'}", *overrides]
    with open(folder / "search.log", "w") as log:
        process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            pass
        end = datetime.now()  # naive local time, as Optuna records datetime_complete
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return f"sqlite:///{folder / 'optuna.db'}", end


def tally(storage, end):
    """(completed, pruned, best value of the completed) among the trials that ended before `end`."""
    trials = [t for t in optuna.load_study(study_name=STUDY, storage=storage).get_trials()
              if t.datetime_complete is not None and t.datetime_complete <= end]
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE]
    return len(complete), sum(t.state == TrialState.PRUNED for t in trials), max(complete, default=float("nan"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pruners", nargs="+", default=["median", "none"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every search")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = datetime.now(timezone.utc)
    lines = [f"Optuna search (`+sweep=search` {' '.join(args.overrides)}) for {args.budget_s:.0f} s of wall time "
             f"per row, rows one after another; commit {git_commit()[:7]}, {started:%Y-%m-%d %H:%M} UTC, "
             f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}.", "",
             "| pruner | sampler seed | trials completed | trials pruned | best val acc | load avg (1 min) at end |",
             "|---|---|---|---|---|---|"]
    for seed in args.seeds:
        for pruner in args.pruners:
            with tempfile.TemporaryDirectory(prefix="scratchnn-pruning-") as folder:
                storage, end = search(Path(folder), pruner, seed, budget_s=args.budget_s, overrides=args.overrides)
                complete, pruned, best = tally(storage, end)
            lines.append(f"| {pruner} | {seed} | {complete} | {pruned} | {best:.2%} | {os.getloadavg()[0]:.1f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
