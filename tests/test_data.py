"""IDX reading, source resolution, the verified downloader, and the real shared data."""

import gzip
import hashlib
import http.server
import os
import threading
import warnings
from functools import partial

import numpy as np
import pytest

from scratchnn import datasets, idx, preprocessing as pp
from scratchnn.datasets import FILES


def write_set(folder, n_train=5, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)]
    for file, array in zip(FILES, arrays):
        idx.write(folder / file, array)
    return arrays


@pytest.mark.parametrize("name", ["images.gz", "images.idx"])
def test_synthetic_idx_round_trip_gzip_and_raw(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.uint8)
    idx.write(tmp_path / name, images)
    np.testing.assert_array_equal(idx.read(tmp_path / name, idx.IMAGES_MAGIC), images)


def test_load_from_user_folder_with_subfolder(tmp_path):
    arrays = write_set(tmp_path / "mnist")
    with pytest.warns(datasets.UnverifiedDataWarning) as record:
        (X, y), (Xt, yt) = datasets.load_mnist("mnist", data_dir=tmp_path)
    assert len(record) == 1 and "train-images" in str(record[0].message)
    for got, want in zip((X, y, Xt, yt), arrays):
        np.testing.assert_array_equal(got, want)
    assert X.dtype == np.uint8 and X.shape == (5, 28, 28)


