"""Load on the embedded store: 8 joblib workers of tiny configs write to one sqlite file at once."""

import json

import pytest

from harness import TINY, assert_complete, command, run, runs, store

pytestmark = pytest.mark.slow  # 8 training processes at once: CPU-heavy on a small machine


def test_8_joblib_workers_on_sqlite_close_every_run_without_a_locked_database(tmp_path):
    uri = store(tmp_path)
    widths = ",".join(str(w) for w in range(8, 16))
    result = run(command(uri, tmp_path / "out", *TINY, f"model.width={widths}", "mlflow.experiment=load",
                         "hydra/launcher=joblib", "hydra.launcher.n_jobs=8", sweep=True), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stdout + result.stderr
    summary = [line for line in result.stdout.splitlines() if line.startswith("sweep: ")]
    why = [line for line in (result.stdout + result.stderr).splitlines() if "failed" in line or "Error" in line]
    jobs = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "out").glob("*/status.json")}
    other = {job: status for job, status in jobs.items() if status["status"] != "finished"}
    assert any("sweep: 8 finished, 0 failed, 0 skipped in" in line for line in summary), (summary, other, why[-20:])
    df = runs(uri, "load")
    assert_complete(df, 8)
    assert set(df.status) == {"FINISHED"}
