"""Layers with forward/backward pairs on column-major activations A of shape (n, M).

A layer's `forward(A_prev, training)` saves what its backward needs on `self.ctx`;
`backward(dA)` takes dL/dA of its output (per example) and returns dL/dA_prev.
"""

import numpy as np

from . import activations, bounds, initializers


class Dense:
    """Z^l = W^l A^(l-1) + b^l,  A^l = f(Z^l), with W^l of shape (units, n^(l-1)).

    Follows Keras: `__init__` takes the hyperparameters, `build` makes the weights once the
    input size is known, `call`/`forward` runs the layer, `get_config` returns what
    `Dense(**config)` needs to rebuild it.

    Args:
        units: Positive integer, the number of units n^l.
        activation: Name of the activation (see `activations.NAMES`), its config dict, or an
            `activations.Activation`. Default "linear".
        kernel_initializer: Name of the initialiser of W (see `initializers.NAMES`) or a callable
            `init(shape, rng, dtype)`. Biases start at zero.
        l2: Float >= 0: l2 * sum(W^2) is added to the cost, as Keras's
            `kernel_regularizer=L2(l2)` does.
    """

    def __init__(self, units, activation="linear", *, kernel_initializer="glorot_uniform", l2=0.0):
        if not (isinstance(units, (int, np.integer)) and not isinstance(units, bool) and units >= 1):
            raise ValueError(f"units must be a positive integer. Received: units={units!r}")
        bounds.check("l2", l2)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.l2 = float(l2)
        self.W = self.b = self.ctx = self.delta = None
        self.dW = self.db = None  # dC/dW^l and dC/db^l of the last backward pass or gradient-forming step
        self._buffers = {}

    def _buffer(self, name, shape):
        """A training buffer reused from step to step (fresh large arrays cost page faults)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=self.W.dtype)
        return buf

    def build(self, n_in, rng, dtype=np.float32):
        """Make W (units, n_in) with the initialiser and b (units, 1) of zeros; returns `units`.

        Args:
            n_in: Positive integer, the size n^(l-1) of the layer's input.
            rng: The `np.random.Generator` the initialiser draws from.
            dtype: dtype of W and b.
        """
        self.W = self.kernel_initializer((self.units, n_in), rng, dtype)
        self.b = np.zeros((self.units, 1), dtype=dtype)
        return self.units

    def forward(self, A_prev, training=False):
        """A^l = f(W^l A^(l-1) + b^l), saving (A^(l-1), Z^l, A^l) on `ctx` for backward.

        Args:
            A_prev: A^(l-1), shape (n^(l-1), M).
            training: Whether this is a training step; training reuses the memory of Z and A
                from the last step, inference returns fresh arrays.

        Returns:
            A^l, shape (units, M).
        """
        out = self._buffer("Z", (self.units, A_prev.shape[1])) if training else None
        Z = np.matmul(self.W, A_prev, out=out)
        Z += self.b
        A = self.activation.forward(Z, out=self._buffer("A", Z.shape) if training else None)
        self.ctx = (A_prev, Z, A)
        return A

    call = forward

    def backward(self, dA, propagate=True):
        """BP1.2 / BP2.2: Delta^l = dL/dA^l ⊙ f'(Z^l), then the weight gradients.

        Args:
            dA: dL/dA^l per example, shape (units, M). Read only, never written.
            propagate: Whether to return dL/dA^(l-1); the first layer needs no such result.

        Returns:
            dL/dA^(l-1), shape (n^(l-1), M), or None when `propagate` is False.
        """
        _, Z, A = self.ctx
        delta = self.activation.backward(Z, A, dA, out=self._buffer("delta", Z.shape))
        return self.backward_delta(delta, propagate)

    def backward_delta(self, delta, propagate=True):
        """BP3.2, BP4.2 and the (W^l)^T Delta^l factor of BP2.2, given Delta^l = dL/dZ^l.

        Args:
            delta: Delta^l = dL/dZ^l per example, shape (units, M).
            propagate: Whether to return dL/dA^(l-1) = (W^l)^T Delta^l.

        Returns:
            dL/dA^(l-1), shape (n^(l-1), M), or None when `propagate` is False.
        """
        A_prev, _, _ = self.ctx
        self.delta = delta  # kept for inspection (tests of BP1/BP2)
        scaled = delta * (1 / delta.shape[1])  # 1/M applied to the small factor
        dW, db = self.gradient_arrays()
        np.matmul(scaled, A_prev.T, out=dW)  # BP3.2: dW = (1/M) Delta A_prev^T
        np.sum(scaled, axis=1, keepdims=True, out=db)  # BP4.2: db = (1/M) Delta 1_M
        if self.l2:
            dW += (2 * self.l2) * self.W  # R1
        if not propagate:
            return None
        return np.matmul(self.W.T, delta, out=self._buffer("dA", (self.W.shape[1], delta.shape[1])))

    def gradient_arrays(self):
        """(dW, db): the arrays this layer's backward pass and the training step (`scratchnn.step`)
        write dC/dW^l and dC/db^l into, shaped as W and b; made on first use. `dW` and `db` are
        None before the first backward pass or training step.

        During `fit`, plain SGD updates W inside BP3.2's product on every batch of an epoch but
        the last, without writing dW: after `fit`, `train_on_batch` or `backward`, dW and db hold
        the gradient of the last step."""
        if self.dW is None or self.dW.shape != self.W.shape or self.dW.dtype != self.W.dtype:
            self.dW, self.db = np.empty_like(self.W), np.empty_like(self.b)
        return self.dW, self.db

    def penalty(self):
        """The L2 term l2 * sum(W^2) this layer adds to the cost."""
        return self.l2 * float(np.sum(np.square(self.W))) if self.l2 else 0.0

    @property
    def params(self):
        """[W, b], the arrays an optimizer updates in place."""
        return [self.W, self.b]

    @property
    def grads(self):
        """[dC/dW, dC/db] of the last backward pass, in the order of `params`."""
        return [self.dW, self.db]

    def get_config(self):
        """What `Dense(**config)` needs; raises ValueError for an initialiser that has no name."""
        return {
            "type": "Dense",
            "units": self.units,
            "activation": self.activation.get_config(),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "l2": self.l2,
        }


class Dropout:
    """Inverted dropout: in training, A = A_prev ⊙ mask / (1 - rate) with mask ~ Bernoulli(1 - rate);
    at inference the identity. Its random numbers come from the network's Generator.

    Args:
        rate: Float in [0, 1), the fraction of the inputs set to zero in training.
    """

    def __init__(self, rate):
        bounds.check("rate", rate)
        self.rate = float(rate)
        self.rng = self.ctx = None
        self.params = self.grads = []

    def build(self, n_in, rng, dtype=np.float32):
        """Keep `rng` for the masks; returns n_in (dropout keeps the size).

        Args:
            n_in: Positive integer, the size of the layer's input.
            rng: The `np.random.Generator` the masks are drawn from.
            dtype: Unused (dropout has no weights).
        """
        self.rng = rng
        return n_in

    def forward(self, A_prev, training=False):
        """A_prev ⊙ mask / (1 - rate) in training (the scaled mask kept on `ctx`), else A_prev.

        Args:
            A_prev: The input activations, shape (n, M).
            training: Whether to drop (True) or pass the input through (False).

        Returns:
            The output activations, shape (n, M).
        """
        if not training or self.rate == 0:
            self.ctx = None
            return A_prev
        keep = self.rng.random(A_prev.shape, dtype=np.float32) >= self.rate
        self.ctx = keep / np.asarray(1 - self.rate, dtype=A_prev.dtype)
        return A_prev * self.ctx

    call = forward

    def backward(self, dA, propagate=True):
        """dL/dA_prev = dA ⊙ mask / (1 - rate), with the mask of the last forward pass.

        Args:
            dA: dL/dA of the output, shape (n, M). Read only, never written.
            propagate: Unused; dropout always returns its result.

        Returns:
            dL/dA_prev, shape (n, M) (dA itself when the last forward pass was not training).
        """
        return dA if self.ctx is None else dA * self.ctx

    def penalty(self):
        """0: dropout adds nothing to the cost."""
        return 0.0

    def get_config(self):
        """What `Dropout(**config)` needs, with the layer type."""
        return {"type": "Dropout", "rate": self.rate}


def from_config(config):
    """The layer a `get_config()` dict describes.

    Args:
        config: Dict {"type": "Dense" or "Dropout", **the layer's arguments}.

    Returns:
        A new, unbuilt layer.
    """
    config = dict(config)
    kind = config.pop("type")
    if kind not in ("Dense", "Dropout"):
        raise ValueError(f"Unknown layer type. Received: type={kind!r}")
    return Dense(**config) if kind == "Dense" else Dropout(**config)
