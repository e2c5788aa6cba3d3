"""Several searches sharing one Optuna study in a private PostgreSQL (marker `engines`): the schema created
once, n_trials in total, and the trial of a killed worker failed and run again by another."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from experiments.config import PROJECT_ROOT
from harness import free_port, wait_for
from test_search import STUDY, trials
from test_search_shared import finish, start_search

pytestmark = pytest.mark.engines
PG_BIN = Path("/usr/lib/postgresql/15/bin")
OPEN_STUDY = ("import sys; from hydra_plugins.scratchnn_optuna._storage import open_storage; import optuna; "
              "optuna.create_study(study_name='s', storage=open_storage(sys.argv[1]), load_if_exists=True)")
FAST_BEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=6",  # Optuna: stale after 6 s
             "mlflow.heartbeat_s=1", "mlflow.stale_after_s=4"]  # MLflow: the killed worker's runs, after 4 s


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL cluster on a free port of 127.0.0.1 (trust logins); yields a function that
    creates a new, empty database and returns its URL."""
    folder = Path(tempfile.mkdtemp(prefix="scratchnn-optuna-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres")
    port, data = free_port(), folder / "data"
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options,
                                "-w", "start"]), check=True, capture_output=True, timeout=120)
    created = []

    def database():
        name = f"optuna{len(created)}"
        subprocess.run(as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                    name]), check=True, capture_output=True, timeout=60)
        created.append(name)
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"
    try:
        yield database
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_new_schema_created_by_processes_started_together(postgres):
    url = postgres()  # a new database: Optuna's tables are created by whichever process comes first
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_STUDY, url], cwd=PROJECT_ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(4)]
    for process in processes:  # without the lock, most of 4 such processes fail with UniqueViolation
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]


def test_two_searches_started_together_on_a_new_study_run_n_trials_in_all(tmp_path, postgres):
    storage = postgres()
    searches = [start_search(tmp_path, out, f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=6")
                for out in ("out_a", "out_b")]
    outputs = [finish(search) for search in searches]
    done = trials(storage)
    assert len(done) == 6 and {t.state for t in done} == {TrialState.COMPLETE}, [t.state for t in done]
    assert all("Optuna search: 6 complete, 0 pruned, 0 failed" in output for output in outputs)
    jobs = [len(list((tmp_path / out).glob("*/status.json"))) for out in ("out_a", "out_b")]
    assert sum(jobs) == 6 and min(jobs) >= 1, jobs  # both took part


def trial_of_first_job(out):
    """The trial number that a search's first job trains, from its Hydra overrides, once it started."""
    overrides = out / "0" / ".hydra" / "overrides.yaml"
    if not overrides.exists():
        return None
    found = [line.split("=", 1)[1] for line in yaml.safe_load(overrides.read_text()) or [] if
             line.startswith("search.trial=")]
    return int(found[0]) if found else None


def test_a_killed_workers_trial_is_failed_and_run_again_by_the_other(tmp_path, postgres):
    storage = postgres()
    killed = start_search(tmp_path, "out_a", f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=4", *FAST_BEAT)
    number = wait_for(lambda: trial_of_first_job(tmp_path / "out_a"), killed, what="the first job of search a")
    wait_for(lambda: trials(storage)[number].state == TrialState.RUNNING, killed, what=f"trial {number} RUNNING")
    other = start_search(tmp_path, "out_b", f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=4", *FAST_BEAT)
    time.sleep(1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    output = finish(other)

    done = trials(storage)
    assert done[number].state == TrialState.FAIL
    retries = [t for t in done if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == done[number].params
    assert f"re-running trials [{number}]" in output
    assert not [t for t in done if not t.state.is_finished()]
    counted = [t for t in done if t.number != number]
    assert len(counted) == 4 and {t.state for t in counted} == {TrialState.COMPLETE}
    assert isinstance(optuna.load_study(study_name=STUDY, storage=storage).best_value, float)
