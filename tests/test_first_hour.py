"""A newcomer's path: the README's two commands (through the Makefile) in a fresh clone layout, with
and without ../shared, the cache folder, train.log, --help, and a sweep's job count."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness import TINY
from scratchnn.datasets import FILES

ROOT = Path(__file__).resolve().parents[1]
DEMO = [o for o in TINY if o != "train.verbose=false"]  # the demo prints its epochs


@pytest.fixture
def clone(tmp_path):
    """tmp/work/project: the committed tree (as `git clone` gives it), a venv stand-in that makes
    `make` use this Python, and no ../shared."""
    project = tmp_path / "work" / "project"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, project / name)
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    wrapper = venv / "bin" / "python"  # a symlink would lose the venv's site-packages
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    (venv / ".installed").touch()
    return project


def make(project, target, *args, env=None):
    environment = {k: v for k, v in os.environ.items() if k != "SCRATCHNN_DATA_DIR"}
    environment.update({"SCRATCHNN_OFFLINE": "1", "XDG_CACHE_HOME": str(project.parent / "cache"), **(env or {})})
    return subprocess.run(["make", "-s", target, f"ARGS={' '.join(args)}"], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=600)


def demo(project, *args):
    return make(project, "demo", *DEMO, f"mlflow.tracking_uri=sqlite:///{project / 'mlflow.db'}",
                f"hydra.run.dir={project / 'out'}", *args)


@pytest.mark.slow
@pytest.mark.e2e
def test_demo_without_data_says_where_to_put_the_files(clone):
    result = demo(clone)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "downloads are off (SCRATCHNN_OFFLINE=1)" in errors[0], result.stderr
    assert f"Put the four IDX files in {clone.parent / 'cache' / 'scratchnn' / 'mnist'}, or point" in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("where", ["cache", "shared"])
def test_demo_runs_with_the_files_in_the_cache_or_beside_the_project(clone, data_root, where):
    folder = clone.parent / ("cache/scratchnn/mnist" if where == "cache" else "shared/data/mnist")
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).symlink_to(data_root / "mnist" / name)
    result = demo(clone)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("scratchnn test acc ") and "view: " in lines[-1]
    assert lines[0].startswith("scratchnn epoch 1/1: loss ")
    log = (clone / "out" / "train.log").read_text()
    assert lines[-1] in log  # the run's folder holds its result


@pytest.mark.slow
@pytest.mark.e2e
def test_the_test_command_runs_in_the_clone(clone, data_root):
    result = make(clone, "test", "tests/test_activations.py", "-q", "-p", "no:cacheprovider",
                  env={"SCRATCHNN_DATA_DIR": str(data_root)})
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.e2e
def test_help_lists_real_choices_and_describes_every_key():
    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    from experiments.tracking import flatten

    result = subprocess.run([sys.executable, "-m", "experiments.train", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "schema" not in result.stdout
    assert "optimizer: adam, momentum, rmsprop, sgd" in result.stdout and "keras: default, tuned" in result.stdout
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
    keys = [k for k in flatten(OmegaConf.to_container(cfg)) if not k.startswith("optimizer.")]
    described = {line.split()[0] for line in result.stdout.split("== Keys ==")[1].split("== Config")[0].splitlines()
                 if line.strip()}
    assert set(keys) <= described, set(keys) - described


@pytest.mark.parametrize("preset,command_line,expected", [
    ({"model.depth": "1,2", "model.width": "16,32"}, [], 4),
    ({"model.depth": "1,2", "model.width": "16,32"}, ["model.width=8,16,32", "train.seed=0,1"], 12),
    ({}, ["model.depth=3"], 1),
])
def test_sweep_size_counts_the_jobs_hydra_launches(preset, command_line, expected):
    from experiments.sweep import sweep_size

    config = OmegaConf.create({"hydra": {"sweeper": {"params": preset}, "overrides": {"task": command_line}}})
    assert sweep_size(config) == expected


@pytest.mark.parametrize("task,sweeping,swept,expected", [
    (["+sweep=smoke", "model.depth=2", "train.threads=1", "mlflow.tracking_uri=x"], True, "model.depth", "depth=2"),
    (["model.depth=2", "model.width=64", "train.seed=1"], True, "model.depth,model.width,train.seed",
     "depth=2,width=64,seed=1"),
    (["optimizer.momentum=0.9", "model.width=8"], False, "", "momentum=0.9,width=8"),
    (["mlflow.experiment=e", "rerun=true"], False, "", "default"),
])
def test_run_names_hold_only_the_swept_values(task, sweeping, swept, expected):
    from experiments.train import run_name

    keys = tuple(k for k in swept.split(",") if k) if sweeping else None
    assert run_name(OmegaConf.create({"overrides": {"task": task}}), keys) == expected


def test_readme_links_and_images_resolve():
    """Every relative link and image of the README (docs, screenshots, measured tables) is in the tree."""
    import re

    text = (ROOT / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if not t.startswith(("http://", "https://"))]
    assert len(targets) >= 6 and any(t.endswith(".png") for t in targets)
    assert [t for t in targets if not (ROOT / t).exists()] == []
