"""python -m benchmarks.calibration [--replicates R] [--seed S]

The verdicts' calibration by simulation, through the functions the report uses
(compare.verdicts.comparisons and, where present, compare.grid.overall): seed-paired Δacc drawn from
known truths, 200 configs per grid, margin ±0.2 pp. Prints one Markdown table: per case, the share
of configs given each verdict, the per-config 95% intervals' coverage of the truth and, when the
code has one, the grid answer's verdicts and coverage over the replicates. tests/test_calibration.py
asserts the bounds on the same simulation. Works on older code too (the one positional call
`comparisons(pairs, None, margin)`), to give a before/after table from one simulation.
"""

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare import verdicts

try:  # the grid-level answer (compare.grid and verdicts.spreads) exists from issue 25 on
    from compare import grid
except ImportError:  # pragma: no cover - older code
    grid = None
if not hasattr(verdicts, "spreads"):  # pragma: no cover - older code, whatever `compare.grid` resolved to
    grid = None

MARGIN = 0.2
CONFIGS = 200


@dataclass(frozen=True)
class Case:
    """Every config's true Δacc is `truth` (pp; `alternate`: +truth in even replicates, −truth in odd ones),
    seeds per config, sd of Δ."""
    name: str
    truth: float
    seeds: int
    sd: float
    alternate: bool = False


CASES = (Case("Δ = 0", 0.0, 3, 0.3), Case("Δ = 0", 0.0, 10, 0.3),
         Case("Δ = ±margin", MARGIN, 5, 0.1, True), Case("Δ = ±margin", MARGIN, 10, 0.1, True),
         Case("Δ = 0, tight", 0.0, 5, 0.05), Case("Δ = 1 pp, a real gap", 1.0, 5, 0.3))


def pairs(case, rng, *, configs=CONFIGS, tau=0.0, sign=1.0):
    """A pairs table as compare.runs.load_pairs gives it (the columns the verdicts read), one grid; `tau`:
    the sd of the configs' true Δacc around sign · truth. Returns (pairs, each config's truth)."""
    truths = sign * case.truth + (rng.normal(0.0, tau, configs) if tau > 0 else np.zeros(configs))
    deltas = truths[:, None] + rng.normal(0.0, case.sd, (configs, case.seeds))
    ratios = np.exp(rng.normal(np.log(0.9), 0.05, (configs, case.seeds)))
    config = np.repeat([f"c{i:03d}" for i in range(configs)], case.seeds)
    table = pd.DataFrame({"experiment": "sim", "config_id": config, "run_id": [f"r{i}" for i in range(config.size)],
                          "scratchnn_status": "FINISHED", "keras_status": "FINISHED",
                          "delta_pp_vs_keras": deltas.ravel(), "time_ratio_vs_keras": ratios.ravel()})
    return table, pd.Series(truths, index=[f"c{i:03d}" for i in range(configs)])


def run(case, rng, replicates, **options):
    """{verdict: share of configs}, `coverage` of the per-config 95% intervals and, with the grid answer,
    `grid <verdict>` shares and `grid coverage` over the replicates."""
    verdict_counts, covered, total, grid_verdicts, grid_covered = {}, 0, 0, {}, 0
    for replicate in range(replicates):
        table, truths = pairs(case, rng, sign=-1.0 if case.alternate and replicate % 2 else 1.0)
        found = verdicts.comparisons(table, None, MARGIN, **options)
        for v, n in found["verdict"].value_counts().items():
            verdict_counts[v] = verdict_counts.get(v, 0) + int(n)
        truth = truths.reindex(found["config_id"]).to_numpy()
        covered += int(((found["delta_lo"] <= truth) & (truth <= found["delta_hi"])).sum())
        total += len(found)
        if grid is not None:
            answer = grid.overall(found, verdicts.spreads(table), MARGIN)["keras"]
            grid_verdicts[answer["verdict"]] = grid_verdicts.get(answer["verdict"], 0) + 1
            mean_truth = float(truths.mean())
            grid_covered += int(answer["delta"]["lo"] <= mean_truth <= answer["delta"]["hi"])
    out = {v: n / total for v, n in verdict_counts.items()} | {"coverage": covered / total}
    if grid is not None:
        out |= ({f"grid {v}": n / replicates for v, n in grid_verdicts.items()}
                | {"grid coverage": grid_covered / replicates})
    return out


def table(replicates=10, seed=0, **options):
    """The Markdown table of every case (one Generator from `seed` for the whole simulation)."""
    rng = np.random.default_rng(seed)
    lines = ["| truth | seeds | sd of Δ | equivalent | different | inconclusive | 95% CI coverage | grid answer |",
             "|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        r = run(case, rng, replicates, **options)
        answer = ", ".join(f"{k[5:]} {v:.0%}" for k, v in r.items() if k.startswith("grid ") and k != "grid coverage")
        answer = f"{answer}; covers {r['grid coverage']:.0%}" if answer else "none"
        lines.append(f"| {case.name} | {case.seeds} | {case.sd:g} pp | {r.get('equivalent', 0):.1%} | "
                     f"{r.get('different', 0):.1%} | {r.get('inconclusive', 0):.1%} | {r['coverage']:.1%} | {answer} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10, help="grids of 200 configs per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multiplicity", default=None, help="bh, holm or none (default: the report's default)")
    args = parser.parse_args(argv)
    options = {"multiplicity": args.multiplicity} if args.multiplicity else {}
    print(f"{CONFIGS} configs per grid, {args.replicates} grids per case, margin ±{MARGIN:g} pp, seed {args.seed}")
    print(table(args.replicates, args.seed, **options))


if __name__ == "__main__":
    main()
