"""The Optuna search at a fixed wall-time budget, with and without pruning.

    python -m benchmarks.pruning [--budget-s 600] [--seeds 0 1 2] [--pruners median none] [--together]
                                 [--out docs/measurements/pruning.md] [-- override ...]

For each pruner and sampler seed, in a new folder of its own: `python -m experiments.train -m
+sweep=search` with n_trials too many to finish, that pruner and seed, and the overrides after
`--`; SIGTERM to its process group when the budget is spent (the search ends its open runs KILLED).
With --together the searches of one seed (one per pruner) run at the same time, so each sees the same
load (give `train.threads=1` so that they share the cores evenly); otherwise one after another.
Then, from its study: the trials that completed and were pruned before the budget's end, and the
best validation accuracy of those completed.
Prints a Markdown table (and writes it to --out) with the conditions: commit, budget, load average.
"""

import argparse
import contextlib
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


def start(folder, pruner, seed, overrides):
    """Start one search in its own process group, its output in `folder`/search.log."""
    cmd = [sys.executable, "-m", "experiments.train", "-m", "+sweep=search", "hydra.sweeper.n_trials=100000",
           f"hydra.sweeper.pruner={pruner}", f"hydra.sweeper.sampler.seed={seed}",
           f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}", f"hydra.sweep.dir={folder / 'out'}", *overrides]
    with open(folder / "search.log", "w") as log:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


def stop(process):
    """SIGTERM to the search's process group (SIGKILL if it has not ended 120 s later)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def searches(folders, pruners, seed, *, budget_s, overrides):
    """Run one search per pruner, all at once, for `budget_s` seconds; returns the budget's end
    (naive local time, as Optuna records datetime_complete)."""
    processes = [start(folder, pruner, seed, overrides) for folder, pruner in zip(folders, pruners)]
    try:
        processes[0].wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        pass
    end = datetime.now()
    for process in processes:
        stop(process)
    return end


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
    parser.add_argument("--together", action="store_true",
                        help="run the pruners of one seed at the same time (same load for each; give train.threads=1)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every search")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = datetime.now(timezone.utc)
    order = "the pruners of a seed at the same time" if args.together else "rows one after another"
    lines = [f"Optuna search (`+sweep=search` {' '.join(args.overrides)}) for {args.budget_s:.0f} s of wall time "
             f"per row, {order}; commit {git_commit()[:7]}, {started:%Y-%m-%d %H:%M} UTC, "
             f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}.", "",
             "| pruner | sampler seed | trials completed | trials pruned | best val acc | load avg (1 min) at end |",
             "|---|---|---|---|---|---|"]
    groups = [[pruner] for pruner in args.pruners] if not args.together else [args.pruners]
    for seed in args.seeds:
        for pruners in groups:
            with contextlib.ExitStack() as stack:
                folders = [Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scratchnn-pruning-")))
                           for _ in pruners]
                end = searches(folders, pruners, seed, budget_s=args.budget_s, overrides=args.overrides)
                for folder, pruner in zip(folders, pruners):
                    complete, pruned, best = tally(f"sqlite:///{folder / 'optuna.db'}", end)
                    lines.append(f"| {pruner} | {seed} | {complete} | {pruned} | {best:.2%} | "
                                 f"{os.getloadavg()[0]:.1f} |")
                    print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
