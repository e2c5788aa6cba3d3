"""Initialisers: bounds, mean and variance on large draws, against Keras 3's."""

import numpy as np
import pytest

from scratchnn import initializers

SHAPE = (300, 500)  # (fan_out, fan_in) in scratchnn's layout; Keras's kernel is (fan_in, fan_out)
EXPECTED_VAR = {
    "glorot_uniform": 2 / 800, "glorot_normal": 2 / 800, "he_uniform": 2 / 500,
    "he_normal": 2 / 500, "lecun_normal": 1 / 500,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VAR))
def test_distribution_matches_keras(name):
    import keras

    ours = initializers.get(name)(SHAPE, np.random.default_rng(0), np.float32)
    theirs = np.asarray(keras.initializers.get(name)(shape=SHAPE[::-1])).T
    assert ours.shape == theirs.shape == SHAPE and ours.dtype == np.float32
    assert np.max(np.abs(ours)) <= np.max(np.abs(theirs)) * 1.01
    assert np.max(np.abs(theirs)) <= np.max(np.abs(ours)) * 1.01
    for sample in (ours, theirs):
        assert abs(sample.mean()) < 0.05 * np.sqrt(EXPECTED_VAR[name])
        assert sample.var() == pytest.approx(EXPECTED_VAR[name], rel=0.02)
    if name.endswith("uniform"):
        assert np.max(np.abs(ours)) <= np.sqrt(3 * EXPECTED_VAR[name])
    else:  # truncated at two pre-truncation standard deviations
        assert np.max(np.abs(ours)) <= 2 * np.sqrt(EXPECTED_VAR[name]) / initializers.TRUNCATION_STD


def test_zeros_and_unknown_name():
    assert not initializers.get("zeros")((3, 2)).any()
    with pytest.raises(ValueError, match="Received: initializer='orthogonal'"):
        initializers.get("orthogonal")


def test_same_generator_state_gives_same_weights():
    a = initializers.get("he_normal")((50, 40), np.random.default_rng(7))
    b = initializers.get("he_normal")((50, 40), np.random.default_rng(7))
    c = initializers.get("he_normal")((50, 40), np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
