"""compare/stats.py against values computed by hand (closed forms of the t distribution with 1 and 2
degrees of freedom, binomial sums), and its edge cases: one sample, no spread, NaN."""

import math

import numpy as np
import pytest

from compare import stats, verdicts

# t quantiles and tails in closed form: df=1 is Cauchy, df=2 has P(T > t) = (1 − t / sqrt(t² + 2)) / 2
T975_DF1 = math.tan(math.pi * (0.975 - 0.5))  # 12.7062...
# df=2: solving tail_df2(t) = 0.025 gives t = sqrt(2) q / sqrt(1 − q²) with q = 2 · 0.975 − 1 = 0.95
T975_DF2 = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95**2)  # 4.3026...


def tail_df2(t):
    return (1 - t / math.sqrt(t * t + 2)) / 2


def test_mean_interval_by_hand():
    mean, low, high, n = stats.mean_interval([1.0, 2.0, 3.0])  # sd 1, se 1/sqrt(3)
    assert (mean, n) == (2.0, 3)
    assert (low, high) == pytest.approx((2 - T975_DF2 / math.sqrt(3), 2 + T975_DF2 / math.sqrt(3)))
    mean, low, high, n = stats.mean_interval([0.5, float("nan")])  # NaN left out: one value, no interval
    assert (mean, n) == (0.5, 1) and math.isnan(low) and math.isnan(high)
    assert stats.mean_interval([2.0, 2.0, 2.0])[1:3] == (2.0, 2.0)  # no spread: a point


def test_ratio_interval_is_the_t_interval_of_the_logs():
    g, low, high, n = stats.ratio_interval([1.0, 4.0])  # logs 0 and ln 4: mean ln 2, se ln 2
    assert (g, n) == (pytest.approx(2.0), 2)
    half = T975_DF1 * math.log(2)
    assert (low, high) == pytest.approx((2 * math.exp(-half), 2 * math.exp(half)))
    assert stats.ratio_interval([0.5])[0] == pytest.approx(0.5) and math.isnan(stats.ratio_interval([])[0])


def test_paired_t_test_by_hand():
    assert stats.paired_p([1.0, 2.0, 3.0]) == pytest.approx(2 * tail_df2(2 * math.sqrt(3)))  # t = 2 / (1/sqrt(3))
    assert stats.paired_p([0.0, 0.0, 0.0]) == 1.0 and stats.paired_p([1.0, 1.0]) == 0.0
    assert math.isnan(stats.paired_p([1.0]))


def test_tost_by_hand():
    # mean 0, sd 0.1, se 0.1/sqrt(3); against ±0.2 both one-sided t are 0.2 / se = 2 sqrt(3)
    assert stats.tost_p([0.0, 0.1, -0.1], 0.2) == pytest.approx(tail_df2(2 * math.sqrt(3)))
    assert stats.tost_p([0.0, 0.1, -0.1], 0.2) == pytest.approx(0.037089950113724)
    # mean 0.1: the upper test is the weaker one, t = (0.2 − 0.1) / se
    assert stats.tost_p([0.1, 0.2, 0.0], 0.2) == pytest.approx(tail_df2(math.sqrt(3)))
    assert stats.tost_p([0.05] * 3, 0.2) < 1e-12 and stats.tost_p([0.3] * 3, 0.2) == pytest.approx(1.0)  # no spread
    assert math.isnan(stats.tost_p([0.0], 0.2))


def test_exact_mcnemar_by_hand():
    assert stats.mcnemar_p(0, 0) == 1.0  # identical predictions
    assert stats.mcnemar_p(5, 0) == pytest.approx(2 / 32)  # 2 · (1/2)^5
    assert stats.mcnemar_p(3, 1) == pytest.approx(2 * (1 + 4) / 16)  # 2 · P(X ≤ 1), X ~ Bin(4, 1/2)
    assert stats.mcnemar_p(1, 3) == stats.mcnemar_p(3, 1) and stats.mcnemar_p(2, 2) == 1.0
    assert stats.mcnemar_p(200, 0) < 1e-3


def test_discordant_pairs():
    labels = np.array([0, 1, 2, 3, 4])
    first = np.array([0, 1, 9, 3, 9])  # right on 0, 1, 3
    second = np.array([0, 9, 2, 9, 9])  # right on 0, 2
    assert stats.discordant(labels, first, second) == (2, 1)


def test_holm_by_hand():
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])  # m = 3: 3·0.01, max(2·0.03, ·), max(1·0.04, 0.06)
    assert adjusted[[0, 1, 3]] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted[2])
    assert stats.holm([0.5, 0.9]).tolist() == [1.0, 1.0] and len(stats.holm([])) == 0


def test_verdict_rules():
    assert stats.verdict(0, math.nan, math.nan) is None
    assert stats.verdict(1, math.nan, math.nan) == "inconclusive (n=1)"
    assert stats.verdict(3, 0.01, 0.9) == "equivalent"
    assert stats.verdict(3, 0.01, 0.01) == "equivalent"  # a real but smaller-than-margin difference
    assert stats.verdict(3, 0.6, 0.01) == "different"
    assert stats.verdict(3, 0.6, 0.3) == "inconclusive"
    assert set(verdicts.COLOURS) == set(stats.VERDICTS)
