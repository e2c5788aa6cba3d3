"""The categorical cross-entropy is refused on an output activation that can be <= 0, with the reason
(docs/derivation.md, C1'), and accepted on softmax and sigmoid outputs."""

import numpy as np
import pytest

import scratchnn as sn
from scratchnn import activations, losses

NOT_POSITIVE = ["linear", "relu", "tanh", "leaky_relu"]


@pytest.mark.parametrize("output", NOT_POSITIVE)
def test_cce_with_an_output_that_can_be_zero_or_negative_is_refused(output):
    for loss in ("categorical_crossentropy", "cce", losses.CategoricalCrossentropy()):
        with pytest.raises(ValueError, match=rf"outputs > 0.*Received: activation='{output}'"):
            sn.Network(4, [sn.Dense(5, "tanh"), sn.Dense(3, output)], loss=loss, seed=0)
    with pytest.raises(ValueError, match=rf"can be <= 0.*Received: activation='{output}'"):
        sn.mlp(4, 1, 5, 3, output_activation=output, seed=0)


def test_the_default_loss_is_checked_too():
    """Dense's default activation is linear and the Network's default loss is the cross-entropy."""
    with pytest.raises(ValueError, match="Received: activation='linear'"):
        sn.Network(4, [sn.Dense(3)], seed=0)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_cce_with_a_positive_output_is_accepted_and_trains(output):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    net = sn.mlp(4, 1, 5, 3, output_activation=output, optimizer=sn.SGD(lr=0.5), seed=0, dtype="float64")
    history = net.fit(X, y, epochs=5, batch_size=8, verbose=False)
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("output", NOT_POSITIVE + ["softmax", "sigmoid"])
@pytest.mark.parametrize("loss", ["mean_squared_error", "binary_crossentropy"])
def test_other_losses_accept_every_output(output, loss):
    """The check belongs to the cross-entropy: MSE (and BCE, which clips) take any output activation."""
    net = sn.Network(4, [sn.Dense(3, output)], loss=loss, seed=0)
    assert net.layers[-1].activation.name == output


def test_the_refusal_reflects_what_the_loss_would_do():
    """Why: on a linear output, p = a / sum(a) leaves [0, 1]: where p_y is clipped the loss is flat
    (a zero gradient), and on a column of zeros (every ReLU output off) the loss is NaN."""
    cce = losses.get("cce")
    A = np.array([[0.5, 0.0], [-0.7, 0.0], [0.1, 0.0]])  # column sums -0.1 and 0
    Y = np.eye(3)[:, :2]
    with np.errstate(invalid="ignore", divide="ignore"):
        L, G = cce.forward(A, Y), cce.backward(A, Y)
    assert L[0] == pytest.approx(-np.log(losses.EPSILON)) and np.all(G[:, 0] == 0)  # p_y = -5, clipped
    assert np.isnan(L[1])
    assert all(activations.get(name).positive for name in ("softmax", "sigmoid"))
    assert not any(activations.get(name).positive for name in NOT_POSITIVE)
