"""Shared fixtures: the real single-node SLURM cluster for tests marked `slurm`, a headless
Chromium for tests marked `browser`, and a tiny finished suite.

Without a cluster, deselect those tests: `pytest -m "not slurm"`. As root (CI), the session
starts one with slurm/cluster.sh and stops it again at the end. Likewise `pytest -m "not browser"`
without Chromium; as root the session installs it with tests/browser/install.sh.
"""

import os
import shlex
import sys
import textwrap
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "slurm" / "cluster.sh"
BROWSER_INSTALL = REPO / "tests" / "browser" / "install.sh"
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


def _browser_ready() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium driven by Selenium (console messages collected); quit at the end."""
    if not _browser_ready():
        if os.geteuid() != 0:
            pytest.fail("the tests marked `browser` need Chromium, chromedriver and selenium: "
                        "`sudo bash tests/browser/install.sh`, or deselect them with "
                        "`pytest -m \"not browser\"`", pytrace=False)
        proc = subprocess.run(["bash", str(BROWSER_INSTALL), sys.executable], capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"`bash tests/browser/install.sh` failed (exit {proc.returncode}):\n"
                        f"{proc.stderr[-3000:]}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


TINY_SUITE = """
name: tiny
datasets: [{name: dsprites_procedural, params: {test_size: 64, train_size: 512}}]
models:
  - {name: vae, params: {latent_dim: 4}}
  - {name: beta_vae, params: {latent_dim: 4, beta: 4}}
  - {name: beta_vae, params: {latent_dim: 4, beta: .nan}}
seeds: [0, 1]
pack: 2  # the two seeds of each configuration in one process: 3 processes, not 6
train: {steps: 6, batch_size: 16, lr: 1.0e-3, checkpoint_every: 6, log_every: 3}
metrics:
  - {name: elbo, params: {num_examples: 32}}
  - {name: recon_error, params: {num_examples: 32}}
  - {name: mig, params: {num_train: 100}}
"""


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    """results/tiny of a finished suite (2 models x 2 seeds, 6 steps on procedural dSprites, in
    packs of 2), written by `vaebench run` with its HTML report; a third configuration (beta =
    NaN) fails both its runs (its pack stops, then each run alone), so the report has failures
    to show."""
    from vaebench.cli import main

    root = tmp_path_factory.mktemp("tiny_suite")
    (root / "suite.yaml").write_text(textwrap.dedent(TINY_SUITE))
    assert main(["run", str(root / "suite.yaml"), "--results", str(root / "results"),
                 "--data-root", str(root / "data"), "--no-progress"]) == 1  # 1: runs failed
    return root / "results" / "tiny"


def pytest_collection_modifyitems(config, items):
    """Every test marked `slurm` gets the cluster, and every one marked `browser` Chromium,
    without naming the fixture itself."""
    for item in items:
        if item.get_closest_marker("slurm") and "slurm_cluster" not in item.fixturenames:
            item.fixturenames.insert(0, "slurm_cluster")
        if item.get_closest_marker("browser") and "chromium" not in item.fixturenames:
            item.fixturenames.insert(0, "chromium")
