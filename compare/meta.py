"""One answer over many configs: a random-effects meta-analysis of per-config estimates.

DerSimonian–Laird's estimate of the between-config variance τ², I², and the Hartung–Knapp–Sidik–
Jonkman interval (t with k − 1 degrees of freedom, variance at least the DL one): the mean over the
population of configs the sweep samples, with an interval that keeps its level with few configs.
When some config has no within-config variance (one seed, no pooled spread), every config gets the
same weight and the interval is the t-interval over configs. docs/statistics.md, "One answer".
"""

import math

import numpy as np
from scipy import stats as sp

from .stats import LEVEL


def _tails(mean, se, df, margin):
    """(p_diff, p_tost) of a mean with standard error `se` on `df` degrees of freedom."""
    if not se > 0:
        inside = abs(mean) < margin
        return (1.0 if mean == 0 else 0.0), (0.0 if inside else 1.0)
    p_diff = 2 * sp.t.sf(abs(mean) / se, df)
    p_tost = max(sp.t.sf((mean + margin) / se, df), sp.t.cdf((mean - margin) / se, df))
    return float(min(1.0, p_diff)), float(p_tost)


def random_effects(y, v, margin, df_within=math.nan, *, level=LEVEL):
    """The pooled mean of estimates `y` with within variances `v` (squared standard errors; NaN or 0: not
    known): {k, mean, lo, hi, se, df, tau2, i2, pi_lo, pi_hi, p_diff, p_tost, weights}. One config (k = 1)
    keeps its own interval on `df_within` degrees of freedom."""
    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    keep = np.isfinite(y)
    y, v = y[keep], v[keep]
    k = len(y)
    out = {"k": k, "tau2": math.nan, "i2": math.nan, "pi_lo": math.nan, "pi_hi": math.nan}
    if k == 0:
        return {**out, **dict.fromkeys(("mean", "lo", "hi", "se", "df", "p_diff", "p_tost"), math.nan), "weights": ""}
    known = bool((np.isfinite(v) & (v > 0)).all())
    if k == 1:
        mean, se, df, weights = float(y[0]), math.sqrt(v[0]) if known else math.nan, df_within, "one config"
    elif known:
        w = 1 / v
        fixed = (w * y).sum() / w.sum()
        q = float((w * (y - fixed) ** 2).sum())
        tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
        ws = 1 / (v + tau2)
        mean = float((ws * y).sum() / ws.sum())
        hksj = float((ws * (y - mean) ** 2).sum() / ((k - 1) * ws.sum()))
        se, df, weights = math.sqrt(max(hksj, 1 / ws.sum())), k - 1, "random effects (DerSimonian–Laird, HKSJ)"
        out.update(tau2=tau2, i2=max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0)
        if k >= 3:
            half = sp.t.ppf(0.5 + level / 2, k - 2) * math.sqrt(tau2 + se ** 2)
            out.update(pi_lo=mean - half, pi_hi=mean + half)
    else:
        mean, se, df, weights = float(y.mean()), float(y.std(ddof=1) / math.sqrt(k)), k - 1, "equal (no within spread)"
    if not (se == se and df >= 1):
        return {**out, "mean": mean, "lo": math.nan, "hi": math.nan, "se": se, "df": df, "p_diff": math.nan,
                "p_tost": math.nan, "weights": weights}
    half = sp.t.ppf(0.5 + level / 2, df) * se
    p_diff, p_tost = _tails(mean, se, df, margin)
    return {**out, "mean": mean, "lo": mean - half, "hi": mean + half, "se": se, "df": df, "p_diff": p_diff,
            "p_tost": p_tost, "weights": weights}
