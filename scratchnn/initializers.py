"""Weight initialisers with the distributions of Keras 3's VarianceScaling family.

Each is called as `init(shape, rng, dtype)` with shape = (n^l, n^(l-1)) = (fan_out, fan_in),
the layout of W^l. With n = fan_in, fan_out or their mean, and scale s:

- uniform: U(-limit, limit) with limit = sqrt(3 s / n)       (Var = s / n)
- normal:  a normal truncated at two standard deviations, with
           stddev = sqrt(s / n) / 0.87962566103423978 so that Var = s / n after truncation

glorot_* use s = 1, n = (fan_in + fan_out) / 2; he_* use s = 2, n = fan_in;
lecun_normal uses s = 1, n = fan_in. Biases start at zero.
"""

import numpy as np

TRUNCATION_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def truncated_normal(rng, shape, stddev, dtype):
    """Normal(0, stddev) with values beyond 2 stddev drawn again, as tf.random.truncated_normal.

    Args:
        rng: The `np.random.Generator` to draw from.
        shape: Shape of the result.
        stddev: Standard deviation of the normal before truncation.
        dtype: dtype of the result.

    Returns:
        An array of `shape`.
    """
    X = rng.standard_normal(shape)
    bad = np.abs(X) > 2
    while bad.any():
        X[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(X) > 2
    return (X * stddev).astype(dtype)


class VarianceScaling:
    """Keras's VarianceScaling: Var(w) = scale / n, n chosen by `mode` (see the module docstring).

    Called as `init(shape, rng, dtype)` with shape = (fan_out, fan_in).

    Args:
        name: The name it is saved under (one of `NAMES` for the registry's instances).
        scale: Positive float s.
        mode: "fan_in", "fan_out" or "fan_avg".
        distribution: "uniform" or "truncated_normal".
    """

    def __init__(self, name, scale, mode, distribution):
        self.name, self.scale, self.mode, self.distribution = name, scale, mode, distribution

    def __call__(self, shape, rng, dtype=np.float32):
        fan_out, fan_in = shape
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape).astype(dtype)
        return truncated_normal(rng, shape, np.sqrt(variance) / TRUNCATION_STD, dtype)


class Zeros:
    """All zeros; called as `init(shape, rng=None, dtype)`."""

    name = "zeros"

    def __call__(self, shape, rng=None, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)


_REGISTRY = {
    "glorot_uniform": lambda: VarianceScaling("glorot_uniform", 1.0, "fan_avg", "uniform"),
    "glorot_normal": lambda: VarianceScaling("glorot_normal", 1.0, "fan_avg", "truncated_normal"),
    "he_uniform": lambda: VarianceScaling("he_uniform", 2.0, "fan_in", "uniform"),
    "he_normal": lambda: VarianceScaling("he_normal", 2.0, "fan_in", "truncated_normal"),
    "lecun_normal": lambda: VarianceScaling("lecun_normal", 1.0, "fan_in", "truncated_normal"),
    "zeros": Zeros,
}
NAMES = tuple(_REGISTRY)


def serialize(initializer):
    """The name that `get` turns back into `initializer`, for saving.

    Args:
        initializer: An initialiser made by `get` from a name.

    Returns:
        Its name, one of `NAMES`.

    Raises:
        ValueError: for any other callable (a function, or a VarianceScaling with parameters of
            its own): a saved model stores names only, so `Network.load` could not rebuild it.
    """
    name = getattr(initializer, "name", None)
    if isinstance(name, str) and name in _REGISTRY:
        named = _REGISTRY[name]()
        if type(named) is type(initializer) and vars(named) == vars(initializer):
            return name
    raise ValueError(
        f"Only the named initializers {sorted(_REGISTRY)} can be saved: a model file stores the name, "
        f"and Network.load could not rebuild any other. Received: kernel_initializer={initializer!r}"
    )


def get(identifier):
    """Return an initialiser for a name, or pass a callable through.

    Args:
        identifier: One of `NAMES`, or a callable `init(shape, rng, dtype)` returning an array
            of `shape` = (fan_out, fan_in). A network built with such a callable trains, but
            cannot be saved (see `serialize`).

    Returns:
        A callable `init(shape, rng, dtype)`.
    """
    if callable(identifier) and not isinstance(identifier, str):
        return identifier
    if identifier not in _REGISTRY:
        raise ValueError(
            f"Unknown initializer. Expected one of {sorted(_REGISTRY)}. Received: initializer={identifier!r}"
        )
    return _REGISTRY[identifier]()
