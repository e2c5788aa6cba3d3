"""The pieces of the grid-level answer, each against an independent computation: Bartlett's test, the
pooled spread, the random-effects meta-analysis, the seeds for 80% power, the multiplicity options;
and what the training side logs for them (McNemar counts, the BLAS kernel)."""

import numpy as np
import pytest
from scipy import stats as sp

from compare import meta, power, spread, stats
from experiments import blas, names, pairing


def test_bartlett_from_summaries_is_scipys():
    rng = np.random.default_rng(0)
    groups = [rng.normal(0, 1 + (i % 3), 3 + i % 4) for i in range(12)]
    mine = spread.bartlett([len(g) for g in groups], [g.var(ddof=1) for g in groups])
    assert mine == pytest.approx(tuple(sp.bartlett(*groups)))


def test_spreads_pool_when_compatible_and_not_otherwise():
    n = np.full(10, 3)
    same = spread.spread(n, np.array([0.09, 0.1, 0.11, 0.08, 0.12, 0.1, 0.09, 0.1, 0.11, 0.1]))
    assert same.pooled and same.df == 20 and same.s2 == pytest.approx(0.1) and "Bartlett p" in same.why
    se, df = same.errors([3, 1], [np.nan, np.nan])
    assert se.tolist() == pytest.approx([np.sqrt(0.1 / 3), np.sqrt(0.1)]) and df.tolist() == [20, 20]
    wild = spread.spread(n, np.array([0.01] * 9 + [25.0]))
    assert not wild.pooled and "spreads differ" in wild.why
    se, df = wild.errors([3, 1], [0.01, np.nan])
    assert se[0] == pytest.approx(np.sqrt(0.01 / 3)) and np.isnan(se[1]) and df.tolist() == [2, 0]
    assert not spread.spread([1, 1], [np.nan, np.nan]).pooled


def test_random_effects_by_hand():
    """Equal within variances: the DL mean is the plain mean; HKSJ's interval is the t-interval over configs
    when the configs spread more than their errors say, and tau² the excess."""
    y, v = np.array([0.8, 1.2, 1.6, 2.0]), np.full(4, 0.01)
    found = meta.random_effects(y, v, margin=0.2)
    assert found["mean"] == pytest.approx(1.4) and found["tau2"] == pytest.approx(y.var(ddof=1) - 0.01)
    half = sp.t.ppf(0.975, 3) * y.std(ddof=1) / 2
    assert (found["lo"], found["hi"]) == pytest.approx((1.4 - half, 1.4 + half))
    q = ((y - 1.4) ** 2 / 0.01).sum()
    assert found["i2"] == pytest.approx((q - 3) / q) and found["p_diff"] < 0.05
    same = meta.random_effects([0.05] * 5, [0.001] * 5, margin=0.2)
    assert same["tau2"] == 0 and same["i2"] == 0 and same["p_tost"] < 0.01 < same["p_diff"]
    equal = meta.random_effects([0.1, 0.3], [np.nan, 0.01], margin=0.2)
    assert equal["weights"].startswith("equal") and equal["mean"] == pytest.approx(0.2)


def test_seeds_for_80_percent_power_by_simulation():
    """At the n returned the t-test rejects in ≥ 80% of simulated sweeps, at n − 1 in fewer."""
    n = int(power.seeds(1.0, 0.3, margin=0.2)[0])
    rng = np.random.default_rng(0)

    def rejects(k):
        d = rng.normal(1.0, 0.3, (4000, k))
        return np.mean(sp.ttest_1samp(d, 0.0, axis=1).pvalue < stats.ALPHA)
    assert rejects(n) >= 0.78 and rejects(n - 1) < 0.8
    assert power.seeds(0.0, 0.05, margin=0.2)[0] <= 3  # a tight null: equivalence in a few seeds
    assert np.isnan(power.seeds(0.1, 5.0, margin=0.2)[0])  # out of reach
    assert power.command(3) == "train.seed=0,1,2" and power.command(40) == "'train.seed=range(0,40)'"
    assert np.isnan(power.grid_seeds(0.1, 1.0, 0.3, 4, margin=0.2))  # τ² dominates: seeds do not help


def test_multiplicity_options():
    p = [0.01, 0.04, float("nan"), 0.03]
    assert stats.adjust(p, "bh")[[0, 1, 3]] == pytest.approx(sp.false_discovery_control([0.01, 0.04, 0.03]))
    assert np.isnan(stats.adjust(p, "bh")[2]) and stats.adjust(p, "none")[1] == 0.04
    assert stats.adjust(p, "holm").tolist()[0] == pytest.approx(0.03)
    with pytest.raises(ValueError, match="Received: multiplicity='fdr'"):
        stats.adjust(p, "fdr")


def test_pairing_counts_match_the_report_from_predictions():
    labels = np.arange(20) % 10
    mine, theirs = labels.copy(), labels.copy()
    mine[:3] = (labels[:3] + 1) % 10  # scratchnn wrong on 3, keras on 5 (two overlapping)
    theirs[1:6] = (labels[1:6] + 1) % 10
    logged = pairing.metrics(labels, {"scratchnn": mine, "keras": theirs})
    assert logged == {names.versus("keras", names.MCNEMAR_B): 3, names.versus("keras", names.MCNEMAR_C): 1,
                      names.versus("keras", names.MCNEMAR_N): 20}
    assert (3, 1) == stats.discordant(labels, mine, theirs) and pairing.metrics(labels, {"keras": theirs}) == {}


def test_blas_tags_name_numpys_library():
    home = __import__("numpy").__file__.rsplit("/", 2)[0]
    info = [{"user_api": "blas", "internal_api": "mkl", "version": "1", "architecture": None,
             "filepath": "/x/torch/lib/libmkl.so"},
            {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31", "architecture": "Haswell",
             "filepath": f"{home}/numpy.libs/libscipy_openblas64_.so"}]
    assert blas.tags(info) == dict(zip(names.BLAS_TAGS, ("openblas", "0.3.31", "Haswell")))
    assert blas.tags(info[:1])[names.BLAS_TAGS[2]] == "unknown" and blas.tags([])[names.BLAS_TAGS[0]] == "unknown"
    assert set(blas.tags()) == set(names.BLAS_TAGS)
