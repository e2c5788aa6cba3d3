"""The MLflow UI links and what the harness writes for the UI, without a browser: the pages' formats
(MLflow 3.17's), the saved view's tag, the dataset inputs (a digest, no copy), and the view hint's store."""

import json
import os

import mlflow
import numpy as np
import pytest

from experiments import mlflow_ui, names, ui_links


def test_the_pages_have_the_ui_s_formats():
    assert ui_links.compare_page("3", ["a1", "b2"]) == \
        '/#/compare-runs?runs=["a1","b2"]&experiments=["3"]&workflowType=machine_learning'
    assert ui_links.run_page(3, "a1") == "/#/experiments/3/runs/a1?workflowType=machine_learning"
    assert ui_links.view_page(3, "k") == "/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=k"
    assert ui_links.run_link(3, "p", ["a1", "b2"]) == ui_links.compare_page(3, ["a1", "b2"])
    assert ui_links.run_link(3, "p", ["a1"]) == ui_links.run_page(3, "p")  # one framework: nothing to compare


def test_the_comparison_view_shows_the_swept_params_each_framework_s_accuracy_and_the_differences():
    state = ui_links.comparison_state(["model.width", "optimizer"], ["scratchnn", "keras", "torch"])
    assert state["selectedColumns"] == state["columnOrder"] == [
        "params.`model.width`", "params.`optimizer.name`", "metrics.`scratchnn/test/acc`",
        "metrics.`keras/test/acc`", "metrics.`torch/test/acc`", "metrics.`vs_keras/acc_delta_pp`",
        "metrics.`vs_keras/time_ratio`", "metrics.`vs_torch/acc_delta_pp`", "metrics.`vs_torch/time_ratio`"]
    assert state["orderByKey"] == "metrics.`scratchnn/test/acc`" and state["orderByAsc"] is False
    assert state["searchFilter"] == "tags.role = 'parent'"
    assert set(state["columnWidths"]) == set(state["selectedColumns"])


def test_a_sweep_s_saved_view_is_one_experiment_tag_in_the_ui_s_envelope(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    experiment_id = client.create_experiment("sweep")
    page = mlflow_ui.save_comparison_view(client, experiment_id, ["model.depth"], ["scratchnn", "keras"])
    key = page.rsplit("viewStateShareKey=", 1)[1]
    assert page == ui_links.view_page(experiment_id, key)
    tags = client.get_experiment(experiment_id).tags
    first = json.loads(tags[names.SHARED_VIEW + key])
    assert set(first) == {"name", "createdAt", "updatedAt", "state"} and first["name"] == "sweep: scratchnn vs keras"
    assert isinstance(first["createdAt"], int) and isinstance(first["state"], str)
    assert json.loads(first["state"]) == ui_links.comparison_state(["model.depth"], ["scratchnn", "keras"])
    assert mlflow_ui.save_comparison_view(client, experiment_id, ["model.depth"], ["scratchnn", "keras"]) == page
    again = json.loads(client.get_experiment(experiment_id).tags[names.SHARED_VIEW + key])
    assert again["createdAt"] == first["createdAt"] and again["updatedAt"] >= first["updatedAt"]
    views = [t for t in client.get_experiment(experiment_id).tags if t.startswith(names.SHARED_VIEW)]
    assert views == [names.SHARED_VIEW + key]  # the same sweep keeps one view


def test_every_run_gets_its_three_sets_as_inputs_with_a_digest_and_no_copy(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    run_id = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    rng = np.random.default_rng(0)
    data = {split: (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)) for split, n in
            (("train", 300), ("val", 50), ("test", 80))}
    mlflow_ui.log_inputs(client, run_id, mlflow_ui.dataset_inputs(data, "mnist"))
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.tags[0].key, i.tags[0].value) for i in inputs] == [
        ("mnist-train", "mlflow.data.context", "training"), ("mnist-val", "mlflow.data.context", "validation"),
        ("mnist-test", "mlflow.data.context", "test")]
    assert len({i.dataset.digest for i in inputs}) == 3
    assert json.loads(inputs[0].dataset.profile)["features_shape"] == [300, 784]
    assert client.list_artifacts(run_id) == [] and not os.path.exists(tmp_path / "a")  # nothing stored


def test_without_a_validation_set_two_inputs():
    data = {"train": (np.zeros((5, 3), np.float32), np.zeros(5, int)), "val": None,
            "test": (np.ones((4, 3), np.float32), np.zeros(4, int))}
    assert [i.tags[0].value for i in mlflow_ui.dataset_inputs(data, "mnist")] == ["training", "test"]


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "sqlite:///sub/m.db"])
def test_the_printed_store_is_absolute_so_it_works_from_any_folder(tmp_path, monkeypatch, uri):
    monkeypatch.chdir(tmp_path)
    hint = names.view_hint(uri, "1")
    assert f"--backend-store-uri sqlite:///{tmp_path / uri[len('sqlite:///'):]}, then open" in hint
