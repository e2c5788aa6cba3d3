"""compare/: exact cells, pivots and shares from a synthetic MLflow store, then a real tiny sweep."""

import math
import subprocess
import sys
import time
from pathlib import Path

import mlflow
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
DIVERGED = "TrainingDiverged: loss=nan"


def new_experiment(uri, name, root):
    """An experiment whose artifacts live under `root` (a tmp folder), never in ./mlruns of the project."""
    client = mlflow.MlflowClient(uri)
    return client, client.create_experiment(name, artifact_location=(root / "artifacts").as_uri())


def params(depth=1, width=32, batch=32, lr=0.1, seed=0, activation="relu"):
    return {"data.name": "mnist", "model.depth": depth, "model.width": width, "model.activation": activation,
            "train.batch_size": batch, "optimizer.lr": lr, "optimizer.name": "sgd", "train.seed": seed}


def tmp_store(tmp_path, name):
    """(uri, client, experiment id) of a new store under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    return (uri, *new_experiment(uri, name, tmp_path))


def _log(client, run_id, run_params, values, status):
    """str values are tags, lists are per-step metrics, numbers metrics; RUNNING leaves the run open."""
    for key, value in run_params.items():
        client.log_param(run_id, key, value)
    for key, value in values.items():
        if isinstance(value, str):
            client.set_tag(run_id, key, value)
        else:
            for step, v in enumerate(value if isinstance(value, list) else [value]):
                client.log_metric(run_id, key, v, step=step)
    if status != "RUNNING":
        client.set_terminated(run_id, status)


def add_pair(client, experiment, run_params, children, status="FINISHED", **tags):
    """A parent (role=parent, `tags`) ending `status`, a child per {framework: (status, values)}; returns the ids."""
    ids = {"parent": client.create_run(experiment, tags={"role": "parent", **tags}).info.run_id}
    for fw, (child_status, values) in children.items():
        tags = {"framework": fw, "mlflow.parentRunId": ids["parent"]}
        ids[fw] = client.create_run(experiment, run_name=fw, tags=tags).info.run_id
        _log(client, ids[fw], run_params, values, child_status)
    _log(client, ids["parent"], run_params, {}, status)
    return ids


def done(acc, fit, **values):
    """A FINISHED child's (status, values); acc None: it never logged test/acc."""
    values = {"test/acc": acc, "fit_time_s": fit, "epoch_time_s": fit / 2, **values}
    return "FINISHED", {k: v for k, v in values.items() if v is not None}


def make_store(uri, root):
    client, experiment = new_experiment(uri, "synthetic", root)
    for config_id, ((depth, width, batch, lr), seeds) in CONFIGS.items():
        for seed, (sn_acc, k_acc, sn_fit, k_fit) in enumerate(seeds):
            children = {fw: ("FAILED", {"failure_reason": DIVERGED}) if acc == "FAILED"
                        else done(acc, fit, **{"train/loss": [1.0, 0.5]})
                        for fw, acc, fit in (("scratchnn", sn_acc, sn_fit), ("keras", k_acc, k_fit))}
            ok = all(status == "FINISHED" for status, _ in children.values())
            ids = add_pair(client, experiment, params(depth, width, batch, lr, seed), children,
                           "FINISHED" if ok else "FAILED", config_id=config_id)
            if config_id == "B":
                for fw, C in (("scratchnn", [[5, 1], [2, 8]]), ("keras", [[6, 0], [1, 9]])):
                    client.log_text(ids[fw], "\n".join(",".join(map(str, r)) for r in C), "confusion_matrix.csv")
    return experiment


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{root / 'm.db'}"
    make_store(uri, root)
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
    # C's parent FAILED, so its FINISHED keras child is no sample either
    assert shown.loc["C", "keras acc %"] == "FAILED" and shown.loc["C", "seeds"] == "1 (1 failed)"
    assert shown.loc["D", "scratchnn acc %"] == "missing" and shown.loc["D", "Δacc pp"] == "missing"
    assert shown.loc["D", "time ratio"] == "1.000"
    assert table.loc["C", "failures"] == f"parent FAILED; scratchnn FAILED: {DIVERGED}"


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
    assert "failed runs: scratchnn 1, keras 0; running: 0" in capsys.readouterr().out
    store_root = Path(store[len("sqlite:///"):]).parent.as_uri()
    assert runs.artifact_uri.str.startswith(store_root + "/").all()  # the report's artifacts too: none in ./mlruns


