"""compare/: exact cells, pivots and summaries from synthetic MLflow stores (tests/stores.py), then a
real tiny sweep."""

import math
import time

import pytest

from compare import display, report, tables, verdicts
from compare.runs import delta, load_pairs, ratio, search
from experiments import names
from stores import DIVERGED, add_pair, done, params, synthetic_store, tmp_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("compare"))


@pytest.fixture(scope="module")
def result(store):
    pairs = load_pairs(search("synthetic", store))
    table = tables.per_config(pairs)
    return pairs, table


def _by_config(table, shown):
    shown.index = table["config_id"].tolist()
    return shown


def test_pairs_cast_params_and_join_children(result):
    pairs, _ = result
    assert len(pairs) == 5 and pairs.depth.dtype.name == "Int64" and pairs.lr.dtype == float
    assert "torch_status" not in pairs  # only the frameworks present get columns
    a = pairs[pairs.config_id == "A"].sort_values("seed")
    assert a[ratio("keras")].tolist() == [0.25, 1.0] and a[delta("keras")].round(6).tolist() == [-1.0, 1.0]


def test_per_config_cells(result):
    pairs, table = result
    shown = _by_config(table, display.per_config(table, ["depth", "width", "batch_size", "lr"], ["scratchnn", "keras"]))
    assert list(shown.columns) == ["depth", "width", "batch_size", "lr", "seeds", "scratchnn acc %", "scratchnn fit s",
                                   "keras acc %", "keras fit s"]
    assert shown.loc["A", "scratchnn acc %"] == "91.00 ± 1.41" and shown.loc["A", "keras acc %"] == "91.00 ± 0.00"
    assert shown.loc["A", "seeds"] == "2" and shown.loc["A", "keras fit s"] == "2.50" and shown.loc["A", "lr"] == "0.1"
    # C's parent FAILED (no failed_frameworks tag), so its FINISHED keras child is no sample either
    assert shown.loc["C", ["scratchnn acc %", "keras acc %", "seeds"]].tolist() == ["FAILED", "FAILED", "1 (1 failed)"]
    assert shown.loc["D", "scratchnn acc %"] == "missing" and shown.loc["D", "scratchnn fit s"] == "1.00"
    assert table.set_index("config_id").loc["C", "failures"] == f"parent FAILED; scratchnn FAILED: {DIVERGED}"
    comparisons = verdicts.comparisons(pairs)
    cells = _by_config(comparisons, display.verdicts(comparisons, table, ["width"]))
    assert set(cells.index) == {"A", "B", "D"}  # C has no pair, D a time ratio but no Δacc
    assert (cells.loc["A", ["Δacc pp", "seeds", "time ratio", "verdict"]].tolist()
            == ["+0.00", "2", "0.500", "inconclusive"])
    assert (cells.loc["B", ["Δacc pp", "95% CI", "verdict", "time ratio"]].tolist()
            == ["+1.00", "n/a", "inconclusive (n=1)", "2.00"])
    assert cells.loc["D", ["Δacc pp", "verdict", "time ratio"]].tolist() == ["n/a", "n/a", "1.00"]


def test_pivots_and_geometric_mean(result):
    pairs, _ = result
    by_axis, two_way = tables.pivots(pairs)
    assert set(by_axis) == {"depth", "width", "batch_size", "lr"}
    depth = by_axis["depth"]
    assert depth.loc[1, delta("keras")] == pytest.approx(1 / 3)
    assert depth.loc[1, ratio("keras")] == pytest.approx(0.5 ** (1 / 3))
    assert math.isnan(depth.loc[2, delta("keras")]) and depth.loc[2, ratio("keras")] == 1.0
    grid = two_way["keras"]
    assert grid.loc[32, 32] == pytest.approx(0.5) and grid.loc[64, 128] == 2.0
    assert grid.loc[32, 128] == 1.0 and math.isnan(grid.loc[64, 32])
    assert tables.gmean([2, 8]) == pytest.approx(4.0)
    assert display.by_axis(depth, "depth").columns.tolist() == ["depth", "Δacc pp vs keras", "time ratio vs keras",
                                                                "runs vs keras"]


