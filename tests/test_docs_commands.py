"""Every shell command and Python block of README.md and docs/*.md runs as written (tiny data).

One test per document runs its commands in order in one scratch folder with one store, so a
README report reads the experiments the README's own sweeps wrote. Only commands in
docs_commands.SKIP (a cluster, a package install) are not run, each with its reason.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import docs_commands as dc
from test_first_hour import clone  # noqa: F401 (the fixture: the committed tree with a venv stand-in)

RUNS = {"make", "train", "report", "bench", "python", "python-block", "ui"}
TIMEOUT = 900


def scan(tmp):
    return [c for doc in dc.DOCS for c in dc.commands(doc, tmp)]


def test_every_command_in_the_docs_is_one_the_test_knows(tmp_path):
    unknown = [c.where() for c in scan(tmp_path) if c.kind not in RUNS | {"export", "skip"}]
    assert not unknown, "teach tests/docs_commands.py to run (or SKIP with a reason):\n" + "\n".join(unknown)


def test_the_readme_has_commands_and_the_library_example():
    found = list(dc.commands(dc.ROOT / "README.md", dc.ROOT))
    kinds = {c.kind for c in found}
    assert {"make", "train", "report", "ui", "python-block"} <= kinds, kinds
    cluster = (dc.ROOT / "README.md").read_text().split("## More than one machine", 1)[1].split("\n## ", 1)[0]
    skipped = [c for c in found if c.kind == "skip"]
    assert all(" ".join(c.text.split()) in " ".join(cluster.split()) for c in skipped), \
        "only the cluster commands skip here; tests/test_engines_readme.py runs them on local engines"


def test_every_skip_entry_is_still_needed(tmp_path):
    skipped = {c.why for c in scan(tmp_path) if c.kind == "skip"}
    assert skipped == {why for _, why in dc.SKIP}, "a SKIP entry matches no command in the docs any more"


def test_python_blocks_compile():
    for doc in dc.DOCS:
        for block in dc.blocks(doc):
            if block.lang == "python":
                compile(block.text, f"{doc.name}:{block.line}", "exec")


@pytest.mark.e2e
def test_a_broken_command_fails_the_run(tmp_path, data_root):
    doc = tmp_path / "broken.md"
    doc.write_text("```bash\n.venv/bin/python -m experiments.train model.widht=8\n```\n")
    (command,) = dc.commands(doc, tmp_path)
    result = run(command, tmp_path, environment(data_root), project=None)
    assert result.returncode != 0 and "widht" in result.stdout + result.stderr


def environment(data_root):
    """The project importable from any folder, as `pip install -e .` (what `make` does) makes it."""
    return {**os.environ, "SCRATCHNN_DATA_DIR": str(data_root), "SCRATCHNN_OFFLINE": "1", "MPLBACKEND": "Agg",
            "PYTHONPATH": str(dc.ROOT)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_ui(command, cwd, env):
    """Start `mlflow ui` on a free loopback port; the experiments it serves, then stop it."""
    port = free_port()
    argv = [*command.argv, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # 4 workers by default
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=1000"
                with urllib.request.urlopen(url, timeout=5) as response:
                    names = [e["name"] for e in json.load(response).get("experiments", [])]
                return subprocess.CompletedProcess(command.argv, 0, "\n".join(names), "")
            except OSError:
                time.sleep(1)
        failed = subprocess.CompletedProcess(command.argv, 1, "", "mlflow ui did not answer within 240 s (or exited)")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the UI and its uvicorn workers
        try:
            log = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log = proc.communicate()[0]
    failed.stderr += "\n" + log[-3000:]
    return failed


def run(command, scratch, env, project):
    if command.kind == "ui":
        return open_ui(command, scratch, env)
    if command.kind == "python-block":
        script = scratch / f"block_{command.block.line}.py"
        script.write_text(command.block.text)
        argv = [sys.executable, str(script)]
    else:
        argv = command.argv
    if command.kind == "make":  # the clone's own tree
        env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    cwd = project if command.kind == "make" else scratch
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def export(command, env):
    for assignment in command.argv:
        name, value = assignment.split("=", 1)
        value = os.path.expandvars(value.replace("$PWD", str(dc.ROOT)))
        if name == "SCRATCHNN_DATA_DIR":
            assert (os.path.realpath(value) == os.path.realpath(env[name]) or os.path.isdir(f"{value}/mnist")), \
                f"{command.where()}: no MNIST under {value}"
            continue  # the test's data folder stays
        env[name] = value


def seed_experiment(experiment, store, scratch, env):
    """Runs for a docs page's report command that names an experiment no command of the page wrote."""
    argv = [sys.executable, "-m", "experiments.train", "-m", "+sweep=smoke", "model.depth=1", "model.width=16",
            "frameworks=[scratchnn,torch]", "train.seed=0,1", f"mlflow.experiment={experiment}",
            f"mlflow.tracking_uri={store}"]
    result = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]


def experiments_in(store):
    import mlflow

    return {e.name for e in mlflow.MlflowClient(store).search_experiments()}


def docs_with(kinds):
    return [doc for doc in dc.DOCS if any(c.kind in kinds for c in dc.commands(doc, dc.ROOT))]


def params():
    return list(_params())


def _params():
    for doc in docs_with(RUNS):  # every page's commands are slow: the README's 16 take minutes
        yield pytest.param(doc, id=doc.name, marks=[pytest.mark.e2e, pytest.mark.slow])


@pytest.mark.parametrize("doc", params())
def test_the_commands_of_a_page_run_as_written(doc, tmp_path, data_root, request):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env, store = environment(data_root), f"sqlite:///{scratch / 'mlflow.db'}"
    project = request.getfixturevalue("clone") if any(c.kind == "make" for c in dc.commands(doc, scratch)) else None
    for command in dc.commands(doc, scratch):
        if command.kind == "skip":
            continue
        if command.kind == "export":
            export(command, env)
            continue
        if command.kind == "report" and doc.name != "README.md":
            wanted = [command.argv[i + 1] for i, a in enumerate(command.argv) if a == "--experiment"]
            for experiment in set(wanted) - experiments_in(store):
                seed_experiment(experiment, store, scratch, env)
        start = time.monotonic()
        result = run(command, scratch, env, project)
        print(f"{time.monotonic() - start:6.1f} s  {command.where()}")  # shown with -s or on failure
        assert result.returncode == 0, (f"{command.where()}\nran: {shlex.join(map(str, result.args))}\n"
                                        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}")
        if command.kind == "ui" and doc.name == "README.md":
            assert "sweep-grid" in result.stdout.split(), f"{command.where()}: the UI shows {result.stdout!r}"


def test_every_relative_link_of_the_docs_resolves():
    pages = [*dc.DOCS, dc.ROOT / "docs" / "measurements" / "README.md", dc.ROOT / "CHANGELOG.md"]
    broken = [f"{page.relative_to(dc.ROOT)}: {target}" for page in pages
              for target in re.findall(r"\]\(([^)#]+)\)", page.read_text())
              if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()]
    assert broken == []


def test_the_readme_is_short_and_holds_no_measurement_log():
    text = (dc.ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert not re.search(r"\b[0-9a-f]{7}\b|\bUTC\b|\bcommit\b", text), "commit hashes and times go in docs/measurements"
