"""compare.report's output: files, the reports experiment, MLflow UI hints, escaping, folders, imports."""

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from compare import display, plots, render, report
from compare.runs import ReportError, search
from experiments import names
from stores import add_pair, done, new_experiment, params, synthetic_store, tmp_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("output"))


def test_cli_writes_every_file_and_logs_the_report_in_its_own_experiment(store, tmp_path, capsys):
    assert report.main(["--experiment", "synthetic", "--tracking-uri", store, "--out", str(tmp_path)]) == 0
    names_ = {p.name for p in tmp_path.iterdir()}
    assert {"report.md", "report.html", "per_config.csv", "verdicts.csv", "summary.csv", "mcnemar.csv", "runs.csv",
            "by_depth.csv", "time_ratio_width_x_batch_keras.csv", "forest_delta_acc.png", "accuracy_by_axis.png",
            "time_ratio_heatmap.png", "learning_curves.png", "confusion_matrices.png"} <= names_
    md = (tmp_path / "report.md").read_text()
    assert "## Per class: depth=1, width=64, batch_size=128, lr=0.1, seed 0" in md  # the best run (B), by its config
    assert "| 0     | 71.43" in md  # its per-class precision of class 0, in %
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "FAILED" in html and "<pre>" not in html
    client = mlflow.MlflowClient(store)
    training = mlflow.search_runs(experiment_names=["synthetic"])
    assert (training[f"tags.{names.ROLE}"] == names.ROLE_REPORT).sum() == 0  # never among the training runs
    reports = client.get_experiment_by_name("synthetic-reports")
    logged = mlflow.search_runs([reports.experiment_id])
    assert len(logged) == 1 and logged.status[0] == "FINISHED"
    assert ({a.path for a in client.list_artifacts(logged.run_id[0])}
            >= {"report.html", "verdicts.csv", "forest_delta_acc.png"})
    assert not any(a.path.startswith(report.CACHE) for a in client.list_artifacts(logged.run_id[0]))
    store_root = Path(store[len("sqlite:///"):]).parent.as_uri()
    assert logged.artifact_uri.str.startswith(store_root + "/").all()  # the report's artifacts too: none in ./mlruns
    out = capsys.readouterr().out
    assert "failed runs: scratchnn 1, keras 0" in out
    url = f"http://127.0.0.1:5000/#/experiments/{reports.experiment_id}?workflowType=machine_learning"
    assert "this report in the MLflow UI: " in out and f"ui --backend-store-uri {store}, then open {url}" in out


def test_view_hint_points_at_the_runs_table():
    runs_table = "/#/experiments/{}?workflowType=machine_learning"
    assert names.view_hint("http://host:5000/", "7") == "open http://host:5000" + runs_table.format(7)
    assert names.view_hint("sqlite:////x/m.db", "3").endswith(
        "ui --backend-store-uri sqlite:////x/m.db, then open http://127.0.0.1:5000" + runs_table.format(3))


def test_missing_and_empty_experiments_give_a_message(store, tmp_path, capsys):
    assert report.main(["--experiment", "nope", "--tracking-uri", store, "--out", str(tmp_path)]) == 1
    assert "no experiment named 'nope'" in capsys.readouterr().err
    new_experiment(store, "empty", tmp_path)
    with pytest.raises(ReportError, match="has no runs"):
        search("empty", store)


def test_markdown_cells_escape_pipes():
    frame = display.configs(pd.DataFrame({"activation": ["a|b"]}), ["activation"])
    assert "| a\\|b " in render.markdown_table(frame)


def test_html_escapes_experiment_name_params_and_reasons(tmp_path):
    script = "<script>alert(1)</script>"
    uri, client, experiment = tmp_store(tmp_path, script)
    add_pair(client, experiment, params(activation=script), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)})
    add_pair(client, experiment, params(seed=1, activation=script), {}, "FAILED", failure_reason=script)
    assert report.main(["--experiment", script, "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<title>scratchnn vs keras: &lt;script&gt;" in html and html.count("&lt;script&gt;alert(1)") >= 4
    assert "<script" not in html.lower()


def test_default_output_folder_stays_inside_the_reports_root(tmp_path):
    uri, client, experiment = tmp_store(tmp_path, "../../x")
    add_pair(client, experiment, params(), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)})
    root = tmp_path / "a" / "reports"
    assert report.main(["--experiment", "../../x", "--tracking-uri", uri, "--no-log"], reports_root=root) == 0
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("report.md")] == ["a/reports/.._.._x/report.md"]
    assert {report.output_folder(name, root).name for name in (".", "..", "", "a/b c")} == {"_", "__", "a_b_c"}
    assert all(report.output_folder(name, root).parent == root for name in (".", "..", "", "/etc", "..\\.."))


@pytest.mark.e2e
def test_importing_compare_loads_names_only_no_training_code_hydra_or_tensorflow():
    code = ("import sys, compare.report; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'experiments', 'scratchnn', 'hydra', 'omegaconf', 'tensorflow', 'keras', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(report.__file__).parents[1], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "['experiments', 'experiments.locations', 'experiments.names']"
    from experiments.config import DEFAULT_TRACKING_URI  # one owner: experiments.locations
    assert report.DEFAULT_TRACKING_URI is DEFAULT_TRACKING_URI


def test_learning_curves_mark_every_epoch(monkeypatch, tmp_path):
    """Two epochs: a line with a marker per epoch; an absent or all-NaN validation series is not drawn.
    (One epoch is a bar chart: tests/test_report_grid.py.)"""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    two_epochs = {"loss": [0.5, 0.4], "accuracy": [0.9, 0.92], "val_loss": [], "val_accuracy": [float("nan")] * 2}
    plots.learning_curves({"scratchnn": two_epochs, "keras": two_epochs}, tmp_path / "curves.png")
    lines = [line for ax in figures[0].axes for line in ax.lines]
    assert len(lines) == 4 and all(line.get_marker() not in (None, "", "None") for line in lines)


def test_figures_follow_what_varies(tmp_path):
    """One config: no accuracy-by-setting figure and no width × batch size heatmap; the forest plot stays."""
    uri, client, experiment = tmp_store(tmp_path, "one")
    for seed in (0, 1):
        add_pair(client, experiment, params(seed=seed), {"scratchnn": done(0.9, 1.0), "keras": done(0.8, 2.0)})
    r = report.build(["one"], uri, tmp_path / "r")
    assert r.columns == [] and set(r.figures) == {"forest"} and r.two_way == {}
    assert display.verdicts(r.comparisons, r.table, [])["config"][0].startswith(
        "dataset=mnist, depth=1, width=32")


def test_nothing_to_compare_yet(tmp_path):
    """Only Keras asked for, or scratchnn diverged: the report says so instead of an empty table."""
    uri, client, experiment = tmp_store(tmp_path, "alone")
    add_pair(client, experiment, params(), {"keras": done(0.9, 1.0)}, frameworks="keras")
    diverged = ("FAILED", {names.FAILURE_REASON: "TrainingDiverged: loss=nan"})
    add_pair(client, experiment, params(width=64), {"scratchnn": diverged, "keras": done(0.9, 1.0)}, "FAILED",
             frameworks="scratchnn,keras", failed_frameworks="scratchnn")
    assert report.main(["--experiment", "alone", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-log"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "No config has scratchnn and another framework both finished yet" in md
    assert "| 32    | 1            | not run         | not run         | 90.00       |" in md
    assert "- no comparison: no config has scratchnn and another framework both finished" in md
