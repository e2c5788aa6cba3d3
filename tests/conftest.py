"""Shared fixtures. Tests never download: SCRATCHNN_OFFLINE=1 is set, and any socket
connection to an address other than loopback fails the test that makes it.

Markers match the cost: `e2e` (real processes and stores; every test using make_cfg), `slow`,
`engines` (SLURM, PostgreSQL); every other test is marked `unit` here. A skip is allowed only when its reason
starts with one of ALLOWED_SKIPS; any other skip (a failed import of a required dependency, say) fails the run."""

import ipaddress
import os
import socket
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["SCRATCHNN_OFFLINE"] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _loopback_only(connect):
    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise AssertionError(f"test tried to reach {address}; only loopback is allowed")
        return connect(self, address)
    return guarded


COST_MARKERS = ("e2e", "slow", "engines")
# reason prefix -> why such a skip is acceptable; nothing the project declares as a dependency is here
ALLOWED_SKIPS = {
    "chromium is not installed": "a system package; .ci/run installs it, so CI runs the browser tests",
    "needs a private mount namespace": "full-disk and read-only faults need unshare -m (root)",
}


def pytest_collection_modifyitems(config, items):
    """Tests that train through make_cfg (real data, a real store) are e2e; the rest without a cost marker, unit."""
    for item in items:
        if "make_cfg" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.e2e)
        if not any(item.get_closest_marker(name) for name in COST_MARKERS):
            item.add_marker(pytest.mark.unit)


class SkipGuard:
    """Collects every skip whose reason ALLOWED_SKIPS does not cover and fails the session over them."""

    def __init__(self):
        self.disallowed = []

    def _check(self, report):
        if report.skipped and not hasattr(report, "wasxfail"):
            longrepr = report.longrepr
            reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
            if not any(reason.startswith(prefix) for prefix in ALLOWED_SKIPS):
                self.disallowed.append(f"{report.nodeid}: {reason}")

    def pytest_collectreport(self, report):
        self._check(report)

    def pytest_runtest_logreport(self, report):
        self._check(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if self.disallowed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.disallowed:
            terminalreporter.section("skipped without an allowed reason (tests/conftest.py ALLOWED_SKIPS): "
                                     "the run fails", red=True)
            for line in self.disallowed:
                terminalreporter.line(line, red=True)


def pytest_configure(config):
    config.pluginmanager.register(SkipGuard(), "scratchnn-skip-guard")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _loopback_only(socket.socket.connect_ex))


@pytest.fixture(scope="session")
def data_root():
    """The shared data folder: $SCRATCHNN_DATA_DIR, else ../shared/data beside the project."""
    root = Path(os.environ.get("SCRATCHNN_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (root / "mnist").is_dir():
        pytest.fail(f"real MNIST not found under {root}; set SCRATCHNN_DATA_DIR")
    return root


@pytest.fixture(scope="session")
def mnist(data_root):
    """Flattened, [0, 1]-scaled float32 MNIST: ((X_train, y_train), (X_test, y_test))."""
    import warnings

    from scratchnn import datasets, preprocessing as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.UnverifiedDataWarning)
        (X, y), (Xt, yt) = datasets.load_mnist("mnist", data_dir=data_root)
    return (pp.scale(pp.flatten(X)), y), (pp.scale(pp.flatten(Xt)), yt)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store per test module; each test gets its own experiment in it (make_cfg)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def make_cfg(store, data_root, request):
    """make_cfg(*overrides): conf/config.yaml with SMALL, the real data, this module's store and an
    experiment named after the test, then `overrides`."""
    import re

    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    from harness import SMALL

    register_configs()
    experiment = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)

    def make(*overrides):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*SMALL, f"data.dir={data_root}", f"mlflow.tracking_uri={store}",
                                                f"mlflow.experiment={experiment}", *overrides])
    return make


@pytest.fixture
def spawn():
    """harness.start(cmd), with every process group it started killed at teardown, whatever the test did."""
    import signal

    from harness import start

    started = []

    def go(cmd):
        started.append(start(cmd))
        return started[-1]

    yield go
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@pytest.fixture
def quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster on 127.0.0.1 for the whole session (tests/engines.py); fails if it cannot start."""
    from engines import postgres_cluster

    with postgres_cluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def pg_server(postgres, tmp_path_factory):
    """(URL, artifact folder) of one `mlflow server` on the cluster's database `mlflow`, for the session."""
    from engines import mlflow_server

    folder = tmp_path_factory.mktemp("pg-server")
    with mlflow_server(postgres.database("mlflow"), folder, "--artifacts-destination", str(folder / "art")) as uri:
        yield uri, folder / "art"


@pytest.fixture(scope="session")
def slurm():
    """The one-node SLURM cluster of scripts/slurm-local for the session (state in a new /tmp folder);
    SLURM_CONF (and PATH, for its sacct) point this process and the commands it starts at it. Fails if
    it cannot start."""
    import tempfile

    from engines import slurm_cluster

    with slurm_cluster(tempfile.mkdtemp(prefix="scratchnn-slurm-")) as cluster:
        old = {key: os.environ.get(key) for key in ("SLURM_CONF", "PATH")}
        os.environ.update({key: cluster.env[key] for key in old})
        try:
            yield cluster
        finally:
            for key, value in old.items():
                os.environ.pop(key, None) if value is None else os.environ.update({key: value})
