"""Checks at the public boundary: every bad argument is a ValueError naming it, Keras style
("... Received: batch_size=0"), raised before any step or allocation depends on it."""

import numpy as np


def positive_int(name, value):
    """`value` as an int, if it is an integer >= 1 (not a bool).

    Args:
        name: The argument's name, for the message.
        value: The value to check.
    """
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_X(X, input_dim, dtype, name="X"):
    """X as a C-contiguous array of `dtype`: shape (M, input_dim) with M >= 1, every entry finite.

    Args:
        X: The inputs, array-like.
        input_dim: The number of features the network takes.
        dtype: The network's dtype.
        name: The argument's name, for the message.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != input_dim:
        raise ValueError(f"{name} must have shape (M, {input_dim}). Received: {name}.shape={X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example. Received: {name}.shape={X.shape}")
    X = np.ascontiguousarray(X, dtype=dtype)
    # One pass, no mask: NaN and inf propagate into the sum of squares (one dot product). A sum
    # that overflows although every entry is finite (entries above ~1e19 in float32) is told apart
    # by the exact scan.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.vdot(X, X)
    if not np.isfinite(total):
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            i, j = bad[0]
            raise ValueError(f"{name} must be finite. Received: {name}[{i}, {j}]={X[i, j]}")
    return X


def check_labels(y, M, n_classes, *, name="y", X_name="X"):
    """y as an array of M integer labels in [0, n_classes).

    Args:
        y: The labels, array-like.
        M: The number of examples in the matching X.
        n_classes: The number of classes (2 for a single output unit).
        name: The argument's name, for the message.
        X_name: The matching inputs' name, for the message.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != M:
        raise ValueError(f"{name} must have shape ({M},) to match {X_name}. Received: {name}.shape={y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels. Received: {name}.dtype={y.dtype}")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"labels must be in [0, {n_classes}). Received: {name}[{i}]={y[i]}")
    return y


def check_validation_data(validation_data):
    """`validation_data` must be None or a pair (X_val, y_val).

    Args:
        validation_data: The value passed to `fit`.
    """
    if validation_data is None or (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        return validation_data
    kind = type(validation_data).__name__
    if isinstance(validation_data, (tuple, list)):
        kind += f" of length {len(validation_data)}"
    raise ValueError(f"validation_data must be a pair (X_val, y_val). Received: validation_data=a {kind}")


def check_max_loss(max_loss):
    """`max_loss` must be None or a number > 0.

    Args:
        max_loss: The value passed to `fit`.
    """
    if max_loss is not None and not (isinstance(max_loss, (int, float)) and not isinstance(max_loss, bool)
                                     and max_loss > 0):
        raise ValueError(f"max_loss must be None or a number > 0. Received: max_loss={max_loss!r}")
    return max_loss
