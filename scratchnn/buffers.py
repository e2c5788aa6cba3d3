"""The arrays of the fused training step (training._Trainer), made once per batch size, and the
matrix products it makes with them.

`Plan` holds every buffer of a step on a batch of M examples; `DenseStep` one Dense layer's
share of them and its products. The products go through BLAS's gemm, C <- beta C + alpha op(A)
op(B), by SciPy's wrappers (`scipy.linalg.blas`), which work in place on Fortran-ordered arrays:
an (n^l, M) array in C order is its (M, n^l) transpose in Fortran order, so Z^l = W^l A^(l-1) is
written (Z^l)^T = (A^(l-1))^T (W^l)^T into Z's buffer. For plain SGD a layer's update S1,
W <- W - lr dC/dW, joins BP3.2's product: with C = W^T, alpha = -1 and Delta^l already times
lr/M, one call does BP3.2 and S1 without writing dW (for a wide layer the separate update pass
over W costs up to a tenth of the step; NumPy's matmul has no beta); the gradient is formed
only if someone asks for it (`Dense.dW`). Every product of the step goes through this one BLAS:
two OpenBLAS builds in turn (NumPy's and SciPy's) with more than one thread each keep their
thread pools spinning against each other (measured: 8 ms instead of 0.6 ms per step at 2 threads).
A layer whose W is not C-contiguous in the network's dtype, or has an L2 term (for S1), takes
NumPy's matmul and the separate update instead.
"""

import numpy as np
from scipy.linalg import blas

from . import layers as layers_mod

# per dtype: gemm (C <- beta C + alpha op(A) op(B)), gemv (y <- beta y + alpha op(A) x), dot (x . y)
_BLAS = {np.dtype(np.float32): (blas.sgemm, blas.sgemv, blas.sdot),
         np.dtype(np.float64): (blas.dgemm, blas.dgemv, blas.ddot)}

RELU, SOFTMAX_CCE = "relu", "softmax_cce"  # how a Dense layer's activation is stepped (training._kinds)


def operand(A, transpose=False):
    """(a, trans) to pass gemm for op(a) = A (or A^T when `transpose`), with a in Fortran order
    when A is in either order (a C-ordered A is its transpose in Fortran order)."""
    if A.flags.f_contiguous:
        return A, int(transpose)
    return A.T, int(not transpose)


