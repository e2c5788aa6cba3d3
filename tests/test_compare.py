"""compare/: exact cells, pivots and shares from a synthetic MLflow store, then a real tiny sweep."""

import math

import mlflow
import numpy as np
import pytest

from compare import report, tables
from compare.runs import ReportError, load_pairs, search

# config: (depth, width, batch_size, lr) -> seeds: (scratchnn acc, keras acc, scratchnn fit, keras fit)
CONFIGS = {
    "A": ((1, 32, 32, 0.1), [(0.90, 0.91, 1.0, 4.0), (0.92, 0.91, 1.0, 1.0)]),
    "B": ((1, 64, 128, 0.1), [(0.95, 0.94, 2.0, 1.0)]),
    "C": ((2, 64, 32, 0.01), [("FAILED", 0.80, None, 3.0)]),  # scratchnn diverged
    "D": ((2, 32, 128, 0.01), [(None, 0.85, 1.0, 1.0)]),  # scratchnn finished without test/acc
}


def make_store(uri):
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("synthetic")
    for config_id, ((depth, width, batch, lr), seeds) in CONFIGS.items():
        for seed, values in enumerate(seeds):
            params = {"data.name": "mnist", "model.depth": depth, "model.width": width, "model.activation": "relu",
                      "train.batch_size": batch, "optimizer.lr": lr, "optimizer.name": "sgd", "train.seed": seed}
            parent = client.create_run(experiment, run_name=config_id, tags={"role": "parent", "config_id": config_id})
            for key, value in params.items():
                client.log_param(parent.info.run_id, key, value)
            statuses = []
            for fw, acc, fit in (("scratchnn", values[0], values[2]), ("keras", values[1], values[3])):
                child = client.create_run(experiment, run_name=fw, tags={"framework": fw,
                                                                          "mlflow.parentRunId": parent.info.run_id})
                run_id = child.info.run_id
                for key, value in params.items():
                    client.log_param(run_id, key, value)
                if acc == "FAILED":
                    client.set_tag(run_id, "failure_reason", "TrainingDiverged: loss=nan")
                    client.set_terminated(run_id, "FAILED")
                    statuses.append("FAILED")
                    continue
                if acc is not None:
                    client.log_metric(run_id, "test/acc", acc)
                client.log_metric(run_id, "fit_time_s", fit)
                client.log_metric(run_id, "epoch_time_s", fit / 2)
                for step, loss in enumerate([1.0, 0.5]):
                    client.log_metric(run_id, "train/loss", loss, step=step)
                if config_id == "B":
                    C = np.array([[5, 1], [2, 8]]) if fw == "scratchnn" else np.array([[6, 0], [1, 9]])
                    client.log_text(run_id, "\n".join(",".join(map(str, r)) for r in C), "confusion_matrix.csv")
                client.set_terminated(run_id, "FINISHED")
                statuses.append("FINISHED")
            client.set_terminated(parent.info.run_id, "FINISHED" if statuses == ["FINISHED"] * 2 else "FAILED")
    return experiment


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('compare') / 'm.db'}"
    make_store(uri)
    return uri


@pytest.fixture(scope="module")
def result(store):
    pairs = load_pairs(search("synthetic", store))
    table = tables.per_config(pairs).set_index("config_id")
    return pairs, table


def test_pairs_cast_params_and_join_children(result):
    pairs, _ = result
    assert len(pairs) == 5 and pairs.depth.dtype.name == "Int64" and pairs.lr.dtype == float
    a = pairs[pairs.config_id == "A"].sort_values("seed")
    assert a.time_ratio.tolist() == [0.25, 1.0] and a.delta_pp.round(6).tolist() == [-1.0, 1.0]


def test_per_config_cells(result):
    _, table = result
    shown = tables.display(table.reset_index()).set_index(table.index)
    assert shown.loc["A", "scratchnn acc %"] == "91.00 ± 1.41"
    assert shown.loc["A", "keras acc %"] == "91.00 ± 0.00"
    assert shown.loc["A", "Δacc pp"] == "0.00 ± 1.41"
    assert shown.loc["A", "time ratio"].startswith("0.500 ± ")  # geometric mean of 0.25 and 1
    assert shown.loc["A", "seeds"] == "2"
    assert shown.loc["B", "time ratio"] == "2.000" and shown.loc["B", "Δacc pp"] == "1.00"
    assert shown.loc["C", "scratchnn acc %"] == "FAILED" and shown.loc["C", "Δacc pp"] == "FAILED"
    assert shown.loc["C", "keras acc %"] == "80.00" and shown.loc["C", "seeds"] == "1 (1 failed)"
    assert shown.loc["D", "scratchnn acc %"] == "missing" and shown.loc["D", "Δacc pp"] == "missing"
    assert shown.loc["D", "time ratio"] == "1.000"
    assert "TrainingDiverged" in table.loc["C", "failures"]


