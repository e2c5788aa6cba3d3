"""Saving and loading: what cannot be rebuilt is refused at save; malformed files are named at load."""

import numpy as np
import pytest

import scratchnn as sn
from scratchnn import initializers


def constant_init(shape, rng, dtype=np.float32):
    return np.full(shape, 0.05, dtype=dtype)


def test_callable_initializer_trains_but_save_refuses_it_by_name(tmp_path):
    net = sn.mlp(4, 1, 3, 2, kernel_initializer=constant_init, seed=0)
    np.testing.assert_array_equal(net.layers[0].W, np.full((3, 4), 0.05, np.float32))  # it was used
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match=r"Received: kernel_initializer=<function constant_init"):
        net.save(path)
    assert not path.exists()


def test_variance_scaling_with_own_parameters_is_refused_under_a_borrowed_name(tmp_path):
    own = initializers.VarianceScaling("he_normal", 3.0, "fan_in", "truncated_normal")  # not he_normal's scale
    net = sn.Network(4, [sn.Dense(2, "softmax", kernel_initializer=own)], seed=0)
    with pytest.raises(ValueError, match="Only the named initializers"):
        net.save(tmp_path / "model.npz")


@pytest.mark.parametrize("name", initializers.NAMES)
def test_every_named_initializer_round_trips(tmp_path, name):
    net = sn.mlp(4, 1, 3, 2, kernel_initializer=name, seed=0)
    net.save(tmp_path / "model.npz")
    loaded = sn.Network.load(tmp_path / "model.npz")
    assert loaded.layers[0].get_config()["kernel_initializer"] == name
    np.testing.assert_array_equal(loaded.layers[0].W, net.layers[0].W)


# ---- malformed files: a ValueError that names the file, never a raw KeyError, JSONDecodeError or BadZipFile

import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import tracemalloc  # noqa: E402
import zipfile  # noqa: E402

import numpy.lib.format as npy  # noqa: E402


def saved(tmp_path):
    """A small saved network and its parts: (path, config dict, weight arrays)."""
    net = sn.mlp(40, 1, 8, 3, seed=0)
    path = tmp_path / "good.npz"
    net.save(path)
    return path, net.get_config(), net.get_weights()


def write_npz(path, config, weights):
    """An .npz as save writes it, from a config that may be wrong (a dict, or raw JSON text)."""
    text = config if isinstance(config, str) else json.dumps(config)
    np.savez(path, config=np.array(text), **{f"w{i}": w for i, w in enumerate(weights)})


def header_only_npy(shape, dtype="<f4", data=b"\0" * 16):
    """A .npy member whose header claims `shape` but which holds only `data`."""
    f = io.BytesIO()
    npy.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
    return f.getvalue() + data


def load_error(path):
    with pytest.raises(ValueError) as info:
        sn.Network.load(path)
    assert str(path) in str(info.value), f"the error does not name the file: {info.value}"
    return str(info.value)


def test_load_of_a_file_that_is_not_an_archive_names_it(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"this is not a zip archive")
    assert "not a readable .npz archive" in load_error(path)


def test_load_of_a_truncated_file_names_it(tmp_path):
    good, _, _ = saved(tmp_path)
    path = tmp_path / "truncated.npz"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "not a readable .npz archive" in load_error(path)


def test_load_of_invalid_json_names_it(tmp_path):
    _, _, weights = saved(tmp_path)
    path = tmp_path / "model.npz"
    write_npz(path, '{"input_dim": 40, "layers": [', weights)
    assert "config is not valid JSON" in load_error(path)


def test_load_of_a_config_missing_a_key_names_it(tmp_path):
    _, config, weights = saved(tmp_path)
    del config["layers"]
    path = tmp_path / "model.npz"
    write_npz(path, config, weights)
    assert "config must hold the keys" in load_error(path)


def test_load_without_config_names_it(tmp_path):
    _, _, weights = saved(tmp_path)
    path = tmp_path / "model.npz"
    np.savez(path, **{f"w{i}": w for i, w in enumerate(weights)})
    assert "no config array" in load_error(path)


