"""The README's "More than one machine" commands, read from README.md and run as written against this
machine's engines: an `mlflow server` on PostgreSQL, and the search through SLURM with its Optuna study
in the same PostgreSQL. Only the placeholders change (hosts, the port, the artifact folder), and the
search is shrunk to 2 tiny trials by overrides appended to it."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from experiments.config import PROJECT_ROOT
from harness import TINY, environment, free_port, healthy, runs, wait_for

pytestmark = pytest.mark.engines


def readme_commands():
    """The commands of the first bash block after "More than one machine" in README.md (comments
    dropped, continuation lines joined)."""
    text = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"More than one machine.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no bash block under 'More than one machine'"
    joined = re.sub(r"\\\n\s*", " ", block.group(1))
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def local(command, postgres, port, artifacts):
    """A README command with its placeholders pointed at this machine."""
    for placeholder, here in (("0.0.0.0", "127.0.0.1"), ("tracking-host:5000", f"127.0.0.1:{port}"),
                              ("--port 5000", f"--port {port}"), ("db-host", f"127.0.0.1:{postgres.port}"),
                              ("/shared/mlartifacts", str(artifacts))):
        command = command.replace(placeholder, here)
    words = shlex.split(command)
    if words[0] == "mlflow":
        words[0] = str(Path(sys.executable).with_name("mlflow"))
    elif words[0] == ".venv/bin/python":
        words[0] = sys.executable
    return words


def test_the_readme_multi_machine_commands_run_as_written(tmp_path, postgres, slurm):
    server_cmd, search_cmd = readme_commands()
    assert server_cmd.startswith("mlflow server") and "+sweep=search" in search_cmd, (server_cmd, search_cmd)
    postgres.database("mlflow"), postgres.database("optuna")  # what the README's URLs name
    port = free_port()
    server = subprocess.Popen(local(server_cmd, postgres, port, tmp_path / "art"), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
                              start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(uri), timeout=600, what=f"the README's mlflow server on {uri}")
        search = local(search_cmd, postgres, port, tmp_path / "art") + [
            *TINY, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
        result = subprocess.run(search, cwd=PROJECT_ROOT, env=environment(), capture_output=True, text=True,
                                timeout=1500)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        df = runs(uri, "sweep-search")
        parents = df[(df["tags.role"] == "parent") & (df.status == "FINISHED")]
        assert len(parents) >= 2 and "RUNNING" not in set(df.status), df[["status", "tags.failure_reason"]]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    storage = next(w.split("=", 1)[1] for w in search if w.startswith("hydra.sweeper.storage="))
    study = optuna.load_study(study_name="scratchnn-search", storage=storage)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) >= 2
    assert list((tmp_path / "art").rglob("model.npz")), "no model went through the server's artifact root"
