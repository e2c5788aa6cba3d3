"""The benchmark (benchmarks/): its timing, the GEMM floor, the epoch plan, the jobs, and tiny
end-to-end runs in real processes (the tables' arithmetic: test_bench_tables.py)."""

import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench_results import ALL, PEERS, first_number, printed_rows
from benchmarks import bench, floor, measure, plan


# ---- timing ------------------------------------------------------------------------------------
class FakeClocks:
    """A wall clock and a CPU clock that move only when a fit runs: `wall` s of wall time a fit,
    `cores` times that in CPU time."""

    def __init__(self, wall, cores):
        self.wall, self.cores, self.now, self.cpu = wall, cores, 100.0, 7.0

    def fit(self):
        self.now += self.wall
        self.cpu += self.wall * self.cores
        return "fitted"


def test_timed_returns_the_result_and_the_clocks_difference():
    ticks = iter([10.0, 12.5])
    assert measure.timed(lambda: sum(range(1000)), clock=lambda: next(ticks)) == (2.5, 499500)


@pytest.mark.parametrize("wall,cores", [(0.15, 0.05), (0.15, 1.0), (0.2, 1.8)])
def test_cpu_per_wall_is_the_cpu_time_over_the_wall_time_of_the_timed_fits(wall, cores):
    clocks = FakeClocks(wall, cores)
    result = measure._epochs(clocks.fit, 2, wall_clock=lambda: clocks.now, cpu_clock=lambda: clocks.cpu)
    assert result["first_fit_s"] == pytest.approx(wall) and result["fit_s"] == pytest.approx([wall, wall])
    assert 2 * wall >= measure.MIN_CPU_SPAN_S and result["cpu_per_wall"] == pytest.approx(cores)
    assert clocks.now == pytest.approx(100 + 3 * wall)  # the first fit and the two timed ones


def test_cpu_per_wall_is_not_read_over_a_span_too_short_for_it():
    clocks = FakeClocks(0.01, 1.0)  # 0.02 s in all: a scheduler tick's lag would rule the ratio
    result = measure._epochs(clocks.fit, 2, wall_clock=lambda: clocks.now, cpu_clock=lambda: clocks.cpu)
    assert measure.MIN_CPU_SPAN_S > 0.02 and math.isnan(result["cpu_per_wall"])


def test_timed_refuses_a_clock_that_runs_backwards():
    ticks = iter([10.0, 9.5])  # e.g. a wall clock stepped back by NTP between the two readings
    with pytest.raises(AssertionError, match="negative time"):
        measure.timed(lambda: None, clock=lambda: next(ticks))


# ---- the GEMM floor -----------------------------------------------------------------------------
def test_gemm_shapes_of_one_step_follow_bp2_and_bp3():
    # forward: Z1 = W1 A0 (128x784 @ 784x32), Z2 = W2 A1 (10x128 @ 128x32);
    # backward from the last layer: dW2 = D2 A1^T, dA1 = W2^T D2, dW1 = D1 A0^T
    # (no W1^T D1: the input needs no gradient)
    assert floor.gemm_shapes(1, 128, 32) == [(128, 784, 32), (10, 128, 32), (10, 32, 128), (128, 10, 32),
                                               (128, 32, 784)]
    assert floor.flops_per_step(1, 128, 32) == 2 * (2 * 128 * 784 * 32 + 3 * 10 * 128 * 32)
    assert len(floor.gemm_shapes(3, 64, 16)) == 3 * 4 - 1


def _product(p):
    """(m, k, n, output array) of one floor product, a gemm partial on Fortran-ordered transposes:
    forward Z^T = A^T W^T and backward dA^T = Delta^T W are reported as the products they transpose,
    W A and W^T Delta; BP3.2's gemm accumulates into W^T and is reported as Delta A^T."""
    _, a, b = p.args
    op_a = a.T if p.keywords.get("trans_a") else a
    op_b = b.T if p.keywords.get("trans_b") else b
    c = p.keywords["c"]
    assert p.keywords["overwrite_c"] == 1 and c.flags.f_contiguous
    return op_b.shape[1], op_b.shape[0], op_a.shape[0], c  # (op_a op_b)^T = op_b^T op_a^T


def test_gemm_floor_does_every_product_of_every_step_into_reused_buffers():
    sizes = floor.batch_sizes(100, 32, 4)  # 32, 32, 32 and a last partial batch of 4
    assert sizes == [32, 32, 32, 4]
    gemm = floor.GemmFloor(2, 16, sizes, np.random.default_rng(0))
    per_step = 3 * 3 - 1  # three Dense layers: 3 forward, 3 dW, 2 W^T Delta
    assert gemm.count() == 4 * per_step
    for M in set(sizes):
        products = [_product(p) for p in gemm.products[M]]
        assert [c[:3] for c in products] == floor.gemm_shapes(2, 16, M)
        assert len({id(c[3]) for c in products}) == per_step  # no two products of a step share an output
    for p in gemm.products[32]:
        if p.keywords.get("beta", 0.0) == 0.0:
            p.keywords["c"].fill(np.nan)
    gemm.run()  # every product runs, in place: every output (beta = 0) is written, W^T moves by ~1e-30 x
    assert all(np.isfinite(_product(p)[3]).all() for p in gemm.products[32])


