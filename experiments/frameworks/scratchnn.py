"""scratchnn itself: the network of `scratchnn.mlp`, trained by its own fit."""

import numpy as np
from hydra.utils import instantiate

import scratchnn as sn

from .. import names
from .base import Framework


class Scratchnn(Framework):
    name = "scratchnn"
    model_file = "model.npz"

    def __init__(self, cfg, seed_sequence, n_in, n_out):
        super().__init__(cfg, seed_sequence, n_in, n_out)
        m = cfg.model
        self.shape, self.warmup_seed = (n_in, n_out), seed_sequence.spawn(1)[0]
        self.model = sn.mlp(n_in, m.depth, m.width, n_out, activation=m.activation, output_activation="softmax",
                            kernel_initializer=m.init, dropout=m.dropout, l2=m.l2,
                            optimizer=instantiate(cfg.optimizer), rng=np.random.default_rng(seed_sequence))

    def params(self):
        return {names.GUARD_EVERY: 1}

    def warm_up(self, data):
        """A throwaway twin trains warmup_steps batches, so the timed model is untouched."""
        (X, y), M, steps = data["train"], self.cfg.train.batch_size, self.cfg.train.warmup_steps
        if steps:
            n = min(len(X), steps * M)
            twin = Scratchnn(self.cfg, self.warmup_seed, *self.shape)
            twin.model.fit(X[:n], y[:n], epochs=1, batch_size=M, validation_data=data["val"], shuffle=False,
                           verbose=False)

    def fit(self, data, order_rng, on_epoch_end):
        (X, y), t = data["train"], self.cfg.train
        return self.model.fit(X, y, epochs=t.epochs, batch_size=t.batch_size, validation_data=data["val"],
                              shuffle=order_rng, verbose=False, on_epoch_end=on_epoch_end, max_loss=t.max_loss)

    def evaluate(self, X, y):
        return self.model.evaluate(X, y)

    def predict(self, X):
        return self.model.predict(X)

    def train_on_batch(self, X, y):
        return float(self.model.train_on_batch(X, y))


FRAMEWORK = Scratchnn
