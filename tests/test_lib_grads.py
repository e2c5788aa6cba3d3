"""`net.grads` after a training step holds dC/dtheta, whatever the optimizer does with it."""

import numpy as np
import pytest

import scratchnn as sn
from scratchnn.gradcheck import finite_difference_gradient


def problem(l2, optimizer):
    rng = np.random.default_rng(5)
    net = sn.mlp(4, 2, 5, 3, activation="tanh", l2=l2, optimizer=optimizer, seed=0, dtype="float64")
    for layer in net.layers:  # non-zero biases, so that every db term is exercised
        layer.b[...] = rng.normal(0, 0.3, layer.b.shape)
    return net, rng.normal(size=(7, 4)), rng.integers(0, 3, 7)


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_grads_after_a_plain_sgd_step_are_the_gradient_not_lr_times_it(l2):
    net, X, y = problem(l2, sn.SGD(lr=0.3))
    reference, _, _ = problem(l2, sn.SGD(lr=0.3))
    fd = finite_difference_gradient(net, X, y)  # at the weights the step starts from
    reference.backward(reference.forward(X.T), sn.losses.from_labels(y, 3, np.float64))
    before = [p.copy() for p in net.params]
    net.train_on_batch(X, y)
    grads = net.grads
    assert len(grads) == len(fd) == 6
    for g, g_fd, g_bp in zip(grads, fd, reference.grads):
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(g, g_bp, rtol=1e-12, atol=1e-15)
    for w, w0, g in zip(net.params, before, grads):  # and the step was w - lr g with that gradient
        np.testing.assert_allclose(w, w0 - 0.3 * g, rtol=1e-12, atol=1e-15)
    for layer, g_bp in zip(net.layers, reference.grads[0::2]):  # the layers' own dW say the same
        np.testing.assert_allclose(layer.dW, g_bp, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("optimizer", [sn.SGD(lr=0.3, momentum=0.9), sn.Adam(lr=0.01)])
def test_grads_after_other_optimizer_steps_are_the_gradient(optimizer):
    net, X, y = problem(0.0, optimizer)
    fd = finite_difference_gradient(net, X, y)
    net.train_on_batch(X, y)
    for g, g_fd in zip(net.grads, fd):
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-9)


# a public backward after a fused step:
# test_lib_speed_step.py::test_public_backward_after_fused_steps_still_gives_the_gradient
