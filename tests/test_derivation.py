"""One test per numbered equation group of docs/derivation.md, each against an independent
computation (TensorFlow autodiff in float64, finite differences, or Keras), and a check that
every link in the doc resolves."""

import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import scratchnn as sn
from scratchnn import activations, initializers, losses

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "derivation.md"


def t(x):
    return tf.constant(np.asarray(x, dtype=np.float64))


TF_ACTIVATIONS = {"tanh": tf.tanh, "sigmoid": tf.sigmoid, "relu": tf.nn.relu, "linear": tf.identity,
                  "softmax": lambda Z: tf.nn.softmax(Z, axis=0)}


def tf_weights(net):
    """The net's W^l and b^l as float64 tf.Variables, so that a tape can differentiate with respect to them."""
    return [tf.Variable(layer.W) for layer in net.layers], [tf.Variable(layer.b) for layer in net.layers]


def tf_forward(net, X, Ws, bs):
    """Z^l and A^l of every Dense layer, computed by TensorFlow from X (M, features) and the weights Ws, bs."""
    A, Zs, As = t(X.T), [], []
    for layer, W, b in zip(net.layers, Ws, bs):
        Z = tf.matmul(W, A) + b
        A = TF_ACTIVATIONS[layer.activation.name](Z)
        Zs.append(Z)
        As.append(A)
    return Zs, As


@pytest.fixture
def setup(rng):
    """A float64 784-ish net: two tanh hidden layers; softmax/CE output, and a batch."""
    def make(output="softmax", loss="categorical_crossentropy", hidden="tanh", l2=0.0):
        net = sn.Network(6, [sn.Dense(5, hidden, l2=l2), sn.Dense(4, hidden, l2=l2), sn.Dense(3, output, l2=l2)],
                         loss=loss, rng=rng, dtype="float64")
        for layer in net.layers:
            layer.b[...] = rng.normal(0, 0.3, layer.b.shape)
        X, y = rng.normal(size=(8, 6)), rng.integers(0, 3, 8)
        return net, X, y
    return make


def autodiff(net, X, y, loss_fn):
    """TensorFlow's dC/dZ^l, dC/dW^l, dC/db^l for C = mean loss (+ L2), from the net's weights."""
    Ws, bs = tf_weights(net)
    Y = t(losses.from_labels(y, net.n_out, np.float64))
    with tf.GradientTape(persistent=True) as tape:
        Zs, As = tf_forward(net, X, Ws, bs)
        C = tf.reduce_mean(loss_fn(As[-1], Y)) + sum(layer.l2 * tf.reduce_sum(W * W)
                                                     for layer, W in zip(net.layers, Ws))
    return ([tape.gradient(C, Z).numpy() for Z in Zs], [tape.gradient(C, W).numpy() for W in Ws],
            [tape.gradient(C, b).numpy() for b in bs])


def cce(A, Y):
    return -tf.reduce_sum(Y * tf.math.log(A), axis=0)


def cce_keras(A, Y):
    """C1 as Keras computes it on any output: columns rescaled to sum to 1, clipped, then the log."""
    P = tf.clip_by_value(A / tf.reduce_sum(A, axis=0, keepdims=True), 1e-7, 1 - 1e-7)
    return -tf.reduce_sum(Y * tf.math.log(P), axis=0)


def mse(A, Y):
    return tf.reduce_mean((A - Y) ** 2, axis=0)


def ours(net, X, y):
    """Our Delta^l / M (= dC/dZ^l), dW^l and db^l, through the public forward and backward."""
    Y = losses.from_labels(y, net.n_out, np.float64)
    net.backward(net.forward(X.T), Y)
    M = X.shape[0]
    return ([layer.delta / M for layer in net.layers], [layer.dW for layer in net.layers],
            [layer.db for layer in net.layers])


