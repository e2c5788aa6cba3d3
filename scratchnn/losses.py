"""Losses L(Y, A) on columns: Y and A have shape (n^L, M), one column per example.

`forward(A, Y)` returns the per-example losses, shape (M,); the cost C is their mean.
`backward(A, Y)` returns dL/dA per example, shape (n^L, M), the first factor of BP1.2;
the 1/M of the cost is applied once, in BP3.2 and BP4.2.

A loss may also be fused with the output activation that turns logits into its
probabilities (softmax for categorical cross-entropy, sigmoid for binary
cross-entropy). Then `forward_logits(Z, Y)` evaluates L stably from Z^L and
`backward_logits(A, Y)` returns Delta^L = dL/dZ^L directly; this is what Keras does when
the last Dense layer carries that activation. With any other output activation the
general path (backward, then the activation's backward) is used, so no loss is tied to
one activation.

`check_output(activation)` refuses an output activation the loss cannot be computed on
(the categorical cross-entropy needs outputs > 0); `Network` calls it when it is built.

`from_labels(y, n_out, dtype)` turns integer labels (M,) into the target matrix Y.
"""

import numpy as np

EPSILON = 1e-7  # keras.config.epsilon(), used to clip probabilities on the unfused path


def from_labels(y, n_out, dtype):
    """Integer labels (M,) -> Y (n_out, M): one-hot columns, or a single row when n_out == 1.

    Args:
        y: Integer labels, shape (M,), in [0, n_out) (0 or 1 when n_out == 1).
        n_out: Positive integer, the number of output units n^L.
        dtype: dtype of Y.

    Returns:
        The target matrix Y, shape (n_out, M).
    """
    y = np.asarray(y)
    if n_out == 1:
        return y.astype(dtype).reshape(1, -1)
    Y = np.zeros((n_out, y.shape[0]), dtype=dtype)
    Y[y, np.arange(y.shape[0])] = 1
    return Y


def _log_softmax(Z):
    shifted = Z - Z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


class Loss:
    """Base class: a per-example loss L(y, a) and its derivative, on columns.

    Subclasses set `name`, implement `forward` and `backward`, and, if they can fuse with an
    output activation (`fused_activation`), `forward_logits` and `backward_logits`.
    """

    name = ""
    fused_activation = None  # name of the output activation this loss can fuse with

    def check_output(self, activation):
        """Raise ValueError if the loss cannot be computed on the outputs of `activation`.

        Args:
            activation: The output layer's `activations.Activation`.
        """

    def forward(self, A, Y):
        """Per-example losses.

        Args:
            A: Outputs A^L, shape (n^L, M).
            Y: Targets, shape (n^L, M).

        Returns:
            Losses, shape (M,).
        """
        raise NotImplementedError

    def backward(self, A, Y):
        """dL/dA per example, the first factor of BP1.2.

        Args:
            A: Outputs A^L, shape (n^L, M).
            Y: Targets, shape (n^L, M).

        Returns:
            dL/dA, shape (n^L, M).
        """
        raise NotImplementedError

    def forward_logits(self, Z, Y):
        """Per-example losses computed stably from the logits Z^L of the fused activation.

        Args:
            Z: Logits Z^L, shape (n^L, M).
            Y: Targets, shape (n^L, M).

        Returns:
            Losses, shape (M,).
        """
        raise NotImplementedError

    def backward_logits(self, A, Y):
        """Delta^L = dL/dZ^L per example, through the fused activation.

        Args:
            A: Outputs A^L = f(Z^L) of the fused activation, shape (n^L, M).
            Y: Targets, shape (n^L, M).

        Returns:
            dL/dZ^L, shape (n^L, M).
        """
        raise NotImplementedError


