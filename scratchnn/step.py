"""The training step of `Network.fit` and `train_on_batch`, in place: the equations of
docs/derivation.md, one function each, on every Dense layer's W, b, Z, A, delta, dW and db
(`buffers.DenseStep`), for a batch of M examples and the learning rate lr.

`Network.forward`, `cost`, `backward` and `optimizer.step` compute the same step through the
public API (tests/test_lib_speed_step.py holds the two equal). This one differs in how, not what:

- every array lives in a buffer made once per batch size (`buffers.Plan`), and the matrix
  products are BLAS gemm calls into them (`buffers.gemm_call`); a step allocates no array;
- softmax under the categorical cross-entropy is one pass over Z^L that gives A^L, the batch's
  loss (the stable form of `CategoricalCrossentropy.forward_logits`) and Delta^L = A^L - Y;
- ReLU is computed in place of Z, and f'(Z) is the mask A > 0;
- the 1/M of BP3.2/BP4.2 is applied once, to Delta^L: every later factor (BP2.2, a dropout mask)
  is linear in it, so each Delta^l comes out already divided by M. For plain SGD (w <- w - lr g)
  lr joins it (Delta^L times lr/M), and BP3.2/BP4.2 then give lr dC/dW and lr dC/db;
- for plain SGD the update S1 joins BP3.2's product: one gemm computes W <- W - Delta A^T in place
  (`update_in_product`), so that a step need not write dW at all. `fit` steps so on every batch of
  an epoch but the last; on the last batch of an epoch, and in `train_on_batch`, the step also
  forms dW and db (`gradients`, then `divide_lr_out`), so that afterwards every Dense layer's dW
  and db hold dC/dW and dC/db of that step (a layer with an L2 term always forms them, and its
  update is W <- W - dW, `sgd_update`).

In the functions below, r is one Dense layer's arrays (`buffers.DenseStep`: r.W, r.b, r.Z, r.A,
r.delta, r.dW, r.db, r.A_prev for A^(l-1)). A Dropout layer goes through its own forward and
backward. `kinds` says when a network cannot
take this step (a layer of another class, a method replaced on a layer instance, weights that are
not C-contiguous in the network's dtype): then `fit` takes the public step.
"""

import numpy as np

from . import activations, layers as layers_mod, losses, optimizers
from .buffers import OTHER, RELU, SOFTMAX_CCE, DenseStep, gemm_call, gemv_call, operand, steppable


def kinds(net):
    """Per layer, how the step computes it: RELU (a hidden ReLU), SOFTMAX_CCE (a softmax output
    under the categorical cross-entropy), OTHER (any other activation, by its own forward and
    backward), None for a Dropout layer; None for the whole network when it cannot take this step."""
    out, last = [], len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        if any(name in vars(layer) for name in ("forward", "call", "backward", "backward_delta")):
            return None
        if type(layer) is layers_mod.Dropout:
            out.append(None)
        elif type(layer) is not layers_mod.Dense or not steppable(layer, net.dtype):
            return None
        elif i == last and net.n_out > 1 and type(net.loss) is losses.CategoricalCrossentropy \
                and not vars(net.loss) and type(layer.activation) is activations.Softmax and not vars(layer.activation):
            out.append(SOFTMAX_CCE)
        elif i < last and type(layer.activation) is activations.ReLU and not vars(layer.activation):
            out.append(RELU)
        else:
            out.append(OTHER)
    return tuple(out)


def plain_sgd_lr(optimizer):
    """lr when the update is plain w <- w - lr g (SGD itself, no momentum), else None."""
    plain = type(optimizer) is optimizers.SGD and optimizer.momentum == 0
    return optimizer.lr if plain else None


# ---- forward pass and cost ------------------------------------------------------------------
def forward(net, plan, Yb):
    """F3 and the activations, layer by layer, from A^0 = plan.X_T; returns (A^L, batch cost C)."""
    A, loss_sum = plan.X_T, None  # one view object for every step (the bound BLAS calls keep it)
    for r in plan.layers:
        if r.__class__ is not DenseStep:  # a layer without weights: its own forward
            A = r.forward(A, True)
            continue
        Z = r.product(A)  # F3: Z = W A_prev + b, through BLAS
        if r.kind is RELU:
            A = np.maximum(Z, r.zeros, out=Z)  # A = max(Z, 0), in place of Z
        elif r.kind is SOFTMAX_CCE:
            A, loss_sum = softmax_cce(Z, Yb, r.A, plan)
        else:  # the activation's own forward, which may return a new array rather than fill r.A
            A = r.A = r.layer.activation.forward(Z, out=r.A)
    if loss_sum is None:  # any other output: the loss's own forward, from Z^L when fused (Network.cost)
        out = plan.layers[-1]
        cost = net.loss.forward_logits(out.Z, Yb) if net.fused else net.loss.forward(A, Yb)
        loss_sum = float(cost.sum())
    M = plan.X.shape[0]
    return A, (loss_sum / M + net.penalty() if plan.penalised else loss_sum / M)


def softmax_cce(Z, Yb, A, plan):
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


# ---- backpropagation and the update ---------------------------------------------------------
def output_delta(net, out, A, Yb):
    """BP1.2 into out.delta; returns Delta^L."""
    if out.kind is SOFTMAX_CCE:  # BP1.2 for softmax and CCE: Delta^L = A^L - Y
        return np.subtract(A, Yb, out=out.delta)
    if net.fused:  # BP1.2 through the loss's fused form: Delta^L = dL/dZ^L
        np.copyto(out.delta, net.loss.backward_logits(A, Yb))
        return out.delta
    # BP1.2: Delta^L = dL/dA^L ⊙ f'(Z^L)
    return out.layer.activation.backward(out.Z, A, net.loss.backward(A, Yb), out=out.delta)


