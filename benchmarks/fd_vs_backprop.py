"""Why backpropagation: the time of a finite-difference gradient against backprop.

    python -m benchmarks.fd_vs_backprop [--hidden 128] [--batch 32]

On a 784-128-10 network (101,770 parameters) and one batch, it computes the full gradient twice:
by central differences, 2 forward passes per parameter, and by one forward and one backward pass.
It prints both times, their ratio and the largest relative difference between the gradients.
float64 throughout, so the finite differences are accurate enough to compare.
"""

import argparse
import time

import numpy as np

import scratchnn as sn
from scratchnn.gradcheck import backprop_gradient, finite_difference_gradient


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    net = sn.mlp(784, 1, args.hidden, 10, seed=0, dtype="float64")
    X, y = rng.random((args.batch, 784)), rng.integers(0, 10, args.batch)
    n_params = sum(p.size for p in net.params)
    start = time.perf_counter()
    for _ in range(10):
        bp = backprop_gradient(net, X, y)
    t_bp = (time.perf_counter() - start) / 10
    start = time.perf_counter()
    fd = finite_difference_gradient(net, X, y)
    t_fd = time.perf_counter() - start
    a, b = np.concatenate([g.ravel() for g in bp]), np.concatenate([g.ravel() for g in fd])
    err = np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))
    print(f"parameters: {n_params}, batch: {args.batch}")
    print(f"backprop: {t_bp * 1e3:.2f} ms; finite differences: {t_fd:.1f} s ({2 * n_params} forward passes); "
          f"ratio {t_fd / t_bp:,.0f}x; relative difference {err:.1e}")


if __name__ == "__main__":
    main()
