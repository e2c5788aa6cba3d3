"""Liveness without waiting (issue 27, item 5): after SIGKILL of a whole sweep, a relaunch at once runs
every config, because the dead process's runs were opened on this host by a pid that is gone. A config
held by a live process is counted as running elsewhere, naming its holder."""

import os
import re
import signal
import socket

import pytest

from experiments.sweep import counts_line
from harness import assert_complete, command, run, running_children, runs, start, store, wait_for

pytestmark = pytest.mark.e2e
SMOKE = ["+sweep=smoke", "train.threads=1", "frameworks=[scratchnn]", "mlflow.experiment=smoke"]


@pytest.mark.slow
def test_a_relaunch_right_after_sigkill_of_the_whole_sweep_runs_every_config(tmp_path):
    uri = store(tmp_path)
    cmd = command(uri, tmp_path / "out", *SMOKE, "train.epochs=100", sweep=True)  # default heartbeat: 300 s window
    process = start(cmd)
    try:
        wait_for(lambda: running_children(uri, "smoke"), process, what="a child run RUNNING")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # a closed terminal, a reboot, the OOM killer on the parent
        process.communicate()
    before = runs(uri, "smoke")
    assert "RUNNING" in set(before.status)
    done_before = int(((before["tags.role"] == "parent") & (before.status == "FINISHED")).sum())
    relaunch = run(cmd)
    assert relaunch.returncode == 0, relaunch.stderr[-3000:]
    assert f"sweep: {4 - done_before} finished, 0 failed, {done_before} skipped in" in relaunch.stdout
    assert "running elsewhere" not in relaunch.stdout
    df = runs(uri, "smoke")
    killed = df[df.status == "KILLED"]
    assert len(killed) >= 2 and killed["tags.failure_reason"].str.contains(f"on {socket.gethostname()}) is gone",
                                                                           regex=False).all()
    assert_complete(df[df.status != "KILLED"], 4)


@pytest.mark.slow
def test_a_config_held_by_a_live_process_is_counted_running_elsewhere_with_its_holder(tmp_path):
    uri = store(tmp_path)
    forever = [*SMOKE, "model.depth=1", "model.width=16", "train.epochs=100000"]
    holder = start(command(uri, tmp_path / "a", *forever, sweep=True))
    try:
        live = wait_for(lambda: running_children(uri, "smoke"), holder, what="the holder training")
        second = run(command(uri, tmp_path / "b", *forever, sweep=True))
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate()
    assert second.returncode == 0, second.stderr[-3000:]
    pid = live["tags.pid"].iloc[0]
    line = re.search(r"sweep: 0 finished, 0 failed, 0 skipped, 1 running elsewhere \((.*)\) in ", second.stdout)
    assert line, second.stdout[-2000:]
    assert re.fullmatch(rf"\S+ on {re.escape(socket.gethostname())} pid {pid}, "
                        r"heartbeat \d+ s ago", line.group(1)), line.group(1)


def test_the_last_line_names_at_most_three_holders():
    counts = {"finished": 1, "failed": 0, "skipped": 2, "elsewhere": 5, "killed": 0, "pruned": 0}
    line = counts_line(counts, [f"c{i} on h pid {i}, heartbeat 1 s ago" for i in range(5)])
    assert line.startswith("1 finished, 0 failed, 2 skipped, 5 running elsewhere (c0 on h pid 0")
    assert line.endswith("c2 on h pid 2, heartbeat 1 s ago and 2 more)") and "killed" not in line
    assert counts_line({**counts, "elsewhere": 0, "killed": 1}, []) == "1 finished, 0 failed, 2 skipped, 1 killed"
