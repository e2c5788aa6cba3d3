"""The fast training step (scratchnn.step, looped by scratchnn.training.Trainer) is the public
step, computed faster.

`fit` and `train_on_batch` go through the fused step; the reference here is the derivation as
the public API writes it: forward, cost, backward, optimizer.step, one batch after another.
Speed itself is measured by benchmarks, not here; these tests check what the fast path computes,
that it allocates nothing per step, and that epoch_time includes validation.
"""

import time
import tracemalloc

import numpy as np
import pytest

import scratchnn as sn
from scratchnn import Dense, Dropout, Network, losses
from scratchnn.gradcheck import finite_difference_gradient


def reference_epoch(net, X, y, order, M):
    """One epoch of public steps, batches of M in `order`; returns (mean loss, accuracy)."""
    X = np.asarray(X, dtype=net.dtype)
    Y = losses.from_labels(y, net.n_out, net.dtype)
    total = correct = 0.0
    for start in range(0, len(order), M):
        idx = order[start:start + M]
        A = net.forward(X[idx].T, training=True)
        total += (float(net.cost(A, Y[:, idx]).mean()) + net.penalty()) * len(idx)
        correct += float((net._classes(A) == y[idx]).sum())
        net.backward(A, Y[:, idx])
        net.optimizer.step(net.params, net.grads)
    return total / len(order), correct / len(order)


def problem(n_out=3, N=50, n_in=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, n_in))
    y = rng.integers(0, 2 if n_out == 1 else n_out, N)
    return X, y


CONFIGS = {  # name: kwargs of sn.mlp (6 inputs, 2 hidden layers of 5) and the number of outputs
    "relu/softmax sgd": ({}, 3),
    "tanh/softmax sgd": ({"activation": "tanh"}, 3),
    "sigmoid/softmax sgd l2": ({"activation": "sigmoid", "l2": 0.01}, 3),
    "leaky_relu/softmax momentum": ({"activation": "leaky_relu", "optimizer": sn.SGD(lr=0.05, momentum=0.9)}, 3),
    "relu/softmax adam dropout": ({"optimizer": sn.Adam(lr=0.01), "dropout": 0.3}, 3),
    "relu/softmax rmsprop l2": ({"optimizer": sn.RMSprop(lr=0.01), "l2": 0.001}, 3),
    "linear/softmax nesterov": ({"activation": "linear", "optimizer": sn.SGD(lr=0.05, momentum=0.5, nesterov=True)}, 3),
    "softmax hidden": ({"activation": "softmax"}, 3),
    "relu/sigmoid bce (fused)": ({"output_activation": "sigmoid", "loss": "binary_crossentropy"}, 1),
    "relu/sigmoid cce (unfused)": ({"output_activation": "sigmoid"}, 3),
    "tanh/linear mse": ({"activation": "tanh", "output_activation": "linear", "loss": "mse"}, 3),
    "relu/softmax mse": ({"output_activation": "softmax", "loss": "mse"}, 3),
}


