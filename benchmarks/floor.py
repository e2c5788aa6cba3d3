"""The GEMM floor: the matrix products of a training step and nothing else, made with the calls
scratchnn's step makes them with.

`gemm_shapes` lists the products of one step of scratchnn's backpropagation (forward W A,
backward Delta A^T and W^T Delta per layer); `GemmFloor` does them for every step of a fit, into
buffers reused from step to step. measure.py times it as the `gemm` column; plan.py sizes the
slices of large epochs with `flops_per_step`.
"""

N_IN, N_OUT = 784, 10


def layer_sizes(depth, width):
    return [N_IN] + [width] * depth + [N_OUT]


def gemm_shapes(depth, width, M):
    """(m, k, n) of every matrix product of one training step on a batch of M, in the order the
    step does them: forward Z^l = W^l A^(l-1) for every layer, then backward from the last layer,
    dW^l = Delta^l (A^(l-1))^T (BP3.2) and (W^l)^T Delta^l (BP2.2; not for layer 1, whose input
    needs no gradient: neither scratchnn, Keras nor PyTorch computes it)."""
    n = layer_sizes(depth, width)
    L = len(n) - 1
    shapes = [(n[l], n[l - 1], M) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        shapes.append((n[l], M, n[l - 1]))
        if l > 1:
            shapes.append((n[l - 1], n[l], M))
    return shapes


def flops_per_step(depth, width, M):
    return sum(2 * m * k * n for m, k, n in gemm_shapes(depth, width, M))


def batch_sizes(n, M, steps):
    """The batch sizes of `steps` steps over n examples in batches of M (the last may be partial)."""
    return [min(M, n - s * M) for s in range(steps)]


class GemmFloor:
    """The matrix products of training steps, in scratchnn's layout and nothing else.

    For each layer l, with W^l (n^l, n^(l-1)), A^(l-1) (n^(l-1), M) and Delta^l (n^l, M): forward
    W A added into Z, backward W^T Delta into dA (l > 1) and BP3.2's Delta A^T, each made with the call
    scratchnn's step makes it with (scratchnn.step; F3 in scratchnn.buffers): SciPy's BLAS gemm on the Fortran-ordered
    transposes, outputs written in place into buffers made once per batch size, and Delta A^T
    accumulated into W^T (beta = 1, as the fused SGD update does; the floor's alpha is tiny, so
    its W stays put). A^0 is the transpose of an (M, 784) batch, as scratchnn's forward pass
    gets it. float32 throughout.

    Args:
        depth, width: the network's hidden layers.
        sizes: the batch size of every step (e.g. `batch_sizes(N, M, S)`).
        rng: a NumPy Generator for the operands' values.
    """

    def __init__(self, depth, width, sizes, rng):
        self.sizes = list(sizes)
        self.products = {M: self._operands(depth, width, M, rng=rng) for M in set(self.sizes)}

    @staticmethod
    def _operands(depth, width, M, *, rng):
        """The products of one step on a batch of M, each a call with no argument."""
        from functools import partial

        import numpy as np
        from scipy.linalg.blas import sgemm

        from scratchnn.buffers import operand

        n = layer_sizes(depth, width)
        f32 = np.float32
        A = [rng.random((M, n[0]), dtype=f32).T] + [rng.random((k, M), dtype=f32) for k in n[1:-1]]
        W = [rng.random((n[l], n[l - 1]), dtype=f32) * f32(0.01) for l in range(1, len(n))]
        D = [rng.random((n[l], M), dtype=f32) for l in range(1, len(n))]
        products = []
        for l in range(len(W)):  # Z^T += A^T W^T (beta = 1: scratchnn's Z holds b when its gemm adds W A)
            a, trans = operand(A[l], transpose=True)
            products.append(partial(sgemm, 1.0, a, W[l].T, beta=1.0, c=np.zeros((n[l + 1], M), f32).T,
                                    trans_a=trans, overwrite_c=1))
        for l in range(len(W) - 1, -1, -1):
            a, trans = operand(A[l])  # W^T += alpha A^(l-1) Delta^T
            products.append(partial(sgemm, -1e-30, a, D[l].T, beta=1.0, c=W[l].T, trans_a=trans, overwrite_c=1))
            if l > 0:  # dA^T = Delta^T W
                products.append(partial(sgemm, 1.0, D[l].T, W[l].T, c=np.empty((n[l], M), f32).T, trans_b=1,
                                        overwrite_c=1))
        return products

    def run(self):
        """One pass over every step: only the products, into the preallocated outputs."""
        for M in self.sizes:
            for product in self.products[M]:
                product()

    def count(self):
        """Products per pass: steps x (3 x layers - 1)."""
        return sum(len(self.products[M]) for M in self.sizes)
