"""Finding a dataset's files under the data root, downloading the ones whose licence allows it.

Every loader asks `find_or_download`; a missing file becomes one paragraph for the person at the
terminal (which file, where to put it, where it comes from) and the CLI exits 2.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from vaebench.errors import VaebenchError


def missing(what: str, target: Path, source: str, why: str = "") -> VaebenchError:
    why = f" ({why})" if why else ""
    return VaebenchError(
        f"{what} is missing: {Path(target).resolve()} does not exist{why}. {source} Put it at "
        f"{Path(target).resolve()}, or point --data-root / VAEBENCH_DATA at a folder that has "
        f"it (README.md, 'Datasets', lists every file).")


def find_or_download(data_root: Path, relative: str, what: str, source: str,
                     url: str | None = None) -> Path:
    """<data root>/<relative>; else downloaded from `url` (official, licence permits), else a
    VaebenchError naming the file. source: one sentence saying where the file comes from."""
    target = Path(data_root) / relative
    if target.is_file():
        return target
    if url is None:
        raise missing(what, target, source)
    tmp = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=10) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, length=1 << 20)
        tmp.replace(target)
        return target
    except Exception as e:  # no network, refused, disk full: the same advice
        tmp.unlink(missing_ok=True)
        raise missing(what, target, source,
                      f"and downloading {url} failed: {type(e).__name__}: {e}") from None


def torchvision_split(cls, data_root: Path, train: bool, what: str, folder: Path, source: str,
                      **kwargs):
    """A torchvision dataset split from the data root; downloaded by torchvision (from the
    dataset's official location) when absent; else a VaebenchError saying where files go."""
    try:
        return cls(root=str(data_root), train=train, download=False, **kwargs)
    except RuntimeError:
        pass  # files absent: try to download them
    try:
        return cls(root=str(data_root), train=train, download=True, **kwargs)
    except Exception as e:  # no network, or a mirror refused
        raise missing(what, folder, source, f"and torchvision could not download it: "
                      f"{type(e).__name__}: {e}") from None
