"""Real engines for the `engines` tests: a private PostgreSQL cluster on 127.0.0.1, an `mlflow server`
on it, and the one-node SLURM cluster of scripts/slurm-local.

    with postgres_cluster() as pg:                 # initdb + pg_ctl on a free port of 127.0.0.1
        url = pg.database("mlflow")                  # postgresql://mlflow:<password>@127.0.0.1:<port>/mlflow
        with mlflow_server(url, tmp, "--artifacts-destination", str(tmp / "art")) as uri:
            ...

Nothing here skips: an engine that cannot start raises EngineError naming the command and its output,
so `pytest -m engines` fails where the engines are missing.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from experiments.config import PROJECT_ROOT
from harness import free_port, mlflow_server  # noqa: F401  (mlflow_server: re-exported for the engines tests)

USER, PASSWORD = "mlflow", "PASSWORD"  # the README's placeholders, so its commands run as written
SLURM_LOCAL = PROJECT_ROOT / "scripts" / "slurm-local"


class EngineError(RuntimeError):
    """An engine (PostgreSQL, SLURM) did not start; the message names the command and what it printed."""


def _run(cmd, *, as_user=None, timeout=120, **kwargs):
    """Run `cmd` (as `as_user` when root: PostgreSQL refuses to run as root); EngineError if it fails."""
    full = ["runuser", "-u", as_user, "--", *cmd] if as_user and os.geteuid() == 0 else list(cmd)
    try:
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"{' '.join(full)}: {exc}") from None
    if done.returncode != 0:
        raise EngineError(f"{' '.join(full)} exited {done.returncode}: {(done.stdout + done.stderr)[-2000:]}")
    return done.stdout


def postgres_bin():
    """The folder of PostgreSQL's server programs (initdb, pg_ctl): `pg_config --bindir` if it holds
    them, else the newest /usr/lib/postgresql/<version>/bin."""
    candidates = []
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                                  timeout=10).stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise EngineError(f"no PostgreSQL server programs (initdb, pg_ctl) in {[str(c) for c in candidates]}; "
                      "install postgresql (Debian: apt-get install postgresql-15)")


@dataclass
class Postgres:
    """A running private cluster: superuser over its Unix socket, the role `mlflow` over TCP."""
    bindir: Path
    data: Path
    socket_dir: Path
    port: int
    os_user: str

    def psql(self, sql, database="postgres"):
        return _run([str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                     "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], as_user=self.os_user)

    def url(self, database, driver="postgresql"):
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def database(self, name):
        """The database `name` owned by the role `mlflow`, created if missing; returns its URL."""
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            self.psql(f'CREATE DATABASE "{name}" OWNER {USER}')
        return self.url(name)


def _owned_folder(folder, os_user):
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, user=os_user, group=None)
        folder.chmod(0o700)
    return folder


@contextlib.contextmanager
def postgres_cluster(os_user="postgres"):
    """initdb a new cluster in a new folder /tmp/scratchnn-pg-*, start it on a free port of 127.0.0.1 only
    (password login over TCP, trust over its private socket), create the role mlflow/PASSWORD; stop it
    (fast) and remove the folder after. (Not under pytest's tmp_path: as root that is closed to `os_user`.)"""
    bindir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="scratchnn-pg-"))
    folder.chmod(0o755)  # the cluster's user must reach its data folder
    data, sockets = _owned_folder(folder / "pgdata", os_user), _owned_folder(folder / "pgsock", os_user)
    _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
          "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"], as_user=os_user)
    pg = Postgres(bindir, data, sockets, free_port(), os_user)
    options = (f"-c listen_addresses=127.0.0.1 -c port={pg.port} -c unix_socket_directories={sockets} "
               "-c fsync=off -c max_connections=200")
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(sockets / "postgres.log"), "-o", options, "-w",
          "-t", "60", "start"], as_user=os_user)
    try:
        pg.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        yield pg
    finally:
        with contextlib.suppress(EngineError):
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_user=os_user)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Slurm:
    """The local one-node cluster of scripts/slurm-local: its state folder and environment (SLURM_CONF,
    and PATH with its sacct first)."""
    state: Path
    env: dict

    def run(self, *cmd, timeout=60):
        return _run(list(cmd), timeout=timeout, env=self.env)


def running_cluster():
    """The cluster SLURM_CONF names, if its node answers idle or busy (.ci/run starts one); else None."""
    conf = os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).exists() or not shutil.which("sinfo"):
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout.split()
        if states and set(states) <= {"idle", "mixed", "allocated"}:
            return Slurm(Path(conf).parent.parent, dict(os.environ))
    return None


@contextlib.contextmanager
def slurm_cluster(state):
    """The cluster SLURM_CONF names if it is up (left running after), else scripts/slurm-local start
    (installs slurm-wlm and munge if missing) with its state in `state`, stopped after. SLURM's
    commands then need SLURM_CONF=<state>/etc/slurm.conf (in `.env`)."""
    up = running_cluster()
    if up is not None:
        yield up
        return
    state = Path(state)
    env = {**os.environ, "SLURM_LOCAL_STATE": str(state), "SLURM_CONF": str(state / "etc" / "slurm.conf"),
           "PATH": f"{state / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}  # its sacct (no slurmdbd here)
    _run([str(SLURM_LOCAL), "start"], timeout=900, env=env)
    try:
        yield Slurm(state, env)
    finally:
        with contextlib.suppress(EngineError):
            _run([str(SLURM_LOCAL), "stop"], timeout=120, env=env)
            shutil.rmtree(state, ignore_errors=True)  # kept when the stop failed: its logs say why