class CategoricalCrossentropy(Loss):
    """L = -sum_i y_i log p_i with p = a / sum_j a_j, as `keras.losses.categorical_crossentropy`.

    Keras first rescales each column of A to sum to 1 along the class axis, then clips p to
    [EPSILON, 1 - EPSILON] before the log; for a softmax output the rescaling changes nothing,
    for any other output (sigmoid, say) it is part of the loss. With g_i = dL/dp_i = -y_i / p_i
    (0 where the clip is active) and s = sum_j a_j, dL/da_k = (g_k - sum_i g_i p_i) / s; for a
    one-hot y inside the clip that is 1/s - y_k / a_k. Fused with softmax, dL/dZ = A - Y.

    A compiled Keras model on the TensorFlow backend does not apply this rule to a sigmoid
    output: the sigmoid's result carries its logits, and the loss takes a softmax of those
    instead. So a Keras twin of a sigmoid/categorical cross-entropy network reports a
    different loss; with a softmax output both agree.
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def check_output(self, activation):
        """Refuse an output activation that can be <= 0 (linear, relu, tanh, leaky_relu): on such
        outputs p = a / sum_j a_j leaves [0, 1], so log p_y is clipped (a zero gradient) or NaN.

        Args:
            activation: The output layer's `activations.Activation`; accepted when its
                `positive` is True (softmax, sigmoid).

        Raises:
            ValueError: naming the activation, with the reason.
        """
        if not getattr(activation, "positive", False):
            raise ValueError(
                f"The categorical cross-entropy takes log(a_y / sum_j a_j), so it needs outputs > 0, "
                f"but the output activation {activation.name!r} can be <= 0 (the loss is then NaN, or "
                f"clipped with a zero gradient). Use 'softmax' (or 'sigmoid'), or another loss. "
                f"Received: activation={activation.name!r}")

    def forward(self, A, Y):
        P = A / A.sum(axis=0, keepdims=True)
        return -(Y * np.log(np.clip(P, EPSILON, 1 - EPSILON))).sum(axis=0)

    def backward(self, A, Y):
        S = A.sum(axis=0, keepdims=True)
        P = A / S
        inside = (P >= EPSILON) & (P <= 1 - EPSILON)  # tf.clip_by_value passes the gradient at the bounds
        G = np.where(inside, -Y / np.clip(P, EPSILON, None), 0)  # dL/dP
        return ((G - (G * P).sum(axis=0, keepdims=True)) / S).astype(A.dtype, copy=False)

    def forward_logits(self, Z, Y):
        return -(Y * _log_softmax(Z)).sum(axis=0)

    def backward_logits(self, A, Y):
        return A - Y


class BinaryCrossentropy(Loss):
    """L = -(1/n) sum_i [y_i log a_i + (1 - y_i) log(1 - a_i)]; fused with sigmoid, dL/dZ = (A - Y)/n."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def forward(self, A, Y):
        A = np.clip(A, EPSILON, 1 - EPSILON)
        return -(Y * np.log(A) + (1 - Y) * np.log(1 - A)).mean(axis=0)

    def backward(self, A, Y):
        inside = (A > EPSILON) & (A < 1 - EPSILON)
        A_c = np.clip(A, EPSILON, 1 - EPSILON)
        grad = (A_c - Y) / (A_c * (1 - A_c)) / A.shape[0]
        return np.where(inside, grad, 0).astype(A.dtype, copy=False)

    def forward_logits(self, Z, Y):
        # log(1 + e^-|z|) + max(z, 0) - z y  ==  -[y log s(z) + (1 - y) log(1 - s(z))]
        return (np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))).mean(axis=0)

    def backward_logits(self, A, Y):
        return (A - Y) / A.shape[0]


class MeanSquaredError(Loss):
    """L = (1/n) sum_i (a_i - y_i)^2; dL/dA = 2 (A - Y) / n."""

    name = "mean_squared_error"

    def forward(self, A, Y):
        return ((A - Y) ** 2).mean(axis=0)

    def backward(self, A, Y):
        return 2 * (A - Y) / A.shape[0]


_REGISTRY = {cls.name: cls for cls in (CategoricalCrossentropy, BinaryCrossentropy, MeanSquaredError)}
_ALIASES = {"mse": "mean_squared_error", "cce": "categorical_crossentropy", "bce": "binary_crossentropy"}
NAMES = tuple(_REGISTRY)


def get(identifier):
    """Return a Loss for a name (or alias) or a Loss instance.

    Args:
        identifier: One of `NAMES`, an alias ("cce", "bce", "mse"), or a `Loss` (returned as is).

    Returns:
        A `Loss`.
    """
    if isinstance(identifier, Loss):
        return identifier
    name = _ALIASES.get(identifier, identifier)
    if name not in _REGISTRY:
        raise ValueError(f"Unknown loss. Expected one of {sorted(_REGISTRY)}. Received: loss={identifier!r}")
    return _REGISTRY[name]()
