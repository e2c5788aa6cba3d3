"""The PyTorch twin's update rules (experiments/frameworks/keras_rules.py) stepped against
keras.optimizers: the same float32 weights and gradients, every step compared."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from experiments.frameworks.keras_rules import keras_optimizer

# the twin's optimizer config (as conf/optimizer/*.yaml gives it), and the Keras optimizer with the same settings
RULES = {
    "adam": ({"_target_": "scratchnn.Adam", "lr": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5},
             "Adam", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}),
    "rmsprop with momentum": ({"_target_": "scratchnn.RMSprop", "lr": 0.01, "rho": 0.8, "momentum": 0.5,
                               "epsilon": 1e-7},
                              "RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-7}),
    "nesterov": ({"_target_": "scratchnn.SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True},
                 "SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
}
STEPS = 8


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_torch_twins_rule_steps_as_keras(rule):
    config, keras_name, keras_kwargs = RULES[rule]
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 1)).astype(np.float32)]
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in start]
    variables = [keras.Variable(w.copy()) for w in start]
    ours, theirs = keras_optimizer(config, params), getattr(keras.optimizers, keras_name)(**keras_kwargs)
    for _ in range(STEPS):
        grads = [rng.normal(size=w.shape).astype(np.float32) for w in start]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        ours.step()
        theirs.apply_gradients([(tf.constant(g), v) for g, v in zip(grads, variables)])
        for p, v in zip(params, variables):
            assert p.dtype == torch.float32
            np.testing.assert_allclose(p.detach().numpy(), v.numpy(), rtol=1e-6, atol=1e-6)
    moved = [np.abs(p.detach().numpy() - w).max() for p, w in zip(params, start)]
    assert min(moved) > 1e-3  # the rule moved the weights: the comparison was not of two idle copies
