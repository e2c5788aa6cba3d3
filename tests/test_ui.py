"""The MLflow UI as a user reaches it, from the links the commands print: a sweep's last line opens its
saved view (a flat table of its configs with the swept params, each framework's test accuracy, Δacc and
the time ratio); a single run's last line opens the compare page of its frameworks' runs; a parent run's
page, in model-training mode, shows every framework's metrics, the comparison and the data sets. Real
sweep, real `mlflow server`, headless Chromium. With SCRATCHNN_SCREENSHOTS=<folder> the screenshots are
kept (docs/img)."""

import os
import re
from pathlib import Path

import pytest

from browser import chromium, needs_chromium, screenshot
from experiments import ui_links
from harness import TINY, command, mlflow_server, new_store, run, runs

pytestmark = [pytest.mark.slow, needs_chromium]
WAIT_MS = 20000  # virtual time for the single-page app to fetch and render
OPEN = r"then open http://127\.0\.0\.1:5000(\S+)$"
METRICS = ["scratchnn/test/acc", "torch/test/acc", "vs_torch/acc_delta_pp", "vs_torch/time_ratio"]


def printed_page(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return re.search(OPEN, result.stdout.splitlines()[-1]).group(1)


def cell(dom, column, value):
    """Whether the runs table shows `value` in `column` (ag-grid's cell ids name the column)."""
    return re.search(rf'id="cell-{re.escape(column)}-\d+" class="ag-cell-value">{re.escape(str(value))}<', dom)


def model_training_mode(dom):
    """The sidebar of model-training mode (Runs, Models, Model registry), not GenAI's (Prompts, AI Gateway)."""
    return "Model registry" in dom and "AI Gateway" not in dom


def test_the_printed_links_open_the_saved_view_the_compare_page_and_a_parent_run(tmp_path):
    uri = new_store(tmp_path)
    overrides = [o for o in TINY if not o.startswith("frameworks=")] + ["frameworks=[scratchnn,torch]",
                                                                         "mlflow.experiment=ui"]
    view = printed_page(run(command(uri, tmp_path / "sweep", *overrides, "model.width=16,32", sweep=True)))
    assert re.fullmatch(r"/#/experiments/\d+/runs\?workflowType=machine_learning&viewStateShareKey=comparison-"
                        r"[0-9a-f]{12}", view), view
    compare = printed_page(run(command(uri, tmp_path / "single", *overrides, "model.width=64")))
    df = runs(uri, "ui")
    parents, children = df[df["tags.role"] == "parent"], df[df["tags.framework"].notna()]
    single = parents[parents["params.model.width"] == "64"].iloc[0]
    pair = children[children["tags.mlflow.parentRunId"] == single.run_id].sort_values("tags.framework")
    assert compare == ui_links.compare_page(single["experiment_id"], pair.run_id)  # the children of the single run
    keep = Path(os.environ.get("SCRATCHNN_SCREENSHOTS") or tmp_path)
    keep.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "profile"
    with mlflow_server(uri, tmp_path) as server:
        dom = chromium(server + view, profile, "--dump-dom", "--window-size=1800,900", wait_ms=WAIT_MS)
        assert model_training_mode(dom) and "tags.role = 'parent'" in dom  # a flat table of configs
        for _, parent in parents.iterrows():
            assert parent["tags.mlflow.runName"] in dom
            assert cell(dom, "params.`model.width`", parent["params.model.width"])
            for metric in METRICS:
                assert cell(dom, f"metrics.`{metric}`", parent[f"metrics.{metric}"]), (metric, parent.run_id)
        assert not any(run_id in dom for run_id in children.run_id)  # the frameworks' runs are not rows of it
        assert screenshot(server + view, keep / "mlflow_saved_view.png", profile, "1800,700", WAIT_MS) > 50

        dom = chromium(server + compare, profile, "--dump-dom", "--window-size=1800,2000", wait_ms=WAIT_MS)
        assert model_training_mode(dom) and "Comparing 2 Runs" in dom
        for _, child in pair.iterrows():
            assert child.run_id in dom and f">{child['metrics.test/acc']}<" in dom  # both frameworks' accuracy
        assert all(f">{metric}<" in dom for metric in ("test/acc", "test/loss", "fit_time_s"))  # rows of the metrics
        assert screenshot(server + compare, keep / "mlflow_compare.png", profile, "1800,2000", WAIT_MS) > 50

        parent = parents[parents["tags.mlflow.runName"] == "width=32"].iloc[0]
        page = ui_links.run_page(parent["experiment_id"], parent.run_id)
        dom = chromium(server + page, profile, "--dump-dom", "--window-size=1800,1800", wait_ms=WAIT_MS)
        assert model_training_mode(dom) and all(metric in dom for metric in METRICS)
        assert parent["tags.mlflow.note.content"].split(" | ")[0] in dom  # the description: the comparison
        assert "mnist-train" in dom  # the data sets it was trained and tested on
        assert screenshot(server + page, keep / "mlflow_parent_run.png", profile, "1800,1800", WAIT_MS) > 50
