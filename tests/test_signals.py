"""Signal forwarding (experiments/signals.py) in real processes: a process that gets SIGTERM inside
`handled()` forwards it to its children and waits for those that act on it, at most `grace_s`; a
child that ignores the signal is neither waited for nor counted as gone."""

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from experiments.config import PROJECT_ROOT
from harness import environment

pytestmark = pytest.mark.e2e
CHILDREN = {  # each prints "ready" once its SIGTERM disposition is set, then waits for signals
    "cooperates": "def h(s, f):\n    print('cleaned up', flush=True)\n    sys.exit(0)\n"
                  "signal.signal(signal.SIGTERM, h)",
    "stubborn": "def h(s, f):\n    print('got SIGTERM', flush=True)\nsignal.signal(signal.SIGTERM, h)",
    "ignores": "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
}
DRIVER = """
import os, signal, subprocess, sys
from experiments import signals
child = subprocess.Popen([sys.executable, "-c", "import signal, sys\\n" + sys.argv[1] + "\\nprint('ready', flush=True)\\n"
                          "while True:\\n    signal.pause()"], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
with signals.handled(grace_s=float(sys.argv[2])):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
    except signals.Interrupted as exc:
        print("interrupted by", exc.name)
print("child alive:", child.poll() is None, flush=True)
if child.poll() is None:
    child.kill()
print("child said:", child.communicate()[0].strip() or "nothing")
"""  # noqa: E501 (a line of the driver's code, which stays as it is)


def forwarded(child, grace_s):
    """The driver's report: the SIGTERM it took, whether its child was still alive, what the child printed.
    The bound (120 s) is generous for a grace of a few seconds and far under the 3600 s ones."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, CHILDREN[child], str(grace_s)], cwd=PROJECT_ROOT,
                              env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # its own group: the driver and its child end together
    try:
        out, err = driver.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.communicate()
    assert driver.returncode == 0, err[-2000:]
    return out.splitlines()


def test_a_child_that_acts_on_the_signal_is_waited_for():
    assert forwarded("cooperates", 3600) == ["interrupted by SIGTERM", "child alive: False", "child said: cleaned up"]


def test_the_grace_period_expires_for_a_child_that_catches_the_signal_but_stays():
    assert forwarded("stubborn", 2) == ["interrupted by SIGTERM", "child alive: True", "child said: got SIGTERM"]


def test_a_child_that_ignores_the_signal_is_not_waited_for():
    assert forwarded("ignores", 3600) == ["interrupted by SIGTERM", "child alive: True", "child said: nothing"]
