"""The PyTorch twin: the same network, initialiser, loss, L2, dropout, batches and update rules.

Weights start from scratchnn's initialisers (the Keras schemes) drawn from this framework's own
seed, or from scratchnn's weights in parity mode. nn.Linear stores W^l as (n^l, n^(l-1)), the
derivation's layout. The update rules are Keras's (keras_rules.py), since PyTorch's Adam and
RMSprop place epsilon differently. Dropout draws from a torch.Generator of its own, so the
global torch seed is never touched; threads are set with torch.set_num_threads.
"""

import numpy as np
import torch
import torch.nn.functional as F

from scratchnn import initializers

from .. import names
from .base import EVAL_BATCH, Framework, epoch_loop, guard
from .keras_rules import keras_optimizer

ACTIVATIONS = {"linear": lambda Z: Z, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
               "leaky_relu": lambda Z: F.leaky_relu(Z, 0.2)}  # scratchnn's and keras.activations' slope


class MLP(torch.nn.Module):
    """Dense layers, the hidden ones followed by f and inverted dropout; returns the logits Z^L."""

    def __init__(self, sizes, activation, dropout, generator):
        super().__init__()
        self.dense = torch.nn.ModuleList(  # skip_init: Linear's own init would draw from the global torch seed
            torch.nn.utils.skip_init(torch.nn.Linear, n_prev, n) for n_prev, n in zip(sizes[:-1], sizes[1:]))
        self.f, self.rate, self.generator = ACTIVATIONS[activation], dropout, generator

    def forward(self, A):
        for layer in self.dense[:-1]:
            A = self.f(layer(A))
            if self.training and self.rate:
                keep = torch.rand(A.shape, generator=self.generator) >= self.rate
                A = A * keep / (1 - self.rate)
        return self.dense[-1](A)


class Torch(Framework):
    name = "torch"
    model_file = "model.pt"

    @staticmethod
    def configure(cfg):
        torch.set_num_threads(cfg.train.threads)
        try:
            torch.set_num_interop_threads(cfg.train.threads)
        except RuntimeError:  # only settable before the first parallel work in this process
            pass
        return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}

    def __init__(self, cfg, seed_sequence, n_in, n_out):
        super().__init__(cfg, seed_sequence, n_in, n_out)
        m = cfg.model
        init_seed, dropout_seed = seed_sequence.spawn(2)
        generator = torch.Generator().manual_seed(int(dropout_seed.generate_state(1)[0]))
        self.model = MLP([n_in] + [m.width] * m.depth + [n_out], m.activation, m.dropout, generator)
        rng, init = np.random.default_rng(init_seed), initializers.get(m.init)
        with torch.no_grad():
            for layer in self.model.dense:
                layer.weight.copy_(torch.from_numpy(init(tuple(layer.weight.shape), rng)))
                layer.bias.zero_()
        self.optimizer = keras_optimizer(cfg.optimizer, list(self.model.parameters()))

    def params(self):
        return {names.GUARD_EVERY: 1}

    def _loss(self, Z, y):
        """Cross-entropy of softmax(Z^L) plus the L2 penalty on the kernels, as Keras reports it."""
        loss = F.cross_entropy(Z, y)
        if self.cfg.model.l2:
            loss = loss + self.cfg.model.l2 * sum((layer.weight ** 2).sum() for layer in self.model.dense)
        return loss

    def _step(self, X, y):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        Z = self.model(X)
        loss = self._loss(Z, y)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), Z.detach()

    def warm_up(self, data):
        """warmup_steps steps, then the weights and the optimizer state are put back."""
        (X, y), M = data["train"], self.cfg.train.batch_size
        saved = ({k: v.clone() for k, v in self.model.state_dict().items()}, self.optimizer.state_copy())
        for s in range(min(self.cfg.train.warmup_steps, len(X) // M)):
            self._step(torch.from_numpy(X[s * M:(s + 1) * M]), torch.from_numpy(y[s * M:(s + 1) * M]))
        self.model.load_state_dict(saved[0])
        self.optimizer.restore(saved[1])

    def fit(self, data, order_rng, on_epoch_end):
        (X, y), t = data["train"], self.cfg.train
        X, y, M = torch.from_numpy(X), torch.from_numpy(y), t.batch_size

        def run_epoch(epoch, order):
            order = torch.from_numpy(order)
            Xs, ys = X[order], y[order]
            total, correct = 0.0, 0
            for s, i in enumerate(range(0, len(Xs), M)):
                loss, Z = self._step(Xs[i:i + M], ys[i:i + M])
                total += loss.item() * len(Z)
                correct += int((Z.argmax(1) == ys[i:i + M]).sum())
                guard((epoch + 1, s + 1), total / min(len(Xs), i + M), t.max_loss)
            logs = {"loss": total / len(Xs), "accuracy": correct / len(Xs)}
            if data["val"] is not None:
                logs["val_loss"], logs["val_accuracy"] = self.evaluate(*data["val"])
            return logs

        return epoch_loop(run_epoch, on_epoch_end, epochs=t.epochs, n=len(X), order_rng=order_rng)

    @torch.no_grad()
    def _logits(self, X, batch_size=EVAL_BATCH):
        self.model.eval()
        X = torch.from_numpy(np.ascontiguousarray(X))
        return torch.cat([self.model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])

    def evaluate(self, X, y):
        Z, y = self._logits(X), torch.from_numpy(np.asarray(y, dtype=np.int64))
        with torch.no_grad():
            loss = self._loss(Z, y)
        return float(loss), float((Z.argmax(1) == y).double().mean())

    def predict(self, X):
        return torch.softmax(self._logits(X), dim=1).numpy()

    def train_on_batch(self, X, y):
        return float(self._step(torch.from_numpy(X), torch.from_numpy(np.asarray(y, dtype=np.int64)))[0])

    def get_weights(self):
        return [w for layer in self.model.dense
                for w in (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())]

    @torch.no_grad()
    def set_weights(self, weights):
        for layer, kernel, bias in zip(self.model.dense, weights[0::2], weights[1::2]):
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            layer.bias.copy_(torch.from_numpy(np.asarray(bias)))

    def save(self, path):
        torch.save(self.model.state_dict(), path)


FRAMEWORK = Torch