def malformed(tmp_path, case):
    path = tmp_path / "f.gz"
    images = np.zeros((3, 28, 28), np.uint8)
    if case == "truncated gzip":
        idx.write(path, images)
        path.write_bytes(path.read_bytes()[:-20])
    elif case == "wrong magic":
        idx.write(path, np.zeros(3, np.uint8))  # a label file where images are expected
    elif case == "header/length mismatch":
        raw = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
        path.write_bytes(gzip.compress(raw + bytes(3 * 28 * 28 - 5)))
    elif case == "missing file":
        path = tmp_path / "absent.gz"
    elif case == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize("case,message", [
    ("truncated gzip", "corrupt or truncated gzip"),
    ("wrong magic", "wrong magic number 0x00000801, expected 0x00000803"),
    ("header/length mismatch", r"header says shape \(3, 28, 28\)"),
    ("missing file", "file not found"),
    ("directory", "is a directory"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, case, message):
    path = malformed(tmp_path, case)
    with pytest.raises(idx.IDXError, match=message) as info:
        idx.read(path, idx.IMAGES_MAGIC)
    assert str(path) in str(info.value)


def test_image_label_count_mismatch(tmp_path):
    idx.write(tmp_path / "i.gz", np.zeros((3, 28, 28), np.uint8))
    idx.write(tmp_path / "l.gz", np.zeros(4, np.uint8))
    with pytest.raises(idx.IDXError, match="holds 3 images but .* holds 4 labels"):
        idx.read_pair(tmp_path / "i.gz", tmp_path / "l.gz")


def test_a_label_outside_the_classes_is_rejected_at_load_naming_the_file(tmp_path):
    arrays = write_set(tmp_path / "mnist")
    labels = arrays[3].copy()
    labels[2] = 10
    idx.write(tmp_path / "mnist" / FILES[3], labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.UnverifiedDataWarning)
        with pytest.raises(idx.IDXError,
                           match=r"t10k-labels-idx1-ubyte.gz holds label 10 at index 2; labels must be in \[0, 10\)"):
            datasets.load_mnist("mnist", data_dir=tmp_path)


def test_unreadable_directory(tmp_path, monkeypatch):
    write_set(tmp_path / "mnist")
    os.chmod(tmp_path, 0)
    if os.geteuid() == 0:  # root reads anything; make the permission check see what a user would
        monkeypatch.setattr(datasets.os, "access", lambda path, mode: False)
    try:
        with pytest.raises(PermissionError, match=f"directory {tmp_path} is not readable"):
            datasets.load_mnist("mnist", data_dir=tmp_path)
    finally:
        os.chmod(tmp_path, 0o755)


def test_unreadable_file_as_root_too(tmp_path, monkeypatch):
    """Root ignores permission bits, so the unreadable case is made by the OS call failing."""
    write_set(tmp_path / "mnist")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(idx.IDXError, match=r"cannot be read \(Permission denied\)"):
        idx.read(tmp_path / "mnist" / FILES[0], idx.IMAGES_MAGIC)


def test_offline_error_says_what_is_missing_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("SCRATCHNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="downloads are off") as info:
        datasets.load_mnist("fashion_mnist")
    assert all(f in str(info.value) for f in FILES) and str(tmp_path / "scratchnn" / "fashion-mnist") in str(info.value)


def test_user_folder_missing_files_are_listed(tmp_path):
    write_set(tmp_path)
    (tmp_path / FILES[3]).unlink()
    with pytest.raises(FileNotFoundError, match=FILES[3]):
        datasets.load_mnist("mnist", data_dir=tmp_path)


def test_an_empty_data_dir_means_unset_and_the_next_place_is_searched(tmp_path, monkeypatch):
    write_set(tmp_path / "mnist", n_train=6)
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", str(tmp_path))  # what an empty data.dir falls back to
    with pytest.warns(datasets.UnverifiedDataWarning):
        (X, _), _ = datasets.load_mnist("mnist", data_dir="")
    assert X.shape == (6, 28, 28)
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_set(tmp_path / "cache" / "scratchnn" / "mnist", n_train=4)  # an empty variable is unset too
    with pytest.warns(datasets.UnverifiedDataWarning):
        (X, _), _ = datasets.load_mnist("mnist", data_dir="")
    assert X.shape == (4, 28, 28)


def test_env_variable_is_used(tmp_path, monkeypatch):
    write_set(tmp_path / "fashion-mnist", n_train=7)
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", str(tmp_path))
    with pytest.warns(datasets.UnverifiedDataWarning):
        (X, _), _ = datasets.load_mnist("fashion_mnist")
    assert X.shape == (7, 28, 28)


# ---- the downloader, against a real HTTP server on loopback ---------------------------------
@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www over HTTP on 127.0.0.1: good/ holds real copies, bad/ corrupted ones."""
    www = tmp_path / "www"
    arrays = write_set(www / "good")
    (www / "bad").mkdir()
    for file in FILES:
        data = bytearray((www / "good" / file).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (www / "bad" / file).write_bytes(bytes(data))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    hashes = {f: hashlib.sha256((www / "good" / f).read_bytes()).hexdigest() for f in FILES}
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashes, arrays
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def official(monkeypatch, server):
    """Make the synthetic files the 'official' ones for a fake data set."""
    _, hashes, _ = server
    monkeypatch.setitem(datasets.DATASETS, "toy", {"folder": "toy", "mirrors": (), "sha256": hashes})
    return hashes


def test_download_falls_back_to_next_mirror_and_leaves_no_partial_file(tmp_path, server, official):
    url, _, arrays = server
    cache = tmp_path / "cache"
    datasets.fetch("toy", cache, mirrors=[url + "/missing/", url + "/bad/", url + "/good/"])
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    np.testing.assert_array_equal(idx.read(cache / FILES[0], idx.IMAGES_MAGIC), arrays[0])


def test_checksum_enforced_and_every_url_reported(tmp_path, server, official):
    url, hashes, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(datasets.DownloadError) as info:
        datasets.fetch("toy", cache, mirrors=[url + "/bad/", url + "/missing/"])
    message = str(info.value)
    assert f"{url}/bad/{FILES[0]}: sha256" in message and hashes[FILES[0]] in message
    assert f"{url}/missing/{FILES[0]}: HTTP Error 404" in message
    lines = message.splitlines()
    assert lines[1].strip().startswith(f"{url}/bad/") and lines[2].strip().startswith(f"{url}/missing/")
    assert lines[-1] == (f"Put the four IDX files ({', '.join(FILES)}) in {cache}, or point SCRATCHNN_DATA_DIR "
                         "at a folder holding toy/")
    assert not cache.exists()  # no empty folder left behind


def test_truncated_download_is_rejected(tmp_path, server, official):
    url, hashes, _ = server

    class Short:
        def __init__(self, response):
            self.response, self.headers = response, response.headers

        def read(self, n):
            return self.response.read(min(n, 10))[:5]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

    import urllib.request

    def opener(u, timeout):
        return Short(urllib.request.urlopen(u, timeout=timeout))

    with pytest.raises(datasets.DownloadError, match="truncated"):
        datasets.download(f"{url}/good/{FILES[1]}", tmp_path / "c" / FILES[1], hashes[FILES[1]], opener=opener)
    assert list((tmp_path / "c").iterdir()) == []


def test_load_downloads_into_cache_when_online(tmp_path, server, official, monkeypatch):
    url, _, arrays = server
    monkeypatch.delenv("SCRATCHNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setitem(datasets.DATASETS["toy"], "mirrors", (url + "/good/",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified files: no warning
        (X, y), _ = datasets.load_mnist("toy", offline=False)
    np.testing.assert_array_equal(y, arrays[1])
    assert (tmp_path / "xdg" / "scratchnn" / "toy" / FILES[0]).is_file()


# ---- the real data in ../shared/data ------------------------------------------------------
MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("hashes", ["release", "these files"])
def test_real_mnist_shapes_counts_and_one_warning_naming_exactly_the_unverified_files(data_root, hashes, monkeypatch):
    """Passes on the official files (no warning) and on a copy with some files rebuilt (one warning
    naming those files): which files differ is read here with hashlib, not with datasets.sha256.
    "these files" takes the shared files' own hashes as the official ones: the official release's case."""
    digests = {f: hashlib.sha256((data_root / "mnist" / f).read_bytes()).hexdigest() for f in FILES}
    if hashes == "these files":
        monkeypatch.setitem(datasets.DATASETS["mnist"], "sha256", digests)
    official = datasets.DATASETS["mnist"]["sha256"]
    differ = [f for f in FILES if digests[f] != official[f]]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        (X, y), (Xt, yt) = datasets.load_mnist("mnist", data_dir=data_root)
    unverified = [w for w in record if issubclass(w.category, datasets.UnverifiedDataWarning)]
    assert len(unverified) == (1 if differ else 0)
    assert [f for f in FILES if unverified and f in str(unverified[0].message)] == differ
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == MNIST_TRAIN and np.bincount(yt).tolist() == MNIST_TEST
    # the published MNIST mean (0.1307, e.g. torchvision's)
    assert pp.scale(X).mean() == pytest.approx(0.13071, abs=1e-4)


def test_real_fashion_mnist_is_verified_and_balanced(data_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (X, y), (Xt, yt) = datasets.load_mnist("fashion_mnist", data_dir=data_root)
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10


def test_preprocessing_helpers(rng):
    X = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    flat = pp.flatten(X)
    assert flat.shape == (20, 784)
    assert pp.scale(flat).max() <= 1.0 and pp.scale(flat).dtype == np.float32
    # X cast to the dtype, then divided by 255 in it (one pass, into `out` if given)
    expected = flat.astype(np.float32) / np.float32(255)
    out = np.empty(flat.shape, np.float32)
    assert pp.scale(flat, out=out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(pp.scale(flat, np.float64), flat / 255.0)
    train, test = pp.standardize(flat[:15], flat[15:])
    assert abs(train.mean()) < 1e-5 and train.std() == pytest.approx(1, rel=1e-4) and test.shape == (5, 784)
    np.testing.assert_array_equal(pp.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    (Xa, ya), (Xv, yv) = pp.train_val_split(flat, np.arange(20), 5, np.random.default_rng(0))
    assert len(Xv) == 5 and len(Xa) == 15 and sorted(np.r_[ya, yv].tolist()) == list(range(20))
    with pytest.raises(ValueError, match="Received: val_size=20"):
        pp.train_val_split(flat, np.arange(20), 20, rng)
