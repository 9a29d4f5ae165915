"""Shared fixtures: the real single-node SLURM cluster for tests marked `slurm`.

Without a cluster, deselect those tests: `pytest -m "not slurm"`. As root (CI), the session
starts one with slurm/cluster.sh and stops it again at the end.
"""

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "slurm" / "cluster.sh"
SLURM_DIR = Path(os.environ.get("SLURM_DIR", "/tmp/slurm-single-node"))


def _conf_from_env_sh() -> str | None:
    """SLURM_CONF as slurm/cluster.sh wrote it into $SLURM_DIR/env.sh."""
    env_sh = SLURM_DIR / "env.sh"
    if not env_sh.is_file():
        return None
    for line in env_sh.read_text().splitlines():
        if line.startswith("export SLURM_CONF="):
            return shlex.split(line.split("=", 1)[1])[0]
    return None


def _cluster_up(conf: str | None) -> bool:
    if not shutil.which("sinfo") or not conf:
        return False
    try:  # a live controller answers at once; a stopped one makes sinfo retry for ~10 s
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return False
    # idle, or busy with someone's jobs: either way it takes ours
    return out.returncode == 0 and out.stdout.split()[:1] in (["idle"], ["mixed"], ["allocated"])


@pytest.fixture(scope="session")
def slurm_cluster():
    """SLURM_CONF of a running single-node cluster, exported to this process and its children."""
    conf = os.environ.get("SLURM_CONF") or _conf_from_env_sh()
    started = False
    if not _cluster_up(conf):
        if os.geteuid() != 0:
            pytest.fail("the tests marked `slurm` need the single-node SLURM cluster: start it with "
                        "`sudo bash slurm/cluster.sh start` (Debian 12), or deselect them with "
                        "`pytest -m \"not slurm\"`", pytrace=False)
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", str(CLUSTER_SH), "start"], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"`bash slurm/cluster.sh start` failed (exit {proc.returncode}):\n"
                        f"{proc.stderr[-3000:]}", pytrace=False)
        print(f"\nslurm/cluster.sh start: {time.perf_counter() - t0:.1f} s")
        conf, started = _conf_from_env_sh(), True
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # submitit's sbatch/sacct calls and the jobs inherit it
    yield conf
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    if started:
        subprocess.run(["bash", str(CLUSTER_SH), "stop"], capture_output=True, timeout=300)


def pytest_collection_modifyitems(config, items):
    """Every test marked `slurm` gets the cluster, without naming the fixture itself."""
    for item in items:
        if item.get_closest_marker("slurm") and "slurm_cluster" not in item.fixturenames:
            item.fixturenames.insert(0, "slurm_cluster")