def test_gemm_floor_uses_scratchnns_layout():
    gemm = floor.GemmFloor(1, 8, [5], np.random.default_rng(0))
    first = gemm.products[5][0]
    A0_T, W1_T = first.args[1:]  # Z^1 = W^1 A^0 as (Z^1)^T = (A^0)^T (W^1)^T
    assert W1_T.T.shape == (8, 784) and W1_T.T.flags.c_contiguous
    assert A0_T.shape == (784, 5) and first.keywords["trans_a"] == 1 and A0_T.T.flags.c_contiguous  # an (M, 784) batch
    assert first.keywords["c"].T.shape == (8, 5)
    assert first.keywords["beta"] == 1.0  # as scratchnn's forward gemm, which adds W A to Z = b 1^T
    Wt = gemm.products[5][-1].keywords["c"]  # dW^1's gemm accumulates into W^1 (8, 784) as W^T, Fortran order
    assert Wt.shape == (784, 8) and Wt.flags.f_contiguous and Wt.T.flags.c_contiguous
    assert all(_product(p)[3].dtype == np.float32 for p in gemm.products[5])


# ---- what is timed ------------------------------------------------------------------------------
def test_epoch_plan_times_whole_epochs_unless_asked_for_fewer_steps():
    assert measure.epoch_plan(60000, 128, 0) == (469, 469, 60000)  # the last batch is partial (96)
    assert measure.epoch_plan(60000, 128, 1000) == (469, 469, 60000)
    assert measure.epoch_plan(60000, 32, 256) == (256, 1875, 256 * 32)


def test_steps_for_slices_only_epochs_over_the_flop_budget():
    small = plan.steps_for(1, 128, 32, n_train=60000, flop_budget=300e9)
    assert small == 1875  # 24.6 GFLOP: the whole epoch
    big = plan.steps_for(3, 1024, 32, n_train=60000, flop_budget=300e9)
    per_step = floor.flops_per_step(3, 1024, 32)
    assert big % 64 == 0 and big < 1875 and big * per_step >= 300e9 > (big - 64) * per_step
    assert plan.steps_for(1, 128, 32, n_train=60000, flop_budget=300e9, steps=100) == 100


def test_the_jobs_run_config_by_config_with_the_harness_overrides():
    columns = plan.variants(["scratchnn", "keras", "keras-default", "gemm"])
    jobs = plan.make_jobs([(1, 128, 32), (2, 256, 128)], [1, 2], columns, repeats=3, flop_budget=300e9, n_train=60000)
    assert len(jobs) == 2 * 2 * 4
    assert [j["framework"] for j in jobs[:4]] == ["scratchnn", "keras", "keras-default", "gemm"]
    assert {(j["threads"], j["depth"]) for j in jobs[:4]} == {(1, 1)}
    default = next(j for j in jobs if j["framework"] == "keras-default")
    assert "keras=default" in default["overrides"] and "train.threads=1" in default["overrides"]


def test_keras_columns_take_the_harness_presets():
    """`keras` is what conf/config.yaml runs (the tuned preset), `keras-default` is conf/keras/default.yaml."""
    from omegaconf import OmegaConf

    from experiments.config import CONF_DIR

    tuned = plan.harness_config(plan.BASE)["keras"]
    default = plan.harness_config(plan.BASE + ["keras=default"])["keras"]
    assert tuned == dict(OmegaConf.load(CONF_DIR / "keras" / "tuned.yaml"))
    assert default == {"jit_compile": "auto", "steps_per_execution": 1}
    (job,) = plan.make_jobs([(2, 64, 16)], [1], plan.variants(["scratchnn"]), repeats=1, flop_budget=1e12,
                            n_train=100)
    cfg = plan.harness_config(job["overrides"])
    assert (cfg["model"]["depth"], cfg["model"]["width"], cfg["train"]["batch_size"], cfg["train"]["threads"],
            cfg["data"]["val_size"], cfg["train"]["epochs"]) == (2, 64, 16, 1, 0, 1)
    settings = plan.variants([], keras_settings=True)
    assert len(settings) == 8 and {s[1] for s in settings} == {"keras"}