def test_forward_propagation(setup):
    """F1 (a unit, written as a sum), F2 (a layer, one example) and F3 (a batch, every layer) agree with
    TensorFlow."""
    net, X, _ = setup()
    A_L = net.forward(X.T)
    layer = net.layers[0]
    _, Z, A = layer.ctx
    x = X[2]
    z_1 = sum(layer.W[1, j] * x[j] for j in range(6)) + layer.b[1, 0]  # F1
    assert Z[1, 2] == pytest.approx(z_1, rel=1e-12)
    z = (tf.linalg.matvec(t(layer.W), t(x)) + t(layer.b[:, 0])).numpy()  # F2
    np.testing.assert_allclose(Z[:, 2], z, rtol=1e-12)
    Zs, As = tf_forward(net, X, *tf_weights(net))  # F3, layer by layer, from X
    for layer, Z_tf, A_tf in zip(net.layers, Zs, As):
        np.testing.assert_allclose(layer.ctx[1], Z_tf.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.ctx[2], A_tf.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(A_L, As[-1].numpy(), rtol=1e-12)
    assert A_L.shape == (3, 8) and not np.allclose(tf_forward(net, X[::-1], *tf_weights(net))[1][-1], A_L)


def test_costs():
    """C1-C3 and their derivatives against TensorFlow's gradients (C1 on outputs that do not sum to 1,
    which Keras rescales first); the fused forms against tf.nn."""
    rng = np.random.default_rng(0)
    A = rng.uniform(0.05, 0.95, (4, 6))
    Y = losses.from_labels(rng.integers(0, 4, 6), 4, np.float64)
    for name, fn, probs in (("categorical_crossentropy", cce_keras, A), ("mean_squared_error", mse, A),
                            ("binary_crossentropy",
                             lambda a, y: -tf.reduce_mean(y * tf.math.log(a) + (1 - y) * tf.math.log(1 - a), axis=0),
                             A)):
        a = tf.Variable(probs)
        with tf.GradientTape() as tape:
            L = fn(a, t(Y))
            total = tf.reduce_sum(L)
        loss = losses.get(name)
        np.testing.assert_allclose(loss.forward(probs, Y), L.numpy(), rtol=1e-10)
        # d(sum_m L^m)/dA = dL^m/da^m column by column: the per-example derivative
        np.testing.assert_allclose(loss.backward(probs, Y), tape.gradient(total, a).numpy(), rtol=1e-8)
    Z = rng.normal(size=(4, 6)) * 5
    np.testing.assert_allclose(losses.get("cce").forward_logits(Z, Y),
                               tf.nn.softmax_cross_entropy_with_logits(t(Y.T), t(Z.T)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(losses.get("bce").forward_logits(Z, Y),
                               tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(t(Y), t(Z)), axis=0).numpy(),
                               rtol=1e-10)


@pytest.mark.parametrize("name,tf_fn", [("sigmoid", tf.sigmoid), ("relu", tf.nn.relu), ("tanh", tf.tanh),
                                        # tf.nn.leaky_relu rounds alpha to float32
                                        ("leaky_relu", lambda z: tf.where(z > 0, z, 0.2 * z))])
def test_activations(name, tf_fn):
    """A1-A4: f and f' against TensorFlow; A5: softmax's Jacobian-vector product against tf.jacobian."""
    Z = np.random.default_rng(1).normal(size=(5, 7)) * 3
    z = tf.Variable(Z)
    with tf.GradientTape() as tape:
        out = tf_fn(z)
        total = tf.reduce_sum(out)
    f = activations.get(name)
    A = f.forward(Z)
    np.testing.assert_allclose(A, out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(f.derivative(Z, A), tape.gradient(total, z).numpy(), rtol=1e-10, atol=1e-15)
    softmax = activations.get("softmax")
    zc = tf.Variable(Z[:, :1])
    with tf.GradientTape() as tape:
        a = tf.nn.softmax(zc, axis=0)
    J = tf.reshape(tape.jacobian(a, zc), (5, 5)).numpy()
    g = Z[:, 1:2]
    np.testing.assert_allclose(softmax.backward(Z[:, :1], softmax.forward(Z[:, :1]), g), J.T @ g,
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("output,loss,fn", [("softmax", "categorical_crossentropy", cce),
                                            ("sigmoid", "mean_squared_error", mse)])
def test_bp1_output_error(setup, output, loss, fn):
    """BP1.2 (fused A - Y and the general dL/dA ⊙ f'), as dC/dZ^L = Delta^L / M."""
    net, X, y = setup(output, loss)
    dZ, _, _ = autodiff(net, X, y, fn)
    deltas, _, _ = ours(net, X, y)
    np.testing.assert_allclose(deltas[-1], dZ[-1], rtol=1e-9, atol=1e-15)


def test_bp2_error_recursion(setup):
    """BP2.2 for every hidden layer, against TensorFlow's dC/dZ^l."""
    net, X, y = setup("sigmoid", "mean_squared_error")
    dZ, _, _ = autodiff(net, X, y, mse)
    deltas, _, _ = ours(net, X, y)
    for l in range(len(net.layers) - 1):
        np.testing.assert_allclose(deltas[l], dZ[l], rtol=1e-9, atol=1e-15)


def test_bp3_weight_gradient(setup):
    net, X, y = setup()
    _, dW, _ = autodiff(net, X, y, cce)
    for ours_dW, tf_dW in zip(ours(net, X, y)[1], dW):
        np.testing.assert_allclose(ours_dW, tf_dW, rtol=1e-9, atol=1e-15)


def test_bp4_bias_gradient(setup):
    net, X, y = setup()
    _, _, db = autodiff(net, X, y, cce)
    for ours_db, tf_db in zip(ours(net, X, y)[2], db):
        np.testing.assert_allclose(ours_db, tf_db, rtol=1e-9, atol=1e-15)


def test_why_backprop():
    """The measurement script's finite-difference gradient agrees with backpropagation."""
    from benchmarks.fd_vs_backprop import backprop_gradient, finite_difference_gradient  # what the script runs

    net = sn.mlp(5, 1, 4, 3, activation="tanh", seed=0, dtype="float64")
    X, y = np.random.default_rng(0).normal(size=(6, 5)), np.array([0, 1, 2, 0, 1, 2])
    for a, b in zip(backprop_gradient(net, X, y), finite_difference_gradient(net, X, y)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_sgd_and_steps_per_epoch(setup, monkeypatch):
    """S2: ceil(50/16) = 4 steps, the last of 2 examples; S1: one step is W - lr dC/dW (TensorFlow's)."""
    net, X, y = setup()
    _, dW, db = autodiff(net, X, y, cce)
    before = [layer.W.copy() for layer in net.layers]
    net.optimizer = sn.SGD(lr=0.5)
    net.train_on_batch(X, y)
    for layer, W0, g in zip(net.layers, before, dW):
        np.testing.assert_allclose(layer.W, W0 - 0.5 * g, rtol=1e-9)
    sizes, first = [], net.layers[0]
    forward = first.forward  # the batch size M is the number of columns of A^0 each training step sees
    monkeypatch.setattr(first, "forward", lambda A, training=False: (
        sizes.append(A.shape[1]) if training else None, forward(A, training))[1])
    rng = np.random.default_rng(0)
    net.fit(rng.normal(size=(50, 6)), rng.integers(0, 3, 50), epochs=1, batch_size=16, verbose=False)
    assert sizes == [16, 16, 16, 2] and len(sizes) == math.ceil(50 / 16) == net.optimizer.iterations - 1


OPTIMIZER_RULES = {  # ours, and the Keras optimizer with the same settings
    "O1 momentum": (lambda: sn.SGD(lr=0.05, momentum=0.9), "SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    "O1 nesterov": (lambda: sn.SGD(lr=0.05, momentum=0.9, nesterov=True), "SGD",
                    {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "O2 rmsprop with momentum": (lambda: sn.RMSprop(lr=0.01, rho=0.8, momentum=0.5), "RMSprop",
                                 {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5}),
    "O3 adam with other betas": (lambda: sn.Adam(lr=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-5), "Adam",
                                 {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}),
}


@pytest.mark.parametrize("rule", sorted(OPTIMIZER_RULES))
def test_optimizer_rules(rule):
    """O1-O3: 8 steps on the same float32 weights and gradients as keras.optimizers, every step compared."""
    import keras

    make, keras_name, keras_kwargs = OPTIMIZER_RULES[rule]
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 1)).astype(np.float32)]
    start = [w.copy() for w in params]
    variables = [keras.Variable(w.copy()) for w in params]
    ours, theirs = make(), getattr(keras.optimizers, keras_name)(**keras_kwargs)
    for _ in range(8):
        grads = [rng.normal(size=w.shape).astype(np.float32) for w in params]
        ours.step(params, grads)
        theirs.apply_gradients([(tf.constant(g), v) for g, v in zip(grads, variables)])
        for w, v in zip(params, variables):
            assert w.dtype == np.float32
            np.testing.assert_allclose(w, v.numpy(), rtol=1e-6, atol=1e-6)
    assert ours.iterations == 8
    assert all(np.abs(w - w0).max() > 1e-3 for w, w0 in zip(params, start))  # the rule moved the weights


@pytest.mark.parametrize("name,variance", [("glorot_uniform", 2 / (400 + 100)), ("glorot_normal", 2 / (400 + 100)),
                                           ("he_uniform", 2 / 400), ("he_normal", 2 / 400), ("lecun_normal", 1 / 400)])
def test_initialisation_variance(name, variance):
    """I1-I2: the sample variance of a large draw matches the formula; bounds match the distributions."""
    W = initializers.get(name)((100, 400), np.random.default_rng(0), np.float64)  # (fan_out, fan_in)
    assert W.var() == pytest.approx(variance, rel=0.03) and abs(W.mean()) < 0.02 * math.sqrt(variance)
    limit = math.sqrt(3 * variance) if "uniform" in name else 2 * math.sqrt(variance) / initializers.TRUNCATION_STD
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.95 * limit


def test_regularisation(setup):
    """R1: the L2 term of dC/dW against TensorFlow; R2: dropout keeps the mean and masks the backward pass."""
    net, X, y = setup(l2=0.01)
    _, dW, _ = autodiff(net, X, y, cce)
    for ours_dW, tf_dW in zip(ours(net, X, y)[1], dW):
        np.testing.assert_allclose(ours_dW, tf_dW, rtol=1e-9)
    drop = sn.Dropout(0.25)
    drop.build(10, np.random.default_rng(0))
    A = np.ones((10, 20000))
    out = drop.forward(A, training=True)
    assert out.mean() == pytest.approx(1.0, abs=0.01) and (out == 0).mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_array_equal(drop.backward(np.full_like(A, 3.0)), 3.0 * out)

