"""slurm/cluster.sh, the single-node test cluster: its interface (no cluster needed) and, marked
`slurm`, the state of the running cluster it started."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "cluster.sh"


def test_script_parses_and_prints_usage():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    out = subprocess.run(["bash", str(SCRIPT), "restart"], capture_output=True, text=True)
    assert out.returncode == 2 and "usage:" in out.stderr and "start|stop|status" in out.stderr


@pytest.mark.slurm
@pytest.mark.timeout(60)
def test_status_reports_every_daemon_and_an_idle_node(slurm_cluster):
    out = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    for daemon in ["munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd"]:
        assert f"{daemon}: running" in out.stdout or daemon == "munged"  # a system munged is reused
    assert "idle" in out.stdout and "debug" in out.stdout
    accounting = subprocess.run(["sacctmgr", "-n", "list", "cluster", "format=Cluster"],
                                capture_output=True, text=True, timeout=30)
    assert accounting.stdout.split() == ["vaebench"]  # sacct works: submitit can follow jobs
