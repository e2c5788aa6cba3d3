"""Where things are written: names users type (experiment and run names with `../`, `/` or HTML) stay
inside the artifact root and the reports folder, and the defaults follow MLflow's and Hydra's
conventions (mlflow.db, mlartifacts/, outputs/ and reports/ in the working directory)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import locations, tracking
from experiments.config import MLflowConfig
from harness import TINY, environment

ROOT = Path(__file__).resolve().parents[1]
EVIL = "../../evil<img src=x onerror=alert(1)>"
NAMES = [EVIL, "..", ".", "", "/etc/passwd", "a/b", "a_b", "-rf", ".hidden", "x" * 300, "évité", "a\\..\\b",
         "sweep-grid"]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_becomes_one_folder_directly_inside_the_root(tmp_path, name):
    folder = locations.inside(tmp_path, name)
    assert folder.parent == tmp_path and folder.name not in (".", "..", "")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", folder.name) and len(folder.name) <= 80
    assert folder.resolve().parent == tmp_path.resolve()


def test_plain_names_keep_their_folder_and_different_names_never_share_one():
    assert locations.folder_name("sweep-grid") == "sweep-grid" and locations.folder_name("a_b") == "a_b"
    folders = [locations.folder_name(name) for name in NAMES]
    assert len(set(folders)) == len(NAMES)
    assert locations.folder_name("a/b") != locations.folder_name("a_b") != locations.folder_name("a b")


def test_a_new_experiment_s_artifact_location_is_inside_the_store_s_artifact_root(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    location = tracking.artifact_location(uri, EVIL)
    assert location == (tmp_path / "mlartifacts" / locations.folder_name(EVIL)).as_uri()
    assert tracking.artifact_location("http://127.0.0.1:5000", EVIL) is None  # a server decides


def test_the_default_store_is_mlflow_db_in_the_working_directory():
    assert MLflowConfig().tracking_uri == "sqlite:///mlflow.db" == locations.DEFAULT_TRACKING_URI
    from compare import report

    assert report.DEFAULT_TRACKING_URI is locations.DEFAULT_TRACKING_URI and report.REPORTS_ROOT == Path("reports")


def files_under(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.e2e
def test_names_with_dot_dots_and_html_write_nothing_outside_the_artifact_root_and_reports(tmp_path):
    """The training command and compare.report on the default store, run from a folder two levels down:
    every file written is the store, or under mlartifacts/, outputs/ or reports/ of that folder."""
    cwd = tmp_path / "work" / "a" / "b"
    cwd.mkdir(parents=True)
    (tmp_path / "work" / "keep.txt").write_text("was here before")
    before = files_under(tmp_path)
    env = {**environment(), "PYTHONPATH": str(ROOT)}  # this checkout's code, from another folder
    overrides = [o for o in TINY if not o.startswith("frameworks=")]
    train = subprocess.run([sys.executable, "-m", "experiments.train", *overrides, "frameworks=[scratchnn,torch]",
                            f"mlflow.experiment='{EVIL}'", "mlflow.run_name='../../run<b>x</b>'"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert f"--backend-store-uri sqlite:///{cwd.resolve() / 'mlflow.db'}, then open" in train.stdout.splitlines()[-1]
    report = subprocess.run([sys.executable, "-m", "compare.report", "--experiment", EVIL], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    new = files_under(tmp_path) - before
    allowed = re.compile(r"work/a/b/(mlflow\.db(\.lock)?|(mlartifacts|outputs|reports)/.+)")
    assert [path for path in sorted(new) if not allowed.fullmatch(path)] == []
    assert not any("<" in path or ">" in path for path in new)
    artifacts = {Path(p).name for p in new if p.startswith("work/a/b/mlartifacts/")}
    assert {"model.npz", "predictions.csv", "learning_curves.png", "report.md"} <= artifacts  # written, and inside
    assert any(p.startswith("work/a/b/reports/") and p.endswith("/report.html") for p in new)
    assert os.listdir(tmp_path) == ["work"] and sorted(os.listdir(tmp_path / "work")) == ["a", "keep.txt"]
