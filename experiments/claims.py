"""Which configs are done and which runs are alive: the claim a job makes on its config before
training it, and the stale check that ends as KILLED the runs a dead process left RUNNING.

A RUNNING run is dead if the process that opened it is known to be gone, which is known at once
for a run opened on this machine (its `host` tag): the pid is not alive, or belongs to a process
started after the run. For a run of another host only its heartbeat tells: it is dead once it has
not beaten for `mlflow.stale_after_s` (never under 3 of its own beats).
"""

import os
import socket
import time

import psutil

from .names import (
    CLAIM,
    CONFIG_HASH,
    FRAMEWORK,
    FRAMEWORKS_TAG,
    HEARTBEAT,
    HEARTBEAT_S,
    HOST,
    PARENT,
    PID,
    ROLE,
    ROLE_PARENT,
    TEST_ACC,
)
from .tracking import runs as _runs, terminate


def last_beat(run):
    """Unix time of the run's last heartbeat (its start for runs from before heartbeats)."""
    try:
        return float(run.data.tags[HEARTBEAT])
    except (KeyError, ValueError):
        return run.info.start_time / 1000


def silent_for(run, stale_after_s, now=None):
    """Seconds since the run's last beat if that makes it stale, else None. The window is the
    reader's `stale_after_s`, but never under 3 beats of the writer's own `heartbeat_s`."""
    try:
        own = 3 * float(run.data.tags.get(HEARTBEAT_S, 0))
    except ValueError:
        own = 0.0
    silent = (now or time.time()) - last_beat(run)
    return silent if silent > max(stale_after_s, own) else None


CLOCK_SLACK_S = 1.0  # a process's start time is known to about a second (the kernel's boot time is whole seconds)


def gone_here(run):
    """Why the process that opened `run` is known to be gone, or None. Only for a run opened on this
    machine (its `host` tag is this hostname): its pid is not alive (or a zombie), or now belongs to a
    process started after the run began (the pid was reused). Runs of other hosts: None, only their
    heartbeat tells (silent_for)."""
    tags = run.data.tags
    if tags.get(HOST) != socket.gethostname():
        return None
    try:
        pid = int(tags[PID])
    except (KeyError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"its process (pid {pid} on {tags[HOST]}) is gone"
        if process.create_time() > run.info.start_time / 1000 + CLOCK_SLACK_S:
            return f"its process (pid {pid} on {tags[HOST]}) is gone: pid {pid} is now a later process"
    except psutil.NoSuchProcess:
        return f"its process (pid {pid} on {tags[HOST]}) is gone"
    except psutil.Error:  # not ours to inspect: it may be alive
        return None
    return None


def is_live(run, stale_after_s):
    """A RUNNING run's process may still be at work: not gone from this host, and not silent."""
    return gone_here(run) is None and silent_for(run, stale_after_s) is None


def dead_reason(run, stale_after_s, now=None):
    """Why a RUNNING run is dead (its process gone from this host, or no heartbeat for too long), or None."""
    gone = gone_here(run)
    if gone:
        return gone
    silent = silent_for(run, stale_after_s, now)
    if silent is not None:
        return (f"no heartbeat for {silent:.0f} s (stale after {stale_after_s:.0f} s): the process running it "
                f"died or was killed")
    return None


def holder_text(run, now=None):
    """`on <host> pid <pid>, heartbeat <s> s ago`: who holds a claim, for the sweep's last line."""
    tags = run.data.tags
    return (f"on {tags.get(HOST, '?')} pid {tags.get(PID, '?')}, "
            f"heartbeat {(now or time.time()) - last_beat(run):.0f} s ago")


def _parents(client, experiment_id, config_hash, status):
    return _runs(client, experiment_id, f"tags.{CONFIG_HASH} = '{config_hash}' and tags.{ROLE} = '{ROLE_PARENT}' "
                                        f"and attributes.status = '{status}'")


def complete_parent(client, experiment_id, config_hash):
    """A FINISHED parent of this config whose every requested framework has a FINISHED child with
    its test accuracy, or None. Only such a parent counts as done."""
    for parent in _parents(client, experiment_id, config_hash, "FINISHED"):
        wanted = set(filter(None, parent.data.tags.get(FRAMEWORKS_TAG, "").split(",")))
        children = _runs(client, experiment_id, f"tags.`{PARENT}` = '{parent.info.run_id}'")
        done = {c.data.tags.get(FRAMEWORK) for c in children
                if c.info.status == "FINISHED" and TEST_ACC in c.data.metrics}
        if wanted and wanted <= done:
            return parent
    return None


def _order(run):
    return run.info.start_time, run.info.run_id


def _holder(client, experiment_id, config_hash, *, mine, stale_after_s, before=None):
    """A complete parent of this config, or a live confirmed claim other than `mine` (only one
    ordered before `before`, if given)."""
    done = complete_parent(client, experiment_id, config_hash)
    if done is not None:
        return done
    live = [r for r in _parents(client, experiment_id, config_hash, "RUNNING")
            if r.info.run_id != mine and r.data.tags.get(CLAIM) == "confirmed"
            and is_live(r, stale_after_s) and (before is None or _order(r) < before)]
    return min(live, key=_order) if live else None


def claim(client, experiment_id, config_hash, *, mine, stale_after_s):
    """Claim this config for parent run `mine`, created just before. Returns the run that holds the
    config instead (complete, or live and confirmed), or None if `mine` holds it.

    Two phases: with no holder in sight, `mine` is tagged confirmed, then checked again against
    confirmed claims ordered before it (start time, then run id). A claim that became visible
    late is confirmed late and sees the earlier ones; of confirmed live claims every process
    keeps the first, so no two processes train one config."""
    holder = _holder(client, experiment_id, config_hash, mine=mine, stale_after_s=stale_after_s)
    if holder is not None:
        return holder
    client.set_tag(mine, CLAIM, "confirmed")
    me = client.get_run(mine)
    return _holder(client, experiment_id, config_hash, mine=mine, stale_after_s=stale_after_s, before=_order(me))


def mark_stale(client, experiment_id, stale_after_s):
    """End as KILLED every RUNNING run that is dead (dead_reason: its process gone from this host, or
    its heartbeat stale; read again just before the write); returns how many."""
    marked = 0
    for run in _runs(client, experiment_id, "attributes.status = 'RUNNING'"):
        if dead_reason(run, stale_after_s) is None:
            continue
        run = client.get_run(run.info.run_id)
        why = dead_reason(run, stale_after_s) if run.info.status == "RUNNING" else None
        if why is None:
            continue
        terminate(client, run.info.run_id, "KILLED", f"{why}; marked by {socket.gethostname()} pid {os.getpid()}")
        marked += 1
    return marked
