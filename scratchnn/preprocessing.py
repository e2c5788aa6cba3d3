"""Turning uint8 images into model inputs: flatten, scale or standardise, one-hot, split."""

import numpy as np


def flatten(images):
    """(N, rows, cols) -> (N, rows * cols).

    Args:
        images: Array of shape (N, ...).

    Returns:
        Array of shape (N, product of the other dimensions).
    """
    return images.reshape(images.shape[0], -1)


def scale(X, dtype=np.float32, out=None):
    """Grey levels 0..255 -> [0, 1].

    Args:
        X: Array of grey levels.
        dtype: dtype of the result.
        out: Optional array of X's shape and `dtype` that receives the result.

    Returns:
        X / 255 in `dtype` (X cast to `dtype`, then divided), in `out` if given.
    """
    return np.divide(X, dtype(255), out=out, dtype=dtype)


def standardize(X_train, *others, dtype=np.float32):
    """(X - mean) / std with the mean and std of the *training* pixels, applied to every array given.

    Args:
        X_train: Training grey levels; the mean and std come from these alone.
        *others: More arrays (validation, test) standardised with the same mean and std.
        dtype: dtype of the results.

    Returns:
        A tuple with one standardised array per array given.
    """
    scaled = [scale(X, dtype) for X in (X_train, *others)]
    mean, std = scaled[0].mean(dtype=np.float64), scaled[0].std(dtype=np.float64)
    return tuple(((X - mean) / std).astype(dtype) for X in scaled)


def one_hot(y, n_classes, dtype=np.float32):
    """Integer labels (N,) -> (N, n_classes), the Keras layout.

    Args:
        y: Integer labels, shape (N,), in [0, n_classes).
        n_classes: Positive integer, the number of classes.
        dtype: dtype of the result.

    Returns:
        Array of shape (N, n_classes).
    """
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}). Received: label={y.min() if y.min() < 0 else y.max()}")
    return np.eye(n_classes, dtype=dtype)[y]


def train_val_split(X, y, val_size, rng):
    """Shuffle with `rng` and hold out `val_size` examples.

    Args:
        X: Inputs, shape (N, ...).
        y: Labels, shape (N,).
        val_size: Number of validation examples (an int), or a fraction in (0, 1); it must leave
            at least one training example.
        rng: The `np.random.Generator` of the shuffle.

    Returns:
        ((X_train, y_train), (X_val, y_val)).
    """
    N = X.shape[0]
    n_val = int(round(val_size * N)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 <= n_val < N:
        raise ValueError(f"val_size must leave at least one training example. Received: val_size={val_size}")
    order = rng.permutation(N)
    train, val = order[n_val:], order[:n_val]
    return (X[train], y[train]), (X[val], y[val])
