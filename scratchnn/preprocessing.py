"""Turning uint8 images into model inputs: flatten, scale or standardise, one-hot, split."""

import numpy as np


def flatten(images):
    """(N, rows, cols) -> (N, rows * cols)."""
    return images.reshape(images.shape[0], -1)


def scale(X, dtype=np.float32):
    """Grey levels 0..255 -> [0, 1]."""
    return np.asarray(X, dtype=dtype) / dtype(255)


def standardize(X_train, *others, dtype=np.float32):
    """(X - mean) / std with the mean and std of the *training* pixels, applied to every array given."""
    scaled = [scale(X, dtype) for X in (X_train, *others)]
    mean, std = scaled[0].mean(dtype=np.float64), scaled[0].std(dtype=np.float64)
    return tuple(((X - mean) / std).astype(dtype) for X in scaled)


def one_hot(y, n_classes, dtype=np.float32):
    """Integer labels (N,) -> (N, n_classes), the Keras layout."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}). Received: label={y.min() if y.min() < 0 else y.max()}")
    return np.eye(n_classes, dtype=dtype)[y]


def train_val_split(X, y, val_size, rng):
    """Shuffle with `rng` and hold out `val_size` examples (an int, or a fraction in (0, 1))."""
    N = X.shape[0]
    n_val = int(round(val_size * N)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 <= n_val < N:
        raise ValueError(f"val_size must leave at least one training example. Received: val_size={val_size}")
    order = rng.permutation(N)
    train, val = order[n_val:], order[:n_val]
    return (X[train], y[train]), (X[val], y[val])
