"""How much of scratchnn's distance from the GEMM floor is the gather of each shuffled batch.

    python -m benchmarks.gather_share 1x128x32 1x128x512 [--examples 60000] [--repeats 5]

For each depth x width x batch, in this process at 1 thread, on random float32 images: the floor
(benchmarks.floor, the step's products only), a scratchnn epoch, and the same epoch with NumPy's
`take` (the batch gather into the step's buffer) replaced by a no-op, so every step trains on
whatever the buffer holds: a measurement, not training. Prints each one's min over the repeats and
the two ratios to the floor.
"""

import argparse
from unittest import mock

import numpy as np
from threadpoolctl import threadpool_limits

import scratchnn as sn
from benchmarks.floor import GemmFloor, batch_sizes
from benchmarks.measure import timed


def _fastest(fn, repeats):
    return min(timed(fn)[0] for _ in range(repeats))


def _no_gather(a, indices, *, axis=None, out=None, mode="raise"):
    return out


def measure(config, *, examples, repeats):
    """{"floor", "scratchnn", "no_gather"}: seconds per epoch (min of `repeats`) for "DxWxM"."""
    depth, width, M = (int(v) for v in config.split("x"))
    rng = np.random.default_rng(0)
    X, y = rng.random((examples, 784), dtype=np.float32), rng.integers(0, 10, examples)
    net = sn.mlp(784, depth, width, 10, optimizer=sn.SGD(lr=0.01), seed=0, dtype="float32")

    def epoch():
        net.fit(X, y, epochs=1, batch_size=M, verbose=False, shuffle=np.random.default_rng(1))

    floor = GemmFloor(depth, width, batch_sizes(examples, M, -(-examples // M)), np.random.default_rng(0))
    epoch()  # buffers made, pages touched
    out = {"floor": _fastest(floor.run, repeats), "scratchnn": _fastest(epoch, repeats)}
    with mock.patch.object(np, "take", _no_gather):
        out["no_gather"] = _fastest(epoch, repeats)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="+", help="depth x width x batch, e.g. 1x128x32")
    parser.add_argument("--examples", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        for config in args.configs:
            t = measure(config, examples=args.examples, repeats=args.repeats)
            print(f"{config}: floor {t['floor']:.4g} s, scratchnn {t['scratchnn']:.4g} s "
                  f"({t['scratchnn'] / t['floor']:.3f} x floor), without the gather {t['no_gather']:.4g} s "
                  f"({t['no_gather'] / t['floor']:.3f} x floor)", flush=True)


if __name__ == "__main__":
    main()