def test_summary_best_and_failures(result):
    pairs, table = result
    s = tables.summary(pairs, table, verdicts.overview(verdicts.comparisons(pairs)))
    assert s["configs"] == 4 and s["frameworks"] == ["scratchnn", "keras"]
    assert s["best"]["scratchnn"]["config_id"] == "B" and s["best"]["keras"]["config_id"] == "B"
    assert s["failed_runs"] == {"scratchnn": 1, "keras": 0}
    assert s["runs"] == {"finished": 4, "failed": 1, "running": 0, "pruned": 0}
    assert s["overview"]["keras"]["verdicts"]["inconclusive (n=1)"] == 1 and s["overview"]["keras"]["configs"] == 3
    assert s["fixed"] == {"dataset": "mnist", "activation": "relu", "optimizer": "sgd"}


def test_per_class_precision_recall_f1():
    pc = tables.per_class([[5, 1], [2, 8]])
    assert pc.precision.tolist() == pytest.approx([5 / 7, 8 / 9])
    assert pc.recall.tolist() == pytest.approx([5 / 6, 0.8])
    assert pc.f1[0] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6)) and pc.support.tolist() == [6, 10]


@pytest.mark.e2e
def test_real_tiny_sweep_end_to_end(data_root, tmp_path):
    """Two real runs (two widths) through the training entry point, then the report."""
    import warnings

    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    from experiments.runner import train_config

    register_configs()
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for width in (16, 32):
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose("config", overrides=[
                    f"data.dir={data_root}", "data.train_size=1000", "data.val_size=200", "data.test_size=500",
                    "train.epochs=1", "train.warmup_steps=1", "train.verbose=false", f"model.width={width}",
                    f"mlflow.tracking_uri={uri}", "mlflow.experiment=tiny"])
            train_config(cfg, name=f"width={width}")
    r = report.build(["tiny"], uri, tmp_path / "r")
    assert r.tests["n_test"].tolist() == [500, 500]  # McNemar from the real predictions.csv
    assert r.columns == ["width"] and set(r.figures) >= {"curves", "confusion", "forest", "accuracy"}
    assert "keras" in r.summary["settings"] and "jit_compile" in r.summary["settings"]["keras"]
    assert report.main(["--experiment", "tiny", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    assert (tmp_path / "r" / "per_config.csv").read_text().count("\n") == 3
    md = (tmp_path / "r" / "report.md").read_text()
    assert "- keras execution: jit_compile=" in md and "no config has 2 seeds or more" in md


def test_old_runs_without_parent_params_or_config_tags(tmp_path):
    """Runs logged before parents carried params, roles and config_id still pair up, with the children's params."""
    uri, client, experiment = tmp_store(tmp_path, "old")
    parent = client.create_run(experiment, run_name="old-style")
    for fw, acc in (("scratchnn", 0.9), ("keras", 0.8)):
        child = client.create_run(experiment, tags={names.FRAMEWORK: fw, names.PARENT: parent.info.run_id})
        for key, value in params(depth=2, width=64, activation="tanh", lr=0.05).items():
            client.log_param(child.info.run_id, key, value)
        client.log_metric(child.info.run_id, names.TEST_ACC, acc)
        client.log_metric(child.info.run_id, names.FIT_TIME, 2.0 if fw == "scratchnn" else 4.0)
        client.set_terminated(child.info.run_id, "FINISHED")
    client.set_terminated(parent.info.run_id, "FINISHED")
    pairs = load_pairs(search("old", uri))
    row = pairs.iloc[0]
    assert (row.depth, row.width, row.activation, row.lr) == (2, 64, "tanh", 0.05)
    assert row[delta("keras")] == pytest.approx(10.0) and row[ratio("keras")] == 0.5
    assert row.config_id == "mnist|2|64|tanh|32|0.05|sgd"
    r = report.build(["old"], uri, tmp_path / "r")  # no predictions.csv: a note, no McNemar
    assert r.comparisons["mcnemar_runs"].tolist() == [0] and any("no predictions.csv" in n for n in r.notes)


def _report(uri, experiment):
    """The store's pairs, per-config table and displayed cells (indexed by config_id)."""
    pairs = load_pairs(search(experiment, uri))
    table = tables.per_config(pairs)
    shown = display.per_config(table, [], ["scratchnn", "keras"])
    return pairs, table.set_index("config_id"), _by_config(table, shown)


def test_running_runs_are_shown_running_not_failed(tmp_path, capsys):
    beat = {names.HEARTBEAT: f"{time.time():.0f}"}  # a live run's, refreshed every ~30 s
    uri, client, experiment = tmp_store(tmp_path, "live")
    add_pair(client, experiment, params(seed=0), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)}, config_id="A")
    add_pair(client, experiment, params(seed=1), {"scratchnn": done(0.5, 1.0), "keras": ("RUNNING", beat)},
             "RUNNING", config_id="A", **beat)
    add_pair(client, experiment, params(width=64), {"scratchnn": ("RUNNING", {})}, "RUNNING", config_id="B")
    pairs, table, shown = _report(uri, "live")
    assert shown.loc["A", "seeds"] == "2 (1 running)" and shown.loc["A", "scratchnn acc %"] == "90.00"
    assert table.loc["A", "failures"] == "" and shown.loc["B", "seeds"] == "1 (1 running)"
    assert shown.loc["B", ["scratchnn acc %", "keras acc %", "keras fit s"]].tolist() == ["running"] * 3
    s = tables.summary(pairs, table.reset_index(), {})
    assert s["failed_runs"] == {"scratchnn": 0, "keras": 0} and s["runs"]["running"] == 2
    assert report.main(["--experiment", "live", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    printed = capsys.readouterr().out
    assert "runs: 1 finished, 0 failed, 2 running, 0 pruned; failed runs: scratchnn 0, keras 0" in printed
    # an hour later without a heartbeat (or, for runs from before heartbeats, since their start) they are dead
    later = load_pairs(search("live", uri), now=time.time() + 3600)
    assert later.state.tolist().count("failed") == 2 and later.keras_status.tolist().count("STALE") == 1
    assert later.keras_reason.str.startswith("no heartbeat for").sum() == 1


def test_finished_children_of_finished_parents_are_samples(tmp_path):
    uri, client, experiment = tmp_store(tmp_path, "parents")
    add_pair(client, experiment, params(seed=0), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)}, config_id="A")
    add_pair(client, experiment, params(seed=1), {"scratchnn": done(0.5, 4.0), "keras": done(0.6, 1.0)}, "KILLED",
             config_id="A", failure_reason="Interrupted: SIGTERM")
    diverged = ("FAILED", {names.FAILURE_REASON: DIVERGED})
    add_pair(client, experiment, params(seed=2), {"scratchnn": done(0.3, 4.0), "keras": diverged}, "FAILED",
             config_id="A", failure_reason="ExperimentFailed: keras failed", failed_frameworks="keras")
    add_pair(client, experiment, params(width=64), {}, "FAILED", config_id="B", failure_reason="ConfigError: bad width")
    deleted = add_pair(client, experiment, params(width=128), {"scratchnn": done(1.0, 1.0), "keras": done(1.0, 1.0)},
                       config_id="C")["parent"]
    client.delete_run(deleted)  # soft-deleted: not in the report at all
    pairs, table, shown = _report(uri, "parents")
    assert deleted not in set(pairs.run_id) and set(table.index) == {"A", "B"}
    # seed 2's parent FAILED because keras diverged: its FINISHED scratchnn child is still a scratchnn sample
    assert shown.loc["A", "seeds"] == "3 (2 failed)" and shown.loc["A", "scratchnn acc %"] == "60.00 ± 42.43"
    assert shown.loc["A", "keras acc %"] == "80.00" and table.loc["A", "scratchnn_finished"] == 2
    assert table.loc["A", "failures"] == ("keras FAILED: TrainingDiverged: loss=nan; "
                                          "parent FAILED (keras failed): ExperimentFailed: keras failed; "
                                          "parent KILLED: Interrupted: SIGTERM")
    assert shown.loc["B", "seeds"] == "1 (1 failed)" and shown.loc["B", "scratchnn acc %"] == "FAILED"
    assert table.loc["B", "failures"] == "parent FAILED: ConfigError: bad width"
    by_axis, two_way = tables.pivots(pairs)
    assert list(by_axis) == ["width"] and two_way == {}  # batch size does not vary
    comparisons = verdicts.comparisons(pairs)
    assert comparisons[["config_id", "n", "time_ratio"]].values.tolist() == [["A", 1, 0.5]]
