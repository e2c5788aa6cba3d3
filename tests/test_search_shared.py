"""Several searches sharing one local sqlite study: the schema created once, n_trials in all (the
PostgreSQL twins, and the killed worker, are in test_engines_optuna.py)."""

import subprocess

import pytest
from optuna.trial import TrialState

from experiments.config import PROJECT_ROOT
from harness import environment
from test_search import search_command, trials


def start_search(tmp_path, out, *overrides):
    """A search in its own session, its output (stdout and stderr) in one pipe."""
    return subprocess.Popen(search_command(tmp_path, out, *overrides), cwd=PROJECT_ROOT, env=environment(),
                            start_new_session=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
@pytest.mark.e2e
def test_two_searches_started_together_on_a_new_sqlite_study_run_n_trials_in_all(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # the default beside m.db; neither file exists yet
    searches = [start_search(tmp_path, out, "hydra.sweeper.n_trials=4") for out in ("out_a", "out_b")]
    outputs = [finish(search) for search in searches]
    done = trials(storage)
    why = [line for output in outputs for line in output.splitlines() if "failed" in line or "Error" in line]
    assert len(done) == 4 and {t.state for t in done} == {TrialState.COMPLETE}, ([t.state for t in done], why[-20:])
    assert all("Optuna search: 4 complete, 0 pruned, 0 failed" in output for output in outputs)
    jobs = [len(list((tmp_path / out).glob("*/status.json"))) for out in ("out_a", "out_b")]
    assert sum(jobs) == 4, jobs