def test_pivots_and_geometric_mean(result):
    pairs, _ = result
    by_axis, two_way = tables.pivots(pairs)
    assert set(by_axis) == {"depth", "width", "batch_size", "lr"}
    depth = by_axis["depth"]
    assert depth.loc[1, "delta_pp"] == pytest.approx(1 / 3)
    assert depth.loc[1, "time_ratio_gmean"] == pytest.approx(0.5 ** (1 / 3))
    assert math.isnan(depth.loc[2, "delta_pp"]) and depth.loc[2, "time_ratio_gmean"] == 1.0
    assert two_way.loc[32, 32] == pytest.approx(0.5) and two_way.loc[64, 128] == 2.0
    assert two_way.loc[32, 128] == 1.0 and math.isnan(two_way.loc[64, 32])
    assert tables.gmean([2, 8]) == pytest.approx(4.0)


def test_summary_shares_best_and_failures(result):
    pairs, table = result
    s = tables.summary(pairs, table.reset_index())
    assert s["configs"] == 4 and s["paired_configs"] == 3
    assert s["share_faster"] == pytest.approx(1 / 3)
    assert s["share_at_least_as_accurate"] == 1.0
    assert s["best"]["scratchnn"]["config_id"] == "B" and s["best"]["keras"]["config_id"] == "B"
    assert s["failed_runs"] == {"scratchnn": 1, "keras": 0}
    assert s["delta_distribution"]["count"] == 2 and s["delta_distribution"]["max"] == pytest.approx(1.0)


def test_per_class_precision_recall_f1():
    pc = tables.per_class([[5, 1], [2, 8]])
    assert pc.precision.tolist() == pytest.approx([5 / 7, 8 / 9])
    assert pc.recall.tolist() == pytest.approx([5 / 6, 0.8])
    assert pc.f1[0] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6)) and pc.support.tolist() == [6, 10]


def test_cli_writes_every_file_and_logs_a_report_run(store, tmp_path, capsys):
    assert report.main(["--experiment", "synthetic", "--tracking-uri", store, "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"report.md", "report.html", "per_config.csv", "runs.csv", "by_depth.csv", "time_ratio_width_x_batch.csv",
            "accuracy_vs_lr.png", "time_ratio_heatmap.png", "learning_curves.png", "confusion_matrices.png"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "scratchnn faster in 33% of configs; at least as accurate in 100%" in md
    assert "| 0     | 0.7143" in md  # per-class precision of class 0 for the best run (B)
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "FAILED" in html
    runs = mlflow.search_runs(experiment_names=["synthetic"])
    assert (runs["tags.role"] == "report").sum() == 1
    assert "failed runs: scratchnn 1, keras 0" in capsys.readouterr().out


def test_missing_and_empty_experiments_give_a_message(store, tmp_path, capsys):
    assert report.main(["--experiment", "nope", "--tracking-uri", store, "--out", str(tmp_path)]) == 1
    assert "no experiment named 'nope'" in capsys.readouterr().err
    mlflow.MlflowClient(store).create_experiment("empty")
    with pytest.raises(ReportError, match="has no runs"):
        search("empty", store)


def test_real_tiny_sweep_end_to_end(data_root, tmp_path):
    """Two real paired runs (two widths) through train_pair, then the report."""
    import warnings

    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    from experiments.pair import train_pair

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
            train_pair(cfg, run_name=f"width={width}")
    assert report.main(["--experiment", "tiny", "--tracking-uri", uri, "--out", str(tmp_path / "r")]) == 0
    per_config = (tmp_path / "r" / "per_config.csv").read_text()
    assert per_config.count("\n") == 3 and (tmp_path / "r" / "confusion_matrices.png").stat().st_size > 1000


def test_old_runs_without_parent_params_or_config_tags(tmp_path):
    """Runs logged before parents carried params and config_id still pair up, taking the children's params."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("old")
    parent = client.create_run(experiment, run_name="old-style")
    for fw, acc in (("scratchnn", 0.9), ("keras", 0.8)):
        child = client.create_run(experiment, tags={"framework": fw, "mlflow.parentRunId": parent.info.run_id})
        for key, value in {"model.depth": 2, "model.width": 64, "model.activation": "tanh", "train.batch_size": 32,
                           "optimizer.lr": 0.05, "optimizer.name": "sgd", "data.name": "mnist"}.items():
            client.log_param(child.info.run_id, key, value)
        client.log_metric(child.info.run_id, "test/acc", acc)
        client.log_metric(child.info.run_id, "fit_time_s", 2.0 if fw == "scratchnn" else 4.0)
        client.set_terminated(child.info.run_id, "FINISHED")
    client.set_terminated(parent.info.run_id, "FINISHED")
    pairs = load_pairs(search("old", uri))
    row = pairs.iloc[0]
    assert (row.depth, row.width, row.activation, row.lr) == (2, 64, "tanh", 0.05)
    assert row.delta_pp == pytest.approx(10.0) and row.time_ratio == 0.5 and row.config_id == "mnist|2|64|tanh|32|0.05|sgd"
    shown = tables.display(tables.per_config(pairs))
    assert shown["epoch ratio"].iloc[0] == "missing" and shown["time ratio"].iloc[0] == "0.500"