def test_missing_and_empty_experiments_give_a_message(store, tmp_path, capsys):
    assert report.main(["--experiment", "nope", "--tracking-uri", store, "--out", str(tmp_path)]) == 1
    assert "no experiment named 'nope'" in capsys.readouterr().err
    new_experiment(store, "empty", tmp_path)
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
            train_pair(cfg, name=f"width={width}")
    assert report.main(["--experiment", "tiny", "--tracking-uri", uri, "--out", str(tmp_path / "r")]) == 0
    per_config = (tmp_path / "r" / "per_config.csv").read_text()
    assert per_config.count("\n") == 3 and (tmp_path / "r" / "confusion_matrices.png").stat().st_size > 1000


def test_old_runs_without_parent_params_or_config_tags(tmp_path):
    """Runs logged before parents carried params and config_id still pair up, taking the children's params."""
    uri, client, experiment = tmp_store(tmp_path, "old")
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


def _report(uri, experiment):
    """The store's pairs, per-config table and displayed cells (indexed by config_id)."""
    pairs = load_pairs(search(experiment, uri))
    table = tables.per_config(pairs)
    return pairs, table.set_index("config_id"), tables.display(table).set_index(table["config_id"])


def test_running_runs_are_shown_running_not_failed(tmp_path, capsys):
    beat = {"heartbeat": f"{time.time():.0f}"}  # a live run's, refreshed every ~30 s
    uri, client, experiment = tmp_store(tmp_path, "live")
    add_pair(client, experiment, params(seed=0), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)}, config_id="A")
    add_pair(client, experiment, params(seed=1), {"scratchnn": done(0.5, 1.0), "keras": ("RUNNING", beat)},
             "RUNNING", config_id="A", **beat)
    add_pair(client, experiment, params(width=64), {"scratchnn": ("RUNNING", {})}, "RUNNING", config_id="B")
    pairs, table, shown = _report(uri, "live")
    assert shown.loc["A", "seeds"] == "2 (1 running)" and shown.loc["A", "scratchnn acc %"] == "90.00"
    assert shown.loc["A", "time ratio"] == "0.500" and table.loc["A", "failures"] == ""
    assert shown.loc["B", "seeds"] == "1 (1 running)"
    assert shown.loc["B", ["scratchnn acc %", "keras acc %", "Δacc pp"]].tolist() == ["running"] * 3
    s = tables.summary(pairs, table.reset_index())
    assert s["failed_runs"] == {"scratchnn": 0, "keras": 0} and s["paired_runs"]["running"] == 2
    assert report.main(["--experiment", "live", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    assert "failed runs: scratchnn 0, keras 0; running: 2" in capsys.readouterr().out
    # an hour later without a heartbeat (or, for runs from before heartbeats, since their start) they are dead
    later = load_pairs(search("live", uri), now=time.time() + 3600)
    assert later.state.tolist().count("failed") == 2 and later.keras_status.tolist().count("STALE") == 1
    assert later.keras_reason.str.startswith("no heartbeat for").sum() == 1


def test_only_finished_pairs_of_finished_parents_are_samples(tmp_path):
    uri, client, experiment = tmp_store(tmp_path, "parents")
    add_pair(client, experiment, params(seed=0), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)}, config_id="A")
    add_pair(client, experiment, params(seed=1), {"scratchnn": done(0.5, 4.0), "keras": done(0.6, 1.0)}, "KILLED",
             config_id="A", failure_reason="Interrupted: SIGTERM")
    diverged = ("FAILED", {"failure_reason": DIVERGED})
    add_pair(client, experiment, params(seed=2), {"scratchnn": done(0.3, 4.0), "keras": diverged}, "FAILED",
             config_id="A", failure_reason="ExperimentFailed: keras failed", failed_frameworks="keras")
    add_pair(client, experiment, params(width=64), {}, "FAILED", config_id="B", failure_reason="ConfigError: bad width")
    deleted = add_pair(client, experiment, params(width=128), {"scratchnn": done(1.0, 1.0), "keras": done(1.0, 1.0)},
                       config_id="C")["parent"]
    client.delete_run(deleted)  # soft-deleted: not in the report at all
    pairs, table, shown = _report(uri, "parents")
    assert deleted not in set(pairs.run_id) and set(table.index) == {"A", "B"}
    assert shown.loc["A", "seeds"] == "3 (2 failed)" and shown.loc["A", "scratchnn acc %"] == "90.00"
    assert shown.loc["A", "keras acc %"] == "80.00" and shown.loc["A", "time ratio"] == "0.500"
    assert table.loc["A", "failures"] == ("keras FAILED: TrainingDiverged: loss=nan; "
                                          "parent FAILED (keras failed): ExperimentFailed: keras failed; "
                                          "parent KILLED: Interrupted: SIGTERM")
    assert shown.loc["B", "seeds"] == "1 (1 failed)" and shown.loc["B", "scratchnn acc %"] == "FAILED"
    assert table.loc["B", "failures"] == "parent FAILED: ConfigError: bad width"
    by_axis, two_way = tables.pivots(pairs)
    assert by_axis == {} and two_way.to_numpy().tolist() == [[0.5]]
    s = tables.summary(pairs, table.reset_index())
    assert s["best"]["scratchnn"]["acc"] == 0.9 and s["paired_configs"] == 1 and s["share_faster"] == 1.0
    assert s["failed_runs"] == {"scratchnn": 0, "keras": 1}
    assert s["paired_runs"] == {"finished": 1, "failed": 3, "running": 0}


