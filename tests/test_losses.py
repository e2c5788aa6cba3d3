import numpy as np
import pytest

from scratchnn import losses

A = np.array([[0.7, 0.1], [0.2, 0.8], [0.1, 0.1]])  # two examples, three classes
Y = losses.from_labels(np.array([0, 1]), 3, np.float64)


def test_from_labels_one_hot_columns_and_binary_row():
    np.testing.assert_array_equal(Y, [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(losses.from_labels([1, 0, 1], 1, np.float32), [[1, 0, 1]])


def test_categorical_crossentropy_hand_values():
    cce = losses.get("categorical_crossentropy")
    np.testing.assert_allclose(cce.forward(A, Y), [-np.log(0.7), -np.log(0.8)])
    np.testing.assert_allclose(cce.backward(A, Y), [[-1 / 0.7, 0], [0, -1 / 0.8], [0, 0]])
    # fused with softmax: Delta^L = A - Y (the seed wrote Y - A in one place)
    np.testing.assert_allclose(cce.backward_logits(A, Y), A - Y)


def test_fused_cross_entropy_from_logits_is_stable_and_matches_plain_formula():
    cce = losses.get("cce")
    Z = np.array([[2.0, -1.0], [0.5, 3.0], [-1.0, 0.0]])
    P = np.exp(Z) / np.exp(Z).sum(axis=0)
    np.testing.assert_allclose(cce.forward_logits(Z, Y), -(Y * np.log(P)).sum(axis=0))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.isfinite(cce.forward_logits(Z * 1000, Y)).all()


def test_mse_and_bce_hand_values():
    mse = losses.get("mse")
    np.testing.assert_allclose(mse.forward(A, Y), [(0.09 + 0.04 + 0.01) / 3, (0.01 + 0.04 + 0.01) / 3])
    np.testing.assert_allclose(mse.backward(A, Y), 2 * (A - Y) / 3)
    bce = losses.get("binary_crossentropy")
    a, y = np.array([[0.8, 0.4]]), np.array([[1.0, 0.0]])
    np.testing.assert_allclose(bce.forward(a, y), [-np.log(0.8), -np.log(0.6)])
    z = np.log(a / (1 - a))  # logits of a
    np.testing.assert_allclose(bce.forward_logits(z, y), [-np.log(0.8), -np.log(0.6)])
    np.testing.assert_allclose(bce.backward(a, y), [[-1 / 0.8, 1 / 0.6]])


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="Received: loss='hinge'"):
        losses.get("hinge")
