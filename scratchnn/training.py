"""What a training loop reports (divergence as an exception, progress as an optional bar), and
the training step itself, fused for speed.

`Network.forward`, `Network.backward` and `Optimizer.step` are the derivation written out:
F3, BP1.2-BP4.2, then the update rule. `_Trainer` computes the same step with the same
arrays W, b, Z, A, delta, dW, db, only with fewer and cheaper NumPy calls, for the training
loop of `Network.fit` (and `train_on_batch`):

- every array of a step (the gathered batch, Z, A, delta, dL/dA, the output's column
  maxima and sums) lives in a buffer made once per batch size, so a step allocates nothing;
- softmax with the categorical cross-entropy is one pass over Z^L that yields A^L, the
  batch's loss (log sum e^(z - max z) - (z_y - max z) per column, the stable form of
  `CategoricalCrossentropy.forward_logits`) and Delta^L = A^L - Y;
- ReLU's derivative is a mask, Z > 0, written into a buffer;
- the 1/M of BP3.2/BP4.2 is applied once, to Delta^L: every later factor (BP2.2, a dropout
  mask) is linear in it, so each Delta^l comes out already divided by M. For plain SGD the
  learning rate joins it (lr/M instead of 1/M) and the update is one subtraction, W -= dW;
  each Dense layer then keeps that factor (`Dense._grad_scale`), so `dW`, `db` and
  `Network.grads` still return dC/dW and dC/db;
- the bias gradient of BP4.2, Delta^l 1_M, is a matrix-vector product, as written;
- `fit`'s bookkeeping is one float per step (the batch loss, which must be checked before
  the update anyway) and the predicted classes, written into one array per epoch and
  compared with the labels once at the end.

Layers other than Dense (Dropout) and activations or losses without a fused form here go
through their own public `forward`/`backward`, so every network trains through this path.
"""

import math

import numpy as np

from . import activations, layers as layers_mod, losses, optimizers


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
_DENSE, _RELU, _SOFTMAX_CCE = "dense", "relu", "softmax_cce"  # how a Dense layer is stepped


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


class _Buffers:
    """One Dense layer's arrays for a batch of M: Z, A, delta (all (n^l, M)), the mask f'(Z) of
    a ReLU, and dL/dA^(l-1) = (W^l)^T Delta^l ((n^(l-1), M)) when the layer passes one back."""

    __slots__ = ("Z", "A", "delta", "mask", "dA_prev")

    def __init__(self, layer, M, propagate, dtype):
        n = layer.units
        self.Z = np.empty((n, M), dtype)
        self.A = np.empty((n, M), dtype)
        self.delta = np.empty((n, M), dtype)
        self.mask = np.empty((n, M), bool)
        self.dA_prev = np.empty((layer.W.shape[1], M), dtype) if propagate else None


class _Plan:
    """Every buffer of a step on a batch of M examples: X_b (M, n^0), Y_b (n^L, M), a column
    of M ones (for BP4.2), the output's column maxima and sums (1, M), and per layer
    `_Buffers` (None for a layer without weights, which keeps its own arrays)."""

    def __init__(self, net, M):
        dtype = net.dtype
        self.X = np.empty((M, net.input_dim), dtype)
        self.Y = np.empty((net.n_out, M), dtype)
        self.ones = np.ones((M, 1), dtype)
        self.col_max = np.empty((1, M), dtype)
        self.col_sum = np.empty((1, M), dtype)
        self.layers = [_Buffers(layer, M, i > 0, dtype) if isinstance(layer, layers_mod.Dense) else None
                       for i, layer in enumerate(net.layers)]


