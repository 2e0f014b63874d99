"""A small, strict reader of IDX files (the MNIST format), raw or gzip-compressed.

Format: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dimensions, then one big-endian uint32 size per dimension, then the values
big-endian in C order. Every problem (not gzip though named .gz, truncated, trailing bytes, unknown type
code, wrong magic for what the caller expects) is a one-line `UsageError` naming the file.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from rtool.errors import UsageError

IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name says)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise UsageError(f"corrupt gzip file {path}: {err}; expected a complete .gz file") from None
    if path.suffix == ".gz":
        raise UsageError(f"{path}: named .gz but not gzip-compressed; expected a gzip file or the name without .gz")
    return raw


def parse_idx(data: bytes, path: Path, *, expect_type: int | None = None, expect_ndim: int | None = None) -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array; `path` only names the file in errors."""
    if len(data) < 4:
        raise UsageError(f"truncated IDX file {path}: {len(data)} bytes, expected at least a 4-byte magic number")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    expected = ""
    if expect_type is not None and expect_ndim is not None:
        expected = f"0x{(expect_type << 8) | expect_ndim:08X}"
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_TYPES or ndim == 0:
        raise UsageError(f"{path}: not an IDX file (magic number 0x{magic:08X}); expected "
                         f"{expected or '0x0000TTDD with a known type TT and DD >= 1 dimensions'}")
    if (expect_type is not None and type_code != expect_type) or (expect_ndim is not None and ndim != expect_ndim):
        raise UsageError(f"{path}: IDX magic number 0x{magic:08X} (type 0x{type_code:02X}, {ndim} dimensions); "
                         f"expected {expected}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UsageError(f"truncated IDX file {path}: {len(data)} bytes, expected a {header}-byte header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code]
    count = int(np.prod(shape, dtype=np.int64))
    want = header + count * dtype.itemsize
    if len(data) < want:
        raise UsageError(f"truncated IDX file {path}: {len(data)} bytes, expected {want} for shape "
                         f"{'x'.join(map(str, shape))}")
    if len(data) > want:
        raise UsageError(f"{path}: {len(data) - want} bytes after the data, expected exactly {want} bytes for shape "
                         f"{'x'.join(map(str, shape))}")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return np.array(values, dtype=dtype.newbyteorder("="))  # a writable native-endian copy


def read_idx(path: str | Path, *, expect_type: int | None = None, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (raw or gzip); with `expect_type`/`expect_ndim` the magic number must match them."""
    path = Path(path)
    return parse_idx(read_file_bytes(path), path, expect_type=expect_type, expect_ndim=expect_ndim)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX (the inverse of `parse_idx`; for writing fixtures and exports)."""
    array = np.asarray(array)
    codes = {np.dtype(dt).newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in codes:
        raise UsageError(f"IDX cannot hold dtype {array.dtype}; expected uint8, int8, int16, int32, float32 or float64")
    code = codes[key]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
