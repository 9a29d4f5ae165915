"""Rows of an array stored uncompressed in a file (a .npz member, a contiguous HDF5 dataset),
read on demand with pread: nothing is loaded up front, and a batch costs its own bytes only.

Why not np.memmap: a page fault on a mapping maps far more than the faulting page here (fault-
around, large page-cache folios; MADV_RANDOM did not stop it), so scattered batches of a 5.9 GB
Shapes3D file grew the process's RSS by ~50-80 MB per 64 images until it held most of the file
(benchmarks/dataset_memory.py). pread copies just the rows into an ordinary array.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from vaebench.errors import VaebenchError


class RowReader:
    """reader[rows] -> (len(rows),) + shape[1:] array, for an array of `shape` and `dtype`
    stored C-contiguously at byte `offset` of the file at `path`."""

    def __init__(self, path: Path, offset: int, shape, dtype):
        self.path, self.offset, self.shape, self.dtype = Path(path), int(offset), tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._fd = None

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if self._fd is None:  # opened on first use, so a reader can be pickled unopened
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(rows),) + self.shape[1:], dtype=self.dtype)
        flat = out.reshape(len(rows), -1).view(np.uint8)
        for i, r in enumerate(rows):
            if not 0 <= r < self.shape[0]:
                raise IndexError(f"row {r} out of range for {self.shape[0]} rows of {self.path}")
            data = os.pread(self._fd, self.row_bytes, self.offset + int(r) * self.row_bytes)
            if len(data) != self.row_bytes:
                raise OSError(f"{self.path}: short read at row {r} (the file shrank?)")
            flat[i] = np.frombuffer(data, dtype=np.uint8)
        return out

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_fd"} | {"_fd": None}

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def npz_member(path: Path, key: str) -> RowReader:
    """Reader of array `key` stored uncompressed in the archive `path`.

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
        raise VaebenchError(f"{path}: array {key!r} is compressed, so its rows cannot be read in place; "
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
    return RowReader(path, offset, shape, dtype)
