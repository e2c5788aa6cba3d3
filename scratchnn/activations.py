"""Activation functions f and their backward passes, looked up by name with `get()`.

Every activation works on Z of shape (n, M), one column per example. `forward(Z)`
returns A = f(Z). `backward(Z, A, dA, out=None)` returns dL/dZ given dL/dA, written into
`out` when given: for the element-wise functions that is dA ⊙ f'(Z), the product in BP1.2
and BP2.2; softmax, whose Jacobian is not diagonal, returns the Jacobian-vector product
instead. Sigmoid and tanh also use `out` for f'(Z) when it is free (`_free`), so the trainer's
buffers take the whole product without a temporary.
"""

import numpy as np


def _free(out, like, other=None):
    """`out` if it is given, of `like`'s shape and dtype, and overlaps neither `like` nor `other`
    (so it can hold intermediate results); else a new array shaped as `like`."""
    if (out is None or out.dtype != like.dtype or out.shape != like.shape or np.may_share_memory(out, like)
            or (other is not None and np.may_share_memory(out, other))):
        return np.empty_like(like)
    return out


def _times(dA, derivative, out):
    """dA ⊙ f'(Z), f'(Z) being in `derivative`: into it when it is `out`, else into `out` as
    np.multiply writes there (a new array when None)."""
    return np.multiply(dA, derivative, out=derivative if derivative is out else out)


class Activation:
    """Base class: an element-wise f with its derivative f'.

    Subclasses set `name` and implement `forward` and `derivative` (or override `backward`).
    """

    name = ""
    positive = False  # True when f(z) > 0 for every z (what the categorical cross-entropy needs)

    def forward(self, Z, out=None):
        """A = f(Z), column by column.

        Args:
            Z: Pre-activations, shape (n, M).
            out: Optional array of shape (n, M) to write the result into, where the function
                allows it (otherwise a fresh array is returned).

        Returns:
            A, shape (n, M).
        """
        raise NotImplementedError

    def derivative(self, Z, A):
        """f'(Z), element-wise.

        Args:
            Z: Pre-activations, shape (n, M).
            A: f(Z), passed so that it need not be recomputed.

        Returns:
            f'(Z), shape (n, M).
        """
        raise NotImplementedError

    def backward(self, Z, A, dA, out=None):
        """dL/dZ = dA ⊙ f'(Z).

        Args:
            Z: Pre-activations, shape (n, M).
            A: f(Z), shape (n, M).
            dA: dL/dA, shape (n, M). Read only, never written.
            out: Optional array of shape (n, M) to write the result into.

        Returns:
            dL/dZ, shape (n, M) (`out` when given).
        """
        return np.multiply(dA, self.derivative(Z, A), out=out)

    def get_config(self):
        """The dict `get` rebuilds this activation from: its name (and parameters)."""
        return {"name": self.name}


class Linear(Activation):
    """f(z) = z."""

    name = "linear"

    def forward(self, Z, out=None):
        return Z

    def derivative(self, Z, A):
        return np.ones_like(Z)

    def backward(self, Z, A, dA, out=None):
        if out is None:
            return dA
        np.copyto(out, dA)
        return out


class Sigmoid(Activation):
    """f(z) = 1 / (1 + e^-z), computed without overflow for either sign of z."""

    name = "sigmoid"
    positive = True

    def forward(self, Z, out=None):
        # 1 / (1 + e^-|z|) for z >= 0 and e^-|z| / (1 + e^-|z|) otherwise, e^-|z| in (0, 1] (never
        # overflows), the numerator being max([z >= 0], e^-|z|); into `out` when it is free (`_free`:
        # Z's shape and floating dtype, not overlapping Z), with one temporary
        E = np.abs(Z, out=np.empty(np.shape(Z), np.result_type(Z, 1.0)))  # floating, also for integer Z
        np.exp(np.negative(E, out=E), out=E)
        numerator = np.greater_equal(Z, 0, out=_free(out, E, Z))
        np.maximum(numerator, E, out=numerator)
        return np.divide(numerator, np.add(E, 1, out=E), out=numerator)

    def derivative(self, Z, A):
        return A * (1.0 - A)

    def backward(self, Z, A, dA, out=None):
        # dA ⊙ A (1 - A), f'(Z) made in `out` when it is free
        d = np.subtract(1, A, out=_free(out, A, dA))
        return _times(dA, np.multiply(A, d, out=d), out)


