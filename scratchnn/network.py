"""A fully connected network: Keras-style (M, features) arrays outside, columns inside.

The public methods take X of shape (M, features) and integer labels y of shape (M,), as
Keras and scikit-learn do; at the boundary they become A^0 = X^T of shape (n^0, M) and the
target matrix Y of shape (n^L, M), so every line inside follows the derivation.
"""

import numpy as np

from . import inputs, layers as layers_mod, losses, optimizers, saving
from .inputs import positive_int as _positive_int
from .training import Fit, Trainer, TrainingDiverged  # noqa: F401 (TrainingDiverged: public here)


class Network:
    """Dense layers (and optional Dropout) trained by backpropagation and an optimizer.

    `rng` is the only source of randomness (initial weights, shuffling, dropout); pass a
    `np.random.Generator` or a `seed` to make one. The same seed gives bit-identical weights.

    Args:
        input_dim: Positive integer, the number of input features n^0.
        layers: List of `Dense` and `Dropout` layers, not yet built; the last one is Dense.
        loss: Name of the loss (see `losses.NAMES`) or a `losses.Loss`. Default
            "categorical_crossentropy".
        optimizer: Name of the optimizer (see `optimizers.NAMES`), a config dict, or an
            `optimizers.Optimizer`. Default "sgd".
        seed: Seed for a new `np.random.Generator`, used when `rng` is None.
        rng: The `np.random.Generator` for initial weights, shuffling and dropout.
        dtype: "float32" (default) or "float64", the dtype of weights and computations.
    """

    def __init__(self, input_dim, layers, *, loss="categorical_crossentropy", optimizer="sgd",
                 seed=None, rng=None, dtype="float32"):
        self.input_dim = _positive_int("input_dim", input_dim)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64. Received: dtype={dtype!r}")
        if not layers or not isinstance(layers[-1], layers_mod.Dense):
            raise ValueError(f"The last layer must be Dense. Received: layers={layers!r}")
        self.layers = list(layers)
        self.loss = losses.get(loss)
        self.loss.check_output(self.layers[-1].activation)  # e.g. CCE needs outputs > 0
        self.optimizer = optimizers.get(optimizer)
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        n = self.input_dim
        for layer in self.layers:
            n = layer.build(n, self.rng, self.dtype)
        self.n_out = n
        self.fused = self.loss.fused_activation == self.layers[-1].activation.name
        self._trainer_ = None  # training.Trainer, made by the first training step

    # ---- forward and backward ------------------------------------------------------------
    def forward(self, A, training=False):
        """A^L for A^0 = A of shape (n^0, M), layer by layer (the column layout, not Keras's).

        Args:
            A: A^0 = X^T, shape (n^0, M).
            training: Whether this is a training step (dropout active, buffers reused).

        Returns:
            A^L, shape (n^L, M).
        """
        for layer in self.layers:
            A = layer.forward(A, training)
        return A

    def backward(self, A, Y):
        """Delta^L from the loss (BP1.2), then each layer back to the first (BP2.2-BP4.2);
        afterwards `grads` holds dC/dW^l and dC/db^l of every Dense layer.

        Args:
            A: A^L of the last `forward` call, shape (n^L, M).
            Y: The target matrix, shape (n^L, M) (see `losses.from_labels`).
        """
        out, deep = self.layers[-1], len(self.layers) > 1
        if self.fused:
            dA = out.backward_delta(self.loss.backward_logits(A, Y), deep)
        else:
            dA = out.backward(self.loss.backward(A, Y), deep)
        for i in range(len(self.layers) - 2, -1, -1):
            dA = self.layers[i].backward(dA, i > 0)

    def cost(self, A, Y):
        """Per-example losses of the current forward pass; the fused path reads Z^L, not log(A^L).

        Args:
            A: A^L of the last `forward` call, shape (n^L, M).
            Y: The target matrix, shape (n^L, M).

        Returns:
            Losses, shape (M,), without the L2 penalty.
        """
        if self.fused:
            return self.loss.forward_logits(self.layers[-1].ctx[1], Y)
        return self.loss.forward(A, Y)

    def penalty(self):
        """The L2 terms of every layer, added to the cost."""
        return sum(layer.penalty() for layer in self.layers)

    @property
    def params(self):
        """[W^1, b^1, W^2, b^2, ...], the arrays the optimizer updates in place."""
        return [p for layer in self.layers for p in layer.params]

    @property
    def grads(self):
        """[dC/dW^1, dC/db^1, ...] of the last backward pass (or training step), as `params`."""
        return [g for layer in self.layers for g in layer.grads]

    # ---- training ---------------------------------------------------------------------
    def fit(self, X, y, *, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=True,
            on_epoch_end=None, max_loss=None):
        """Train for `epochs` epochs of S = ceil(N / batch_size) steps; the last batch may be partial.

        Args:
            X: Inputs, shape (N, input_dim), N >= 1, finite.
            y: Integer labels, shape (N,), in [0, n_out) (in [0, 2) for a single output unit).
            epochs: Positive integer, the number of passes over the data.
            batch_size: Positive integer M, the examples per step.
            validation_data: None, or a pair (X_val, y_val) evaluated after every epoch.
            shuffle: True to draw a new order every epoch from the network's Generator, False to
                keep the order of X, or a `np.random.Generator` of its own (so that another model
                can be given the same order).
            verbose: Whether to show progress: a bar over epochs if tqdm is installed, else one
                line per epoch on stdout.
            on_epoch_end: None, or a callable `on_epoch_end(epoch, logs)` called after every epoch,
                epoch counted from 0 and logs the dict of that epoch's figures.
            max_loss: None, or a float: a running mean of the epoch's loss above it raises
                TrainingDiverged (as does a non-finite batch loss, always).

        Returns:
            A history dict of per-epoch lists: loss, accuracy, val_loss, val_accuracy (NaN
            without validation_data) and epoch_time (seconds, from the epoch's permutation to
            the end of its validation pass, as the Keras and PyTorch twins time an epoch).
        """
        epochs = _positive_int("epochs", epochs)
        M = _positive_int("batch_size", batch_size)
        inputs.check_max_loss(max_loss)
        X, _, y = self._prepare(X, y, targets=False)  # each epoch makes the targets of its batches
        if inputs.check_validation_data(validation_data) is not None:
            validation_data = self._prepare(*validation_data, names=("validation_data[0]", "validation_data[1]"))
        shuffle_rng = shuffle if isinstance(shuffle, np.random.Generator) else (self.rng if shuffle else None)
        fit = Fit(X=X, y=y, epochs=epochs, M=M, validation_data=validation_data, shuffle_rng=shuffle_rng,
                  verbose=verbose, on_epoch_end=on_epoch_end, max_loss=max_loss)
        return self._trainer.fit(fit)

    @property
    def _trainer(self):
        """The training steps and epochs (training.Trainer), made on first use."""
        if self._trainer_ is None:
            self._trainer_ = Trainer(self)
        return self._trainer_

    def train_on_batch(self, X, y):
        """One step on one batch, as keras.Model.train_on_batch.

        Args:
            X: Inputs, shape (M, input_dim).
            y: Integer labels, shape (M,).

        Returns:
            The batch's cost (mean loss plus the L2 penalty) before the step.
        """
        X, Y, _ = self._prepare(X, y)
        return self._trainer.step(X, Y, (0, self.optimizer.iterations + 1))[1]

    # ---- inference --------------------------------------------------------------------
    def predict(self, X, batch_size=4096):
        """Output activations A^L for X, in Keras layout (M, n^L).

        Args:
            X: Inputs, shape (M, input_dim), M >= 1.
            batch_size: Positive integer, the examples per forward pass.

        Returns:
            Array of shape (M, n_out) in the network's dtype.
        """
        batch_size = _positive_int("batch_size", batch_size)
        X = inputs.check_X(X, self.input_dim, self.dtype)
        out = [self.forward(X[i:i + batch_size].T).T for i in range(0, X.shape[0], batch_size)]
        return np.concatenate(out, axis=0)

    def predict_classes(self, X, batch_size=4096):
        """Predicted labels: the argmax of each output row, or output > 0.5 for a single unit.

        Args:
            X: Inputs, shape (M, input_dim), M >= 1.
            batch_size: Positive integer, the examples per forward pass.

        Returns:
            Integer labels, shape (M,).
        """
        return self._classes(self.predict(X, batch_size).T)

    def evaluate(self, X, y, batch_size=4096):
        """(loss, accuracy) over X, y, the loss including the L2 penalty as Keras reports it.

        Args:
            X: Inputs, shape (M, input_dim), M >= 1.
            y: Integer labels, shape (M,).
            batch_size: Positive integer, the examples per forward pass.

        Returns:
            A tuple (loss, accuracy) of floats.
        """
        batch_size = _positive_int("batch_size", batch_size)
        return self._evaluate(*self._prepare(X, y), batch_size=batch_size)

    def _evaluate(self, X, Y, y, batch_size=4096):
        total = correct = 0.0
        for i in range(0, X.shape[0], batch_size):
            A = self.forward(X[i:i + batch_size].T)
            Yb = Y[:, i:i + batch_size]
            total += float(self.cost(A, Yb).sum())
            correct += float((self._classes(A) == y[i:i + batch_size]).sum())
        return total / X.shape[0] + self.penalty(), correct / X.shape[0]

    def _classes(self, A):
        return (A[0] > 0.5).astype(np.int64) if self.n_out == 1 else A.argmax(axis=0)

    # ---- input checks at the boundary ----------------------------------------------------
    def _prepare(self, X, y, names=("X", "y"), targets=True):
        """(X, Y, y): X checked (shape, at least one example, finite), y checked against it, and
        the target matrix Y of shape (n^L, M) (None unless `targets`); `names` name the arguments
        in error messages."""
        X = inputs.check_X(X, self.input_dim, self.dtype, names[0])
        n_classes = 2 if self.n_out == 1 else self.n_out
        y = inputs.check_labels(y, X.shape[0], n_classes, name=names[1], X_name=names[0])
        return X, losses.from_labels(y, self.n_out, self.dtype) if targets else None, y

    # ---- weights and persistence ----------------------------------------------------------
    def get_weights(self):
        """Copies of the weights in Keras layout: [kernel (n_in, n_out), bias (n_out,)] per Dense layer."""
        return [w for layer in self._dense() for w in (layer.W.T.copy(), layer.b.ravel().copy())]

    def set_weights(self, weights):
        """Copy weights in, in the layout of `get_weights` (also that of keras.Model.get_weights).

        Args:
            weights: List of arrays [kernel (n_in, n_out), bias (n_out,), ...], two per Dense layer.
        """
        dense = self._dense()
        if len(weights) != 2 * len(dense):
            raise ValueError(f"Expected {2 * len(dense)} arrays. Received: len(weights)={len(weights)}")
        for layer, kernel, bias in zip(dense, weights[0::2], weights[1::2]):
            kernel, bias = np.asarray(kernel), np.asarray(bias)
            if kernel.shape != layer.W.T.shape or bias.shape != (layer.units,):
                raise ValueError(f"Expected kernel {layer.W.T.shape} and bias ({layer.units},). "
                                 f"Received: kernel.shape={kernel.shape}, bias.shape={bias.shape}")
            layer.W[...] = kernel.T
            layer.b[...] = bias.reshape(-1, 1)

    def _dense(self):
        return [layer for layer in self.layers if isinstance(layer, layers_mod.Dense)]

    def get_config(self):
        """The architecture, loss, optimizer and dtype as a JSON-serialisable dict."""
        return {
            "input_dim": self.input_dim,
            "layers": [layer.get_config() for layer in self.layers],
            "loss": self.loss.name,
            "optimizer": self.optimizer.get_config(),
            "dtype": self.dtype.name,
        }

    def save(self, path):
        """Architecture (JSON) and weights to one .npz file.

        Args:
            path: File path; NumPy appends ".npz" when the name has no such suffix.

        Raises:
            ValueError: if a layer cannot be rebuilt from its config (a callable initialiser);
                nothing is written then.
        """
        saving.save(self, path)

    @classmethod
    def load(cls, path, seed=None):
        """The network saved in `path`, with its weights (the optimizer's state is not saved).

        Args:
            path: A file written by `save`.
            seed: Seed of the new network's Generator (for later shuffling and dropout).

        Raises:
            ValueError: naming the file, if it is not a model file `save` could have written (a
                bad archive, bad JSON, a bad layer, or arrays whose shapes do not match the
                layers), before any weight is allocated.
        """
        return saving.load(cls, path, seed)
