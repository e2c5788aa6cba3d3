"""Backward passes read their inputs and never write them."""

import numpy as np
import pytest

from scratchnn import Dense, activations


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("training", [True, False])
def test_dense_backward_leaves_the_callers_dA_unchanged(name, training):
    rng = np.random.default_rng(0)
    layer = Dense(4, name)
    layer.build(3, rng)
    layer.forward(rng.normal(size=(3, 5)).astype(np.float32), training=training)
    dA = rng.normal(size=(4, 5)).astype(np.float32)
    before = dA.copy()
    dA_prev = layer.backward(dA)
    np.testing.assert_array_equal(dA, before)
    # and the result is still dL/dZ: Delta = dA ⊙ f'(Z) (softmax: its Jacobian-vector product)
    _, Z, A = layer.ctx
    f = layer.activation
    expected = f.backward(Z, A, before.copy()) if name == "softmax" else before * f.derivative(Z, A)
    np.testing.assert_allclose(layer.delta, expected, rtol=1e-6)
    np.testing.assert_allclose(dA_prev, layer.W.T @ expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", activations.NAMES)
def test_activation_backward_writes_only_into_out(name):
    rng = np.random.default_rng(1)
    f = activations.get(name)
    Z = rng.normal(size=(4, 6))
    A = f.forward(Z.copy())
    dA = rng.normal(size=(4, 6))
    before = dA.copy()
    plain = f.backward(Z, A, dA)
    out = np.empty_like(dA)
    into = f.backward(Z, A, dA, out=out)
    np.testing.assert_array_equal(dA, before)
    assert into is out
    np.testing.assert_array_equal(out, plain)
