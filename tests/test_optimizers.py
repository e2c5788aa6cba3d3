"""Optimizer steps: one hand-computed step each, then 5+ steps against keras.optimizers."""

import numpy as np
import pytest

from scratchnn import optimizers

W0 = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
G = np.array([[0.5, -1.0], [2.0, 0.1]], dtype=np.float32)


def one_step(opt):
    w = W0.copy()
    opt.step([w], [G])
    return w


def test_sgd_hand_step():
    np.testing.assert_allclose(one_step(optimizers.SGD(lr=0.1)), W0 - 0.1 * G, rtol=1e-7)


def test_momentum_and_nesterov_two_hand_steps():
    for nesterov in (False, True):
        opt, w = optimizers.SGD(lr=0.1, momentum=0.9, nesterov=nesterov), W0.copy()
        opt.step([w], [G])
        opt.step([w], [G])
        m1 = -0.1 * G
        m2 = 0.9 * m1 - 0.1 * G
        expected = W0 + (0.9 * m1 - 0.1 * G) + (0.9 * m2 - 0.1 * G) if nesterov else W0 + m1 + m2
        np.testing.assert_allclose(w, expected, rtol=1e-6)


def test_rmsprop_hand_step():
    v = 0.1 * G**2
    np.testing.assert_allclose(one_step(optimizers.RMSprop(lr=0.01)), W0 - 0.01 * G / np.sqrt(v + 1e-7), rtol=1e-6)


def test_adam_hand_step():
    m, v = 0.1 * G, 0.001 * G**2
    f32 = np.float32  # Keras forms beta^t in the variable's dtype: 1 - 0.999f is 1.0000467e-3, not 1e-3
    alpha = f32(0.01) * np.sqrt(1 - f32(0.999)) / (1 - f32(0.9))
    np.testing.assert_allclose(one_step(optimizers.Adam(lr=0.01)), W0 - alpha * m / (np.sqrt(v) + 1e-7), rtol=1e-6)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="Received: lr=0"):
        optimizers.SGD(lr=0)
    with pytest.raises(ValueError, match="Received: lr=-1"):
        optimizers.get("adam", lr=-1)
    with pytest.raises(ValueError, match="Received: momentum=1.5"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="Received: optimizer='adagrad'"):
        optimizers.get("adagrad")


CASES = [  # the defaults; momentum, Nesterov, RMSprop with momentum and Adam with other betas are stepped
    # against Keras in test_derivation.py::test_optimizer_rules (O1-O3 of docs/derivation.md)
    ("sgd", {"lr": 0.05}, "SGD", {"learning_rate": 0.05}),
    ("rmsprop", {"lr": 0.01}, "RMSprop", {"learning_rate": 0.01}),
    ("adam", {"lr": 0.01}, "Adam", {"learning_rate": 0.01}),
]


def keras_trajectory(keras_name, kwargs, w0, grads):
    import keras
    import tensorflow as tf

    opt = getattr(keras.optimizers, keras_name)(**kwargs)
    variables = [keras.Variable(w) for w in w0]
    out = []
    for step in grads:
        opt.apply_gradients([(tf.constant(g), v) for g, v in zip(step, variables)])
        out.append([v.numpy().copy() for v in variables])
    return out


def max_relative_deviation(name, kwargs, keras_name, keras_kwargs, steps=8, *, opt=None):
    """The largest relative gap to Keras's weights over `steps` steps; `opt` replaces optimizers.get(name)."""
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 1)).astype(np.float32)]
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in w0] for _ in range(steps)]
    expected = keras_trajectory(keras_name, keras_kwargs, w0, grads)
    opt, params = opt or optimizers.get(name, **kwargs), [w.copy() for w in w0]
    worst = 0.0
    for step, keras_params in zip(grads, expected):
        opt.step(params, step)
        for ours, theirs in zip(params, keras_params):
            assert ours.dtype == np.float32
            worst = max(worst, float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-3))))
    return worst


@pytest.mark.parametrize("name,kwargs,keras_name,keras_kwargs", CASES)
def test_matches_keras_over_several_steps(name, kwargs, keras_name, keras_kwargs):
    assert max_relative_deviation(name, kwargs, keras_name, keras_kwargs) < 1e-6


class EpsilonOutsideTheRoot:
    """RMSprop with epsilon added after the square root (PyTorch's placement), not inside it as Keras."""

    def __init__(self, lr, rho=0.9, epsilon=1e-7):
        self.lr, self.rho, self.epsilon, self.v = lr, rho, epsilon, None

    def step(self, params, grads):
        self.v = self.v or [np.zeros_like(w) for w in params]
        for w, g, v in zip(params, grads, self.v):
            v[...] = self.rho * v + (1 - self.rho) * g * g
            w -= (self.lr * g / (np.sqrt(v) + self.epsilon)).astype(w.dtype)


def test_keras_comparison_catches_a_wrong_epsilon_placement():
    """The same epsilon (0.1, large enough to matter) on both sides: the right placement agrees with
    Keras, epsilon outside the square root does not."""
    args = ("rmsprop", {"lr": 0.01, "epsilon": 0.1}, "RMSprop", {"learning_rate": 0.01, "epsilon": 0.1})
    assert max_relative_deviation(*args) < 1e-6
    assert max_relative_deviation(*args, opt=EpsilonOutsideTheRoot(0.01, epsilon=0.1)) > 1e-3
