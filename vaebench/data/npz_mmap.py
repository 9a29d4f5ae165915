"""Memory-mapping one array of an uncompressed .npz archive (np.savez), without reading it."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from vaebench.errors import VaebenchError


def memmap_npz_member(path: Path, key: str) -> np.memmap:
    """Read-only np.memmap of array `key` stored uncompressed in the archive `path`.

    The data starts after the member's local file header (30 bytes + name + extra field, read
    from the local header since it can differ from the central directory's) and its .npy header.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
    except KeyError:
        raise VaebenchError(f"{path}: the archive has no array {key!r}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise VaebenchError(f"{path}: not a readable .npz archive ({e}); it is truncated or "
                            f"not the official file: download it again") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise VaebenchError(f"{path}: array {key!r} is compressed, so it cannot be memory-mapped; "
                            f"use the official uncompressed file, or re-save it with np.savez")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise VaebenchError(f"{path}: corrupt zip header for {key!r}; download it again")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran:
        raise VaebenchError(f"{path}: array {key!r} is stored in Fortran order; expected C order")
    needed = offset + int(np.prod(shape)) * dtype.itemsize
    if Path(path).stat().st_size < needed:
        raise VaebenchError(f"{path}: the file is {Path(path).stat().st_size} bytes but array "
                            f"{key!r} {shape} needs {needed}: it is truncated; download it again")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
