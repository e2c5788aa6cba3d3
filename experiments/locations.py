"""Where the harness writes, by MLflow's and Hydra's conventions, and how a name users type becomes
a folder. Standard library only: compare/ imports it without the training code.

Relative to the working directory, as MLflow and Hydra do: the store `mlflow.db`, its artifacts in
`mlartifacts/` beside it, Hydra's `outputs/` and `multirun/`, and compare.report's `reports/`.
"""

import contextlib
import fcntl
import hashlib
import re
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default store: mlflow.db in the working directory
ARTIFACTS = "mlartifacts"  # beside a sqlite store, as `mlflow server` keeps its artifacts in ./mlartifacts
REPORTS = "reports"  # compare.report's output, under the working directory
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")  # a name that is already one harmless folder name
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name):
    """One folder name for a user's name (an experiment's, a run's): the name itself if it is plain
    (letters, digits, `._-`, not starting with a dot or dash, at most 80 characters), else its plain
    characters and a hash of the whole name: `../../evil<img>` -> `evil_img-3f0c6a1e`. Never `..`,
    never a separator, and two different names never share a folder."""
    if PLAIN.fullmatch(name):
        return name
    slug = UNSAFE.sub("_", name).strip("._-")[:60] or "name"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def inside(root, name):
    """The folder of `name` directly under `root` (see folder_name)."""
    path = Path(root) / folder_name(name)
    if path.parent != Path(root):  # folder_name makes one path component; this keeps it so
        raise ValueError(f"the folder for {name!r} is not inside {root}. Received: name={name!r}")
    return path


def sqlite_file(tracking_uri):
    """The database file of a `sqlite:///` URI (relative to the working directory unless absolute),
    or None for any other store."""
    return Path(tracking_uri[len("sqlite:///"):]) if tracking_uri.startswith("sqlite:///") else None


def absolute_uri(tracking_uri):
    """A sqlite URI with its file made absolute (so a printed command works from any folder); others as given."""
    db = sqlite_file(tracking_uri)
    return f"sqlite:///{db.resolve()}" if db is not None else tracking_uri


@contextlib.contextmanager
def file_lock(path):
    """An exclusive lock on the file `path` + ".lock" beside it, held while the block runs (processes of
    one machine that share a sqlite file: creating its schema, asking for the next trial)."""
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