def test_html_escapes_experiment_name_params_and_reasons(tmp_path):
    script = "<script>alert(1)</script>"
    uri, client, experiment = tmp_store(tmp_path, script)
    add_pair(client, experiment, params(activation=script), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)})
    add_pair(client, experiment, params(seed=1, activation=script), {}, "FAILED", failure_reason=script)
    assert report.main(["--experiment", script, "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<title>&lt;script&gt;" in html and html.count("&lt;script&gt;alert(1)") >= 4
    assert "<script" not in html.lower()


def test_default_output_folder_stays_inside_the_reports_root(tmp_path):
    uri, client, experiment = tmp_store(tmp_path, "../../x")
    add_pair(client, experiment, params(), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)})
    root = tmp_path / "a" / "reports"
    assert report.main(["--experiment", "../../x", "--tracking-uri", uri, "--no-log"], reports_root=root) == 0
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("report.md")] == ["a/reports/.._.._x/report.md"]
    assert {report.output_folder(name, root).name for name in (".", "..", "", "a/b c")} == {"_", "__", "a_b_c"}
    assert all(report.output_folder(name, root).parent == root for name in (".", "..", "", "/etc", "..\\.."))


def test_importing_compare_loads_no_training_code_hydra_or_tensorflow():
    code = ("import sys, compare.report; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'experiments', 'scratchnn', 'hydra', 'omegaconf', 'tensorflow', 'keras'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(report.__file__).parents[1], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
    from experiments.config import DEFAULT_TRACKING_URI  # the default compare computes for itself
    assert report.DEFAULT_TRACKING_URI == DEFAULT_TRACKING_URI