def hidden_delta(r, dA):
    """BP2.2 for layer l, given dA = (W^(l+1))^T Delta^(l+1) (`propagate`); returns Delta^l."""
    if r.kind is RELU:  # BP2.2: Delta^l = dA ⊙ (A^l > 0)
        return np.multiply(dA, np.greater(r.A, r.zeros, out=r.mask), out=r.delta)
    return r.layer.activation.backward(r.Z, r.A, dA, out=r.delta)  # BP2.2: Delta^l = dA ⊙ f'(Z^l)


def propagate(r, delta):
    """BP2.2's other factor into r.dA_prev, from W^l before its update; returns it."""
    # BP2.2: dA^(l-1) = (W^l)^T Delta^l, as dA^T = Delta^T W
    r.calls.get("BP2.2", delta, None, lambda: gemm_call(r.gemm, a=delta.T, b=r.W.T, trans_b=1, c=r.dA_prev.T))()
    return r.dA_prev


def gradients(r, delta, ones):
    """BP3.2 and BP4.2 into r.dW and r.db (Delta^l already divided by M)."""
    # BP3.2: dW = Delta A_prev^T, as dW^T = A_prev Delta^T
    r.calls.get("BP3.2", r.A_prev, delta, lambda: _outer_call(r, delta, r.dW))()
    # BP4.2: db = Delta 1_M
    r.calls.get("BP4.2", delta, None, lambda: gemv_call(r.gemv, a=delta.T, trans=1, x=ones, y=r.db))()


def l2_term(r, factor):
    """R1 into r.dW: dW += 2 l2 W, times `factor` (lr when Delta carries it, else 1)."""
    np.add(r.dW, np.multiply(r.W, 2 * r.l2 * factor, out=r.l2_term), out=r.dW)  # R1: dW += 2 l2 W


def update_in_product(r, delta, ones):
    """S1 joined with BP3.2 and BP4.2 (Delta^l already times lr/M), in place."""
    # S1 with BP3.2: W = W - Delta A_prev^T, as W^T = W^T - A_prev Delta^T
    r.calls.get("S1 W", r.A_prev, delta, lambda: _outer_call(r, delta, r.W, alpha=-1.0, beta=1.0))()
    # S1 with BP4.2: b = b - Delta 1_M
    r.calls.get("S1 b", delta, None,
                lambda: gemv_call(r.gemv, a=delta.T, trans=1, x=ones, y=r.b, alpha=-1.0, beta=1.0))()


def _outer_call(r, delta, C, *, alpha=1.0, beta=0.0):
    """The gemm call C^T <- beta C^T + alpha A_prev Delta^T, for C = dW (BP3.2) or W (S1)."""
    a, trans = operand(r.A_prev)
    return gemm_call(r.gemm, a=a, trans_a=trans, b=delta.T, c=C.T, alpha=alpha, beta=beta)


def sgd_update(r):
    """S1 with lr already in dW and db (plain SGD), in place."""
    np.subtract(r.W, r.dW, out=r.W)  # S1: W = W - lr dC/dW
    np.subtract(r.b, r.db, out=r.b)  # S1: b = b - lr dC/db


def divide_lr_out(r, lr):
    """dW and db formed with lr in Delta (plain SGD) divided by lr: dC/dW and dC/db."""
    np.divide(r.dW, lr, out=r.dW)  # dW = dC/dW
    np.divide(r.db, lr, out=r.db)  # db = dC/db


def backward_and_update(net, plan, Yb, A, *, form_gradients=True):
    """BP1.2 to BP4.2 from A^L and the targets Yb, then the update S1 (or the optimizer's rule).

    Args:
        net: The Network.
        plan: Its `buffers.Plan` for this batch, with A^L's step just computed by `forward`.
        Yb: The target matrix (n^L, M).
        A: A^L.
        form_gradients: Whether every Dense layer's dW and db must hold this step's gradient;
            False lets plain SGD skip them: its update S1 is joined to BP3.2's product
            (`update_in_product`) whether or not the gradient is formed too.
    """
    lr = plain_sgd_lr(net.optimizer)
    M = plan.X.shape[0]
    delta = output_delta(net, plan.layers[-1], A, Yb)
    factor = 1.0 if lr is None else lr
    np.multiply(delta, factor / M, out=delta)  # BP3.2/BP4.2's 1/M (and S1's lr), once, on Delta^L
    dA = None
    for i, r, dense in plan.backward:
        if not dense:  # a layer without weights: its own backward
            dA = r.backward(dA, i > 0)
            continue
        if dA is not None:  # every layer but the last
            delta = hidden_delta(r, dA)
        if i > 0:
            dA = propagate(r, delta)
        formed = form_gradients or lr is None or r.l2
        if formed:
            gradients(r, delta, plan.ones)  # times lr for plain SGD
            if r.l2:
                l2_term(r, factor)
        if lr is None:  # the optimizer's rule, after the loop
            continue
        if r.l2:
            sgd_update(r)
        else:
            update_in_product(r, delta, plan.ones)
        if formed:
            divide_lr_out(r, lr)
    if lr is None:
        net.optimizer.step(net.params, net.grads)
    else:
        net.optimizer.iterations += 1
