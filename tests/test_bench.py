"""The benchmark (benchmarks/): its timing, the GEMM floor, the epoch plan, the tables' arithmetic,
the Keras-settings verdict and a tiny end-to-end run in real processes."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench, floor, measure, plan, tables

ALL = ["scratchnn", "keras", "keras-default", "torch", "gemm"]
PEERS = ["keras", "keras-default", "torch"]


# ---- timing ------------------------------------------------------------------------------------
def test_timed_returns_the_result_and_a_non_negative_time():
    seconds, result = measure.timed(lambda: sum(range(1000)))
    assert result == 499500 and seconds >= 0


def test_timed_refuses_a_clock_that_runs_backwards():
    ticks = iter([10.0, 9.5])  # e.g. a wall clock stepped back by NTP between the two readings
    with pytest.raises(AssertionError, match="negative time"):
        measure.timed(lambda: None, clock=lambda: next(ticks))


def test_a_negative_time_never_reaches_a_table():
    # what the old subtraction printed (`keras -0.327 s/epoch, ratio -3.018`, issue 15) now stops the run
    results = fake_results(["scratchnn", "keras"], seed=0)
    results[1]["s_epoch"] = -0.327
    with pytest.raises(AssertionError, match="negative time"):
        tables.rows(results, ["scratchnn", "keras"], ["keras"])


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


# ---- the tables ---------------------------------------------------------------------------------
def fake_results(frameworks, seed, configs=((1, 128, 32), (2, 256, 128)), threads=(1, 2)):
    rng = np.random.default_rng(seed)
    out = []
    for t in threads:
        for d, w, b in configs:
            for fw in frameworks:
                times = sorted(rng.uniform(0.2, 6.0, 3))
                out.append({"framework": fw, "threads": t, "depth": d, "width": w, "batch_size": b,
                            "s_epoch": times[1], "min": times[0], "max": times[2], "peak_mb": rng.uniform(0, 300),
                            "steps_timed": 469, "steps_per_epoch": 469, "data_mb": 179.4,
                            "cpu_per_wall": rng.uniform(0.9, 1.3)})
    return out


def printed_rows(text):
    head, *body = tables.parse_markdown(text)
    return [dict(zip(head, cells)) for cells in body]


def first_number(cell):
    return float(cell.split()[0])


@pytest.mark.parametrize("seed", range(5))
def test_every_ratio_is_the_division_of_the_printed_times(seed):
    table = tables.rows(fake_results(ALL, seed), ALL, PEERS)
    rows = printed_rows(tables.markdown(table, ALL, PEERS))
    assert len(rows) == 4
    for row in rows:
        for fw in ALL:
            assert f"{fw} s/epoch" in row and f"{fw} peak MB" in row
        times = {fw: first_number(row[f"{fw} s/epoch"]) for fw in ALL}
        assert all(t >= 0 for t in times.values())
        best = min(PEERS, key=times.get)
        assert row["best peer"] == best
        assert float(row["scratchnn / best peer"]) == pytest.approx(times["scratchnn"] / times[best], abs=5e-4)
        for other in PEERS + ["gemm"]:
            assert float(row[f"scratchnn / {other}"]) == pytest.approx(times["scratchnn"] / times[other], abs=5e-4)


def test_a_failed_measurement_shows_as_error_and_leaves_the_others():
    results = fake_results(["scratchnn", "keras", "torch"], seed=1, configs=[(1, 128, 32)], threads=[1])
    results[1] = {k: results[1][k] for k in ("framework", "threads", "depth", "width", "batch_size")}
    results[1]["error"] = "RuntimeError: boom"
    table = tables.rows(results, ["scratchnn", "keras", "torch"], ["keras", "torch"])
    (row,) = printed_rows(tables.markdown(table, ["scratchnn", "keras", "torch"], ["keras", "torch"]))
    assert row["keras s/epoch"] == "error" and row["scratchnn / keras"] == "-"
    assert row["best peer"] == "torch"


def test_the_cores_each_framework_used_are_summarised_per_thread_count():
    results = fake_results(ALL, seed=3)
    table = tables.rows(results, ALL, PEERS)
    lines = [line for line in tables.summary_lines(table, PEERS, ALL) if "CPU time / wall time" in line]
    assert [line.split()[0] for line in lines] == ["1", "2"]
    for threads, line in zip((1, 2), lines):
        for fw in ALL:
            values = sorted(round(r["cpu_per_wall"], 3) for r in results if r["framework"] == fw and r["threads"] == threads)
            assert f"{fw} {np.median(values):.2f} ({values[0]:.2f}–{values[-1]:.2f})" in line
    assert not [line for line in tables.summary_lines(table, PEERS) if "CPU time" in line]


def test_memory_ratio_against_data_parameters_and_one_batch():
    (r,) = [r for r in fake_results(["scratchnn"], 0, configs=[(1, 128, 32)], threads=[1])]
    r.update(peak_mb=10.0, data_mb=100.0)
    (row,) = tables.rows([r], ["scratchnn"], [])
    params = (784 * 128 + 128 + 128 * 10 + 10) * 4 / 2**20
    acts = (784 + 128 + 10) * 32 * 4 / 2**20
    assert row["memory_ratio"] == pytest.approx((100 + params + 10) / (100 + params + acts))
    assert tables.memory_check([row]) == (True, row)
    row["memory_ratio"] = 1.6
    assert tables.memory_check([row])[0] is False


def test_keras_settings_pick_the_fastest_per_config_and_the_smallest_geometric_mean():
    names = [tables.setting_name(j, s) for j, s in plan.KERAS_SETTINGS]
    assert names[0] == "jit=off spe=1" and names[-1] == "jit=on spe=256"
    speed = {names[0]: 4.0, names[3]: 1.0, names[7]: 1.1}  # spe=256 without XLA wins one config, XLA wins the other
    results = []
    for config, bonus in (((1, 128, 32), names[3]), ((3, 512, 32), names[7])):
        for n in names:
            t = speed.get(n, 2.0) * (0.8 if n == bonus else 1.0)
            results.append({"framework": n, "threads": 1, "depth": config[0], "width": config[1],
                            "batch_size": config[2], "s_epoch": t, "min": t, "max": t, "steps_timed": 1,
                            "steps_per_epoch": 1})
    table = tables.keras_rows(results, names)
    assert [r["fastest"] for r in table] == [names[3], names[7]]
    lines, best = tables.keras_summary(table, names)
    # time / fastest: names[3] 1 and 1.0/0.88, names[7] 1.1/0.8 and 1 -> names[3] has the smaller geometric mean
    assert best == {1: names[3]}
    assert any("recommended jit=off spe=256" in line for line in lines)
    assert "**0.8**" in tables.keras_markdown(table, names)


def test_both_tables_share_the_config_columns_and_the_rounding():
    results = fake_results(["scratchnn", "keras"], seed=2, configs=[(1, 128, 32)], threads=[1])
    framework_row, = tables.rows(results, ["scratchnn", "keras"], ["keras"])
    keras_row, = tables.keras_rows(results, ["scratchnn", "keras"])
    for key in ("threads", "depth", "width", "batch_size", "steps_timed", "steps_per_epoch", "keras_s", "keras_min",
                "keras_max"):
        assert framework_row[key] == keras_row[key]
    assert list(framework_row)[:8] == ["threads", "depth", "width", "batch_size", "steps_timed", "steps_per_epoch",
                                       "scratchnn_s", "scratchnn_min"]  # the CSV's column order
    assert "keras_peak_mb" in framework_row and "keras_peak_mb" not in keras_row
    assert tables.keras_markdown([keras_row], ["scratchnn", "keras"]).splitlines()[0].startswith(
        "| threads | depth | width | batch | steps timed / epoch |")


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
        assert 0 < float(csv_row[f"{fw}_cpu_per_wall"]) < os.cpu_count() + 0.5  # measured: a process's CPU / wall
    assert "1 thread(s): CPU time / wall time of the timed epochs" in text
    return row, times


def test_a_tiny_run_in_real_processes(tmp_path, data_root):
    stdout, out = run_bench(tmp_path, data_root, "--frameworks", "scratchnn,gemm")
    row, times = check_run(stdout, out, ["scratchnn", "gemm"])
    assert row["best peer"] == "-" and math.isfinite(float(row["memory_ratio"]))


@pytest.mark.slow
def test_a_tiny_run_of_every_framework(tmp_path, data_root):
    pytest.importorskip("torch")
    stdout, out = run_bench(tmp_path, data_root)
    row, times = check_run(stdout, out, ALL)
    best = min(PEERS, key=times.get)
    assert row["best peer"] == best
    assert float(row["scratchnn / best peer"]) == pytest.approx(times["scratchnn"] / times[best], abs=5e-4)
