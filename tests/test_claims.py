"""Claims and liveness against a real sqlite store, with the orderings that concurrent processes
can produce made explicitly (start times given, claims confirmed in a chosen order)."""

import os
import socket
import subprocess
import sys
import time

import mlflow
import psutil
import pytest

from experiments import claims
from experiments.names import CLAIM, CONFIG_HASH, HEARTBEAT, HEARTBEAT_S, HOST, PID, ROLE
from harness import new_store

STALE = 300.0


@pytest.fixture
def experiment(tmp_path):
    """(client, experiment id) of a new experiment in a new experiment."""
    client = mlflow.MlflowClient(new_store(tmp_path))
    return client, client.create_experiment("claims", artifact_location=(tmp_path / "art").as_uri())


def parent(experiment, start_s, **tags):
    client, experiment_id = experiment
    run = client.create_run(experiment_id, start_time=int(start_s * 1000),
                            tags={CONFIG_HASH: "h", ROLE: "parent", HEARTBEAT: f"{time.time():.0f}", **tags})
    return run.info.run_id


def claim(experiment, mine):
    client, experiment_id = experiment
    holder = claims.claim(client, experiment_id, "h", mine=mine, stale_after_s=STALE)
    return holder.info.run_id if holder is not None else None


def test_a_claim_that_became_visible_late_loses_to_the_confirmed_one(experiment):
    now = time.time()
    first = parent(experiment, now)
    assert claim(experiment, first) is None  # nothing else in sight: confirmed, it trains
    late = parent(experiment, now - 5)  # started earlier, but its write reached the store after
    assert claim(experiment, late) == first  # the old rule (earliest start wins) would have trained both


def test_of_two_confirmed_claims_the_earlier_is_kept_by_both(experiment):
    now = time.time()
    a, b = parent(experiment, now, **{CLAIM: "confirmed"}), parent(experiment, now + 1, **{CLAIM: "confirmed"})
    client, experiment_id = experiment
    order = lambda run_id: claims._order(client.get_run(run_id))  # noqa: E731
    holder = lambda mine: claims._holder(client, experiment_id, "h", mine=mine,  # noqa: E731
                                         stale_after_s=STALE, before=order(mine))
    assert holder(a) is None and holder(b).info.run_id == a


def test_a_dead_claim_does_not_hold_the_config(experiment):
    old = time.time() - 1000
    dead = parent(experiment, old, **{CLAIM: "confirmed", HEARTBEAT: f"{old:.0f}"})
    mine = parent(experiment, time.time())
    assert claim(experiment, mine) is None
    client, experiment_id = experiment
    assert claims.mark_stale(client, experiment_id, STALE) == 1
    assert client.get_run(dead).info.status == "KILLED" and client.get_run(mine).info.status == "RUNNING"


def test_staleness_waits_for_three_of_the_writers_own_heartbeats(experiment):
    client, _ = experiment
    beat = time.time() - 400
    slow = parent(experiment, beat, **{HEARTBEAT: f"{beat:.0f}", HEARTBEAT_S: "200"})
    fast = parent(experiment, beat, **{HEARTBEAT: f"{beat:.0f}", HEARTBEAT_S: "30"})
    assert claims.silent_for(client.get_run(slow), STALE) is None  # 400 s < 3 x 200 s
    assert claims.silent_for(client.get_run(fast), STALE) == pytest.approx(400, abs=5)


def dead_pid():
    """The pid of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_claim_of_this_host_whose_process_is_gone_is_stale_at_once(experiment):
    client, experiment_id = experiment
    here = socket.gethostname()
    dead = parent(experiment, time.time(), **{CLAIM: "confirmed", HOST: here, PID: str(dead_pid())})
    mine = parent(experiment, time.time() + 1, **{HOST: here, PID: str(os.getpid())})
    assert claim(experiment, mine) is None  # the dead claim's heartbeat is fresh, but its process is gone
    assert claims.mark_stale(client, experiment_id, STALE) == 1
    killed = client.get_run(dead)
    assert (killed.info.status == "KILLED"
            and f"pid {killed.data.tags[PID]} on {here}" in killed.data.tags["failure_reason"])
    assert client.get_run(mine).info.status == "RUNNING"  # alive, started before its run: kept


def test_a_pid_now_held_by_a_later_process_is_gone(experiment):
    client, _ = experiment
    started = psutil.Process().create_time()
    reused = parent(experiment, started - 60, **{HOST: socket.gethostname(), PID: str(os.getpid())})
    assert "later process" in claims.gone_here(client.get_run(reused))


def test_a_claim_of_another_host_keeps_the_heartbeat_window(experiment):
    client, experiment_id = experiment
    other = parent(experiment, time.time(), **{CLAIM: "confirmed", HOST: "another-node", PID: str(dead_pid())})
    mine = parent(experiment, time.time() + 1)
    assert claim(experiment, mine) == other  # its pid means nothing here: live while it beats
    assert claims.gone_here(client.get_run(other)) is None
    assert claims.mark_stale(client, experiment_id, STALE) == 0
    assert "another-node pid" in claims.holder_text(client.get_run(other))
