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
    # columns of A sum to s = 1: dL/da_k = 1/s - y_k / a_k (the 1/s from Keras's rescaling to sum 1)
    np.testing.assert_allclose(cce.backward(A, Y), [[1 - 1 / 0.7, 1], [1, 1 - 1 / 0.8], [1, 1]])
    # fused with softmax: Delta^L = A - Y (the seed wrote Y - A in one place)
    np.testing.assert_allclose(cce.backward_logits(A, Y), A - Y)


def test_categorical_crossentropy_rescales_outputs_that_do_not_sum_to_one():
    """Keras divides each column by its sum before the log: a = (0.6, 0.2) for class 0 is p = 0.75."""
    cce = losses.get("cce")
    a, y = np.array([[0.6], [0.2]]), np.array([[1.0], [0.0]])
    np.testing.assert_allclose(cce.forward(a, y), [-np.log(0.75)])
    np.testing.assert_allclose(cce.backward(a, y), [[1 / 0.8 - 1 / 0.6], [1 / 0.8]])  # 1/s - y/a, s = 0.8


def sigmoid_outputs(seed, shape=(4, 6)):
    rng = np.random.default_rng(seed)
    A = 1 / (1 + np.exp(-rng.normal(0, 2, shape)))
    Y = losses.from_labels(rng.integers(0, shape[0], shape[1]), shape[0], np.float64)
    return A, Y


def test_categorical_crossentropy_gradient_matches_finite_differences_in_float64():
    cce = losses.get("cce")
    A, Y = sigmoid_outputs(1)
    h, fd = 1e-6, np.empty_like(A)
    for i, j in np.ndindex(*A.shape):
        plus, minus = A.copy(), A.copy()
        plus[i, j] += h
        minus[i, j] -= h
        fd[i, j] = (cce.forward(plus, Y)[j] - cce.forward(minus, Y)[j]) / (2 * h)
    np.testing.assert_allclose(cce.backward(A, Y), fd, rtol=1e-7, atol=1e-9)


def test_categorical_crossentropy_matches_keras_on_sigmoid_outputs():
    """Loss and dL/dA against keras.losses.categorical_crossentropy (TensorFlow autodiff), in float64,
    including a column whose true-class probability is clipped at 1e-7 and one clipped at 1 - 1e-7."""
    import keras
    import tensorflow as tf

    A, Y = sigmoid_outputs(2)
    A[:, 0] = [1e-12, 0.5, 0.5, 0.5]  # class of column 0 set to 0 below: p_0 clipped at epsilon
    A[:, 1] = [1e-12, 1e-12, 0.9, 1e-12]  # class 2: p_2 above 1 - epsilon
    Y[:, 0], Y[:, 1] = [1, 0, 0, 0], [0, 0, 1, 0]
    a = tf.Variable(A.T)  # Keras layout (M, classes)
    with tf.GradientTape() as tape:
        L = keras.losses.categorical_crossentropy(tf.constant(Y.T), a)
        total = tf.reduce_sum(L)
    cce = losses.get("categorical_crossentropy")
    assert L.dtype == tf.float64
    np.testing.assert_allclose(cce.forward(A, Y), L.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cce.backward(A, Y), tape.gradient(total, a).numpy().T, rtol=1e-10, atol=1e-12)
    assert cce.forward(A, Y)[0] == pytest.approx(-np.log(1e-7))
    old_rule = -(Y * np.log(np.clip(A, 1e-7, 1 - 1e-7))).sum(axis=0)  # no rescaling: not what Keras computes
    assert not np.allclose(old_rule[2:], L.numpy()[2:], rtol=1e-3)


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


def test_network_with_sigmoid_output_reports_the_keras_loss_of_its_outputs():
    """Same weights, sigmoid outputs: evaluate() gives keras.losses.categorical_crossentropy of the Keras
    model's output array. (A compiled Keras model on the TensorFlow backend reports something else
    here: its sigmoid output carries the logits, and the loss takes a softmax of those instead.)"""
    import keras

    import scratchnn as sn

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    net = sn.Network(6, [sn.Dense(5, "tanh"), sn.Dense(3, "sigmoid")], loss="categorical_crossentropy", seed=0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, "tanh"), keras.layers.Dense(3, "sigmoid")])
    model.set_weights(net.get_weights())
    outputs = model.predict(X, verbose=0)
    theirs = float(np.mean(keras.losses.categorical_crossentropy(np.eye(3, dtype=np.float32)[y], outputs)))
    ours, _ = net.evaluate(X, y)
    assert ours == pytest.approx(theirs, rel=1e-5)
    unscaled = float(-np.log(np.clip(outputs[np.arange(64), y], 1e-7, 1 - 1e-7)).mean())  # the old rule
    assert abs(unscaled - theirs) > 0.1
