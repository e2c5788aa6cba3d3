"""Reading IDX files (the MNIST format), raw or gzip-compressed, with every check named.

An IDX file is a 4-byte magic number 0x0000TTDD (TT = 0x08 for unsigned bytes, DD = the
number of dimensions), DD big-endian uint32 sizes, then the data. MNIST images have
magic 0x00000803 (N, rows, cols) and labels 0x00000801 (N,).
"""

import gzip
import zlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class IDXError(ValueError):
    """A data file is missing, unreadable, truncated or malformed; the message names it."""


def read_bytes(path):
    """The file's bytes, decompressed if it is gzip (detected by content, not by name).

    Args:
        path: Path of the file.

    Returns:
        bytes. Raises IDXError (naming the file) if it is missing, unreadable or bad gzip.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise IDXError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise IDXError(f"{path}: is a directory, not an IDX file") from None
    except PermissionError as e:
        raise IDXError(f"{path}: cannot be read ({e.strerror})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from None


def parse(data, expected_magic, name="<bytes>"):
    """Parse IDX bytes into a uint8 array, checking magic, dimensions and length.

    Args:
        data: The bytes of an IDX file.
        expected_magic: IMAGES_MAGIC or LABELS_MAGIC.
        name: What error messages call the data (a file name).

    Returns:
        A read-only uint8 array of the shape in the header.
    """
    if len(data) < 4:
        raise IDXError(f"{name}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise IDXError(f"{name}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: header needs {header} bytes for {ndim} dimensions, file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and (shape[1] == 0 or shape[2] == 0):
        raise IDXError(f"{name}: image dimensions {shape[1]}x{shape[2]} are empty")
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise IDXError(
            f"{name}: header says shape {shape} ({expected} bytes in all) but the data is {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read(path, expected_magic):
    """Read and parse one IDX file (raw or gzip).

    Args:
        path: Path of the file.
        expected_magic: IMAGES_MAGIC or LABELS_MAGIC.

    Returns:
        A uint8 array; IDXError names the file on any problem.
    """
    return parse(read_bytes(path), expected_magic, name=str(path))


def read_pair(images_path, labels_path, n_classes=None):
    """Images (N, rows, cols) and labels (N,), checked to have the same N.

    Args:
        images_path: Path of the images file.
        labels_path: Path of the labels file.
        n_classes: None, or the number of classes: every label must be in [0, n_classes).

    Returns:
        (images, labels).
    """
    images = read(images_path, IMAGES_MAGIC)
    labels = read(labels_path, LABELS_MAGIC)
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise IDXError(f"{labels_path} holds label {labels[bad]} at index {bad}; labels must be in [0, {n_classes})")
    if images.shape[0] != labels.shape[0]:
        raise IDXError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    return images, labels


def write(path, array, compress=None):
    """Write a uint8 array as IDX; for tests and tools.

    Args:
        path: Path of the file to write.
        array: The array, converted to uint8.
        compress: True for gzip, False for raw, None for gzip exactly when the name ends in .gz.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    if compress if compress is not None else str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)
