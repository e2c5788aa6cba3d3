"""The verdicts' calibration by simulation, through the functions the report uses (compare.verdicts,
compare.grid; the simulation is benchmarks/calibration.py, which prints the full table): known truths,
200 configs per grid, margin ±0.2 pp, one seeded Generator per test."""

import math

import numpy as np
import pytest

from benchmarks.calibration import MARGIN, Case, pairs, run
from compare import grid, stats, verdicts

ALPHA = stats.ALPHA


@pytest.mark.parametrize("seeds", [3, 10])
def test_no_false_difference_under_the_null_and_intervals_cover(seeds):
    found = run(Case("Δ = 0", 0.0, seeds, 0.3), np.random.default_rng(seeds), replicates=4)
    assert found.get(stats.DIFFERENT, 0) <= ALPHA and found.get(stats.EQUIVALENT, 0) <= ALPHA
    assert found["coverage"] >= 0.93
    assert found["grid equivalent"] == 1.0 and found["grid coverage"] == 1.0  # 200 configs pin the mean down


@pytest.mark.parametrize("seeds", [5, 10])
def test_no_false_equivalence_on_the_margin(seeds):
    """(The grid answer's own false equivalence on the margin: the last test, over 200 grids.)"""
    found = run(Case("Δ = ±margin", MARGIN, seeds, 0.1, alternate=True), np.random.default_rng(seeds), replicates=4)
    assert found.get(stats.EQUIVALENT, 0) <= ALPHA and found["coverage"] >= 0.93


def test_a_real_gap_is_found():
    """1 pp with sd 0.3 pp and 5 seeds (Holm over 200 configs found 22%)."""
    found = run(Case("Δ = 1 pp", 1.0, 5, 0.3), np.random.default_rng(1), replicates=2)
    assert found[stats.DIFFERENT] >= 0.8 and found["grid different"] == 1.0 and found["coverage"] >= 0.93


def test_a_tight_null_is_equivalent():
    found = run(Case("Δ = 0, tight", 0.0, 5, 0.05), np.random.default_rng(2), replicates=2)
    assert found[stats.EQUIVALENT] >= 0.8 and found["grid equivalent"] == 1.0


def test_the_simulation_can_see_a_miscalibration():
    """Unadjusted, ~α of the null configs come out `different`: the bounds above are not met by construction."""
    found = run(Case("Δ = 0", 0.0, 3, 0.3), np.random.default_rng(3), replicates=3, multiplicity="none")
    assert 0.02 <= found[stats.DIFFERENT] <= 0.09


def _grid_answers(case, k, tau, replicates, rng):
    """The grid answer (and each grid's true mean Δacc) of `replicates` grids of `k` configs whose true Δacc
    spread around the case's truth with sd `tau`."""
    for replicate in range(replicates):
        table, truths = pairs(case, rng, configs=k, tau=tau, sign=-1.0 if case.alternate and replicate % 2 else 1.0)
        found = verdicts.spreads(table)
        yield grid.overall(verdicts.comparisons(table, None, MARGIN, found=found, advice=False), found,
                           MARGIN)["keras"], truths.mean()


def test_the_grid_answer_keeps_its_level_with_few_heterogeneous_configs():
    """20 configs, true Δacc spread τ = 0.1 pp around 0 (coverage) and around ±margin (false equivalence);
    150 grids each: the bound is α plus two Monte Carlo standard errors."""
    rng, replicates = np.random.default_rng(4), 150
    tolerance = 2 * math.sqrt(ALPHA * (1 - ALPHA) / replicates)
    null = list(_grid_answers(Case("Δ = 0", 0.0, 3, 0.3), 20, 0.1, replicates, rng))
    covered = np.mean([a["delta"]["lo"] <= truth <= a["delta"]["hi"] for a, truth in null])
    assert covered >= 0.93 and np.mean([a["verdict"] == stats.DIFFERENT for a, _ in null]) <= ALPHA + tolerance
    edge = list(_grid_answers(Case("Δ = ±margin", MARGIN, 3, 0.3, alternate=True), 20, 0.1, replicates, rng))
    assert np.mean([a["verdict"] == stats.EQUIVALENT for a, _ in edge]) <= ALPHA + tolerance
