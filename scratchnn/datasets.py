"""MNIST and Fashion-MNIST: find the IDX files, verify them, download them if allowed.

Where `load_mnist` looks, in order:
  1. the `data_dir` argument;
  2. the environment variable SCRATCHNN_DATA_DIR;
  3. the user cache, ~/.cache/scratchnn (or $XDG_CACHE_HOME/scratchnn);
  4. a download into that cache, unless SCRATCHNN_OFFLINE=1 (or offline=True).
A folder from 1 or 2 may hold the four files itself or in a sub-folder `mnist/` or
`fashion-mnist/`. Files there whose sha256 is not the official one are used with one
warning; files in the cache are only ever put there by a verified download.
"""

import contextlib
import hashlib
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path

from . import idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DATASETS = {
    "mnist": {
        "folder": "mnist",
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"),
        "sha256": dict(zip(FILES, (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
    },
    "fashion_mnist": {
        "folder": "fashion-mnist",
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        "sha256": dict(zip(FILES, (
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"))),
    },
}


class UnverifiedDataWarning(UserWarning):
    """A well-formed data file whose sha256 is not the official one; it is used as is."""


class DownloadError(RuntimeError):
    """Every mirror failed for a file; the message lists each URL with what went wrong."""


def sha256(path, chunk=1 << 20):
    """The hex sha256 of a file, read in chunks.

    Args:
        path: Path of the file.
        chunk: Bytes per read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir():
    """The user cache folder: $XDG_CACHE_HOME/scratchnn, else ~/.cache/scratchnn."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scratchnn"


ALIASES = {"fashion-mnist": "fashion_mnist"}  # the spelling of its folder and its release, as users type it
NAMES = tuple(sorted([*DATASETS, *ALIASES]))  # every name `load_mnist` accepts


def canonical(name):
    """The key of `DATASETS` for `name` or one of its `ALIASES` ("fashion-mnist" -> "fashion_mnist").

    Args:
        name: One of `NAMES`.
    """
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(f"Unknown data set. Expected one of {list(NAMES)}. Received: name={name!r}")
    return key


def _spec(name):
    return DATASETS[canonical(name)]


def _user_folder(root, spec, source):
    """The folder under a user-supplied root that holds the files, or an error naming what is missing."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{source}: {root} is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise PermissionError(f"{source}: directory {root} is not readable")
    folder = root / spec["folder"] if (root / spec["folder"]).is_dir() else root
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source}: {folder} lacks {', '.join(missing)}; put the four IDX files in {root / spec['folder']}"
        )
    return folder


def download(url, dest, expected_sha256, *, opener=urllib.request.urlopen, timeout=60):
    """Stream `url` to a temporary file beside `dest`, check its length and sha256, then rename it
    into place atomically. On any failure nothing is left at `dest` and the error says why.

    Args:
        url: The URL to fetch.
        dest: Path the verified file is renamed to.
        expected_sha256: The hex sha256 the file must have.
        opener: `urllib.request.urlopen` or a stand-in with its signature (for tests).
        timeout: Seconds for the connection and each read.

    Returns:
        `dest` as a Path.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, opener(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                h.update(block)
                size += len(block)
        if length is not None and size != int(length):
            raise DownloadError(f"{url}: truncated, got {size} of {length} bytes")
        if h.hexdigest() != expected_sha256:
            raise DownloadError(f"{url}: sha256 {h.hexdigest()}, expected {expected_sha256}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def fetch(name, folder, *, mirrors=None, opener=urllib.request.urlopen):
    """Make sure `folder` holds the four verified files of data set `name`, trying each mirror in
    turn. On failure the error lists every URL tried, one per line, and says where to put the
    files by hand; folders it created stay behind only if they hold something.

    Args:
        name: A key of `DATASETS`.
        folder: The folder to hold the files.
        mirrors: Base URLs to try in order, or None for the data set's own.
        opener: `urllib.request.urlopen` or a stand-in with its signature (for tests).

    Returns:
        `folder` as a Path.
    """
    spec = _spec(name)
    folder = Path(folder)
    fresh = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        return _fetch_files(spec, folder, mirrors, opener)
    except DownloadError as exc:
        for created in fresh:
            with contextlib.suppress(OSError):
                created.rmdir()  # only an empty folder goes
        raise DownloadError(f"{exc}\nPut the four IDX files ({', '.join(FILES)}) in {folder}, or point "
                            f"SCRATCHNN_DATA_DIR at a folder holding {spec['folder']}/") from None


def _fetch_files(spec, folder, mirrors, opener):
    for file in FILES:
        dest, expected = folder / file, spec["sha256"][file]
        if dest.is_file() and sha256(dest) == expected:
            continue
        errors = []
        for base in mirrors or spec["mirrors"]:
            try:
                download(base + file, dest, expected, opener=opener)
                break
            except (OSError, DownloadError) as e:  # URLError and HTTPError are OSErrors
                errors.append(f"  {base + file}: {e}")
        else:
            raise DownloadError(f"could not download {file} (expected sha256 {expected}); tried:\n"
                                + "\n".join(errors))
    return folder


def locate(name="mnist", data_dir=None, *, offline=None, mirrors=None, opener=urllib.request.urlopen):
    """The folder holding the four files of `name`, by the search order in the module docstring.

    Args:
        name: A key of `DATASETS`.
        data_dir: A folder holding the files (or `mnist/`, `fashion-mnist/`); None or "" for unset.
        offline: True to never download, None to read SCRATCHNN_OFFLINE.
        mirrors: Base URLs to download from, or None for the data set's own.
        opener: `urllib.request.urlopen` or a stand-in with its signature (for tests).

    Returns:
        The folder as a Path.
    """
    spec = _spec(name)
    if data_dir not in (None, ""):  # empty means unset, as for the environment variable
        return _user_folder(data_dir, spec, "data_dir")
    if os.environ.get("SCRATCHNN_DATA_DIR"):
        return _user_folder(os.environ["SCRATCHNN_DATA_DIR"], spec, "SCRATCHNN_DATA_DIR")
    cached = cache_dir() / spec["folder"]
    if all((cached / f).is_file() for f in FILES):
        return cached
    if offline is None:
        offline = os.environ.get("SCRATCHNN_OFFLINE", "") not in ("", "0")
    if offline:
        missing = [f for f in FILES if not (cached / f).is_file()]
        raise FileNotFoundError(
            f"{name}: downloads are off (SCRATCHNN_OFFLINE=1) and {', '.join(missing)} are not in {cached}. "
            f"Put the four IDX files in {cached}, or point SCRATCHNN_DATA_DIR or data_dir at a folder "
            f"holding {spec['folder']}/"
        )
    return fetch(name, cached, mirrors=mirrors, opener=opener)


def load_mnist(name="mnist", data_dir=None, **locate_kwargs):
    """((X_train, y_train), (X_test, y_test)): uint8 images (N, 28, 28) and uint8 labels (N,).

    Args:
        name: "mnist", "fashion_mnist" or "fashion-mnist" (see `NAMES`).
        data_dir: A folder holding the files (see `locate`); None or "" for unset.
        **locate_kwargs: `offline`, `mirrors`, `opener`, passed to `locate`.
    """
    folder = locate(name, data_dir, **locate_kwargs)
    official = _spec(name)["sha256"]
    unverified = [f"{folder / f} (sha256 {h})" for f in FILES if (h := sha256(folder / f)) != official[f]]
    if unverified:
        warnings.warn("unverified data, used as is (sha256 differs from the official release): "
                      + "; ".join(unverified), UnverifiedDataWarning, stacklevel=2)
    train = idx.read_pair(folder / FILES[0], folder / FILES[1], n_classes=10)
    test = idx.read_pair(folder / FILES[2], folder / FILES[3], n_classes=10)
    return train, test
