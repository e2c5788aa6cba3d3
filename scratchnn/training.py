"""What a training loop reports (divergence as an exception, progress as an optional bar), and
the training step itself, fused for speed.

`Network.forward`, `Network.cost`, `Network.backward` and `Optimizer.step` are the derivation
written out: F3, BP1.2-BP4.2, then the update rule. `_Trainer` computes the same step with the
same arrays W, b, Z, A, delta, dW, db, only with fewer and cheaper calls (its matrix products
through BLAS directly, `buffers.DenseStep`); `Network.fit`
and `train_on_batch` train through it:

- every array of a step (the gathered batch X_b, Z, A, delta, dL/dA, the output's column
  maxima and sums) lives in a buffer made once per batch size (`buffers.Plan`), so a step
  allocates no array;
  the targets Y_b of every batch are made once per epoch;
- softmax with the categorical cross-entropy is one pass over Z^L that yields A^L, the
  batch's loss (log sum e^(z - max z) - (z_y - max z) per column, the stable form of
  `CategoricalCrossentropy.forward_logits`) and Delta^L = A^L - Y;
- ReLU is computed in place of Z, and its derivative is the mask A > 0 (which is Z > 0);
- the 1/M of BP3.2/BP4.2 is applied once, to Delta^L: every later factor (BP2.2, a dropout
  mask) is linear in it, so each Delta^l comes out already divided by M. For plain SGD the
  learning rate joins it (lr/M instead of 1/M) and the update S1 joins BP3.2's product:
  one BLAS gemm computes W <- W - Delta^l (A^(l-1))^T in place, without writing dW (see
  `buffers`; a layer with an L2 term, or W not C-contiguous, takes dW and then W -= dW). Each
  Dense layer keeps that factor (`Dense._grad_scale`) and forms its gradient when asked, so
  `dW`, `db` and `Network.grads` still return dC/dW and dC/db;
- the bias gradient of BP4.2, Delta^l 1_M, is a matrix-vector product, as written;
- `fit`'s bookkeeping per step is one float (the batch loss, checked before the update) and
  one copy of A^L into an array of the epoch's outputs, classified once at the end.

Dropout and activations or losses without a fused form here go through their own public
`forward`/`backward`. A network with a layer of another class, or a method replaced on a layer
instance, trains through the public step itself (`_Trainer._public_step`).
"""

import math

import numpy as np

from . import activations, layers as layers_mod, losses, optimizers
from .buffers import RELU as _RELU, SOFTMAX_CCE as _SOFTMAX_CCE, DenseStep, Plan


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
    """A tqdm bar over epochs when verbose (tqdm is imported only then), else a plain range.

    Args:
        epochs: The number of epochs to iterate over.
        verbose: Whether to show the bar.
    """
    if not verbose:
        return _NoBar(epochs)
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="scratchnn", unit="epoch", leave=False)


class _NoBar(list):
    def __init__(self, epochs):
        super().__init__(range(epochs))

    def set_postfix(self, *args, **kwargs):
        pass


def _foldable_lr(optimizer):
    """lr when the update is plain w -= lr g (SGD itself, no momentum), else None."""
    plain = type(optimizer) is optimizers.SGD and optimizer.momentum == 0
    return optimizer.lr if plain else None


# ---- the fused training step ---------------------------------------------------------------
_DENSE = "dense"  # a Dense layer stepped through its activation's own forward/backward


def _kinds(net):
    """Per layer, how the fused step computes it: _RELU (hidden ReLU), _SOFTMAX_CCE (softmax
    output under the categorical cross-entropy), _DENSE (any other activation, through its own
    forward/backward), or None for a Dropout layer (its own forward/backward). None for the whole
    network when a layer is neither a Dense nor a Dropout, or has a method replaced on the
    instance: then every step is the public forward, cost, backward and optimizer.step."""
    kinds, last = [], len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        if any(name in vars(layer) for name in ("forward", "call", "backward", "backward_delta")):
            return None
        if type(layer) is layers_mod.Dropout:
            kinds.append(None)
        elif type(layer) is not layers_mod.Dense:
            return None
        elif i == last and net.n_out > 1 and type(net.loss) is losses.CategoricalCrossentropy \
                and not vars(net.loss) and type(layer.activation) is activations.Softmax and not vars(layer.activation):
            kinds.append(_SOFTMAX_CCE)
        elif i < last and type(layer.activation) is activations.ReLU and not vars(layer.activation):
            kinds.append(_RELU)
        else:
            kinds.append(_DENSE)
    return tuple(kinds)


