"""Executors: looked up by name; the local one runs each run in its own process, --jobs at once."""

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from vaebench.cli import main
from vaebench.registry import EXECUTORS
from vaebench.runner.executors import Executor
from vaebench.runner.executors.local import default_jobs, thread_share
from vaebench.runner.run import run_job
from vaebench.runner.suite import expand, load_suite

SUITE = """
name: tiny
datasets: [{name: dsprites_procedural, params: {train_size: 256, test_size: 64}}]
models: [vae, {name: beta_vae, params: {beta: 4}}]
seeds: [0]
train: {steps: 4, batch_size: 8, lr: 1.0e-3, checkpoint_every: 2, log_every: 2}
metrics: [{name: elbo, params: {num_examples: 32}}, {name: recon_error, params: {num_examples: 32}}]
"""


def run(tmp_path, results, *args, text=SUITE):
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(text))
    return main(["run", str(suite), "--results", str(tmp_path / results), "--no-progress", *args])


def metrics(suite_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in suite_dir.glob("*/metrics.json")}


@pytest.fixture
def one_thread():
    """The runs' thread budget is this process's torch threads; one thread for every run makes
    --jobs 1 and --jobs 2 sum floats in the same order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_unknown_executor_lists_the_known_ones(tmp_path, capsys):
    assert run(tmp_path, "r", "--executor", "slurmm") == 2
    err = capsys.readouterr().err
    assert "--executor: unknown executor 'slurmm'. Did you mean 'slurm'?" in err
    assert "Known executors: local, slurm" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_every_executor_implements_the_interface():
    assert [e.name for e in EXECUTORS.entries()] == ["local", "slurm"]
    for entry in EXECUTORS.entries():
        assert issubclass(entry.obj, Executor) and entry.obj.submit is not Executor.submit, entry.name


@pytest.mark.parametrize("budget, jobs, share", [(2, 1, 2), (2, 2, 1), (2, 3, 1), (16, 3, 5),
                                                 (16, 8, 2), (1, 4, 1)])
def test_thread_share_never_exceeds_the_budget(budget, jobs, share):
    assert thread_share(budget, jobs) == share
    assert jobs * share <= max(budget, jobs)


def test_default_jobs_is_one_per_gpu_else_one_per_thread():
    assert default_jobs(num_gpus=0, budget=2) == 2
    assert default_jobs(num_gpus=0, budget=1) == 1
    assert default_jobs(num_gpus=0, budget=64) == 8  # capped: every run holds its own torch
    assert default_jobs(num_gpus=4, budget=64) == 4
    assert default_jobs(num_gpus=1, budget=2) == 1


@pytest.mark.timeout(600)  # two fresh processes: minutes on a loaded 2-core machine
def test_two_at_once_give_the_same_results_as_one_after_another_here(tmp_path, one_thread, capsys):
    assert run(tmp_path, "par", "--jobs", "2") == 0
    assert "2 run(s), 2 at once, 1 thread(s) each" in capsys.readouterr().out
    par = metrics(tmp_path / "par" / "tiny")
    # The same runs one after another in this process, with the same single thread.
    suite = load_suite(tmp_path / "suite.yaml")
    for spec in expand(suite):
        assert run_job(spec, tmp_path / "seq", tmp_path / "data", progress=False)["status"] == "done"
    seq = metrics(tmp_path / "seq" / "tiny")
    assert sorted(seq) == sorted(par) and len(seq) == 2
    for rid in seq:
        assert seq[rid]["scores"] == par[rid]["scores"], rid
        assert seq[rid]["final_loss_terms"] == par[rid]["final_loss_terms"], rid
        assert par[rid]["cost"]["torch_threads"] == 1
        assert par[rid]["directions"]["elbo"] == "higher"
        assert par[rid]["directions"]["recon_error"] == "lower"
    assert len(list((tmp_path / "par" / "tiny" / "_local").glob("*.log"))) == 2


def _children_running(run_id: str) -> list[int]:
    """Pids of this process's children whose command line names run_id."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if run_id.encode() in cmdline:
                pids.append(int(pid))
    return pids


@pytest.mark.timeout(600)
def test_a_run_whose_process_is_killed_fails_and_the_others_finish(tmp_path, one_thread, capsys):
    # The beta_vae run's process is killed mid-training (as the out-of-memory killer would);
    # the vae run beside it must finish all the same.
    text = SUITE.replace("steps: 4,", "steps: 1000,").replace("checkpoint_every: 2, log_every: 2",
                                                              "checkpoint_every: 100, log_every: 100")
    codes = []
    worker = threading.Thread(target=lambda: codes.append(run(tmp_path, "r", "--jobs", "2", text=text)))
    worker.start()
    suite_dir = tmp_path / "r" / "tiny"
    deadline = time.time() + 400
    victim = None
    while victim is None and time.time() < deadline:
        ckpt = [p.parent.name for p in suite_dir.glob("beta_vae-*/checkpoint.pt")]
        pids = _children_running(ckpt[0]) if ckpt else []
        victim = (ckpt[0], pids[0]) if pids else None
        time.sleep(0.2)
    assert victim, "beta_vae never checkpointed"
    os.kill(victim[1], signal.SIGKILL)
    worker.join(timeout=500)
    assert codes == [1]
    failure = json.loads((suite_dir / victim[0] / "failed.json").read_text())
    assert "killed by SIGKILL" in failure["reason"] and "out-of-memory" in failure["reason"]
    assert failure["error_type"] == "ProcessDied" and failure["returncode"] == -9
    assert str(suite_dir / "_local" / f"{victim[0]}.log") in failure["reason"]
    done = metrics(suite_dir)
    assert len(done) == 1 and next(iter(done)).startswith("vae-")  # the other run went on
    assert main(["status", str(suite_dir)]) == 0
    assert "killed by SIGKILL" in capsys.readouterr().out
