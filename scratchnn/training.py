"""What a training loop reports (divergence as an exception, progress as a bar or plain lines),
and the loops over epochs and over the steps of an epoch (`Trainer`); the step itself is
`scratchnn.step`."""

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import losses, step as step_mod
from .buffers import Plan


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (raised before that step's update is applied),
    or its running mean over the epoch passed `max_loss` (checked after the step).

    Args:
        epoch: The epoch, counted from 1 (0 for `train_on_batch`).
        step: The step within the epoch, counted from 1, or None.
        loss: The non-finite batch loss, or the running mean that passed `max_loss`.
        max_loss: The bound that was passed, or None.
    """

    def __init__(self, epoch, step, loss, max_loss=None):
        self.epoch, self.step, self.loss = epoch, step, loss
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        why = f" (running mean above max_loss={max_loss})" if math.isfinite(loss) and max_loss is not None else ""
        super().__init__(f"training diverged: loss={loss} at {where}{why}")


def progress(epochs, verbose):
    """The epochs 0 .. epochs - 1 to iterate over, with `report(epoch, logs)` after each: a tqdm bar
    when verbose and tqdm is installed, one plain line per epoch on stdout when verbose without
    tqdm, nothing when not verbose.

    Args:
        epochs: The number of epochs.
        verbose: Whether to show progress.
    """
    if not verbose:
        return _Quiet(epochs)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Lines(epochs)
    return _Bar(tqdm(range(epochs), desc="scratchnn", unit="epoch", leave=False))


class _Quiet:
    def __init__(self, epochs):
        self.epochs = epochs

    def __iter__(self):
        return iter(range(self.epochs))

    def report(self, epoch, logs):
        pass


class _Lines(_Quiet):
    def report(self, epoch, logs):
        figures = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k != "epoch_time")
        print(f"Epoch {epoch + 1}/{self.epochs} - {figures} - {logs['epoch_time']:.2f} s", file=sys.stdout, flush=True)


class _Bar:
    def __init__(self, bar):
        self.bar = bar

    def __iter__(self):
        return iter(self.bar)

    def report(self, epoch, logs):
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})


def batch_targets(ys, M, n_out, dtype):
    """The target matrix Y_b of every batch of an epoch: (S, n^L, M) for the S full batches
    (Y_b = full[s], C-contiguous) and (n^L, r) for a last, partial batch of r examples (empty
    when M divides N).

    Args:
        ys: The epoch's integer labels, in batch order, (N,).
        M: The batch size.
        n_out: n^L, the network's outputs.
        dtype: The dtype of the targets.
    """
    S = ys.shape[0] // M
    full = losses.from_labels(ys[:S * M], n_out, dtype).reshape(n_out, S, M).transpose(1, 0, 2)
    return np.ascontiguousarray(full), losses.from_labels(ys[S * M:], n_out, dtype)


@dataclass(frozen=True, kw_only=True)
class Fit:
    """A `Network.fit` call, its arguments checked.

    Args:
        X: Inputs (N, n^0), C-contiguous in the network's dtype.
        y: Integer labels (N,).
        epochs: The number of epochs.
        M: The batch size.
        validation_data: None, or the network's prepared (X, Y, y) of the validation set.
        shuffle_rng: The Generator of each epoch's permutation, or None to keep the order of X.
        verbose: Whether to show progress (`progress`).
        on_epoch_end: None, or `on_epoch_end(epoch, logs)`, as `Network.fit` takes it.
        max_loss: None, or the bound on the running mean loss, as `Network.fit` takes it.
    """

    X: np.ndarray
    y: np.ndarray
    epochs: int
    M: int
    validation_data: tuple = None
    shuffle_rng: np.random.Generator = None
    verbose: bool = False
    on_epoch_end: object = None
    max_loss: float = None


class Trainer:
    """The training steps of one Network: `scratchnn.step` on buffers kept from step to step
    (`buffers.Plan`, one per batch size), or the public step when the network cannot take it.

    Args:
        net: The Network.
    """

    _MAX_PLANS = 4  # batch sizes whose buffers are kept (fit needs two: M and the last batch)

    def __init__(self, net):
        self.net = net
        self._plans = {}

    def plan(self, M, kinds):
        """The buffers for a batch of M examples (made on first use), bound to the layers'
        current arrays.

        Args:
            M: The batch size.
            kinds: How each layer is stepped (`step.kinds`).
        """
        plan = self._plans.get(M)
        if plan is None:
            if len(self._plans) >= self._MAX_PLANS:
                self._plans.clear()
            plan = self._plans[M] = Plan(self.net, M)
        return plan.bind(kinds)

    def fit(self, f):
        """The epochs of a fit; returns `Network.fit`'s history.

        Args:
            f: The `Fit`.
        """
        net, N = self.net, f.X.shape[0]
        history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time")}
        bar = progress(f.epochs, f.verbose)
        for epoch in bar:
            start = time.perf_counter()
            order = f.shuffle_rng.permutation(N) if f.shuffle_rng is not None else np.arange(N)
            loss, accuracy = self.epoch(f, order, epoch + 1)
            logs = {"loss": loss, "accuracy": accuracy}
            if f.validation_data is not None:
                logs["val_loss"], logs["val_accuracy"] = net._evaluate(*f.validation_data)
            logs["epoch_time"] = time.perf_counter() - start  # from the permutation to the end of validation
            for key, values in history.items():
                values.append(logs.get(key, float("nan")))
            bar.report(epoch, logs)
            if f.on_epoch_end is not None:
                f.on_epoch_end(epoch, logs)
        return history

    def epoch(self, f, order, number):
        """One epoch, S = ceil(N / M) steps (S2); returns (mean loss, accuracy).

        Args:
            f: The `Fit`.
            order: The permutation (or arange) of the N examples.
            number: The epoch, counted from 1 (for TrainingDiverged).
        """
        net, X, M = self.net, f.X, f.M
        N, kinds = order.shape[0], step_mod.kinds(net)
        ys = f.y[order]
        full, last = batch_targets(ys, M, net.n_out, net.dtype)
        plans = {m: self.plan(m, kinds) if kinds is not None else None for m in {min(M, N), N % M or M}}
        outputs = np.empty((net.n_out, N), net.dtype)  # A^L of every example, classified at the end
        take, copyto, total, S = np.take, np.copyto, 0.0, -(-N // M)
        for s, start in enumerate(range(0, N, M), 1):
            idx = order[start:start + M]
            m = idx.shape[0]
            plan, Yb = plans[m], full[s - 1] if m == M else last
            if plan is None:  # the public step (see step.kinds)
                A, loss = self.public_step(X[idx], Yb, (number, s))
            else:
                take(X, idx, axis=0, out=plan.X, mode="clip")  # a permutation: always in range
                A, loss = self.fast_step(plan, Yb, (number, s), form_gradients=s == S)
            copyto(outputs[:, start:start + m], A)
            total += loss * m
            if f.max_loss is not None and total > f.max_loss * (start + m):
                raise TrainingDiverged(number, s, total / (start + m), f.max_loss)
        return total / N, np.count_nonzero(net._classes(outputs) == ys) / N

    def step(self, Xb, Yb, at=(0, 0)):
        """Forward, cost, backward and update on one batch, forming every layer's dW and db;
        returns (A^L, cost before the update).

        Args:
            Xb: The batch's inputs, (M, n^0).
            Yb: Its target matrix, (n^L, M), C-contiguous.
            at: (epoch, step), where the step is, for TrainingDiverged.
        """
        kinds = step_mod.kinds(self.net)
        if kinds is None:
            return self.public_step(Xb, Yb, at)
        plan = self.plan(Xb.shape[0], kinds)
        np.copyto(plan.X, Xb)
        return self.fast_step(plan, Yb, at)

    def fast_step(self, plan, Yb, at, *, form_gradients=True):
        """`scratchnn.step` on the batch in plan.X: forward and cost, then (if the cost is finite)
        backward and update; returns (A^L, cost before the update).

        Args:
            plan: The `buffers.Plan` holding the batch.
            Yb: Its target matrix, (n^L, M), C-contiguous.
            at: (epoch, step), for TrainingDiverged.
            form_gradients: Whether every Dense layer's dW and db must hold this step's gradient
                (`step.backward_and_update`).
        """
        A, batch_loss = step_mod.forward(self.net, plan, Yb)
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(*at, batch_loss)
        step_mod.backward_and_update(self.net, plan, Yb, A, form_gradients=form_gradients)
        return A, batch_loss

    def public_step(self, Xb, Yb, at):
        """The step as the derivation writes it: forward, cost, backward, optimizer.step; returns
        (A^L, cost before the update).

        Args:
            Xb: The batch's inputs, (M, n^0).
            Yb: Its target matrix, (n^L, M).
            at: (epoch, step), for TrainingDiverged.
        """
        net = self.net
        A = net.forward(Xb.T, training=True)
        batch_loss = float(net.cost(A, Yb).mean()) + net.penalty()
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(*at, batch_loss)
        net.backward(A, Yb)
        net.optimizer.step(net.params, net.grads)
        return A, batch_loss