class Tanh(Activation):
    """f(z) = tanh z; f'(z) = 1 - tanh^2 z."""

    name = "tanh"

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out)

    def derivative(self, Z, A):
        return 1.0 - A * A

    def backward(self, Z, A, dA, out=None):
        # dA ⊙ (1 - A²), f'(Z) made in `out` when it is free
        d = np.multiply(A, A, out=_free(out, A, dA))
        return _times(dA, np.subtract(1, d, out=d), out)


class ReLU(Activation):
    """f(z) = max(0, z); f'(z) = 1 for z > 0 and 0 otherwise (as in Keras, f'(0) = 0)."""

    name = "relu"

    def forward(self, Z, out=None):
        return np.maximum(Z, 0, out=out)

    def derivative(self, Z, A):
        return (Z > 0).astype(Z.dtype)

    def backward(self, Z, A, dA, out=None):
        return np.multiply(dA, Z > 0, out=out)


class LeakyReLU(Activation):
    """f(z) = z for z > 0, alpha * z otherwise.

    The default alpha = 0.2 is that of `keras.activations.leaky_relu` (negative_slope=0.2), the
    function a Keras `Dense(..., activation="leaky_relu")` applies. The layer
    `keras.layers.LeakyReLU` defaults to negative_slope=0.3 instead.

    Args:
        alpha: Float >= 0, the slope for z <= 0.
    """

    name = "leaky_relu"

    def __init__(self, alpha=0.2):
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0. Received: alpha={alpha}")
        self.alpha = alpha

    def forward(self, Z, out=None):
        return np.where(Z > 0, Z, self.alpha * Z).astype(Z.dtype, copy=False)

    def derivative(self, Z, A):
        return np.where(Z > 0, 1.0, self.alpha).astype(Z.dtype)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


class Softmax(Activation):
    """a_i = e^(z_i - max z) / sum_j e^(z_j - max z), column by column.

    Its Jacobian is da_i/dz_j = a_i (1[i = j] - a_j), so backward returns
    dZ = A ⊙ (dA - 1 (1ᵀ (A ⊙ dA))), the Jacobian-vector product per column.
    """

    name = "softmax"
    positive = True

    def forward(self, Z, out=None):
        E = np.exp(np.subtract(Z, Z.max(axis=0, keepdims=True), out=out), out=out)
        E /= E.sum(axis=0, keepdims=True)
        return E

    def derivative(self, Z, A):
        raise TypeError("softmax has no element-wise derivative; use backward(Z, A, dA)")

    def backward(self, Z, A, dA, out=None):
        return np.multiply(A, dA - (A * dA).sum(axis=0, keepdims=True), out=out)


_REGISTRY = {cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)}
NAMES = tuple(_REGISTRY)


def get(identifier):
    """Return an Activation for a name, a `get_config()` dict or an Activation instance.

    Args:
        identifier: One of `NAMES`, a dict {"name": ..., **parameters}, an `Activation` (returned
            as is), or None for "linear".

    Returns:
        An `Activation`.
    """
    if isinstance(identifier, Activation):
        return identifier
    kwargs = {}
    if isinstance(identifier, dict):
        kwargs = dict(identifier)
        identifier = kwargs.pop("name", None)
    if identifier is None:
        identifier = "linear"
    if identifier not in _REGISTRY:
        raise ValueError(
            f"Unknown activation. Expected one of {sorted(_REGISTRY)}. Received: activation={identifier!r}"
        )
    return _REGISTRY[identifier](**kwargs)