def _batch_targets(ys, M, n_out, dtype):
    """The target matrix Y_b of every batch of an epoch whose labels, in batch order, are ys:
    (S, n^L, M) for the S full batches (Y_b = full[s], C-contiguous) and (n^L, r) for a last,
    partial batch of r examples (empty when M divides N)."""
    S = ys.shape[0] // M
    full = losses.from_labels(ys[:S * M], n_out, dtype).reshape(n_out, S, M).transpose(1, 0, 2)
    return np.ascontiguousarray(full), losses.from_labels(ys[S * M:], n_out, dtype)


class _Trainer:
    """The training step and epoch of one Network (see the module docstring): the same
    forward pass, cost, backpropagation and update as `forward`, `cost`, `backward` and
    `optimizer.step`, computed in place into buffers reused from step to step."""

    _MAX_PLANS = 4  # batch sizes whose buffers are kept (fit needs two: M and the last batch)

    def __init__(self, net):
        self.net = net
        self._plans = {}
        self._l2_scratch = {}  # a W-sized array per Dense layer with an L2 term

    def plan(self, M, kinds):
        """The buffers for a batch of M examples (made on first use), bound to the layers'
        current arrays and to `kinds`."""
        plan = self._plans.get(M)
        if plan is None:
            if len(self._plans) >= self._MAX_PLANS:
                self._plans.clear()
            plan = self._plans[M] = Plan(self.net, M)
        return plan.bind(kinds)

    # ---- one epoch ------------------------------------------------------------------------
    def epoch(self, X, y, order, M, epoch, max_loss=None):
        """One epoch over the examples in `order`, batches of M; returns (mean loss, accuracy).

        Args:
            X: Inputs (N, n^0), C-contiguous, in the network's dtype.
            y: Integer labels (N,).
            order: The permutation (or arange) of the N examples.
            M: The batch size.
            epoch: The epoch, counted from 1 (for TrainingDiverged).
            max_loss: None, or the bound on the running mean loss.
        """
        net = self.net
        N, kinds, lr = order.shape[0], _kinds(net), _foldable_lr(net.optimizer)
        ys = y[order]
        full, last = _batch_targets(ys, M, net.n_out, net.dtype)
        plans = {m: self.plan(m, kinds) if kinds is not None else None for m in {min(M, N), N % M or M}}
        outputs = np.empty((net.n_out, N), net.dtype)  # A^L of every example, classified at the end
        take, copyto, total = np.take, np.copyto, 0.0
        for s, start in enumerate(range(0, N, M), 1):
            idx = order[start:start + M]
            m = idx.shape[0]
            plan = plans[m]
            if plan is None:  # the public step (see _kinds)
                A, loss = self._public_step(X[idx], full[s - 1] if m == M else last, epoch, s)
            else:
                take(X, idx, axis=0, out=plan.X, mode="clip")  # a permutation: always in range
                A, loss = self._step(plan, full[s - 1] if m == M else last, lr, epoch, s)
            copyto(outputs[:, start:start + m], A)
            total += loss * m
            if max_loss is not None and total > max_loss * (start + m):
                raise TrainingDiverged(epoch, s, total / (start + m), max_loss)
        return total / N, np.count_nonzero(net._classes(outputs) == ys) / N

    # ---- one step -------------------------------------------------------------------------
    def step(self, Xb, Yb, epoch=0, s=0):
        """Forward, cost, backward and update on one batch; returns (A^L, cost before the update).

        Args:
            Xb: The batch's inputs, (M, n^0).
            Yb: Its target matrix, (n^L, M), C-contiguous.
            epoch, s: Where the step is, for TrainingDiverged.
        """
        kinds = _kinds(self.net)
        if kinds is None:
            return self._public_step(Xb, Yb, epoch, s)
        plan = self.plan(Xb.shape[0], kinds)
        np.copyto(plan.X, Xb)
        return self._step(plan, Yb, _foldable_lr(self.net.optimizer), epoch, s)

    def _step(self, plan, Yb, lr, epoch, s):
        """The fused step on the batch in plan.X (see the module docstring); lr is
        `_foldable_lr(optimizer)`."""
        net = self.net
        M, records = plan.X.shape[0], plan.layers
        add, multiply = np.add, np.multiply
        A, loss_sum = plan.X_T, None  # one view object for every step (DenseStep keeps its BLAS arguments)
        for r in records:  # forward, F3
            if r.__class__ is not DenseStep:  # a layer without weights: its own forward
                A = r.forward(A, True)
                continue
            Z = r.product(A)  # W A + b, through BLAS (buffers.DenseStep)
            if r.kind is _RELU:
                A = np.maximum(Z, r.zeros, out=Z)
            elif r.kind is _SOFTMAX_CCE:
                A, loss_sum = _softmax_cce(Z, Yb, r.A, plan)
            else:  # the activation's own forward, which may return a new array rather than fill r.A
                A = r.A = r.layer.activation.forward(Z, out=r.A)
        out = records[-1]
        if loss_sum is None:  # any other output: the loss's own forward, from Z^L when fused (Network.cost)
            cost = net.loss.forward_logits(out.Z, Yb) if net.fused else net.loss.forward(A, Yb)
            loss_sum = float(cost.sum())
        batch_loss = loss_sum / M + net.penalty() if plan.penalised else loss_sum / M
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(epoch, s, batch_loss)

        factor = 1.0 if lr is None else lr
        if out.kind is _SOFTMAX_CCE:  # BP1.2
            delta = np.subtract(A, Yb, out=out.delta)  # A^L - Y
        elif net.fused:
            delta = out.delta
            np.copyto(delta, net.loss.backward_logits(A, Yb))
        else:
            delta = out.layer.activation.backward(out.Z, A, net.loss.backward(A, Yb), out=out.delta)
        multiply(delta, factor / M, out=delta)  # BP3.2/BP4.2's 1/M (and lr), once, on Delta^L
        dA = None
        for i, r, dense in plan.backward:
            if not dense:  # a layer without weights: its own backward
                dA = r.backward(dA, i > 0)
                continue
            if dA is not None:  # BP2.2: Delta^l = dL/dA^l ⊙ f'(Z^l), every layer but the last
                if r.kind is _RELU:
                    delta = multiply(dA, np.greater(r.A, r.zeros, out=r.mask), out=r.delta)
                else:
                    delta = r.layer.activation.backward(r.Z, r.A, dA, out=r.delta)
            if i > 0:  # (W^l)^T Delta^l, BP2.2's other factor, from W^l before its update
                dA = r.propagate(delta)
            if lr is not None and r.fused:  # S1 fused with BP3.2/BP4.2 (buffers.DenseStep)
                r.sgd_update(delta, plan.ones)
            else:
                r.gradients(delta, plan.ones)  # BP3.2, BP4.2: Delta^l (A^(l-1))^T, Delta^l 1_M
                if r.l2:  # R1: + 2 l2 W (times lr when folded)
                    add(r.dW, multiply(r.W, 2 * r.l2 * factor, out=self._scratch(r.W)), out=r.dW)
                r.layer._pending = None
            r.layer._grad_scale = factor

        if lr is None:
            net.optimizer.step(net.params, net.grads)
        else:  # S1 for the layers whose update was not fused, with lr already in dW and db
            subtract = np.subtract
            for r in plan.dense:
                if not r.fused:
                    subtract(r.W, r.dW, out=r.W)
                    subtract(r.b, r.db, out=r.b)
            net.optimizer.iterations += 1
        return A, batch_loss

    def _public_step(self, Xb, Yb, epoch, s):
        """The step as the derivation writes it: forward, cost, backward, optimizer.step."""
        net = self.net
        A = net.forward(Xb.T, training=True)
        batch_loss = float(net.cost(A, Yb).mean()) + net.penalty()
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(epoch, s, batch_loss)
        net.backward(A, Yb)
        net.optimizer.step(net.params, net.grads)
        return A, batch_loss

    def _scratch(self, W):
        """A scratch array shaped as W, for an L2 term."""
        scratch = self._l2_scratch.get(W.shape)
        if scratch is None or scratch.dtype != W.dtype:
            scratch = self._l2_scratch[W.shape] = np.empty_like(W)
        return scratch


def _softmax_cce(Z, Yb, A, plan):
    """A^L = softmax(Z^L) into A, and the batch's summed loss
    sum over columns of log sum_i e^(z_i - max z) - (z_y - max z), from one pass over Z."""
    col_max, col_sum = plan.col_max, plan.col_sum
    np.maximum.reduce(Z, axis=0, keepdims=True, out=col_max)
    shifted = np.subtract(Z, col_max, out=A)
    label_sum = plan.dot(Yb.reshape(-1), shifted.reshape(-1))  # sum of z_y - max z (Y one-hot), BLAS's dot
    E = np.exp(shifted, out=A)
    np.add.reduce(E, axis=0, keepdims=True, out=col_sum)
    np.divide(E, col_sum, out=A)
    np.log(col_sum, out=col_sum)
    return A, float(np.add.reduce(col_sum, axis=None)) - float(label_sum)
