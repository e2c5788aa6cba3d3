"""The benchmark's tables: every ratio from the printed times, errors, cores used, memory and
the Keras-settings verdict (benchmarks/tables.py), on made-up results."""

import numpy as np
import pytest

from bench_results import ALL, PEERS, fake_results, first_number, printed_rows
from benchmarks import plan, tables


def test_a_negative_time_never_reaches_a_table():
    # what the old subtraction printed (`keras -0.327 s/epoch, ratio -3.018`, issue 15) now stops the run
    results = fake_results(["scratchnn", "keras"], seed=0)
    results[1]["s_epoch"] = -0.327
    with pytest.raises(AssertionError, match="negative time"):
        tables.rows(results, ["scratchnn", "keras"], ["keras"])


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
            values = sorted(round(r["cpu_per_wall"], 3) for r in results
                            if r["framework"] == fw and r["threads"] == threads)
            assert f"{fw} {np.median(values):.2f} ({values[0]:.2f}–{values[-1]:.2f})" in line
    assert not [line for line in tables.summary_lines(table, PEERS) if "CPU time" in line]
    # spans too short to read: keras's first config at 1 thread is counted out, all of torch's give "-"
    for r in results:
        if r["framework"] == "torch" or (r["framework"] == "keras" and (r["threads"], r["depth"]) == (1, 1)):
            r["cpu_per_wall"] = float("nan")
    table = tables.rows(results, ALL, PEERS)
    lines = [line for line in tables.summary_lines(table, PEERS, ALL) if "CPU time / wall time" in line]
    for threads, line in zip((1, 2), lines):
        keras = line.split("; keras ")[1].split(";")[0]
        assert "torch -;" in line and line.endswith("(-: no result, or timed epochs too short to read)")
        assert keras.endswith("[1 of 2 configs]") == (threads == 1), keras


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
