"""The within-config spread of a sweep: pooled over its configs when their variances are compatible
(Bartlett's test), per config otherwise. docs/statistics.md, "Borrowing strength".

Three seeds give a config 2 degrees of freedom for its own variance; a sweep's configs together give
Σ(nᵢ − 1). Pooling assumes every config's seed-to-seed variance is the same; Bartlett's test checks
that on the configs with ≥ 2 seeds, and a p-value below ALPHA (or any config with an exact zero
spread while others have some) keeps the per-config variances.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp

from .stats import ALPHA


@dataclass(frozen=True)
class Spread:
    """How a family's standard errors were formed: `pooled`, the pooled variance `s2` on `df` degrees of
    freedom, Bartlett's `p` over `configs` configs with ≥ 2 seeds, and `why` in words."""
    pooled: bool
    s2: float
    df: float
    p: float
    configs: int
    why: str

    def errors(self, n, var):
        """(standard errors, degrees of freedom) per config of sizes `n` and own variances `var`."""
        n = np.asarray(n, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.pooled:
                return np.where(n >= 1, np.sqrt(self.s2 / n), math.nan), np.full(n.shape, self.df)
            return np.where(n >= 2, np.sqrt(np.asarray(var, dtype=float) / n), math.nan), n - 1


def bartlett(n, var):
    """(statistic, p) of Bartlett's test of equal variances from group sizes and sample variances
    (the same as scipy.stats.bartlett on the samples); NaN below 2 groups, p = 0 with a zero variance."""
    n, var = np.asarray(n, dtype=float), np.asarray(var, dtype=float)
    k, dof = len(n), n - 1
    if k < 2:
        return math.nan, math.nan
    total = dof.sum()
    if (var <= 0).any():
        return math.inf, 0.0 if (var > 0).any() else math.nan
    pooled = (dof * var).sum() / total
    statistic = (total * math.log(pooled) - (dof * np.log(var)).sum()) / (
        1 + ((1 / dof).sum() - 1 / total) / (3 * (k - 1)))
    return float(statistic), float(sp.chi2.sf(statistic, k - 1))


def spread(n, var, alpha=ALPHA):
    """The family's Spread from its configs' seed counts `n` and variances `var` (NaN below 2 seeds)."""
    n, var = np.asarray(n, dtype=float), np.asarray(var, dtype=float)
    mine = (n >= 2) & np.isfinite(var)
    k, df = int(mine.sum()), float((n[mine] - 1).sum())
    if k == 0:
        return Spread(False, math.nan, math.nan, math.nan, 0, "no config has 2 seeds")
    s2 = float(((n[mine] - 1) * var[mine]).sum() / df)
    if k == 1:
        return Spread(False, s2, df, math.nan, 1, "one config with ≥ 2 seeds: its own spread")
    _, p = bartlett(n[mine], var[mine])
    if p == p and p >= alpha and s2 > 0:
        return Spread(True, s2, df, p, k, f"pooled over {k} configs (Bartlett p = {p:.2g} ≥ {alpha:g}, {df:g} df)")
    cause = "no config has any spread" if s2 == 0 else "a config has no spread" if (var[mine] <= 0).any() \
        else f"Bartlett p = {p:.2g} < {alpha:g}"
    return Spread(False, s2, df, p, k, f"per config: the spreads differ ({cause})")
