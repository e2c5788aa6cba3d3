"""scratchnn: a fully connected network written from scratch in NumPy.

Forward: Z^l = W^l A^(l-1) + b^l, A^l = f(Z^l). Backward: BP1.2-BP4.2 (docs/derivation.md).
"""

from . import activations, initializers, losses, optimizers
from .layers import Dense, Dropout
from .network import Network, TrainingDiverged
from .optimizers import SGD, Adam, RMSprop


def mlp(input_dim, depth, width, n_out, *, activation="relu", output_activation="softmax",
        kernel_initializer="glorot_uniform", dropout=0.0, l2=0.0, loss="categorical_crossentropy",
        optimizer="sgd", seed=None, rng=None, dtype="float32"):
    """A multilayer perceptron: `depth` hidden Dense layers of `width` units (each followed by
    Dropout when dropout > 0), then an output Dense layer of `n_out` units.

    Args:
        input_dim: Positive integer, the number of input features n^0.
        depth: Integer >= 0, the number of hidden layers.
        width: Positive integer, the units of every hidden layer.
        n_out: Positive integer, the units of the output layer (the number of classes, or 1 for
            a binary output).
        activation: Name of the hidden layers' activation (see `activations.NAMES`).
        output_activation: Name of the output layer's activation.
        kernel_initializer: Name of the weight initialiser of every layer (see
            `initializers.NAMES`), or a callable `init(shape, rng, dtype)` (such a network cannot
            be saved).
        dropout: Float in [0, 1), the dropout rate after each hidden layer; 0 adds no Dropout.
        l2: Float >= 0, the L2 factor of every Dense layer: l2 * sum(W^2) is added to the cost.
        loss: Name of the loss (see `losses.NAMES`) or a `losses.Loss`.
        optimizer: Name of the optimizer, a config dict, or an `optimizers.Optimizer`.
        seed: Seed for a new `np.random.Generator`, used when `rng` is None.
        rng: The `np.random.Generator` for initial weights, shuffling and dropout.
        dtype: "float32" (default) or "float64", the dtype of weights and computations.

    Returns:
        A built `Network`.
    """
    if not (isinstance(depth, int) and not isinstance(depth, bool) and depth >= 0):
        raise ValueError(f"depth must be an integer >= 0. Received: depth={depth!r}")
    layers = []
    for _ in range(depth):
        layers.append(Dense(width, activation, kernel_initializer=kernel_initializer, l2=l2))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(n_out, output_activation, kernel_initializer=kernel_initializer, l2=l2))
    return Network(input_dim, layers, loss=loss, optimizer=optimizer, seed=seed, rng=rng, dtype=dtype)


__all__ = ["Dense", "Dropout", "Network", "TrainingDiverged", "SGD", "Adam", "RMSprop", "mlp",
           "activations", "initializers", "losses", "optimizers"]
