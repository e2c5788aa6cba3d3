"""The benchmark's arithmetic: which products a step does, their FLOPs, and the epoch estimate."""

import pytest

from benchmarks.bench import epoch_estimate, flops_per_step, gemm_shapes


def test_gemm_shapes_of_one_step_follow_bp2_and_bp3():
    # layer 1: Z = W A (128x784 @ 784x32), dW = Delta A^T (128x32 @ 32x784); no W^T Delta for layer 1
    # layer 2: Z (10x128 @ 128x32), dW (10x32 @ 32x128), W^T Delta (128x10 @ 10x32)
    assert gemm_shapes(1, 128, 32) == [(128, 784, 32), (128, 32, 784), (10, 128, 32), (10, 32, 128), (128, 10, 32)]
    assert flops_per_step(1, 128, 32) == 2 * (2 * 128 * 784 * 32 + 3 * 10 * 128 * 32)
    assert len(gemm_shapes(3, 64, 16)) == 3 * 4 - 1


def test_epoch_estimate_counts_the_fixed_cost_once():
    # 10 steps took 1.1 s, a one-step call 0.2 s: 0.1 s per further step, S = 100 steps
    assert epoch_estimate(1.1, 0.2, 10, 100) == pytest.approx(0.2 + 0.1 * 99)
    assert epoch_estimate(3.0, 0.5, 100, 100) == 3.0  # a full epoch was timed
