"""Network behaviour: steps per epoch, determinism, persistence, Keras weight layout, bad input."""

import math

import numpy as np
import pytest

import scratchnn as sn
from scratchnn import Dense, Dropout, Network


def small(seed=0, **kwargs):
    return sn.mlp(6, 2, 5, 3, optimizer=sn.SGD(lr=0.1), seed=seed, **kwargs)


@pytest.fixture
def toy(rng):
    X = rng.normal(size=(50, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y


def test_epoch_has_ceil_n_over_m_steps_including_partial_batch(toy):
    net = small()
    history = net.fit(*toy, epochs=3, batch_size=16, verbose=False)
    assert net.optimizer.iterations == 3 * math.ceil(50 / 16)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"}
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert all(t > 0 for t in history["epoch_time"])


def test_validation_metrics_match_evaluate(toy):
    net = small()
    history = net.fit(*toy, epochs=2, batch_size=8, validation_data=toy, verbose=False)
    loss, acc = net.evaluate(*toy)
    assert history["val_loss"][-1] == pytest.approx(loss) and history["val_accuracy"][-1] == acc


def test_same_seed_gives_bit_identical_weights(toy):
    runs = []
    for seed in (3, 3, 4):
        net = small(seed, dropout=0.2)
        net.fit(*toy, epochs=2, batch_size=8, verbose=False)
        runs.append(net.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_float32_by_default_and_float64_on_request(toy):
    assert all(w.dtype == np.float32 for w in small().get_weights())
    net = sn.mlp(6, 1, 4, 3, dtype="float64", seed=0)
    net.fit(*toy, epochs=1, verbose=False)
    assert all(w.dtype == np.float64 for w in net.get_weights())
    assert net.predict(toy[0]).dtype == np.float64


def test_save_load_reproduces_predictions_exactly(toy, tmp_path):
    net = sn.mlp(6, 2, 5, 3, activation="leaky_relu", dropout=0.3, l2=1e-3, seed=1,
                 optimizer=sn.Adam(lr=0.01), kernel_initializer="he_normal")
    net.fit(*toy, epochs=2, verbose=False)
    net.save(tmp_path / "model.npz")
    loaded = Network.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(toy[0]), net.predict(toy[0]))
    assert loaded.get_config() == net.get_config()


def test_weights_in_keras_layout_give_keras_predictions(toy):
    import keras

    net = sn.mlp(6, 2, 5, 3, activation="tanh", seed=2)
    weights = net.get_weights()
    assert [w.shape for w in weights] == [(6, 5), (5,), (5, 5), (5,), (5, 3), (3,)]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, "tanh"), keras.layers.Dense(5, "tanh"),
                              keras.layers.Dense(3, "softmax")])
    model.set_weights(weights)
    np.testing.assert_allclose(model.predict(toy[0], verbose=0), net.predict(toy[0]), rtol=1e-5, atol=1e-6)
    other = sn.mlp(6, 2, 5, 3, activation="tanh", seed=9)
    other.set_weights(model.get_weights())
    np.testing.assert_array_equal(other.predict(toy[0]), net.predict(toy[0]))


def test_dropout_only_in_training(toy):
    drop = Dropout(0.5)
    drop.build(6, np.random.default_rng(0))
    A = np.ones((6, 1000), dtype=np.float32)
    out = drop.forward(A, training=True)
    assert set(np.unique(out)) == {0.0, 2.0} and abs(out.mean() - 1) < 0.05
    np.testing.assert_array_equal(drop.backward(A), out)  # same mask, same scale
    np.testing.assert_array_equal(drop.forward(A, training=False), A)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_raises_with_epoch_and_step(toy):
    net = sn.mlp(6, 2, 64, 3, optimizer=sn.SGD(lr=1e6), seed=0)
    X = toy[0] * 100
    with pytest.raises(sn.TrainingDiverged) as info:
        net.fit(X, toy[1], epochs=5, batch_size=10, verbose=False)
    assert info.value.epoch >= 1 and info.value.step >= 1 and not math.isfinite(info.value.loss)
    assert f"epoch {info.value.epoch}, step {info.value.step}" in str(info.value)


