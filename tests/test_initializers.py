"""Initialisers against Keras 3's (the variance formulas and bounds themselves: test_derivation.py,
test_initialisation_variance)."""

import keras
import numpy as np
import pytest

from scratchnn import initializers

SHAPE = (300, 500)  # (fan_out, fan_in) in scratchnn's layout; Keras's kernel is (fan_in, fan_out)
NAMES = ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal"]


@pytest.mark.parametrize("name", NAMES)
def test_distribution_matches_keras(name):
    ours = initializers.get(name)(SHAPE, np.random.default_rng(0), np.float32)
    theirs = np.asarray(keras.initializers.get(name)(shape=SHAPE[::-1])).T
    assert ours.shape == theirs.shape == SHAPE and ours.dtype == np.float32
    assert np.max(np.abs(ours)) <= np.max(np.abs(theirs)) * 1.01
    assert np.max(np.abs(theirs)) <= np.max(np.abs(ours)) * 1.01
    # 150 000 draws each: the sample variances agree to well within 2% (their standard error is ~0.4%)
    assert ours.var() == pytest.approx(theirs.var(), rel=0.02)
    assert abs(ours.mean() - theirs.mean()) < 0.05 * theirs.std()


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
