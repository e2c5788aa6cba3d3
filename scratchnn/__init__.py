"""scratchnn: a fully connected network written from scratch in NumPy.

Forward: Z^l = W^l A^(l-1) + b^l, A^l = f(Z^l). Backward: BP1.2-BP4.2 (docs/derivation.md).
"""

from . import activations, initializers, losses, optimizers
from .layers import Dense, Dropout
from .network import Network, TrainingDiverged
from .optimizers import SGD, Adam, RMSprop


def mlp(input_dim, depth, width, n_out, activation="relu", output_activation="softmax",
        kernel_initializer="glorot_uniform", dropout=0.0, l2=0.0, **network_kwargs):
    """`depth` hidden Dense layers of `width` units (each followed by Dropout if dropout > 0),
    then an output Dense layer of `n_out` units."""
    if not (isinstance(depth, int) and depth >= 0):
        raise ValueError(f"depth must be an integer >= 0. Received: depth={depth!r}")
    layers = []
    for _ in range(depth):
        layers.append(Dense(width, activation, kernel_initializer, l2))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(n_out, output_activation, kernel_initializer, l2))
    return Network(input_dim, layers, **network_kwargs)


__all__ = ["Dense", "Dropout", "Network", "TrainingDiverged", "SGD", "Adam", "RMSprop", "mlp",
           "activations", "initializers", "losses", "optimizers"]
