"""The MLflow UI as a user reaches it: the URL a sweep prints opens the experiment's runs table in
model-training mode, with the runs named by their swept values; a parent run shows every
framework's metrics and the comparison as its description. Real sweep, real `mlflow server`,
headless Chromium. With SCRATCHNN_SCREENSHOTS=<folder> the screenshots are kept (docs/img)."""

import os
import re
from pathlib import Path

import pytest

from browser import chromium, needs_chromium, screenshot
from harness import TINY, command, mlflow_server, new_store, run, runs

pytestmark = [pytest.mark.slow, needs_chromium]
WAIT_MS = 20000  # virtual time for the single-page app to fetch and render


def test_the_printed_url_opens_the_runs_table_and_a_parent_shows_the_comparison(tmp_path):
    uri = new_store(tmp_path)
    overrides = [o for o in TINY if not o.startswith("frameworks=")]
    result = run(command(uri, tmp_path / "out", *overrides, "frameworks=[scratchnn,torch]", "model.width=16,32",
                         "mlflow.experiment=ui", sweep=True))
    assert result.returncode == 0, result.stderr[-3000:]
    printed = re.search(r"then open http://127\.0\.0\.1:5000(/#/experiments/\d+\?workflowType=machine_learning)$",
                        result.stdout.splitlines()[-1]).group(1)
    keep = Path(os.environ.get("SCRATCHNN_SCREENSHOTS") or tmp_path)
    keep.mkdir(parents=True, exist_ok=True)
    with mlflow_server(uri, tmp_path) as server:
        page = server + printed
        dom = chromium(page, tmp_path / "profile", "--dump-dom", "--window-size=1600,1000", wait_ms=WAIT_MS)
        assert "width=16" in dom and "width=32" in dom and "Model training" in dom
        assert screenshot(page, keep / "mlflow_runs.png", tmp_path / "profile", "1600,700", WAIT_MS) > 50
        parent = runs(uri, "ui").query("`tags.role` == 'parent' and `tags.mlflow.runName` == 'width=32'").iloc[0]
        run_page = page.replace("?", f"/runs/{parent.run_id}?")
        dom = chromium(run_page, tmp_path / "profile", "--dump-dom", "--window-size=1600,1800", wait_ms=WAIT_MS)
        assert "scratchnn/test/acc" in dom and "torch/test/acc" in dom and "vs_torch/time_ratio" in dom
        assert parent["tags.mlflow.note.content"].split(" | ")[0] in dom  # the description: the comparison
        assert screenshot(run_page, keep / "mlflow_parent_run.png", tmp_path / "profile", "1600,1800", WAIT_MS) > 50