def test_load_with_a_missing_weight_array_names_it_and_the_array(tmp_path):
    _, config, weights = saved(tmp_path)
    path = tmp_path / "model.npz"
    write_npz(path, config, weights[:3])
    assert "missing ['w3.npy']" in load_error(path)


@pytest.mark.parametrize("field,value,message", [
    ("type", "Conv2D", "Unknown layer type"),
    ("activation", "swish", "Received: activation='swish'"),
    ("units", 0, "Received: units=0"),
    ("units", "8", "Received: units='8'"),
])
def test_load_of_a_bad_layer_names_the_file_and_the_value(tmp_path, field, value, message):
    _, config, weights = saved(tmp_path)
    config["layers"][0][field] = value
    path = tmp_path / "model.npz"
    write_npz(path, config, weights)
    assert message in load_error(path)


def test_load_of_a_bad_loss_names_the_file(tmp_path):
    _, config, weights = saved(tmp_path)
    config["loss"] = "hinge"
    path = tmp_path / "model.npz"
    write_npz(path, config, weights)
    assert "Received: loss='hinge'" in load_error(path)


def load_error_and_peak(path):
    """load's error message for `path`, and the peak of Python's allocations while it ran."""
    tracemalloc.start()
    try:
        return load_error(path), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_load_checks_the_json_shapes_against_the_arrays_before_allocating(tmp_path):
    """units=10**12 in the JSON: W would be 40 x 10**12 float32, 146 TiB; refused from the headers."""
    _, config, weights = saved(tmp_path)
    config["layers"][0]["units"] = 10**12
    path = tmp_path / "model.npz"
    write_npz(path, config, weights)
    message, peak = load_error_and_peak(path)
    assert re.search(r"w0 has shape \(40, 8\) but the config's layers need \(40, 1000000000000\)", message)
    assert peak < 20 * 2**20


def test_load_checks_array_headers_against_the_bytes_stored(tmp_path):
    """The JSON and the .npy headers agree on 10**12 units, but the archive holds 16 bytes per array."""
    _, config, _ = saved(tmp_path)
    config["layers"][0]["units"] = 10**12
    path = tmp_path / "model.npz"
    buf = io.BytesIO()
    npy.write_array(buf, np.array(json.dumps(config)))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.npy", buf.getvalue())
        for i, shape in enumerate([(40, 10**12), (10**12,), (10**12, 3), (3,)]):
            archive.writestr(f"w{i}.npy", header_only_npy(shape))
    message, peak = load_error_and_peak(path)
    assert "header says shape (40, 1000000000000)" in message
    assert peak < 20 * 2**20


def test_a_good_file_still_loads_after_all_these_checks(tmp_path):
    path, config, weights = saved(tmp_path)
    loaded = sn.Network.load(path)
    assert loaded.get_config() == config
    for a, b in zip(loaded.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_load_of_a_file_with_any_byte_flipped_loads_or_names_it(tmp_path, writer):
    """Every single-byte corruption (zip structure, .npy headers, JSON, data, CRCs) either still loads
    or is a ValueError naming the file; none escapes as OSError, BadZipFile, zlib.error, ..."""
    _, config, weights = saved(tmp_path)
    path = tmp_path / "model.npz"
    writer(path, config=np.array(json.dumps(config)), **{f"w{i}": w for i, w in enumerate(weights)})
    assert sn.Network.load(path).get_config() == config
    good, refused = path.read_bytes(), 0
    n = len(good)  # every byte of the first member's headers and of the central directory; a sample elsewhere
    offsets = sorted(set(range(300)) | set(range(n - 500, n)) | set(range(300, n - 500, 13)))
    for offset in offsets:
        corrupt = bytearray(good)
        corrupt[offset] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        try:
            sn.Network.load(path)
        except ValueError as e:
            assert str(path) in str(e)
            refused += 1
    assert refused > len(offsets) // 2
