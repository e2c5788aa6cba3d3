"""The arrays of the fast training step (`scratchnn.step`), made once per batch size, and the BLAS
calls that compute its matrix products in place.

`Plan` holds every buffer of a step on a batch of M examples; `DenseStep` one Dense layer's
share of them. The products go through BLAS's gemm, C <- beta C + alpha op(A) op(B), by SciPy's
wrappers (`scipy.linalg.blas`), which work in place on Fortran-ordered arrays: an (n^l, M) array
in C order is its (M, n^l) transpose in Fortran order, so Z = W A is computed as Z^T = A^T W^T
into Z's own memory. `gemm_call` and `gemv_call` bind a call's arguments by name, once; `Calls`
keeps them while their arrays stay the same. gemm's beta = 1 lets one call add a product to an
array: the bias already in Z (F3), or W itself for the SGD update (S1 with BP3.2), which NumPy's
matmul cannot. Every product of the step goes through this one BLAS, SciPy's: two OpenBLAS builds
(NumPy's and SciPy's) used in turn with more than one thread each keep their thread pools
spinning against each other (docs/measurements/fast_step.md).
"""

from functools import partial

import numpy as np
from scipy.linalg import blas

from . import layers as layers_mod

# per dtype: gemm (C <- beta C + alpha op(A) op(B)), gemv (y <- beta y + alpha op(A) x), dot (x . y)
_BLAS = {np.dtype(np.float32): (blas.sgemm, blas.sgemv, blas.sdot),
         np.dtype(np.float64): (blas.dgemm, blas.dgemv, blas.ddot)}

RELU, SOFTMAX_CCE, OTHER = "relu", "softmax_cce", "other"  # how a Dense layer's activation is stepped


def operand(A, transpose=False):
    """(a, trans) to pass gemm for op(a) = A (or A^T when `transpose`), with a in Fortran order
    when A is in either order (a C-ordered A is its transpose in Fortran order)."""
    if A.flags.f_contiguous:
        return A, int(transpose)
    return A.T, int(not transpose)


def gemm_call(gemm, *, a, b, c, alpha=1.0, beta=0.0, trans_a=0, trans_b=0):
    """A call with no argument that computes c <- beta c + alpha op(a) op(b) in place (c in Fortran
    order, op(x) = x^T when its trans_ flag is 1): gemm's arguments by name, bound once."""
    return partial(gemm, alpha, a, b, beta, c, trans_a, trans_b, 1)  # 1: overwrite c


def gemv_call(gemv, *, a, x, y, alpha=1.0, beta=0.0, trans=0):
    """A call with no argument that computes y <- beta y + alpha op(a) x in place (y contiguous)."""
    return partial(gemv, alpha, a, x, beta, y.reshape(-1), 0, 1, 0, 1, trans, 1)  # offsets 0, steps 1


class Calls:
    """BLAS calls bound to their arrays, by name; a call is made again when one of its operands is
    a different array object (a step's arrays are buffers, so a step usually builds no call)."""

    def __init__(self):
        self._calls = {}

    def get(self, name, x, y, make):
        """The call `name` on the arrays x and y (y may be None), from make() the first time."""
        hit = self._calls.get(name)
        if hit is None or hit[0] is not x or hit[1] is not y:
            hit = self._calls[name] = (x, y, make())
        return hit[2]


class DenseStep:
    """One Dense layer in a step on batches of M: its W, b, dW, db (the layer's own arrays) and
    the step's buffers Z, A, delta (each (n^l, M)), and dA_prev for dL/dA^(l-1) = (W^l)^T Delta^l
    ((n^(l-1), M)) when the layer passes one back; A_prev is A^(l-1) of the current step. A ReLU
    layer computes A in place of Z (Z > 0 exactly where A > 0) and keeps its mask f'(Z) = (A > 0)
    as 1.0 and 0.0 in the network's dtype (a float mask multiplies faster than a boolean one), and
    an array of zeros to compare with (NumPy compares faster with an array than with the scalar 0).
    `gemm`, `gemv` are the BLAS routines of the network's dtype; `calls` their bound calls, and
    `l2_term` a W-sized scratch array for R1 when the layer has an L2 term."""

    __slots__ = ("layer", "kind", "W", "b", "dW", "db", "Z", "A", "delta", "mask", "zeros", "dA_prev",
                 "A_prev", "l2", "l2_term", "gemm", "gemv", "calls")

    def __init__(self, layer, M, propagate, dtype):
        n = layer.units
        self.layer, self.kind, self.l2 = layer, None, 0.0
        self.W = self.b = self.dW = self.db = self.A_prev = self.A = self.mask = self.zeros = self.l2_term = None
        self.gemm, self.gemv = _BLAS[np.dtype(dtype)][:2]
        self.calls = Calls()
        self.Z = np.empty((n, M), dtype)
        self.delta = np.empty((n, M), dtype)
        self.dA_prev = np.empty((layer.W.shape[1], M), dtype) if propagate else None

    def bind(self, kind):
        """Take the layer's current W, b, dW, db and l2, and `kind` (RELU, SOFTMAX_CCE or OTHER)."""
        layer = self.layer
        self.W, self.b, self.l2 = layer.W, layer.b, layer.l2
        self.dW, self.db = layer.gradient_arrays()
        self.calls = Calls()  # W or b may be new arrays
        if self.l2 and (self.l2_term is None or self.l2_term.shape != self.W.shape):
            self.l2_term = np.empty_like(self.W)
        if kind is not self.kind:
            self.kind = kind
            relu = kind is RELU
            self.A = self.Z if relu else np.empty_like(self.Z)
            self.mask = np.empty_like(self.Z) if relu else None
            self.zeros = np.zeros_like(self.Z) if relu else None

    def product(self, A_prev):
        """F3 through BLAS: Z <- W A^(l-1) + b 1_M^T, b written into Z first and gemm adding W A to
        it (beta = 1, one pass over Z fewer than a product and then a bias add); returns Z."""
        self.A_prev = A_prev
        np.copyto(self.Z, self.b)
        self.calls.get("F3", A_prev, None, self._product_call)()  # Z^T <- Z^T + A_prev^T W^T
        return self.Z

    def _product_call(self):
        a, trans = operand(self.A_prev, transpose=True)
        return gemm_call(self.gemm, a=a, trans_a=trans, b=self.W.T, c=self.Z.T, beta=1.0)


def steppable(layer, dtype):
    """Whether a Dense layer's arrays suit the BLAS calls: W and b C-contiguous in `dtype`."""
    return all(x.flags.c_contiguous and x.dtype == dtype for x in (layer.W, layer.b))


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
        """Bind every Dense layer to its arrays and kind (see `step.kinds`); returns self."""
        for record, kind in zip(self.layers, kinds):
            if kind is not None:
                record.bind(kind)
        self.penalised = any(r.l2 for r in self.dense)
        return self