# ---- the project's style rules for benchmarks/ --------------------------------------------------
def test_benchmark_modules_are_short_and_take_few_positional_parameters():
    import ast

    folder = Path(bench.__file__).parent
    for path in sorted(folder.glob("*.py")):
        source = path.read_text()
        assert len(source.splitlines()) <= 300, f"{path.name} has {len(source.splitlines())} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                assert len(positional) <= 4, f"{path.name}: {node.name} takes {len(positional)} positional parameters"


# ---- a real run ---------------------------------------------------------------------------------
def run_bench(tmp_path, data_root, *args):
    env = {**os.environ, "SCRATCHNN_DATA_DIR": str(data_root), "SCRATCHNN_OFFLINE": "1"}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--configs", "1x16x32", "--steps", "3",
                           "--repeats", "2", "--threads", "1", "--out", str(out), *args],
                          cwd=bench.ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, out


def check_run(stdout, out, frameworks):
    text = (out / "bench_custom.md").read_text()
    assert text in stdout  # the printed table is the written one
    assert "command: python -m benchmarks.bench --configs 1x16x32" in text and "versions:" in text
    (row,) = printed_rows(text)
    times = {fw: first_number(row[f"{fw} s/epoch"]) for fw in frameworks}
    assert all(t > 0 for t in times.values()), row
    assert row["steps timed / epoch"] == "3 / 1875"
    assert float(row["scratchnn / gemm"]) == pytest.approx(times["scratchnn"] / times["gemm"], abs=5e-4)
    with open(out / "bench_custom.csv") as f:
        (csv_row,) = list(csv.DictReader(f))
    for fw in frameworks:
        assert float(csv_row[f"{fw}_s"]) == pytest.approx(times[fw], rel=1e-3)
        assert float(csv_row[f"{fw}_min"]) <= float(csv_row[f"{fw}_s"]) <= float(csv_row[f"{fw}_max"])
        scale = int(csv_row["steps_timed"]) / int(csv_row["steps_per_epoch"])  # s/epoch -> s a timed fit
        span = (float(csv_row[f"{fw}_min"]) + float(csv_row[f"{fw}_max"])) * scale  # the 2 fits' wall time
        cores = float(csv_row[f"{fw}_cpu_per_wall"] or "nan")  # pandas writes NaN as an empty cell
        if span < 0.9 * measure.MIN_CPU_SPAN_S:
            assert math.isnan(cores), (fw, span, cores)
        elif span > 1.1 * measure.MIN_CPU_SPAN_S:
            assert 0 < cores < os.cpu_count() + 0.5, (fw, span, cores)  # a process's CPU / wall
    (line,) = [line for line in text.splitlines() if line.startswith("1 thread(s): CPU time / wall time")]
    unread = [fw for fw in frameworks if not csv_row[f"{fw}_cpu_per_wall"]]
    assert [fw for fw in frameworks if f"{fw} -" in line] == unread
    assert ("too short to read" in line) == bool(unread)
    return row, times


@pytest.mark.e2e
def test_a_tiny_run_in_real_processes(tmp_path, data_root):
    stdout, out = run_bench(tmp_path, data_root, "--frameworks", "scratchnn,gemm")
    row, times = check_run(stdout, out, ["scratchnn", "gemm"])
    assert row["best peer"] == "-" and math.isfinite(float(row["memory_ratio"]))


@pytest.mark.slow
def test_a_tiny_run_of_every_framework(tmp_path, data_root):
    stdout, out = run_bench(tmp_path, data_root)
    row, times = check_run(stdout, out, ALL)
    best = min(PEERS, key=times.get)
    assert row["best peer"] == best
    assert float(row["scratchnn / best peer"]) == pytest.approx(times["scratchnn"] / times[best], abs=5e-4)


def test_gather_share_prints_the_floor_and_an_epoch_with_and_without_its_gather(capsys, monkeypatch):
    from benchmarks import gather_share

    out = np.zeros((2, 3))
    assert gather_share._no_gather(np.ones((5, 3)), np.array([0, 1]), axis=0, out=out, mode="clip") is out
    assert not out.any()  # the no-op leaves the buffer as it was
    calls = []
    monkeypatch.setattr(gather_share, "_no_gather", lambda *a, **k: calls.append(1) or k["out"])
    gather_share.main(["1x16x64", "2x8x100", "--examples", "640", "--repeats", "1"])
    assert len(calls) == 10 + 7  # every step of the no-gather epochs (640 / 64 and 640 / 100 steps) skipped its gather
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["1x16x64", "2x8x100"]
    for line in lines:
        numbers = [float(v) for v in re.findall(r"\d+\.?\d*(?:e-?\d+)?", line.split(":", 1)[1])]
        floor, epoch, ratio, bare, bare_ratio = numbers
        assert min(numbers) > 0
        assert (ratio == pytest.approx(epoch / floor, rel=2e-3, abs=2e-3)
                and bare_ratio == pytest.approx(bare / floor, rel=2e-3, abs=2e-3))
