"""Faults with real processes and a real store: after each, the store tells the truth and a
relaunch does the right thing. Numbers in the test names are the defects of the run-lifecycle issue."""

import os
import signal
import sqlite3
import subprocess

import pytest

from harness import (
    TINY,
    alive,
    assert_complete,
    command,
    deepest_descendants,
    new_store,
    run,
    running_children,
    runs,
    wait_for,
)

EXPERIMENT = "scratchnn"
LONG = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=100000"]  # runs until stopped


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow  # two of MLflow's 20 s busy timeouts pass under the lock
def test_1_a_locked_store_never_leaves_a_failed_config_finished_and_resume_reruns_it(tmp_path, spawn):
    uri = new_store(tmp_path)
    overrides = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=400"]
    process = spawn(command(uri, tmp_path / "out", *overrides))
    live = wait_for(lambda: running_children(uri, EXPERIMENT), process, what="the scratchnn child to run")
    training = int(live["tags.pid"].iloc[0])  # the process that holds the open runs
    locker = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # held until the training process gave up: its failure's own write fails too
    try:
        wait_for(lambda: not alive(training), timeout=600, what="the training process to end under the lock")
    finally:
        locker.execute("COMMIT")  # its supervisor then ends the runs it left open
        locker.close()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err[-2000:]
    assert len(error_lines(err)) == 1 and "database is locked" in error_lines(err)[0]
    df = runs(uri, EXPERIMENT)
    assert "FINISHED" not in set(df.status) and "RUNNING" not in set(df.status)
    parent = df[df["tags.role"] == "parent"].iloc[0]
    child = df[df["tags.framework"] == "scratchnn"].iloc[0]
    assert parent.status == "FAILED" and child.status == "FAILED"
    assert "database is locked" in child["tags.failure_reason"]

    output = run(command(uri, tmp_path / "again", *overrides, sweep=True))
    assert output.returncode == 0 and "skipped:" not in output.stdout
    assert "sweep: 1 finished, 0 failed, 0 skipped" in output.stdout


@pytest.mark.e2e
def test_2_sigkill_of_the_command_alone_ends_its_training_runs_killed(tmp_path, spawn):
    uri = new_store(tmp_path)
    process = spawn(command(uri, tmp_path / "out", *LONG))
    wait_for(lambda: running_children(uri, EXPERIMENT), process, what="the scratchnn child to run")
    process.kill()  # SIGKILL to the supervising process only: its training child must not train on
    process.communicate(timeout=60)
    df = wait_for(lambda: (d := runs(uri, EXPERIMENT)) is not None and "RUNNING" not in set(d.status) and d,
                  timeout=60, what="the orphaned child to end its runs")
    assert set(df.status) == {"KILLED"}
    assert (df["tags.failure_reason"] == "Interrupted: interrupted by SIGTERM (its supervising process died)").all()


@pytest.mark.e2e
@pytest.mark.parametrize("signum,to_group,code", [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130)])
def test_2_a_signal_ends_a_single_run_killed_with_one_line(tmp_path, spawn, signum, to_group, code):
    uri = new_store(tmp_path)
    process = spawn(command(uri, tmp_path / "out", *LONG))
    wait_for(lambda: running_children(uri, EXPERIMENT), process, what="the scratchnn child to run")
    os.killpg(process.pid, signum) if to_group else process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert process.returncode == code, err[-2000:]
    assert [line for line in err.splitlines() if line.startswith("interrupted")] == [
        f"interrupted by {name}: open runs were ended KILLED; run the same command again to resume"]
    assert "Traceback" not in err
    df = runs(uri, EXPERIMENT)
    assert len(df) == 2 and set(df.status) == {"KILLED"}
    assert df["tags.failure_reason"].str.contains(name).all()


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
SUBMITIT = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]


@pytest.mark.e2e
@pytest.mark.parametrize("signum,to_group,code,launcher", [(signal.SIGINT, True, 130, JOBLIB),
                                                           (signal.SIGTERM, False, 143, JOBLIB),
                                                           (signal.SIGTERM, False, 143, SUBMITIT)])
@pytest.mark.slow
def test_2_a_signal_to_a_parallel_sweep_leaves_nothing_running(tmp_path, spawn, signum, to_group, code, launcher):
    uri = new_store(tmp_path)
    process = spawn(command(uri, tmp_path / "out", *LONG, "model.width=16,17", *launcher, sweep=True))
    wait_for(lambda: (c := running_children(uri, EXPERIMENT)) is not None and len(c) == 2, process,
             what="two jobs in flight")
    os.killpg(process.pid, signum) if to_group else process.send_signal(signum)
    out, err = process.communicate(timeout=180)
    assert process.returncode == code, err[-3000:]
    df = runs(uri, EXPERIMENT)
    assert "RUNNING" not in set(df.status) and "FINISHED" not in set(df.status), err[-3000:]
    killed = df[df.status == "KILLED"]
    assert len(killed) == 4 and killed["tags.failure_reason"].str.contains(signal.Signals(signum).name).all()
    assert process.returncode == code