@pytest.mark.parametrize("call,message", [
    (lambda: Dense(0), "Received: units=0"),
    (lambda: Dense(3, "swish"), "Received: activation='swish'"),
    (lambda: Dense(3, kernel_initializer="ones"), "Received: initializer='ones'"),
    (lambda: sn.mlp(4, 1, 3, 2, loss="hinge"), "Received: loss='hinge'"),
    (lambda: sn.mlp(4, 1, 3, 2, optimizer="adagrad"), "Received: optimizer='adagrad'"),
    (lambda: sn.mlp(4, 1, 3, 2, optimizer=sn.SGD(lr=-0.1)), "Received: lr=-0.1"),
    (lambda: sn.mlp(4, -1, 3, 2), "Received: depth=-1"),
    (lambda: sn.mlp(4, 1, 3, 2, dropout=1.0), "Received: rate=1.0"),
    (lambda: sn.mlp(4, 1, 3, 2, dtype="float16"), "Received: dtype='float16'"),
])
def test_bad_construction_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("mutate,message", [
    (lambda X, y: (X, y, {"batch_size": 0}), "Received: batch_size=0"),
    (lambda X, y: (X, y, {"epochs": 0}), "Received: epochs=0"),
    (lambda X, y: (X, y[:-1], {}), r"Received: y.shape=\(49,\)"),
    (lambda X, y: (X, np.where(np.arange(50) == 7, 3, y), {}), r"Received: y\[7\]=3"),
    (lambda X, y: (X, np.where(np.arange(50) == 2, -1, y), {}), r"Received: y\[2\]=-1"),
    (lambda X, y: (np.where(np.arange(6) == 4, np.nan, X), y, {}), r"Received: X\[0, 4\]=nan"),
    (lambda X, y: (np.where(np.arange(6) == 1, np.inf, X), y, {}), r"Received: X\[0, 1\]=inf"),
    (lambda X, y: (X[:, :5], y, {}), r"Received: X.shape=\(50, 5\)"),
    (lambda X, y: (X, y.astype(float), {}), "Received: y.dtype=float64"),
])
def test_bad_fit_input_is_rejected_before_any_step(toy, mutate, message):
    net = small()
    before = net.get_weights()
    X, y, kwargs = mutate(*toy)
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, verbose=False, **kwargs)
    assert net.optimizer.iterations == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_end_to_end_mnist_reaches_97_percent(mnist):
    """784-128-10 ReLU/softmax, SGD, seeded: at least 97% test accuracy within 10 epochs."""
    (X, y), (Xt, yt) = mnist
    net = sn.mlp(784, 1, 128, 10, optimizer=sn.SGD(lr=0.1), seed=0)
    accuracies = []
    for _ in range(10):
        net.fit(X, y, epochs=1, batch_size=32, verbose=False)
        accuracies.append(net.evaluate(Xt, yt)[1])
        if accuracies[-1] >= 0.97:
            break
    print(f"test accuracy by epoch: {accuracies}")
    assert accuracies[-1] >= 0.97


def test_running_loss_above_max_loss_counts_as_divergence(mnist):
    """With a stable cross-entropy, lr=10 does not overflow: the loss explodes, then the ReLUs die."""
    (X, y), _ = mnist
    net = sn.mlp(784, 1, 128, 10, optimizer=sn.SGD(lr=10), seed=0)
    with pytest.raises(sn.TrainingDiverged, match=r"running mean above max_loss=1000") as info:
        net.fit(X[:5000], y[:5000], epochs=1, verbose=False, max_loss=1000)
    assert info.value.epoch == 1 and info.value.step <= 10 and 1000 < info.value.loss < math.inf
    assert net.optimizer.iterations == info.value.step  # stopped after that step, not at the end of the epoch
    # a healthy run is not stopped: every one of the ceil(5000 / 32) = 157 steps, and it learns
    net = sn.mlp(784, 1, 128, 10, optimizer=sn.SGD(lr=0.1), seed=0)
    history = net.fit(X[:5000], y[:5000], epochs=1, verbose=False, max_loss=1000)
    assert net.optimizer.iterations == 157
    # chance on 10 balanced classes is a loss of ln 10 = 2.30 and an accuracy of 0.1: an epoch that
    # learns halves the one and passes 0.5 in the other
    assert history["loss"][0] < math.log(10) / 2 and history["accuracy"][0] > 0.5


@pytest.mark.e2e
def test_library_imports_only_numpy_and_scipys_blas():
    import subprocess
    import sys

    code = ("import sys, scratchnn; import scratchnn.datasets, scratchnn.gradcheck; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'hydra', 'mlflow', 'tqdm', 'pandas', 'omegaconf', 'matplotlib', 'torch'}), "
            "'scipy.linalg.blas' in sys.modules, 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True False"  # scipy.linalg.blas: the fused SGD update (scratchnn.buffers)


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_sgd_training_step_matches_backward_then_optimizer_step(toy, l2):
    """train_on_batch with plain SGD (lr folded into backprop inside the step) gives the weights and the
    grads of the public two-step path: backward, then optimizer.step (w -= lr * g)."""
    X, y = toy
    fast, plain = (sn.mlp(6, 2, 5, 3, seed=4, l2=l2, optimizer=sn.SGD(lr=0.3)) for _ in range(2))
    Y = sn.losses.from_labels(y, 3, np.float32)
    for _ in range(3):
        fast.train_on_batch(X, y)
        plain.backward(plain.forward(X.T, training=True), Y)
        plain.optimizer.step(plain.params, plain.grads)
        for a, b in zip(fast.grads, plain.grads):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(fast.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert fast.optimizer.iterations == 3
    assert not np.allclose(fast.get_weights()[0], sn.mlp(6, 2, 5, 3, seed=4).get_weights()[0])


def test_verbose_fit_prints_one_plain_line_per_epoch_without_tqdm(toy, monkeypatch, capsys):
    """tqdm is optional: without it, verbose=True prints each epoch's figures on one line."""
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    net = sn.mlp(6, 1, 4, 3, seed=0)
    history = net.fit(*toy, epochs=2, batch_size=16, validation_data=toy, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - ") and lines[1].startswith("Epoch 2/2 - ")
    assert f"loss: {history['loss'][1]:.4f} - accuracy: {history['accuracy'][1]:.4f}" in lines[1]
    assert f"val_loss: {history['val_loss'][1]:.4f}" in lines[1] and lines[1].endswith(" s")
    net.fit(*toy, epochs=1, verbose=False)
    assert capsys.readouterr().out == ""
