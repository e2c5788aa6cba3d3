"""The arrays of the fused training step (training._Trainer), made once per batch size.

`Plan` holds every buffer of a step on a batch of M examples; `DenseStep` one Dense layer's
share of them. For plain SGD a layer's update S1, W <- W - lr dC/dW, is fused into BP3.2's
product: BLAS's gemm computes C <- beta C + alpha op(A) op(B), so with C = W,
alpha = -1 and Delta^l already scaled by lr/M, one call does BP3.2 and S1 without writing dW
(for a wide layer the separate update pass over W costs as much as a tenth of the step). NumPy's
matmul has no beta, so the call goes through SciPy's BLAS wrappers (`scipy.linalg.blas`), which
work in place on Fortran-ordered arrays: W (n^l, n^(l-1)) in C order is W^T in Fortran order,
and the update is written W^T <- W^T - A^(l-1) (Delta^l)^T. The gradient is formed only if
someone asks for it (`Dense.dW`).
"""

import numpy as np
from scipy.linalg import blas

from . import layers as layers_mod

# gemm (C <- beta C + alpha op(A) op(B)) and gemv (y <- beta y + alpha op(A) x) per dtype
_BLAS = {np.dtype(np.float32): (blas.sgemm, blas.sgemv), np.dtype(np.float64): (blas.dgemm, blas.dgemv)}

RELU, SOFTMAX_CCE = "relu", "softmax_cce"  # how a Dense layer's activation is stepped (training._kinds)


class DenseStep:
    """One Dense layer in a step on batches of M: its arrays W, b, dW, db and the step's
    buffers Z, A, delta (all (n^l, M)), and dL/dA^(l-1) = (W^l)^T Delta^l ((n^(l-1), M)) when
    the layer passes one back; A_prev is A^(l-1) of the current step. A ReLU layer computes A
    in place of Z (Z > 0 exactly where A > 0) and keeps its mask f'(Z) = A > 0 and an array of
    zeros to compare with (NumPy is faster with an array than with the scalar 0). `gemm` and
    `gemv` are the BLAS routines of W's dtype when the SGD update can be fused (W and b
    contiguous, no L2 term), else None; Wt and b_flat are the Fortran-ordered views they update."""

    __slots__ = ("layer", "kind", "W", "b", "dW", "db", "Z", "A", "delta", "mask", "zeros", "dA_prev",
                 "A_prev", "l2", "gemm", "gemv", "Wt", "b_flat")

    def __init__(self, layer, M, propagate, dtype):
        n = layer.units
        self.layer, self.kind, self.l2 = layer, None, 0.0
        self.W = self.b = self.dW = self.db = self.A_prev = self.A = self.mask = self.zeros = None
        self.gemm = self.gemv = self.Wt = self.b_flat = None
        self.Z = np.empty((n, M), dtype)
        self.delta = np.empty((n, M), dtype)
        self.dA_prev = np.empty((layer.W.shape[1], M), dtype) if propagate else None

    def bind(self, kind):
        """Take the layer's current W, b (and gradient arrays, made if need be) and `kind`."""
        layer = self.layer
        if layer._dW is None or layer._dW.shape != layer.W.shape:
            layer._dW, layer._db = np.empty_like(layer.W), np.empty_like(layer.b)
        W, b = self.W, self.b = layer.W, layer.b
        self.dW, self.db, self.l2 = layer._dW, layer._db, layer.l2
        fusable = not self.l2 and W.flags.c_contiguous and b.flags.c_contiguous and b.dtype == W.dtype
        self.gemm, self.gemv = _BLAS.get(W.dtype, (None, None)) if fusable else (None, None)
        self.Wt, self.b_flat = (W.T, b.reshape(-1)) if fusable else (None, None)
        if kind is not self.kind:
            self.kind = kind
            relu = kind is RELU
            self.A = self.Z if relu else np.empty_like(self.Z)
            self.mask = np.empty(self.Z.shape, bool) if relu else None
            self.zeros = np.zeros_like(self.Z) if relu else None

    def sgd_update(self, delta, ones):
        """S1 fused with BP3.2 and BP4.2: W <- W - Delta (A^(l-1))^T and b <- b - Delta 1_M, with
        Delta = Delta^l already times lr/M; the gradient is left for `Dense.dW` to form."""
        A_prev = self.A_prev
        a, trans = (A_prev, 0) if A_prev.flags.f_contiguous else (A_prev.T, 1)  # op(a) = A^(l-1)
        self.gemm(-1.0, a, delta.T, beta=1.0, c=self.Wt, trans_a=trans, overwrite_c=1)
        self.gemv(-1.0, delta.T, ones, beta=1.0, y=self.b_flat, trans=1, overwrite_y=1)
        self.layer._pending = (delta, A_prev)


class Plan:
    """Every buffer of a step on a batch of M examples: X_b (M, n^0), a column of M ones (for
    BP4.2), the output's column maxima and sums (1, M), and per layer a `DenseStep` (or the
    layer itself, for a layer without weights, which keeps its own arrays)."""

    def __init__(self, net, M):
        dtype = net.dtype
        self.X = np.empty((M, net.input_dim), dtype)
        self.ones = np.ones((M, 1), dtype)
        self.ones_flat = self.ones.reshape(-1)
        self.col_max = np.empty((1, M), dtype)
        self.col_sum = np.empty((1, M), dtype)
        self.layers = [DenseStep(layer, M, i > 0, dtype) if isinstance(layer, layers_mod.Dense) else layer
                       for i, layer in enumerate(net.layers)]
        self.dense = [r for r in self.layers if r.__class__ is DenseStep]
        self.backward = [(i, r, r.__class__ is DenseStep) for i, r in reversed(list(enumerate(self.layers)))]
        self.penalised = False

    def bind(self, kinds):
        """Bind every Dense layer to its arrays and kind (see `training._kinds`); returns self."""
        for record, kind in zip(self.layers, kinds):
            if kind is not None:
                record.bind(kind)
        self.penalised = any(r.l2 for r in self.dense)
        return self
