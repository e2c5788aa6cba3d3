"""How many seeds would decide: the smallest n whose test has 80% power at the observed spread.

Noncentral t: with true mean δ, spread σ and n seeds, t = d̄ / (s/√n) has n − 1 degrees of freedom
and noncentrality δ√n/σ. The paired t-test rejects 0 when |t| > t₁₋α/₂; TOST (margin m) shows
equivalence when both one-sided tests reject, whose power is approximated as P(t₊ > t₁₋α) +
P(t₋ < −t₁₋α) − 1 (t₊, t₋: the statistics against −m and +m), a lower bound. The seeds a config
needs are the fewer of the two: whichever answer the data are heading for. docs/statistics.md.
"""

import math

import numpy as np
from scipy import stats as sp

from .stats import ALPHA

POWER = 0.8
MAX_SEEDS = 100  # beyond this, "more than MAX_SEEDS" (the spread, or τ², is too large for seeds to help)


def _upper(crit, df, ncp):
    """P(T > crit) for a noncentral t; where SciPy's nct gives NaN (large noncentrality), its normal limit."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exact = sp.nct.sf(crit, df, ncp)
    return np.where(np.isnan(exact), sp.norm.sf(crit - ncp), exact)


def _power(delta, se, df, margin, *, alpha):
    """(difference power, equivalence power) for true mean `delta`, standard error `se` on `df` df."""
    crit2, crit1 = sp.t.ppf(1 - alpha / 2, df), sp.t.ppf(1 - alpha, df)
    diff = _upper(crit2, df, np.abs(delta) / se) + _upper(crit2, df, -np.abs(delta) / se)
    equiv = _upper(crit1, df, (delta + margin) / se) + _upper(crit1, df, (margin - delta) / se) - 1
    return diff, np.clip(equiv, 0, 1)


def smallest(enough, size):
    """Per element: the smallest n in [2, MAX_SEEDS] with enough(n) (an array of n → bool array, monotone
    in n), by bisection; NaN where even MAX_SEEDS is not enough."""
    low, high = np.full(size, 2), np.full(size, MAX_SEEDS)
    reachable = enough(high.astype(float))
    while (low < high).any():
        mid = (low + high) // 2
        ok = enough(mid.astype(float))
        high, low = np.where(ok, mid, high), np.where(ok, low, np.minimum(mid + 1, high))
    return np.where(reachable, low.astype(float), math.nan)


def seeds(delta, sd, margin, alpha=ALPHA):
    """Per config (arrays or scalars): the smallest n ≤ MAX_SEEDS with 80% power for the t-test or for
    TOST at true mean `delta` and seed-to-seed spread `sd`; NaN where no n does or sd is unknown."""
    delta, sd = np.atleast_1d(np.asarray(delta, dtype=float)), np.atleast_1d(np.asarray(sd, dtype=float))
    known = np.isfinite(sd) & (sd > 0) & np.isfinite(delta)
    d, s = delta[known], sd[known]
    needed = np.full(delta.shape, math.nan)
    if known.any():
        diff = smallest(lambda n: _power(d, s / np.sqrt(n), n - 1, margin, alpha=alpha)[0] >= POWER, len(d))
        equiv = smallest(lambda n: _power(d, s / np.sqrt(n), n - 1, margin, alpha=alpha)[1] >= POWER, len(d))
        needed[known] = np.fmin(diff, equiv)
    return needed


def grid_seeds(mean, tau2, sd, configs, *, margin, alpha=ALPHA):
    """Seeds per config for 80% power of the grid-level answer over `configs` configs: its variance is
    (τ² + σ²/n) / k on k − 1 df; NaN when no n ≤ MAX_SEEDS is enough (τ² dominates: more configs would be)."""
    if not (sd == sd and sd > 0 and configs >= 2 and mean == mean):
        return math.nan
    tau2 = tau2 if tau2 == tau2 else 0.0

    def enough(kind):
        return lambda n: _power(mean, np.sqrt((tau2 + sd ** 2 / n) / configs), configs - 1, margin,
                                alpha=alpha)[kind] >= POWER
    return float(np.fmin(smallest(enough(0), 1), smallest(enough(1), 1))[0])


def command(n):
    """The override that runs seeds 0 … n − 1: train.seed=0,1,2,3,4, or 'train.seed=range(0,40)' beyond 10."""
    n = int(n)
    return "train.seed=" + ",".join(str(i) for i in range(n)) if n <= 10 else f"'train.seed=range(0,{n})'"
