"""The Keras twin's data path: resident tensors gathered per epoch train on exactly the batches the
runner's order gives, and the warm-up leaves the model as built."""

import inspect
import warnings

import numpy as np
import pytest

import scratchnn as sn
from experiments.frameworks import keras as keras_twin
from experiments.frameworks.base import EVAL_BATCH
from experiments.runner import build, prepare_data, seeds_of

pytestmark = pytest.mark.usefixtures("quiet_warnings")
# 2000 examples in batches of 96: 20 full batches and a partial one of 80; Adam, so the optimizer has state
SETUP = ("frameworks=[keras]", "optimizer=adam", "model.width=32", "train.batch_size=96", "train.epochs=2")


def _job(make_cfg, *overrides):
    cfg = make_cfg(*SETUP, *overrides)
    seeds = seeds_of(cfg)
    return cfg, seeds, prepare_data(cfg, seeds["split"], warn=False)


def _assert_same(a, b):
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_keras_fit_takes_the_batches_of_the_order(make_cfg):
    """fit (warm-up first, as the runner does) ends at the weights train_on_batch reaches on the
    batches of the same permutations, the last partial batch included."""
    cfg, seeds, data = _job(make_cfg)
    (X, y), M = data["train"], cfg.train.batch_size
    fitted, stepped = build(cfg, "keras", seeds["keras"]), build(cfg, "keras", seeds["keras"])
    _assert_same(fitted.get_weights(), stepped.get_weights())
    with warnings.catch_warnings(record=True) as caught:  # what Keras would print on the user's terminal
        warnings.simplefilter("always")
        fitted.warm_up(data)
        history = fitted.fit(data, np.random.default_rng(7), lambda *a: None)
        fitted.evaluate(*data["test"]), fitted.predict(data["test"][0])
    assert not [str(w.message) for w in caught if "keras" in w.filename], "Keras warned"
    order_rng = np.random.default_rng(7)
    for _ in range(cfg.train.epochs):
        order = order_rng.permutation(len(X))
        for i in range(0, len(X), M):
            stepped.train_on_batch(X[order[i:i + M]], y[order[i:i + M]])
    assert len(history["loss"]) == 2 and np.isfinite(history["val_loss"]).all()
    for u, v in zip(fitted.get_weights(), stepped.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_keras_warm_up_leaves_the_model_as_built(make_cfg, dropout):
    """After warm_up the weights and the optimizer state are the built ones, and the run that
    follows is the run without a warm-up (whose fit converts the data itself), on the same tensors;
    with dropout too (the seed generators' state is put back)."""
    cfg, seeds, data = _job(make_cfg, "train.warmup_steps=3", f"model.dropout={dropout}")
    warmed, cold = build(cfg, "keras", seeds["keras"]), build(cfg, "keras", seeds["keras"])
    built = warmed.get_weights()
    warmed.model.optimizer.build(warmed.model.trainable_variables)
    state = [v.numpy() for v in warmed.model.optimizer.variables]
    warmed.warm_up(data)
    _assert_same(warmed.get_weights(), built)
    _assert_same([v.numpy() for v in warmed.model.optimizer.variables], state)
    resident = warmed._resident[1:]
    assert len(resident[0]) == 4 and all(t is not None for t in resident[0]) and resident[1] is not None

    cold.cfg = make_cfg(*SETUP, "train.warmup_steps=0", f"model.dropout={dropout}")
    cold.warm_up(data)
    assert cold._resident is None  # nothing done: fit converts
    runs = [model.fit(data, np.random.default_rng(3), lambda *a: None) for model in (warmed, cold)]
    assert all(a is b for a, b in zip(warmed._resident[1:], resident))  # converted once per model, not per epoch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert runs[0][key] == runs[1][key], key
    _assert_same(warmed.get_weights(), cold.get_weights())


def test_prepared_data_is_aligned_and_keras_takes_it_without_a_copy(make_cfg):
    """prepare_data writes each set into 64-byte aligned memory, which the Keras twin's tensors
    share; a misaligned or read-only array is copied (TensorFlow would abort on a misaligned one)."""
    _, _, data = _job(make_cfg)
    for X in (data["train"][0], data["val"][0], data["test"][0]):
        assert X.dtype == np.float32 and X.flags.c_contiguous and X.ctypes.data % 64 == 0
    X = data["train"][0]
    shared = keras_twin._tensor(X)
    X[0, 0] += 1.0
    assert float(shared[0, 0]) == X[0, 0]

    misaligned = np.empty(X.size + 1, np.float32)[1:].reshape(X.shape)
    misaligned[...] = X
    read_only = X.copy()
    read_only.flags.writeable = False
    for array in (misaligned, read_only):
        copied = keras_twin._tensor(array)
        np.testing.assert_array_equal(copied.numpy(), X)
        if array.flags.writeable:
            array[0, 0] += 1.0
            assert float(copied[0, 0]) == X[0, 0] != array[0, 0]


def test_keras_validates_on_as_many_examples_a_pass_as_scratchnn(make_cfg):
    """Keras's validation in fit (and its warm-up), evaluate and predict run EVAL_BATCH examples per
    forward pass, the batch scratchnn's Network validates, evaluates and predicts with, not the
    training batch; fit trains on batches of the training batch size."""
    assert inspect.signature(sn.Network.evaluate).parameters["batch_size"].default == EVAL_BATCH
    assert inspect.signature(sn.Network.predict).parameters["batch_size"].default == EVAL_BATCH
    cfg, seeds, data = _job(make_cfg, "train.warmup_steps=2", "data.val_size=4500")
    model = build(cfg, "keras", seeds["keras"])
    fit, batches = model.model.fit, []

    def spy(data, **kwargs):  # the sizes of the first training batch and the first validation batch
        batches.append((next(iter(data))[0].shape[0], next(iter(kwargs["validation_data"]))[0].shape[0]))
        return fit(data, **kwargs)

    model.model.fit = spy
    model.warm_up(data)
    model.fit(data, np.random.default_rng(0), lambda *a: None)
    n_val = len(data["val"][0])
    assert n_val > EVAL_BATCH  # so that a pass of EVAL_BATCH examples is seen as one
    assert batches == [(cfg.train.batch_size, EVAL_BATCH)] * (1 + cfg.train.epochs)
    evaluate, passes = model.model.evaluate, []
    model.model.evaluate = lambda data, **kwargs: passes.append([len(x) for x, _ in data]) or evaluate(data, **kwargs)
    model.evaluate(*data["val"])
    predict = model.model.predict
    model.model.predict = lambda data, **kwargs: passes.append([len(x) for x in data]) or predict(data, **kwargs)
    assert model.predict(data["val"][0]).shape == (n_val, 10)
    assert passes == [[EVAL_BATCH] * (n_val // EVAL_BATCH) + [n_val % EVAL_BATCH]] * 2


@pytest.mark.parametrize("n, batch", [(23, 5), (20, 5), (3, 5)])
def test_keras_batches_are_the_rows_of_the_order_in_batches_the_last_one_partial(n, batch):
    """_batches gives X[order[i:i + batch]] (and y's) for i = 0, batch, ...: a partial last batch,
    none when batch divides n, one when n < batch; and X's alone without y."""
    rng = np.random.default_rng(0)
    X, y, order = rng.random((n, 4), dtype=np.float32), rng.integers(0, 10, n), rng.permutation(n)
    starts = range(0, n, batch)
    got = [(xb.numpy(), yb.numpy())
           for xb, yb in keras_twin._batches(keras_twin._tensor(X), keras_twin._tensor(y), batch, order)]
    assert len(got) == len(starts)
    for (xb, yb), i in zip(got, starts):
        np.testing.assert_array_equal(xb, X[order[i:i + batch]])
        np.testing.assert_array_equal(yb, y[order[i:i + batch]])
    in_order = [xb.numpy() for xb in keras_twin._batches(keras_twin._tensor(X), None, batch)]
    _assert_same(in_order, [X[i:i + batch] for i in starts])
