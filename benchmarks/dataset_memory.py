"""Peak memory of opening a full-size Shapes3D / MPI3D file and drawing metric-style batches.

Writes files of the official shapes (3dshapes.h5: 480,000 x 64x64x3 uint8 + labels, 5.9 GB;
optionally an MPI3D .npz, 12.7 GB) into a scratch folder, then, in a fresh process per dataset,
opens it through the registry and reads `--batches` random batches of 64 grid rows. Prints a
table and a final JSON line: peak RSS (MB) after import, after opening, after reading, and the
anonymous part of RSS after reading (mapped file pages are page cache, not the process's own).

    python benchmarks/dataset_memory.py --scratch /tmp/vaebench-mem [--mpi3d]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anon_mb() -> float:
    """Anonymous resident memory (what the process itself needs; mapped file pages are page
    cache the kernel can drop)."""
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_shapes3d(path: Path) -> None:
    import h5py

    sizes = [10, 10, 10, 8, 4, 15]
    n = int(np.prod(sizes))
    classes = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, 6)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", shape=(n, 64, 64, 3), dtype=np.uint8)
        block = np.zeros((10_000, 64, 64, 3), np.uint8)
        for start in range(0, n, len(block)):
            block[:, 0, 0, :3] = classes[start:start + len(block), :3]
            images[start:start + len(block)] = block
        f.create_dataset("labels", data=classes.astype(np.float64))


def write_mpi3d(path: Path) -> None:
    n = 6 * 6 * 2 * 3 * 3 * 40 * 40
    path.parent.mkdir(parents=True, exist_ok=True)
    npy = path.with_suffix(".npy")
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(n, 64, 64, 3))
    arr.flush()
    del arr
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.write(npy, "images.npy")
    npy.unlink()


def child(name: str, root: str, batches: int) -> None:
    import torch

    import vaebench.data  # noqa: F401
    from vaebench.registry import DATASETS

    after_import = peak_mb()
    t0 = time.perf_counter()
    ds = DATASETS.get(name)(Path(root))
    open_s, after_open = time.perf_counter() - t0, peak_mb()
    rs = np.random.RandomState(0)
    t0 = time.perf_counter()
    for _ in range(batches):
        ds.factors.sample_observations_from_factors(ds.factors.sample_factors(64, rs), rs)
        ds.batch("train", torch.randint(0, ds.num_examples("train"), (64,)))
    read_s = time.perf_counter() - t0
    print(json.dumps({"dataset": name, "rss_import_mb": round(after_import), "rss_open_mb": round(after_open),
                      "rss_read_mb": round(peak_mb()), "anon_read_mb": round(anon_mb()), "open_s": round(open_s, 2),
                      "ms_per_batch_pair": round(1000 * read_s / batches, 2)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scratch", default="/tmp/vaebench-mem")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--mpi3d", action="store_true", help="also write and read a 12.7 GB MPI3D file")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], a.child[1], a.batches)
    root = Path(a.scratch)
    jobs = [("shapes3d", root / "3dshapes" / "3dshapes.h5", write_shapes3d)]
    if a.mpi3d:
        jobs.append(("mpi3d_toy", root / "mpi3d_toy" / "mpi3d_toy.npz", write_mpi3d))
    rows = []
    for name, path, write in jobs:
        if not path.is_file():
            write(path)
        out = subprocess.run([sys.executable, __file__, "--batches", str(a.batches), "--child", name, str(root)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]) | {"file_gb": round(path.stat().st_size / 1e9, 2)})
    print(f"{'dataset':<10} {'file GB':>8} {'RSS import':>11} {'RSS open':>9} {'RSS read':>9} "
          f"{'anon read':>10} {'open s':>7} {'ms/2 batches':>13}")
    for r in rows:
        print(f"{r['dataset']:<10} {r['file_gb']:>8} {r['rss_import_mb']:>11} {r['rss_open_mb']:>9} "
              f"{r['rss_read_mb']:>9} {r['anon_read_mb']:>10} {r['open_s']:>7} {r['ms_per_batch_pair']:>13}")
    print(json.dumps({"benchmark": "dataset_memory", "rows": rows}))


if __name__ == "__main__":
    main()
