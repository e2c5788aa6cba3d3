import numpy as np
import pytest

from scratchnn import activations

Z = np.array([[-2.0, 0.0, 3.0], [1.0, -0.5, 0.0]])


def test_relu_forward_and_derivative_is_one_not_z():
    relu = activations.get("relu")
    np.testing.assert_array_equal(relu.forward(Z), [[0, 0, 3], [1, 0, 0]])
    # the seed wrote f'(z) = z for z > 0; it is 1
    np.testing.assert_array_equal(relu.derivative(Z, relu.forward(Z)), [[0, 0, 1], [1, 0, 0]])


def test_leaky_relu_uses_keras_default_slope():
    f = activations.get("leaky_relu")
    np.testing.assert_allclose(f.forward(Z), [[-0.4, 0, 3], [1, -0.1, 0]])
    np.testing.assert_allclose(f.derivative(Z, None), [[0.2, 0.2, 1], [1, 0.2, 0.2]])


def test_leaky_relu_default_is_that_of_the_keras_function_its_docstring_names():
    """keras.activations.leaky_relu (what Dense(activation="leaky_relu") uses) has slope 0.2;
    keras.layers.LeakyReLU has 0.3, and the docstring must not claim to match it."""
    import inspect

    import keras

    doc = activations.LeakyReLU.__doc__
    assert "`keras.activations.leaky_relu` (negative_slope=0.2)" in doc
    assert "as in keras.layers.LeakyReLU" not in doc
    default = inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default
    assert activations.LeakyReLU().alpha == default == 0.2
    assert inspect.signature(keras.layers.LeakyReLU).parameters["negative_slope"].default == 0.3
    z = np.array([[-3.0, -0.5, 0.0, 2.0]], dtype=np.float32)
    dense = keras.layers.Dense(1, activation="leaky_relu")
    np.testing.assert_allclose(activations.get("leaky_relu").forward(z), np.asarray(dense.activation(z)), rtol=1e-6)


def test_sigmoid_and_tanh_hand_values():
    s = activations.get("sigmoid")
    A = s.forward(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(A, [[0.5, 0.75]])
    np.testing.assert_allclose(s.derivative(None, A), [[0.25, 0.1875]])
    t = activations.get("tanh")
    A = t.forward(np.array([[0.0, np.log(2.0)]]))  # tanh(ln 2) = 3/5
    np.testing.assert_allclose(A, [[0.0, 0.6]])
    np.testing.assert_allclose(t.derivative(None, A), [[1.0, 0.64]])


def test_sigmoid_and_softmax_are_stable_at_extremes():
    big = np.array([[-1000.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(activations.get("sigmoid").forward(big), [[0.0, 1.0]])
        A = activations.get("softmax").forward(np.array([[1000.0], [1000.0 + np.log(3.0)]]))
    np.testing.assert_allclose(A, [[0.25], [0.75]])


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_in_place_keep_the_reference_bits_and_never_clobber_their_inputs(dtype):
    """Sigmoid's forward and sigmoid's and tanh's backward work in `out` when it is free: the same
    bits as the textbook expressions (NaN, ±inf, ±0 included), whatever `out` is: None, free, one
    of the inputs or a view overlapping one, or of another dtype. The forward never writes Z; the
    backward writes only `out`, after reading its inputs in full."""
    rng = np.random.default_rng(0)
    Z = (rng.standard_normal((7, 6)) * 5).astype(dtype)
    Z[0] = [0.0, -0.0, 100.0, -200.0, np.nan, np.inf]
    Z[1, :1] = -np.inf
    E = np.exp(-np.abs(Z))
    expected = np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E)).astype(dtype)
    sigmoid, tanh = activations.get("sigmoid"), activations.get("tanh")
    out = np.empty_like(Z)
    assert sigmoid.forward(Z, out=out) is out and same_bits(out, expected)
    Z_before = Z.copy()
    for other in (None, Z, Z[::-1], np.empty(Z.shape, np.float16), np.empty((7, 5), dtype)):
        assert same_bits(sigmoid.forward(Z, out=other), expected)
        assert same_bits(Z, Z_before)

    dA = rng.standard_normal(Z.shape).astype(dtype)
    dA[2, :3] = [np.nan, np.inf, -0.0]
    for f, A, textbook in ((sigmoid, expected, lambda A: A * (1.0 - A)), (tanh, np.tanh(Z), lambda A: 1.0 - A * A)):
        want = np.multiply(dA, textbook(A))
        out = np.empty_like(Z)
        assert f.backward(Z, A, dA, out=out) is out and same_bits(out, want)
        assert same_bits(f.backward(Z, A, dA), want)
        for alias in (A, dA, A[:, ::-1]):  # out overlapping an input: read in full before out is written
            inputs = (A.copy(), dA.copy())
            assert f.backward(Z, A, dA, out=alias) is alias
            assert same_bits(np.array(alias), np.multiply(inputs[1], textbook(inputs[0]), out=np.empty_like(alias)))
            A[...], dA[...] = inputs
        wide = np.empty(Z.shape, np.float64 if dtype == np.float32 else np.float32)
        assert same_bits(f.backward(Z, A, dA, out=wide), np.multiply(dA, textbook(A), out=np.empty_like(wide)))
        dA64 = dA.astype(np.float64)  # mixed dtypes: f'(Z) in A's dtype, the product in the wider one
        assert same_bits(f.backward(Z, A, dA64), np.multiply(dA64, textbook(A)))


def test_softmax_backward_is_jacobian_vector_product():
    sm = activations.get("softmax")
    z = np.array([[0.3], [-1.2], [2.0]])
    a = sm.forward(z)
    J = np.diagflat(a) - a @ a.T  # da_i/dz_j = a_i (1[i=j] - a_j)
    dA = np.array([[0.5], [-1.0], [2.0]])
    np.testing.assert_allclose(sm.backward(z, a, dA), J.T @ dA)


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError, match="Received: activation='swish'"):
        activations.get("swish")
    assert set(activations.NAMES) == {"linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"}
