"""Packaging: the library installs alone (NumPy, SciPy), the harness says which extra it needs."""

import os
import shutil
import subprocess
import sys
import venv

import pytest

import docs_commands as dc

HARNESS_ONLY = ["tensorflow", "mlflow", "hydra", "pandas", "torch", "optuna"]
HIDE_AND_RUN = """
import runpy, sys
sys.modules[{module!r}] = None  # as if the package were not installed
sys.argv = [{entry!r}, "--help"]
runpy.run_module({entry!r}, run_name="__main__")
"""


def test_the_library_depends_on_numpy_and_scipy_only():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((dc.ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(d.split(">")[0].split("=")[0] for d in project["dependencies"]) == ["numpy", "scipy"]
    extras = project["optional-dependencies"]
    assert {"harness", "torch", "test"} <= set(extras)
    assert "torch==2.13.0" in extras["torch"] and "scratchnn[harness]" in extras["test"]
    assert project["license"] == "MIT" and (dc.ROOT / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("entry", ["experiments.train", "compare.report"])
@pytest.mark.parametrize("module", ["mlflow", "hydra", "pandas"])
def test_the_harness_without_its_extra_prints_one_line_naming_it(entry, module):
    result = subprocess.run([sys.executable, "-c", HIDE_AND_RUN.format(module=module, entry=entry)],
                            cwd=dc.ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: the harness needs the 'harness' extra ({module} not installed): pip install 'scratchnn[harness]'"]
    assert result.stdout == ""


def readme_library_example():
    (block,) = [b for b in dc.blocks(dc.ROOT / "README.md") if b.lang == "python"]
    return block.text


@pytest.mark.slow
def test_the_readme_library_example_runs_where_only_the_library_is_installed(tmp_path, data_root):
    tree = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=dc.ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (dc.ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dc.ROOT / name, tree / name)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(tree)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    absent = subprocess.run([str(python), "-c", "import importlib.util as u; print([m for m in "
                             f"{HARNESS_ONLY!r} if u.find_spec(m)])"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    (work / "example.py").write_text(readme_library_example())
    result = subprocess.run([str(python), "example.py"], cwd=work, capture_output=True, text=True, timeout=600,
                            env={**env, "SCRATCHNN_DATA_DIR": str(data_root), "SCRATCHNN_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy" in result.stdout and (work / "mnist_mlp.npz").is_file()
    harness = subprocess.run([str(python), "-m", "experiments.train"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=120)
    assert harness.returncode != 0 and "pip install 'scratchnn[harness]'" in harness.stderr
