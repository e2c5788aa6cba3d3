"""The GEMM floor: the matrix products of a training step and nothing else, in NumPy.

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
    W A into Z, backward Delta A^T into dW and W^T Delta into dA (l > 1), float32, every output
    written with `out=` into a buffer made once per batch size. A^0 is the transpose of an (M, 784)
    batch, as scratchnn's forward pass gets it.

    Args:
        depth, width: the network's hidden layers.
        sizes: the batch size of every step (e.g. `batch_sizes(N, M, S)`).
        rng: a NumPy Generator for the operands' values.
    """

    def __init__(self, depth, width, sizes, rng):
        import numpy as np

        self.sizes = list(sizes)
        self.products = {M: self._operands(depth, width, M, rng=rng) for M in set(self.sizes)}
        self.matmul = np.matmul

    @staticmethod
    def _operands(depth, width, M, *, rng):
        """(a, b, out) of every product of one step on a batch of M, operands drawn from `rng`."""
        import numpy as np

        n = layer_sizes(depth, width)
        f32 = np.float32
        A = [rng.random((M, n[0]), dtype=f32).T] + [rng.random((k, M), dtype=f32) for k in n[1:-1]]
        W = [rng.random((n[l], n[l - 1]), dtype=f32) * f32(0.01) for l in range(1, len(n))]
        D = [rng.random((n[l], M), dtype=f32) for l in range(1, len(n))]
        forward = [(W[l], A[l], np.empty((n[l + 1], M), f32)) for l in range(len(W))]
        backward = []
        for l in range(len(W) - 1, -1, -1):
            backward.append((D[l], A[l].T, np.empty_like(W[l])))
            if l > 0:
                backward.append((W[l].T, D[l], np.empty((n[l], M), f32)))
        return forward + backward

    def run(self):
        """One pass over every step: only the products, into the preallocated outputs."""
        matmul = self.matmul
        for M in self.sizes:
            for a, b, out in self.products[M]:
                matmul(a, b, out=out)

    def count(self):
        """Products per pass: steps x (3 x layers - 1)."""
        return sum(len(self.products[M]) for M in self.sizes)