class _Trainer:
    """The training step and epoch of one Network (see the module docstring): the same
    forward pass, cost, backpropagation and update as `forward`, `cost`, `backward` and
    `optimizer.step`, computed in place into buffers reused from step to step."""

    _MAX_PLANS = 4  # batch sizes whose buffers are kept (fit needs two: M and the last batch)

    def __init__(self, net):
        self.net = net
        self._plans = {}
        self._l2_scratch = {}  # a W-sized array per Dense layer with an L2 term

    def plan(self, M):
        """The buffers for a batch of M examples, made on first use."""
        plan = self._plans.get(M)
        if plan is None:
            if len(self._plans) >= self._MAX_PLANS:
                self._plans.clear()
            plan = self._plans[M] = _Plan(self.net, M)
        return plan

    # ---- one epoch ------------------------------------------------------------------------
    def epoch(self, X, Y, y, order, M, epoch, max_loss=None):
        """One epoch over the examples in `order`, batches of M; returns (mean loss, accuracy).

        Args:
            X: Inputs (N, n^0), C-contiguous, in the network's dtype.
            Y: Targets (n^L, N).
            y: Integer labels (N,).
            order: The permutation (or arange) of the N examples.
            M: The batch size.
            epoch: The epoch, counted from 1 (for TrainingDiverged).
            max_loss: None, or the bound on the running mean loss.
        """
        N = order.shape[0]
        kinds = _kinds(self.net)
        predicted = np.empty(N, np.int64)  # the classes of every example, compared with y at the end
        single = self.net.n_out == 1
        total = 0.0
        for s, start in enumerate(range(0, N, M), 1):
            idx = order[start:start + M]
            m = idx.shape[0]
            plan = self.plan(m)
            Xb = np.take(X, idx, axis=0, out=plan.X, mode="clip")  # a permutation: always in range
            Yb = np.take(Y, idx, axis=1, out=plan.Y, mode="clip")
            A, loss = self.step(Xb, Yb, epoch, s, plan, kinds)
            total += loss * m
            if single:
                np.greater(A[0], 0.5, out=predicted[start:start + m])
            else:
                np.argmax(A, axis=0, out=predicted[start:start + m])
            if max_loss is not None and total > max_loss * (start + m):
                raise TrainingDiverged(epoch, s, total / (start + m), max_loss)
        return total / N, np.count_nonzero(predicted == y[order]) / N

    # ---- one step -------------------------------------------------------------------------
    def step(self, Xb, Yb, epoch=0, s=0, plan=None, kinds=False):
        """Forward, cost, backward and update on one batch; returns (A^L, cost before the update).

        Args:
            Xb: The batch's inputs, (M, n^0), C-contiguous.
            Yb: Its target matrix, (n^L, M), C-contiguous.
            epoch, s: Where the step is, for TrainingDiverged.
            plan: The buffers for M (looked up when None).
            kinds: `_kinds(net)`, when the caller has it.
        """
        net = self.net
        if kinds is False:
            kinds = _kinds(net)
        if kinds is None:
            return self._public_step(Xb, Yb, epoch, s)
        M = Xb.shape[0]
        plan = plan or self.plan(M)
        layers, bufs = net.layers, plan.layers
        inputs = [None] * len(layers)  # A^(l-1) of every layer
        A, loss_sum, penalised = Xb.T, None, False
        for i, layer in enumerate(layers):
            inputs[i], buf, kind = A, bufs[i], kinds[i]
            if kind is None:
                A = layer.forward(A, True)
                continue
            penalised = penalised or layer.l2 != 0
            Z = np.matmul(layer.W, A, out=buf.Z)  # F3
            np.add(Z, layer.b, out=Z)
            if kind is _RELU:
                A = np.maximum(Z, 0, out=buf.A)
            elif kind is _SOFTMAX_CCE:
                A, loss_sum = self._softmax_cce(Z, Yb, buf.A, plan)
            else:
                A = layer.activation.forward(Z, out=buf.A)
        if loss_sum is None:  # any other output: the loss's own forward, from Z^L when fused (Network.cost)
            cost = net.loss.forward_logits(bufs[-1].Z, Yb) if net.fused else net.loss.forward(A, Yb)
            loss_sum = float(cost.sum())
        batch_loss = loss_sum / M + (net.penalty() if penalised else 0.0)
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(epoch, s, batch_loss)

        lr = _foldable_lr(net.optimizer)
        factor = lr if lr is not None else 1.0
        delta = self._output_delta(A, Yb, bufs[-1], kinds[-1])  # BP1.2
        np.multiply(delta, factor / M, out=delta)  # BP3.2/BP4.2's 1/M (and lr), once, on Delta^L
        dA = None
        for i in range(len(layers) - 1, -1, -1):
            layer, buf, kind = layers[i], bufs[i], kinds[i]
            if kind is None:
                dA = layer.backward(dA, i > 0)
                continue
            if dA is not None:  # BP2.2: Delta^l = dL/dA^l ⊙ f'(Z^l), every layer but the last
                if kind is _RELU:
                    delta = np.multiply(dA, np.greater(buf.Z, 0, out=buf.mask), out=buf.delta)
                else:
                    delta = layer.activation.backward(buf.Z, buf.A, dA, out=buf.delta)
            if layer._dW is None:
                layer._dW, layer._db = np.empty_like(layer.W), np.empty_like(layer.b)
            np.matmul(delta, inputs[i].T, out=layer._dW)  # BP3.2
            np.matmul(delta, plan.ones, out=layer._db)  # BP4.2: Delta^l 1_M
            if layer.l2:  # R1: + 2 l2 W (times lr when folded)
                np.add(layer._dW, np.multiply(layer.W, 2 * layer.l2 * factor, out=self._scratch(layer)),
                       out=layer._dW)
            layer._grad_scale = factor
            if i > 0:
                dA = np.matmul(layer.W.T, delta, out=buf.dA_prev)  # (W^l)^T Delta^l, BP2.2's other factor

        if lr is None:
            net.optimizer.step(net.params, net.grads)
        else:  # S1, with lr already in dW and db
            for layer, kind in zip(layers, kinds):
                if kind is not None:
                    np.subtract(layer.W, layer._dW, out=layer.W)
                    np.subtract(layer.b, layer._db, out=layer.b)
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

    def _scratch(self, layer):
        """A W-sized array for the L2 term of `layer`."""
        scratch = self._l2_scratch.get(id(layer))
        if scratch is None or scratch.shape != layer.W.shape:
            scratch = self._l2_scratch[id(layer)] = np.empty_like(layer.W)
        return scratch

    @staticmethod
    def _softmax_cce(Z, Yb, A, plan):
        """A^L = softmax(Z^L) into A, and the batch's summed loss
        sum over columns of log sum_i e^(z_i - max z) - (z_y - max z), from one pass over Z."""
        col_max, col_sum = plan.col_max, plan.col_sum
        np.maximum.reduce(Z, axis=0, keepdims=True, out=col_max)
        shifted = np.subtract(Z, col_max, out=A)
        label_sum = np.vdot(Yb, shifted)  # sum of z_y - max z over the batch (Y one-hot)
        E = np.exp(shifted, out=A)
        np.add.reduce(E, axis=0, keepdims=True, out=col_sum)
        np.divide(E, col_sum, out=A)
        np.log(col_sum, out=col_sum)
        return A, float(np.add.reduce(col_sum, axis=None)) - float(label_sum)

    def _output_delta(self, A, Yb, buf, kind):
        """Delta^L (BP1.2) into the output layer's delta buffer."""
        net, delta = self.net, buf.delta
        if kind is _SOFTMAX_CCE:
            return np.subtract(A, Yb, out=delta)  # A^L - Y
        if net.fused:
            np.copyto(delta, net.loss.backward_logits(A, Yb))
            return delta
        return net.layers[-1].activation.backward(buf.Z, A, net.loss.backward(A, Yb), out=delta)
