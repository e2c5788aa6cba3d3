"""Edge cases at the public boundary: a ValueError naming the argument, Keras style, never an internal error."""

import numpy as np
import pytest

import scratchnn as sn


@pytest.fixture
def net():
    return sn.mlp(6, 1, 5, 3, optimizer=sn.SGD(lr=0.1), seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 6)).astype(np.float32), rng.integers(0, 3, 20)


def assert_untouched(net, before):
    assert net.optimizer.iterations == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_fit_on_empty_X_names_X(net):
    before = net.get_weights()
    with pytest.raises(ValueError, match=r"X must hold at least one example. Received: X.shape=\(0, 6\)"):
        net.fit(np.zeros((0, 6), np.float32), np.zeros(0, np.int64), verbose=False)
    assert_untouched(net, before)


def test_evaluate_on_empty_X_names_X(net):
    with pytest.raises(ValueError, match=r"X must hold at least one example. Received: X.shape=\(0, 6\)"):
        net.evaluate(np.zeros((0, 6), np.float32), np.zeros(0, np.int64))


def test_predict_on_empty_X_names_X(net):
    with pytest.raises(ValueError, match=r"X must hold at least one example. Received: X.shape=\(0, 6\)"):
        net.predict(np.zeros((0, 6), np.float32))


def test_train_on_batch_on_empty_X_names_X(net):
    with pytest.raises(ValueError, match=r"Received: X.shape=\(0, 6\)"):
        net.train_on_batch(np.zeros((0, 6), np.float32), np.zeros(0, np.int64))
    assert net.optimizer.iterations == 0


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_predict_with_a_bad_batch_size_names_it(net, data, batch_size):
    with pytest.raises(ValueError, match=f"Received: batch_size={batch_size!r}"):
        net.predict(data[0], batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [0, -3])
def test_evaluate_with_a_bad_batch_size_names_it(net, data, batch_size):
    with pytest.raises(ValueError, match=f"Received: batch_size={batch_size}"):
        net.evaluate(*data, batch_size=batch_size)


def test_predict_and_evaluate_still_work_in_batches(net, data):
    """The checks do not change the results: batch by batch equals all at once."""
    np.testing.assert_allclose(net.predict(data[0], batch_size=7), net.predict(data[0]), rtol=1e-6)
    assert net.evaluate(*data, batch_size=3) == pytest.approx(net.evaluate(*data), rel=1e-6)


@pytest.mark.parametrize("validation_data,received", [
    (lambda X, y: (X,), "a tuple of length 1"),
    (lambda X, y: (X, y, y), "a tuple of length 3"),
    (lambda X, y: X, "a ndarray"),
])
def test_fit_with_malformed_validation_data_names_it(net, data, validation_data, received):
    before = net.get_weights()
    with pytest.raises(ValueError, match=f"validation_data must be a pair \\(X_val, y_val\\). "
                                         f"Received: validation_data={received}"):
        net.fit(*data, validation_data=validation_data(*data), verbose=False)
    assert_untouched(net, before)


def test_fit_with_empty_validation_data_names_it(net, data):
    before = net.get_weights()
    with pytest.raises(ValueError, match=r"validation_data\[0\] must hold at least one example"):
        net.fit(*data, validation_data=(data[0][:0], data[1][:0]), verbose=False)
    with pytest.raises(ValueError, match=r"Received: validation_data\[1\]\[0\]=7"):
        net.fit(*data, validation_data=(data[0][:2], np.array([7, 0])), verbose=False)
    assert_untouched(net, before)


@pytest.mark.parametrize("max_loss", [0, -1.0, "10", float("nan")])
def test_fit_with_a_bad_max_loss_names_it(net, data, max_loss):
    with pytest.raises(ValueError, match="Received: max_loss="):
        net.fit(*data, max_loss=max_loss, verbose=False)


def test_empty_labels_of_float_dtype_are_named_as_such(net):
    """np.array([]) is float64: with one example it is the shape that is wrong, and it says so."""
    with pytest.raises(ValueError, match=r"Received: y.shape=\(0,\)"):
        net.fit(np.zeros((1, 6), np.float32), np.array([]), verbose=False)
