"""Saving and loading: what cannot be rebuilt is refused at save; malformed files are named at load."""

import numpy as np
import pytest

import scratchnn as sn
from scratchnn import initializers


def constant_init(shape, rng, dtype=np.float32):
    return np.full(shape, 0.05, dtype=dtype)


def test_callable_initializer_trains_but_save_refuses_it_by_name(tmp_path):
    net = sn.mlp(4, 1, 3, 2, kernel_initializer=constant_init, seed=0)
    np.testing.assert_array_equal(net.layers[0].W, np.full((3, 4), 0.05, np.float32))  # it was used
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match=r"Received: kernel_initializer=<function constant_init"):
        net.save(path)
    assert not path.exists()


def test_variance_scaling_with_own_parameters_is_refused_under_a_borrowed_name(tmp_path):
    own = initializers.VarianceScaling("he_normal", 3.0, "fan_in", "truncated_normal")  # not he_normal's scale
    net = sn.Network(4, [sn.Dense(2, "softmax", kernel_initializer=own)], seed=0)
    with pytest.raises(ValueError, match="Only the named initializers"):
        net.save(tmp_path / "model.npz")


@pytest.mark.parametrize("name", initializers.NAMES)
def test_every_named_initializer_round_trips(tmp_path, name):
    net = sn.mlp(4, 1, 3, 2, kernel_initializer=name, seed=0)
    net.save(tmp_path / "model.npz")
    loaded = sn.Network.load(tmp_path / "model.npz")
    assert loaded.layers[0].get_config()["kernel_initializer"] == name
    np.testing.assert_array_equal(loaded.layers[0].W, net.layers[0].W)