@pytest.mark.slow
@pytest.mark.e2e
def test_3_two_sweeps_at_once_run_every_config_exactly_once(tmp_path, spawn):
    uri = new_store(tmp_path)
    run(command(uri, tmp_path / "init", *TINY, "model.width=8", sweep=True))  # the store exists before both start
    sweep = [*TINY, "model.depth=1,2", "model.width=16,32", "mlflow.experiment=both"]
    first, second = (spawn(command(uri, tmp_path / name, *sweep, sweep=True)) for name in ("a", "b"))
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs[0][1][-2000:] + outputs[1][1][-2000:]
    df = runs(uri, "both")
    assert_complete(df, 4)
    assert "KILLED" not in set(df.status) and "FAILED" not in set(df.status)
    finished = sum(int(out.split("sweep: ")[1].split(" finished")[0]) for out, _ in outputs)
    assert finished == 4  # the other four jobs were skipped: finished or running elsewhere


def training_process(uri, pid):
    """A process below `pid` that holds a live run (its pid tag), or None while there is none."""
    live = running_children(uri, EXPERIMENT)
    training = set() if live is None else {int(p) for p in live["tags.pid"].dropna()}
    return next((p for p in deepest_descendants(pid) if p in training), None)


@pytest.mark.e2e
@pytest.mark.parametrize("signum,status,why", [
    (signal.SIGKILL, "FAILED", "the training process was killed by SIGKILL"),  # the out-of-memory killer
    (signal.SIGTERM, "KILLED", "interrupted by SIGTERM"),  # earlyoom, systemd-oomd, an admin's kill
])
@pytest.mark.slow
def test_4_a_killed_training_process_fails_its_config_and_the_sweep_goes_on(tmp_path, spawn, signum, status, why):
    uri = new_store(tmp_path)
    process = spawn(command(uri, tmp_path / "out", *TINY, "train.epochs=40", "data.train_size=5000",
                            "model.width=16,32,48,64", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", sweep=True))
    victim = wait_for(lambda: training_process(uri, process.pid), process, what="a live run's training process")
    os.kill(victim, signum)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert "sweep: 3 finished, 1 failed, 0 skipped" in out
    df = runs(uri, EXPERIMENT)
    assert "RUNNING" not in set(df.status)
    failed = df[df.status != "FINISHED"]
    assert len(failed) == 2 and set(failed.status) == {status}, failed[["status", "tags.failure_reason"]]
    assert failed["tags.failure_reason"].str.contains(why).all()
    assert (failed["tags.pid"] == str(victim)).all()  # the runs of the killed process, and only those
    assert (df[df.status == "FINISHED"]["tags.role"] == "parent").sum() == 3


@pytest.fixture(scope="session")
def private_mounts():
    """Skips (an allowed reason, tests/conftest.py) unless `unshare -m` can mount here (root)."""
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs a private mount namespace (unshare -m, as root) for a full disk or a read-only folder")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.usefixtures("private_mounts")
def test_5_a_full_disk_while_logging_leaves_no_truncated_artifact(tmp_path):
    import mlflow

    uri, art = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "art"
    art.mkdir()
    mlflow.MlflowClient(uri).create_experiment("full", artifact_location=art.as_uri())
    train = command(uri, tmp_path / "out", *[o for o in TINY if not o.startswith("frameworks")],
                    "frameworks=[scratchnn,keras]", "mlflow.experiment=full")
    listing = tmp_path / "listing.txt"
    script = (f'mount -t tmpfs -o size=600k tmpfs "{art}" && "$@"; code=$?; '
              f'find "{art}" -type f -printf "%P %s\\n" > "{listing}"; exit $code')
    result = run(["unshare", "-m", "sh", "-c", script, "sh", *train], timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "No space left on device" in error_lines(result.stderr)[0] and "Traceback" not in result.stderr
    df = runs(uri, "full")
    status = dict(zip(df["tags.mlflow.runName"].where(df["tags.role"] != "parent", "parent"), df.status))
    assert status == {"parent": "FAILED", "scratchnn": "FINISHED", "keras": "FAILED"}
    keras = df[df["tags.framework"] == "keras"].iloc[0]
    assert "No space left on device" in keras["tags.failure_reason"]
    files = dict(line.rsplit(" ", 1) for line in listing.read_text().splitlines())
    assert not any(path.startswith(keras.run_id) for path in files), files  # nothing half-written kept
    assert any(path.endswith("model.npz") for path in files)


@pytest.mark.e2e
def test_7_a_bad_seed_in_a_sweep_is_recorded_failed_naming_the_key(tmp_path):
    uri = new_store(tmp_path)
    result = run(command(uri, tmp_path / "out", *TINY, "train.seed=-1,0", sweep=True))
    assert result.returncode == 0 and "sweep: 1 finished, 1 failed, 0 skipped" in result.stdout
    df = runs(uri, EXPERIMENT)
    failed = df[df.status == "FAILED"]
    assert len(failed) == 1 and failed["tags.role"].iloc[0] == "parent"
    assert failed["tags.failure_reason"].iloc[0] == "ConfigError: train.seed must be >= 0. Received: train.seed=-1"


@pytest.mark.slow
@pytest.mark.e2e
def test_8_an_unreachable_server_fails_with_one_line_naming_the_uri(tmp_path):
    result = run(command("http://127.0.0.1:9", tmp_path / "out", *TINY))  # the default, generous bound
    assert result.returncode == 1
    assert error_lines(result.stderr) == [error_lines(result.stderr)[0]]
    assert "http://127.0.0.1:9 did not answer within 20 s" in error_lines(result.stderr)[0]


@pytest.mark.e2e
@pytest.mark.usefixtures("private_mounts")
def test_8_a_read_only_store_folder_is_named_at_once(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    train = command(f"sqlite:///{folder}/m.db", tmp_path / "out", *TINY)
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec "$@"'
    result = run(["unshare", "-m", "sh", "-c", script, "sh", *train], timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: StoreError: the store folder {folder} (from sqlite:///{folder}/m.db) is not "
                           f"writable: OSError: [Errno 30] Read-only file system")


@pytest.mark.slow
@pytest.mark.e2e
def test_10_run_name_is_kept_with_other_overrides(tmp_path):
    uri = new_store(tmp_path)
    result = run(command(uri, tmp_path / "out", *TINY, "model.width=16", "mlflow.run_name=mine"))
    assert result.returncode == 0, result.stderr[-2000:]
    df = runs(uri, EXPERIMENT)
    assert df[df["tags.role"] == "parent"]["tags.mlflow.runName"].tolist() == ["mine"]


def test_reasons_keep_the_root_cause_of_a_tensorflow_error():
    import keras
    import numpy as np

    from experiments.errors import reason

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(10, "softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(Exception) as caught:
        model.fit(np.zeros((4, 3), np.float32), np.array([0, 1, 10, 2]), verbose=0)
    assert len(str(caught.value)) > 500  # the graph trace the old reason was cut inside
    text = reason(caught.value)
    assert text.startswith("InvalidArgumentError: ") and "label value of 10" in text and len(text) <= 500


def test_reasons_name_the_root_of_a_chain():
    from experiments.errors import reason

    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise RuntimeError("could not log\nmore lines") from exc
    except RuntimeError as exc:
        assert reason(exc) == "OSError: [Errno 28] No space left on device"
    assert reason(ValueError("first line\nsecond")) == "ValueError: first line"


def test_reasons_skip_sqlalchemys_asides():
    from experiments.errors import reason

    message = ("(raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block if this "
               "flush is occurring prematurely)\n(sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO "
               "metrics]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)")
    assert reason(RuntimeError(message)) == "RuntimeError: (sqlite3.OperationalError) database is locked"


def test_the_error_line_of_a_job_skips_sqlalchemys_asides_and_keeps_a_list_whole():
    from experiments.errors import error_text, reason
    from experiments.job import JobError

    message = ("(raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block if this "
               "flush is occurring prematurely)\n(sqlite3.OperationalError) database is locked\n[SQL: UPDATE runs "
               "SET status=?\nWHERE runs.run_uuid = ?]\n[parameters: ('FAILED', 'e104')]\n"
               "(Background on this error at: https://sqlalche.me/e/21/e3q8)")
    locked = JobError(reason(RuntimeError(message)), "MlflowException", message)
    assert error_text(locked) == "error: RuntimeError: (sqlite3.OperationalError) database is locked"
    mirrors = "could not download mnist; tried:\nhttp://a: HTTP 404\nhttp://b: timed out"
    assert error_text(JobError("DownloadError: http://b: timed out", "DownloadError", mirrors)).splitlines() == [
        "error: DownloadError: could not download mnist; tried:", "http://a: HTTP 404", "http://b: timed out"]
