"""A network in one .npz file: its config as JSON in `config`, its weights as w0, w1, ...

`load` trusts nothing in the file: the archive, the JSON, the layers it describes and the
shape of every stored array are checked, reading only .npy headers, before any array is read
or any weight allocated; every error is a ValueError that names the file.
"""

import json
import math
import zipfile
import zlib

import numpy as np
import numpy.lib.format as npy

from . import layers as layers_mod

CONFIG_KEYS = {"input_dim", "layers", "loss", "optimizer", "dtype"}
MAX_CONFIG_BYTES = 1 << 20  # a config of thousands of layers is a few hundred kB


def save(net, path):
    """Write `net`'s config and weights to `path` (see `Network.save`).

    Args:
        net: The `Network` to save.
        path: File path; NumPy appends ".npz" when the name has no such suffix.
    """
    config = json.dumps(net.get_config())  # raises, before anything is written, if a layer cannot be saved
    arrays = {f"w{i}": w for i, w in enumerate(net.get_weights())}
    np.savez(path, config=np.array(config), **arrays)


def load(cls, path, seed=None):
    """The network of class `cls` saved in `path` (see `Network.load`).

    Args:
        cls: `Network` or a subclass.
        path: A file written by `save`.
        seed: Seed of the new network's Generator.
    """
    with open(path, "rb") as f:  # a missing or unreadable file raises here, the OSError naming it
        try:
            with zipfile.ZipFile(f) as archive:
                config = _read_config(archive, path)
                layers = _layers(config, path)
                expected = _weight_shapes(config["input_dim"], layers)
                _check_members(archive, path, len(expected))
                for i, shape in enumerate(expected):
                    _check_header(archive, f"w{i}", shape, path)
                weights = [_read_array(archive, f"w{i}", path) for i in range(len(expected))]
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as e:
            raise ValueError(f"{path}: not a scratchnn model file (not a readable .npz archive: {e})") from None
    try:
        net = cls(config["input_dim"], layers, loss=config["loss"], optimizer=config["optimizer"],
                  dtype=config["dtype"], seed=seed)
        net.set_weights(weights)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: bad model config: {e}") from None
    return net


def _bad(path, why):
    return ValueError(f"{path}: not a scratchnn model file ({why})")


def _header(archive, name, path):
    """(shape, dtype, header bytes) of member `name`.npy, reading its header only."""
    with archive.open(f"{name}.npy") as f:
        try:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as e:
            raise _bad(path, f"{name}: {e}") from None
        return shape, dtype, f.tell()


def _read_config(archive, path):
    if "config.npy" not in archive.namelist():
        raise _bad(path, "no config array")
    shape, dtype, _ = _header(archive, "config", path)
    size = archive.getinfo("config.npy").file_size
    if shape != () or dtype.kind != "U" or size > MAX_CONFIG_BYTES:
        raise _bad(path, f"config must be a JSON string. Received: dtype={dtype}, shape={shape}, {size} bytes")
    try:
        config = json.loads(str(_read_array(archive, "config", path)))
    except json.JSONDecodeError as e:
        raise _bad(path, f"config is not valid JSON: {e}") from None
    if not isinstance(config, dict) or set(config) != CONFIG_KEYS:
        keys = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise _bad(path, f"config must hold the keys {sorted(CONFIG_KEYS)}. Received: {keys}")
    input_dim = config["input_dim"]
    if not (isinstance(input_dim, int) and not isinstance(input_dim, bool) and input_dim >= 1):
        raise ValueError(f"{path}: bad model config: input_dim must be a positive integer. "
                         f"Received: input_dim={input_dim!r}")
    if not (isinstance(config["layers"], list) and all(isinstance(c, dict) for c in config["layers"])):
        raise _bad(path, "config['layers'] must be a list of layer configs")
    return config


def _layers(config, path):
    """The layers the config describes, unbuilt (no weights are allocated)."""
    try:
        return [layers_mod.from_config(c) for c in config["layers"]]
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: bad layer config: {e!r}") from None


def _weight_shapes(input_dim, layers):
    """The Keras-layout shapes [(n_in, units), (units,), ...] that get_weights gives for these layers."""
    shapes, n = [], input_dim
    for layer in layers:
        if isinstance(layer, layers_mod.Dense):
            shapes += [(n, layer.units), (layer.units,)]
            n = layer.units
    return shapes


def _check_members(archive, path, n_weights):
    expected = {"config.npy"} | {f"w{i}.npy" for i in range(n_weights)}
    present = set(archive.namelist())
    if present != expected:
        missing, extra = sorted(expected - present), sorted(present - expected)
        raise _bad(path, f"its config needs the arrays {sorted(expected)}; missing {missing}, unexpected {extra}")


def _check_header(archive, name, shape, path):
    """The stored array's shape must match the config, and the member must be that large."""
    stored, dtype, header_bytes = _header(archive, name, path)
    if stored != shape:
        raise ValueError(f"{path}: {name} has shape {stored} but the config's layers need {shape}")
    if dtype.kind != "f":
        raise _bad(path, f"{name} must hold floats. Received: dtype={dtype}")
    size = archive.getinfo(f"{name}.npy").file_size
    if size != header_bytes + math.prod(shape) * dtype.itemsize:
        raise _bad(path, f"{name}: header says shape {stored} of {dtype}, but the member holds {size} bytes")


def _read_array(archive, name, path):
    with archive.open(f"{name}.npy") as f:
        try:
            return npy.read_array(f, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
            raise _bad(path, f"{name}: {e}") from None
