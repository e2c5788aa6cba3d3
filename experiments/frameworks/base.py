"""The interface every framework implements, and the epoch loop the frameworks share.

A framework trains the model a config describes, on the data and batch order the runner gives
it, and reports what every framework reports (`names.EPOCH_METRICS` per epoch). Weights cross
between frameworks in Keras's layout: [kernel (n_in, n_out), bias (n_out,)] per Dense layer.
"""

import math
import time

from scratchnn import TrainingDiverged

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time")
EVAL_BATCH = 4096  # examples per forward pass when validating, evaluating or predicting: scratchnn's default


class Framework:
    """One implementation of the config's network.

    Args:
        cfg: the run's config (model, optimizer, train and the framework's own keys).
        seed_sequence: a `np.random.SeedSequence`, the only source of this model's randomness.
        n_in: input features.
        n_out: classes.
    """

    name = ""
    model_file = ""  # the saved model's file name inside the run's artifacts

    @staticmethod
    def configure(cfg):
        """Once per process, before any model is built: import the framework, set its thread
        counts; returns the settings in force as tags."""
        return {}

    def __init__(self, cfg, seed_sequence, n_in, n_out):
        self.cfg = cfg

    def params(self):
        """Params logged on the framework's run beside the config (its execution settings)."""
        return {}

    def warm_up(self, data):
        """Untimed steps that trace or allocate what the timed fit needs; leaves the model as built."""

    def fit(self, data, order_rng, on_epoch_end):
        """Train cfg.train.epochs epochs on data["train"], batches in the order `order_rng`
        permutes them, validating on data["val"] (or None); returns HISTORY_KEYS -> list."""
        raise NotImplementedError

    def evaluate(self, X, y):
        """(loss, accuracy) on X, y."""
        raise NotImplementedError

    def predict(self, X):
        """Class probabilities, shape (len(X), n_out), as a NumPy array."""
        raise NotImplementedError

    def train_on_batch(self, X, y):
        """One training step; returns the batch's loss before the step (parity checks)."""
        raise NotImplementedError

    # scratchnn's Network and keras.Model share these three; a framework whose `model` does not overrides them
    def get_weights(self):
        """[kernel (n_in, n_out), bias (n_out,)] per Dense layer, as NumPy arrays."""
        return self.model.get_weights()

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def save(self, path):
        self.model.save(path)


def epoch_loop(run_epoch, on_epoch_end, *, epochs, n, order_rng):
    """The loop Keras's and PyTorch's twins share: each epoch timed from its permutation of the
    n examples to the end of its validation, as scratchnn's fit does. `run_epoch(epoch, order)`
    trains one epoch and returns its logs."""
    history = {k: [] for k in HISTORY_KEYS}
    for epoch in range(epochs):
        start = time.perf_counter()
        logs = run_epoch(epoch, order_rng.permutation(n))
        logs["epoch_time"] = time.perf_counter() - start
        for key, values in history.items():
            values.append(logs.get(key, float("nan")))
        on_epoch_end(epoch, logs)
    return history


def guard(where, running_mean, max_loss):
    """scratchnn's divergence rule: a running mean loss that is not finite or above max_loss
    raises TrainingDiverged; `where` is (epoch, step), both counted from 1."""
    if not math.isfinite(running_mean) or (max_loss is not None and running_mean > max_loss):
        raise TrainingDiverged(*where, running_mean, max_loss)
