"""Paired statistics for comparing two frameworks (scipy.stats); docs/statistics.md explains them.

Every function takes plain numbers or sequences and returns plain numbers, NaN where a value
cannot be computed (too few samples), never raising on small inputs:

- `mean_interval`: mean and two-sided t-interval of seed-paired differences;
- `ratio_interval`: geometric mean and t-interval of ratios, computed on their logarithms;
- `paired_p`: two-sided one-sample t-test of the differences against 0;
- `tost_p`: two one-sided t-tests against ±margin (equivalence), the larger of the two p-values;
- `mcnemar_p`: exact McNemar test (binomial on the discordant pairs) of two classifiers on one test set;
- `holm`: Holm's step-down adjustment of a family of p-values;
- `adjust`: a family's p-values adjusted by MULTIPLICITY `bh` (Benjamini–Hochberg), `holm` or `none`;
- `t_tests`: vectorised interval, paired test and TOST from (n, mean, standard error, degrees of freedom);
- `verdict`: `equivalent`, `different`, `inconclusive` or `inconclusive (n=1)`.
"""

import math

import numpy as np
from scipy import stats

LEVEL = 0.95  # confidence level of every interval
ALPHA = 0.05  # significance level of every test (after Holm's adjustment)
EQUIVALENT, DIFFERENT, INCONCLUSIVE, SINGLE = "equivalent", "different", "inconclusive", "inconclusive (n=1)"
VERDICTS = (EQUIVALENT, DIFFERENT, INCONCLUSIVE, SINGLE)
MULTIPLICITY = {"bh": "Benjamini–Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)",
                "none": "unadjusted"}


def _clean(values):
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _spread(values):
    """(n, mean, standard error of the mean) of the finite values; the error is NaN below 2 values."""
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return n, mean, se


def mean_interval(diffs, level=LEVEL):
    """(mean, low, high, n): the mean of `diffs` and its two-sided t-interval (n − 1 degrees of freedom)."""
    n, mean, se = _spread(_clean(diffs))
    if n < 2:
        return mean, math.nan, math.nan, n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return mean, mean - half, mean + half, n


def ratio_interval(ratios, level=LEVEL):
    """(geometric mean, low, high, n) of positive `ratios`: the t-interval of their logs, exponentiated."""
    ratios = _clean(ratios)
    mean, low, high, n = mean_interval(np.log(ratios[ratios > 0]), level)
    return math.exp(mean) if n else math.nan, math.exp(low), math.exp(high), n


def _t_tail(t, n, upper):
    """P(T > t) (upper) or P(T < t) for a t variable with n − 1 degrees of freedom; t = ±inf allowed."""
    return float(stats.t.sf(t, n - 1) if upper else stats.t.cdf(t, n - 1))


def _t_stat(diffs, null):
    """(t statistic of mean(diffs) − null, n); an exact zero spread gives ±inf (or 0 when mean == null)."""
    n, mean, se = _spread(_clean(diffs))
    if n < 2:
        return math.nan, n
    gap = mean - null
    if se == 0 or gap == 0:
        return (0.0 if gap == 0 else math.copysign(math.inf, gap)), n
    return gap / se, n


def paired_p(diffs):
    """Two-sided p-value of the paired t-test H0: mean difference = 0 (NaN below 2 differences)."""
    t, n = _t_stat(diffs, 0.0)
    if n < 2:
        return math.nan
    return min(1.0, 2 * _t_tail(abs(t), n, upper=True))


def tost_p(diffs, margin):
    """p-value of the two one-sided t-tests H0: mean ≤ −margin and H0: mean ≥ +margin: the larger one.
    Below ALPHA, the (1 − 2·ALPHA) t-interval lies inside (−margin, +margin): the difference is
    smaller than the margin. NaN below 2 differences."""
    t_low, n = _t_stat(diffs, -margin)
    if n < 2:
        return math.nan
    t_high, _ = _t_stat(diffs, margin)
    return max(_t_tail(t_low, n, upper=True), _t_tail(t_high, n, upper=False))


def discordant(labels, first, second):
    """(b, c): test examples the first classifier gets right and the second wrong, and the reverse."""
    labels, first, second = (np.asarray(a) for a in (labels, first, second))
    right1, right2 = first == labels, second == labels
    return int((right1 & ~right2).sum()), int((~right1 & right2).sum())


def mcnemar_p(b, c):
    """Exact two-sided McNemar p-value: under H0 (equal error rates) the b of the b + c discordant
    pairs are Binomial(b + c, 1/2); no discordant pair gives 1. Scalars or arrays (then an array)."""
    b, c = np.asarray(b, dtype=float), np.asarray(c, dtype=float)
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p = np.where(b + c == 0, 1.0, p)
    return float(p) if p.ndim == 0 else p


def holm(pvalues):
    """Holm's step-down adjusted p-values, in the input order; NaN entries are left out of the family."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def adjust(pvalues, method="bh"):
    """`pvalues` adjusted as a family by `method` (a MULTIPLICITY key), in the input order; NaN entries are
    left out of the family and stay NaN."""
    if method not in MULTIPLICITY:
        raise ValueError(f"multiplicity must be one of {sorted(MULTIPLICITY)}. Received: multiplicity={method!r}")
    p = np.asarray(pvalues, dtype=float)
    if method == "holm":
        return holm(p)
    adjusted = p.copy()
    finite = np.isfinite(p)
    if method == "bh" and finite.any():
        adjusted[finite] = stats.false_discovery_control(p[finite], method="bh")
    return adjusted


def _t_ratio(gap, se):
    """gap / se, with an exact zero spread giving ±inf (0 when the gap is 0 too)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap == 0, 0.0, gap / se)


def t_tests(n, mean, se, df, *, margin, level=LEVEL):
    """Vectorised over configs: (low, high, p_diff, p_tost) of means with standard errors `se` on `df`
    degrees of freedom (n − 1 per config, or a pooled df): the two-sided t-interval, the paired t-test
    against 0 and the TOST p-value against ±margin. NaN where n < 1 or the error is unknown."""
    mean, se, df = (np.asarray(a, dtype=float) for a in (mean, se, df))
    ok = (np.asarray(n) >= 1) & np.isfinite(se) & (df >= 1)
    df_ = np.where(ok, df, 1.0)
    half = stats.t.ppf(0.5 + level / 2, df_) * se
    p_diff = np.minimum(1.0, 2 * stats.t.sf(np.abs(_t_ratio(mean, se)), df_))
    p_tost = np.maximum(stats.t.sf(_t_ratio(mean + margin, se), df_), stats.t.cdf(_t_ratio(mean - margin, se), df_))
    nan = np.full(mean.shape, math.nan)
    return tuple(np.where(ok, v, nan) for v in (mean - half, mean + half, p_diff, p_tost))


def verdict(n, p_equivalent, p_different, alpha=ALPHA):
    """`inconclusive (n=1)` for one seed; `equivalent` when the (adjusted) TOST p-value is below alpha,
    else `different` when the (adjusted) paired t-test p-value is; else `inconclusive`. None for n = 0."""
    if n < 1:
        return None
    if n == 1:
        return SINGLE
    if p_equivalent < alpha:
        return EQUIVALENT
    if p_different < alpha:
        return DIFFERENT
    return INCONCLUSIVE