class DenseStep:
    """One Dense layer in a step on batches of M: its arrays W, b, dW, db and the step's
    buffers Z, A, delta (all (n^l, M)), and dL/dA^(l-1) = (W^l)^T Delta^l ((n^(l-1), M)) when
    the layer passes one back; A_prev is A^(l-1) of the current step. A ReLU layer computes A
    in place of Z (Z > 0 exactly where A > 0) and keeps its mask f'(Z) = A > 0, as 1.0 and 0.0 in
    the network's dtype (a boolean mask makes the product cast it: 4.1 against 2.7 us at 128 x 32),
    and an array of zeros to compare with (NumPy is faster with an array than with the scalar 0).
    `gemm`, `gemv` are the BLAS routines of the network's dtype, None when W is not C-contiguous
    in it (then NumPy's matmul); `fused` says whether the SGD update joins BP3.2 (`sgd_update`). The BLAS
    calls' argument tuples are kept while their arrays stay the same (`_args`): a step's arrays
    are buffers, so a step builds no view and parses no keyword."""

    __slots__ = ("layer", "kind", "W", "b", "dW", "db", "Z", "A", "delta", "mask", "zeros", "dA_prev",
                 "A_prev", "l2", "gemm", "gemv", "fused", "calls")

    def __init__(self, layer, M, propagate, dtype):
        n = layer.units
        self.layer, self.kind, self.l2 = layer, None, 0.0
        self.W = self.b = self.dW = self.db = self.A_prev = self.A = self.mask = self.zeros = None
        self.gemm = self.gemv = None
        self.fused, self.calls = False, {}
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
        blas_ok = W.flags.c_contiguous and W.dtype == self.Z.dtype == self.dW.dtype
        self.gemm, self.gemv = _BLAS[W.dtype][:2] if blas_ok else (None, None)
        self.fused = blas_ok and not self.l2 and b.flags.c_contiguous and b.dtype == W.dtype
        self.calls = {}  # W or b may be new arrays
        if kind is not self.kind:
            self.kind = kind
            relu = kind is RELU
            self.A = self.Z if relu else np.empty_like(self.Z)
            self.mask = np.empty_like(self.Z) if relu else None
            self.zeros = np.zeros_like(self.Z) if relu else None

    def product(self, A):
        """Z <- W A + b 1_M^T (F3), A = A^(l-1); returns Z. Through BLAS, b goes into Z first and
        gemm adds W A to it (beta = 1): one pass over Z fewer than a product and then a bias add."""
        self.A_prev = A
        if self.gemm is None:
            return np.add(np.matmul(self.W, A, out=self.Z), self.b, out=self.Z)
        np.copyto(self.Z, self.b)
        self.gemm(*self._args("Z", A, None, self._product_args))
        return self.Z

    def propagate(self, delta):
        """dL/dA^(l-1) <- (W^l)^T Delta^l (BP2.2's other factor) into dA_prev; returns it."""
        if self.gemm is None:
            return np.matmul(self.W.T, delta, out=self.dA_prev)
        self.gemm(*self._args("dA", delta, None, self._propagate_args))
        return self.dA_prev

    def gradients(self, delta, ones):
        """dW <- Delta (A^(l-1))^T (BP3.2) and db <- Delta 1_M (BP4.2), ones = 1_M."""
        if self.gemm is None:
            np.matmul(delta, self.A_prev.T, out=self.dW)
            np.matmul(delta, ones[:, None], out=self.db)
            return
        gemm_args, gemv_args = self._args("dW", self.A_prev, delta, lambda A, d: self._update_args(A, d, ones, False))
        self.gemm(*gemm_args)
        self.gemv(*gemv_args)

    def sgd_update(self, delta, ones):
        """S1 fused with BP3.2 and BP4.2: W <- W - Delta (A^(l-1))^T and b <- b - Delta 1_M, with
        Delta = Delta^l already times lr/M; the gradient is left for `Dense.dW` to form."""
        gemm_args, gemv_args = self._args("S1", self.A_prev, delta, lambda A, d: self._update_args(A, d, ones, True))
        self.gemm(*gemm_args)
        self.gemv(*gemv_args)
        self.layer._pending = (delta, self.A_prev)

    # gemm's positional arguments: alpha, a, b, beta, c, trans_a, trans_b, overwrite_c;
    # gemv's: alpha, a, x, beta, y, offx, incx, offy, incy, trans, overwrite_y
    def _product_args(self, A, _):  # Z^T <- Z^T + A^T W^T
        a, trans = operand(A, transpose=True)
        return 1.0, a, self.W.T, 1.0, self.Z.T, trans, 0, 1

    def _propagate_args(self, delta, _):  # dA^T = Delta^T W
        return 1.0, delta.T, self.W.T, 0.0, self.dA_prev.T, 0, 1, 1

    def _update_args(self, A_prev, delta, ones, update):
        """S1 when `update` (W^T <- W^T - A Delta^T, b <- b - Delta 1: alpha -1, beta 1), else the
        gradient (dW^T <- A Delta^T, db <- Delta 1: alpha 1, beta 0)."""
        a, trans = operand(A_prev)
        alpha, beta, C, y = (-1.0, 1.0, self.W, self.b) if update else (1.0, 0.0, self.dW, self.db)
        return ((alpha, a, delta.T, beta, C.T, trans, 0, 1),
                (alpha, delta.T, ones, beta, y.reshape(-1), 0, 1, 0, 1, 1, 1))

    def _args(self, name, x, y, make):
        """The argument tuple(s) of call `name` on arrays x, y: kept while they are the same
        objects (`bind` clears them: W or b may be new), else make(x, y)."""
        hit = self.calls.get(name)
        if hit is None or hit[0] is not x or hit[1] is not y:
            hit = self.calls[name] = (x, y, make(x, y))
        return hit[2]


class Plan:
    """Every buffer of a step on a batch of M examples: X_b (M, n^0), a column of M ones (for
    BP4.2), the output's column maxima and sums (1, M), and per layer a `DenseStep` (or the
    layer itself, for a layer without weights, which keeps its own arrays). `dot(x, y)` is BLAS's
    dot product of two vectors of the network's dtype (the softmax's label term)."""

    def __init__(self, net, M):
        dtype = net.dtype
        self.X = np.empty((M, net.input_dim), dtype)
        self.X_T = self.X.T  # A^0, (n^0, M)
        self.ones = np.ones(M, dtype)
        self.col_max = np.empty((1, M), dtype)
        self.col_sum = np.empty((1, M), dtype)
        self.dot = _BLAS[dtype][2]
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
