"""Backprop (BP1.2-BP4.2) against central finite differences, in float64."""

import numpy as np
import pytest

from scratchnn import Dense, Network, activations
from scratchnn.gradcheck import relative_error

HIDDEN = [name for name in activations.NAMES if name != "softmax"] + ["softmax"]
# (output activation, loss): the fused pairs and the general path through each output activation
OUTPUTS = [("softmax", "categorical_crossentropy"), ("sigmoid", "categorical_crossentropy"),
           ("sigmoid", "binary_crossentropy"), ("softmax", "binary_crossentropy")] + [
    (name, "mean_squared_error") for name in activations.NAMES]


def random_net(rng, hidden, output, loss, l2=0.0):
    depth = int(rng.integers(1, 5))
    n_in, n_out = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    layers = [Dense(int(rng.integers(2, 7)), hidden, l2=l2) for _ in range(depth - 1)]
    layers.append(Dense(n_out, output, l2=l2))
    net = Network(n_in, layers, loss=loss, rng=rng, dtype="float64")
    for layer in net.layers:  # non-zero biases so that every BP4.2 term is exercised
        layer.b[...] = rng.normal(0, 0.5, layer.b.shape)
    X = rng.normal(size=(7, n_in))
    y = rng.integers(0, n_out, size=7)
    return net, X, y


@pytest.mark.parametrize("output,loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_matches_finite_differences(hidden, output, loss):
    rng = np.random.default_rng([HIDDEN.index(hidden), OUTPUTS.index((output, loss))])
    for _ in range(3):
        net, X, y = random_net(rng, hidden, output, loss)
        assert relative_error(net, X, y) < 1e-7


def test_l2_penalty_gradient_matches_finite_differences(rng):
    net, X, y = random_net(rng, "tanh", "softmax", "categorical_crossentropy", l2=0.01)
    assert relative_error(net, X, y) < 1e-7


def test_binary_output_with_single_unit(rng):
    net = Network(3, [Dense(4, "tanh"), Dense(1, "sigmoid")], loss="binary_crossentropy", rng=rng, dtype="float64")
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)
    assert relative_error(net, X, y) < 1e-7


def test_check_detects_a_wrong_gradient(rng):
    """The check itself can fail: a ReLU with the seed's derivative f'(z) = z is caught."""
    net, X, y = random_net(rng, "relu", "softmax", "categorical_crossentropy")
    while len(net.layers) < 2:
        net, X, y = random_net(rng, "relu", "softmax", "categorical_crossentropy")
    wrong = activations.ReLU()
    wrong.backward = lambda Z, A, dA, out=None: np.multiply(dA, np.where(Z > 0, Z, 0), out=out)
    net.layers[0].activation = wrong
    assert relative_error(net, X, y) > 1e-3