def build(config, dtype="float64", seed=3):
    kwargs, n_out = CONFIGS[config]
    kwargs = dict(kwargs)
    optimizer = kwargs.pop("optimizer", sn.SGD(lr=0.1))
    optimizer = sn.optimizers.get(optimizer.get_config())  # a fresh one for every network
    return sn.mlp(6, 2, 5, n_out, optimizer=optimizer, seed=seed, dtype=dtype, **kwargs), n_out


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fit_epoch_equals_the_public_steps(config):
    """Two epochs of fit (shuffled, last batch partial) against two epochs of public steps in the
    same order: same history, weights and gradients, in float64 to 1e-10."""
    fast, n_out = build(config)
    plain, _ = build(config)
    X, y = problem(n_out)
    history = fast.fit(X, y, epochs=2, batch_size=16, shuffle=np.random.default_rng(7), verbose=False)
    order_rng = np.random.default_rng(7)
    for epoch in range(2):
        loss, accuracy = reference_epoch(plain, X, y, order_rng.permutation(len(X)), 16)
        assert history["loss"][epoch] == pytest.approx(loss, rel=1e-10)
        assert history["accuracy"][epoch] == accuracy
    assert fast.optimizer.iterations == plain.optimizer.iterations == 2 * 4
    for a, b in zip(fast.get_weights() + fast.grads, plain.get_weights() + plain.grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("config", ["relu/softmax sgd", "sigmoid/softmax sgd l2", "relu/softmax adam dropout"])
def test_float32_fit_stays_within_float_tolerance_of_the_public_steps(config):
    fast, n_out = build(config, dtype="float32")
    plain, _ = build(config, dtype="float32")
    X, y = problem(n_out, N=200)
    history = fast.fit(X, y, epochs=3, batch_size=32, shuffle=False, verbose=False)
    for epoch in range(3):
        loss, _ = reference_epoch(plain, X, y, np.arange(len(X)), 32)
        assert history["loss"][epoch] == pytest.approx(loss, rel=1e-5)
    for a, b in zip(fast.get_weights(), plain.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("config", ["relu/softmax sgd", "tanh/softmax sgd", "relu/sigmoid bce (fused)",
                                    "tanh/linear mse"])
def test_grads_after_a_fused_step_are_the_gradient_at_the_weights_before_it(config):
    net, n_out = build(config)
    X, y = problem(n_out, N=7)
    for layer in net.layers:  # non-zero biases, so that every db term is exercised
        layer.b[...] = np.random.default_rng(1).normal(0, 0.3, layer.b.shape)
    fd = finite_difference_gradient(net, X, y)
    before = [p.copy() for p in net.params]
    net.train_on_batch(X, y)
    lr = net.optimizer.lr
    for g, g_fd, w, w0 in zip(net.grads, fd, net.params, before):
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(w, w0 - lr * g, rtol=1e-12, atol=1e-15)


def test_train_on_batch_returns_the_cost_before_the_step():
    net, _ = build("sigmoid/softmax sgd l2")
    X, y = problem()
    plain, _ = build("sigmoid/softmax sgd l2")
    Y = losses.from_labels(y, 3, np.float64)
    expected = float(plain.cost(plain.forward(X.T), Y).mean()) + plain.penalty()
    assert net.train_on_batch(X, y) == pytest.approx(expected, rel=1e-12)


def test_same_seed_gives_bit_identical_training():
    X, y = problem(N=300, seed=4)
    runs = []
    for _ in range(2):
        net = sn.mlp(6, 2, 16, 3, optimizer=sn.SGD(lr=0.1), seed=11)
        history = net.fit(X, y, epochs=3, batch_size=32, verbose=False)
        runs.append((net.get_weights(), history["loss"], history["accuracy"]))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1:] == runs[1][1:]


def test_a_step_allocates_no_array():
    """After the first step, a fused step makes no temporary array of the size of an activation
    (n^l, M) or a weight matrix: tracemalloc's peak over 10 steps stays below the smallest of them
    (512 KB here). What it does see is NumPy's own iteration buffers, at most 8192 elements per
    operand, in the broadcast ufuncs (bias add, softmax) and the bool-to-float multiply of ReLU's
    mask, and the few hundred bytes of Python objects a step makes."""
    rng = np.random.default_rng(0)
    M, width, n_out = 256, 256, 256
    X, y = rng.normal(size=(M, 256)), rng.integers(0, n_out, M)
    net = sn.mlp(256, 2, width, n_out, optimizer=sn.SGD(lr=0.01), seed=0, dtype="float64")
    net.fit(X, y, epochs=1, batch_size=M, shuffle=False, verbose=False)  # buffers made here
    trainer = net._trainer
    plan = trainer.plan(M, sn.step.kinds(net))
    np.copyto(plan.X, X)
    Yb = losses.from_labels(y, n_out, np.float64)
    smallest = min(M, width, n_out) * min(M, width, n_out) * 8
    for form_gradients in (False, True):  # S1 inside BP3.2's product, and dW, db written
        trainer.fast_step(plan, Yb, (1, 1), form_gradients=form_gradients)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for s in range(10):
                trainer.fast_step(plan, Yb, (1, s), form_gradients=form_gradients)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert peak < min(smallest, 4 * 8192 * 8), f"{peak} bytes allocated during 10 steps ({form_gradients=})"


def test_epoch_time_runs_from_the_permutation_to_the_end_of_validation(monkeypatch):
    """As the Keras and PyTorch twins time an epoch (experiments/frameworks/base.py epoch_loop)."""
    X, y = problem(N=64)
    net = sn.mlp(6, 1, 4, 3, seed=0)
    evaluate = net._evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(0.2)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(net, "_evaluate", slow_evaluate)
    seen, calls = [], []
    start = time.perf_counter()
    history = net.fit(X, y, epochs=2, batch_size=16, validation_data=(X, y), verbose=False,
                      on_epoch_end=lambda epoch, logs: seen.append(dict(logs)))
    whole = time.perf_counter() - start
    assert all(t >= 0.2 for t in history["epoch_time"])  # each held a validation that slept 0.2 s
    assert sum(history["epoch_time"]) <= whole  # and no more than the fit itself took
    assert [logs["epoch_time"] for logs in seen] == history["epoch_time"]
    assert list(seen[0]) == ["loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"]
    monkeypatch.setattr(net, "_evaluate", lambda *args, **kwargs: calls.append(1) or evaluate(*args, **kwargs))
    start = time.perf_counter()
    quick = net.fit(X, y, epochs=1, batch_size=16, verbose=False)  # no validation: nothing sleeps
    assert calls == [] and 0 < quick["epoch_time"][0] <= time.perf_counter() - start


class Traced(Dense):
    """A Dense layer whose forward records the batch sizes it sees: the fused step must not skip it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sizes = []

    def forward(self, A_prev, training=False):
        if training:
            self.sizes.append(A_prev.shape[1])
        return super().forward(A_prev, training)


def test_a_layer_of_its_own_class_trains_through_its_own_methods():
    X, y = problem()
    traced = Network(6, [Traced(5, "relu"), Dense(3, "softmax")], optimizer=sn.SGD(lr=0.1), seed=2)
    plain = Network(6, [Dense(5, "relu"), Dense(3, "softmax")], optimizer=sn.SGD(lr=0.1), seed=2, dtype="float32")
    history = traced.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=False)
    assert traced.layers[0].sizes == [16, 16, 16, 2] * 2
    assert history["loss"] == pytest.approx(plain.fit(X, y, epochs=2, batch_size=16, shuffle=False,
                                                      verbose=False)["loss"], rel=1e-5)
    for a, b in zip(traced.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dropout_between_layers_draws_its_masks_as_the_public_forward_does():
    X, y = problem()
    fast = sn.mlp(6, 2, 8, 3, dropout=0.5, optimizer=sn.SGD(lr=0.1), seed=5, dtype="float64")
    plain = sn.mlp(6, 2, 8, 3, dropout=0.5, optimizer=sn.SGD(lr=0.1), seed=5, dtype="float64")
    assert any(isinstance(layer, Dropout) for layer in fast.layers)
    fast.fit(X, y, epochs=1, batch_size=10, shuffle=False, verbose=False)
    reference_epoch(plain, X, y, np.arange(len(X)), 10)
    for a, b in zip(fast.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_public_backward_after_fused_steps_still_gives_the_gradient():
    """A public backward after a fast step (which computes dC/dW itself) and then another fast
    step both report dC/dW."""
    net, _ = build("relu/softmax sgd")
    X, y = problem(N=9)
    Y = losses.from_labels(y, 3, np.float64)
    net.train_on_batch(X, y)
    fd = finite_difference_gradient(net, X, y)
    net.backward(net.forward(X.T), Y)
    for g, g_fd in zip(net.grads, fd):
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-9)
    net.train_on_batch(X, y)
    for g, g_fd in zip(net.grads, fd):
        np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("l2, in_product", [(0.0, True), (0.01, False)])
def test_plain_sgd_updates_w_inside_the_gradient_product_except_on_a_gradient_forming_step(l2, in_product):
    """For plain SGD without L2 a step of fit that need not form the gradient updates W inside
    BP3.2's product and writes no dW (scratchnn.step.update_in_product); with L2 it writes dW. The
    last step of an epoch, and train_on_batch, write dW and db: plain arrays, dC/dW and dC/db."""
    X, y = problem(N=40, seed=5)
    net = sn.mlp(6, 2, 5, 3, optimizer=sn.SGD(lr=0.1), l2=l2, seed=2, dtype="float32")
    reference = sn.mlp(6, 2, 5, 3, optimizer=sn.SGD(lr=0.1), l2=l2, seed=2, dtype="float32")
    net.train_on_batch(X, y)  # buffers made, dW and db written
    reference_epoch(reference, X, y, np.arange(40), 40)
    trainer, Y = net._trainer, losses.from_labels(y, 3, np.float32)
    plan = trainer.plan(40, sn.step.kinds(net))
    np.copyto(plan.X, X.astype(np.float32))
    for layer in net.layers:
        layer.dW.fill(np.nan)
    trainer.fast_step(plan, Y, (1, 1), form_gradients=False)
    reference_epoch(reference, X, y, np.arange(40), 40)
    assert [bool(np.isnan(layer.dW).all()) for layer in net.layers] == [in_product] * 3
    for a, b in zip(net.params, reference.params):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    net.train_on_batch(X, y)
    reference_epoch(reference, X, y, np.arange(40), 40)
    for layer in net.layers:
        assert "dW" not in vars(type(layer)) and "db" not in vars(type(layer))  # no property behind them
        assert type(vars(layer)["dW"]) is np.ndarray and type(vars(layer)["db"]) is np.ndarray
    for a, b in zip(net.params + net.grads, reference.params + reference.grads):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.e2e
def test_importing_scratchnn_loads_the_blas_it_steps_with_so_a_thread_limit_set_after_covers_it():
    """threadpoolctl limits only the BLAS libraries loaded when the limit is set: scratchnn loads
    SciPy's BLAS (buffers.py) at import, so `threadpool_limits` after `import scratchnn` holds it."""
    import subprocess
    import sys

    code = ("import scratchnn, threadpoolctl\n"
            "with threadpoolctl.threadpool_limits(1, user_api='blas'):\n"
            "    libs = [m for m in threadpoolctl.threadpool_info() if m['user_api'] == 'blas']\n"
            "    print(sorted({m['num_threads'] for m in libs}), len(libs))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[1]" and int(out[1]) >= 2, out  # NumPy's and SciPy's BLAS, both at 1 thread
