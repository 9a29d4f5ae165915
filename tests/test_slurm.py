"""The SLURM executor: presets (no cluster needed) and, marked `slurm`, runs on the real
single-node cluster from slurm/cluster.sh (see tests/conftest.py)."""

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import submitit
import torch

from vaebench.cli import main
from vaebench.errors import VaebenchError
from vaebench.runner.executors import slurm
from vaebench.runner.executors.slurm import SlurmPreset, SlurmRun, load_preset

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"  # real MNIST in torchvision's layout

SUITE = """
name: tiny
datasets: [{name: mnist, params: {train_size: 512}}]
models: [vae, {name: beta_vae, params: {beta: 4}}]
seeds: [0, 1]
train: {steps: 6, batch_size: 16, lr: 1.0e-3, checkpoint_every: 3, log_every: 3}
metrics: [{name: elbo, params: {num_examples: 64}}, {name: recon_error, params: {num_examples: 64}}]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(suite: Path, results: Path, *args) -> int:
    return main(["run", str(suite), "--results", str(results), "--data-root", str(DATA),
                 "--no-progress", *args])


def records(suite_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in suite_dir.glob("*/slurm.json")}


# --- presets --------------------------------------------------------------------------------

@pytest.mark.parametrize("given, minutes", [(90, 90), ("90", 90), ("30:30", 31), ("04:00:00", 240),
                                            ("1-00", 1440), ("1-02:30", 1590), ("0:0:1", 1)])
def test_preset_time_accepts_slurm_formats(given, minutes):
    assert SlurmPreset(time=given).time == minutes


def test_shipped_presets_are_valid():
    for path in sorted((REPO / "slurm").glob("*.yaml")):
        preset, found = load_preset(path)
        assert found == path and preset.time > 0
    local, _ = load_preset("local")
    assert local.partition == "debug" and local.cpus_per_task <= 2 and local.gpus_per_node == 0
    gpu, _ = load_preset(REPO / "slurm" / "example-gpu.yaml")
    params = gpu.executor_parameters("vaebench-x")
    assert params["gpus_per_node"] == 1 and params["timeout_min"] == 240
    assert params["slurm_additional_parameters"] == {"mail-type": "FAIL", "mail-user": "me@example.org"}
    assert "gpus_per_node" not in local.executor_parameters("vaebench-x")  # no GRES request at all


def test_preset_errors_name_the_file_and_key(tmp_path):
    bad = write(tmp_path / "bad.yaml", "partition: gpu\ncpus_per_tsk: 4\ntime: soon\nmem_gb: -1\n")
    with pytest.raises(VaebenchError) as e:
        load_preset(bad)
    msg = str(e.value)
    assert str(bad) in msg and "cpus_per_tsk" in msg and "time" in msg and "'soon'" in msg
    assert "mem_gb" in msg and "allowed keys" in msg and "cpus_per_task" in msg


def test_unknown_preset_name_lists_the_known_ones():
    with pytest.raises(VaebenchError, match="known presets: .*local"):
        load_preset("no-such-cluster")
    with pytest.raises(VaebenchError, match="no such file"):
        load_preset("missing/cluster.yaml")


def test_sacct_lines_are_read_per_array_task():
    text = ("JobID|State\n40_0|COMPLETED\n40_[1-3%1]|PENDING\n40_1|RUNNING\n41|CANCELLED by 0\n"
            "42_[0,2-3]|PENDING\n")
    assert slurm._parse_sacct(text) == {
        "40_0": "COMPLETED", "40_1": "RUNNING", "40_2": "PENDING", "40_3": "PENDING",
        "41": "CANCELLED by 0", "42_0": "PENDING", "42_2": "PENDING", "42_3": "PENDING"}
    assert slurm.is_active("REQUEUED") and not slurm.is_active("CANCELLED by 0")
    assert not slurm.is_active(None)


def test_the_running_trainer_lives_on_the_callable_and_not_in_its_pickle(tmp_path):
    import pickle

    from vaebench.data.base import TensorImageDataset
    from vaebench.models.vae import VAE, VAEConfig
    from vaebench.runner.train import Trainer

    x = (torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.7).to(torch.uint8) * 255
    y = torch.zeros(32, dtype=torch.long)
    dataset = TensorImageDataset("tiny", x, y, x[:8], y[:8], num_classes=1)
    train = {"steps": 2, "batch_size": 4, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
             "checkpoint_every": 2, "log_every": 2, "optimizer": "adam"}
    trainer = Trainer(VAE(VAEConfig(latent_dim=2), (1, 28, 28), 1), dataset, train,
                      tmp_path / "run", seed=0, device=torch.device("cpu"), progress=False)
    trainer.run()
    fn = SlurmRun(str(tmp_path), str(DATA), None)
    (tmp_path / "run" / "checkpoint.pt").unlink()
    fn._hold(trainer)  # as run_job does while the trainer trains
    resubmission = fn.checkpoint("the spec")  # what submitit calls on preemption
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # saved between steps
    assert resubmission.function is fn and resubmission.args == ("the spec",)
    requeued = pickle.loads(pickle.dumps(resubmission.function))
    assert requeued.trainer is None and requeued.results_dir == str(tmp_path)
    trainer._in_step = True  # signalled mid-step: keep the last periodic checkpoint
    (tmp_path / "run" / "checkpoint.pt").unlink()
    fn.checkpoint("the spec")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# --- on the real cluster -----------------------------------------------------------------------

@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_slurm_gives_the_same_leaderboard_as_local(tmp_path, capsys):
    # Packs of 2 on both sides: the two seeds of each model train together, locally in one
    # process, on SLURM in one array task (the unpacked path: the tests below).
    suite = write(tmp_path / "suite.yaml", SUITE + "pack: 2\n")
    # The jobs use the preset's 1 CPU; the thread count changes float summation order, so the
    # local executor runs with 1 thread too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_cli(suite, tmp_path / "local") == 0
    finally:
        torch.set_num_threads(threads)
    assert run_cli(suite, tmp_path / "slurm", "--executor", "slurm", "--wait") == 0
    out = capsys.readouterr().out
    assert "submitted 4 run(s) as SLURM job" in out

    local = pd.read_csv(tmp_path / "local" / "tiny" / "leaderboard.csv")
    remote = pd.read_csv(tmp_path / "slurm" / "tiny" / "leaderboard.csv")
    cost = ("train_seconds", "images_per_s", "post_training_seconds", "eval_seconds", "peak_memory_mib")
    scores = [c for c in local.columns if not c.startswith(cost)]
    assert len(local) == 2 and (remote["n_seeds"] == 2).all()
    pd.testing.assert_frame_equal(local[scores], remote[scores], check_exact=True)
    suite_dir = tmp_path / "slurm" / "tiny"
    recs = records(suite_dir)
    assert len(recs) == 4 and len({r["job_id"] for r in recs.values()}) == 2  # a task per pack
    for rid, r in recs.items():
        assert rid in r["pack"] and len(r["pack"]) == 2
        assert json.loads((suite_dir / rid / "metrics.json").read_text())["cost"]["pack_size"] == 2

    # Nothing pending: a second run submits nothing and rewrites the same leaderboard.
    assert run_cli(suite, tmp_path / "slurm", "--executor", "slurm", "--wait") == 0
    assert "submitted" not in capsys.readouterr().out


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_cancelled_task_is_a_failed_run_and_only_it_is_resubmitted(tmp_path, capsys):
    # Long enough to still be training when SLURM kills the job: submitit ignores scancel's
    # SIGTERM, and the SIGKILL follows KillWait (1 s on the test cluster) later. 400 steps (about
    # 4 s) were sometimes over before the kill; 1,000 leave ~10 s on a fast machine.
    steps = 1000
    text = (SUITE.replace(", {name: beta_vae, params: {beta: 4}}", "").replace("steps: 6", f"steps: {steps}")
            .replace("checkpoint_every: 3, log_every: 3", "checkpoint_every: 20, log_every: 10"))
    suite = write(tmp_path / "suite.yaml", text)
    # One task at a time: task 0 is cancelled while it trains, task 1 waits its turn meanwhile.
    preset = write(tmp_path / "one.yaml", "partition: debug\ntime: 10\nmem_gb: 2\narray_parallelism: 1\n")
    results = tmp_path / "r"
    suite_dir = results / "tiny"
    assert run_cli(suite, results, "--executor", "slurm", "--slurm-preset", str(preset)) == 0
    assert f"vaebench status {suite_dir}" in capsys.readouterr().out  # says how to check
    first = records(suite_dir)
    by_task = {r["job_id"].split("_")[1]: rid for rid, r in first.items()}
    cancelled, kept = by_task["0"], by_task["1"]
    deadline = time.time() + 120
    while not (suite_dir / cancelled / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    subprocess.run(["scancel", first[cancelled]["job_id"]], check=True)

    # Without anyone waiting on it, the ended job is found and recorded as a failed run.
    deadline = time.time() + 60
    while not (ended := slurm.settle_ended_jobs(suite_dir)) and time.time() < deadline:
        time.sleep(1)
    assert ended == [cancelled], "cancelled too late: raise `steps`"
    failure = json.loads((suite_dir / cancelled / "failed.json").read_text())
    assert "CANCELLED" in failure["reason"] and first[cancelled]["job_id"] in failure["reason"]
    assert main(["status", str(suite_dir)]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "CANCELLED" in out and first[cancelled]["stderr"] in out
    assert f"slurm job {first[kept]['job_id']} " in out  # the other task, queued or running

    assert slurm.wait_for_jobs(suite_dir, list(first), progress=False) == {
        kept: "done", cancelled: "failed"}, "cancelled too late: raise `steps`"

    assert run_cli(suite, results, "--executor", "slurm", "--slurm-preset", str(preset), "--wait") == 0
    assert "submitted 1 run(s)" in capsys.readouterr().out
    second = records(suite_dir)
    assert second[kept]["job_id"] == first[kept]["job_id"]
    assert second[cancelled]["job_id"] != first[cancelled]["job_id"]
    assert second[cancelled]["previous"][0]["job_id"] == first[cancelled]["job_id"]
    assert "CANCELLED" in second[cancelled]["previous"][0]["reason"]
    resumed = json.loads((suite_dir / cancelled / "metrics.json").read_text())["cost"]
    assert resumed["steps"] == steps and resumed["sessions"] == 2  # went on from its checkpoint
    board = pd.read_csv(suite_dir / "leaderboard.csv")
    assert board["n_seeds"].tolist() == [2] and board["n_failed"].tolist() == [0]


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_interrupted_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    steps = 1000  # ~9 s at CI's 110 steps/s: still training when SIGTERM, then USR2, arrive
    text = (SUITE.replace("steps: 6", f"steps: {steps}").replace("seeds: [0, 1]", "seeds: [0]")
            .replace("checkpoint_every: 3, log_every: 3", "checkpoint_every: 20, log_every: 10")
            .replace(", {name: beta_vae, params: {beta: 4}}", ""))
    suite = write(tmp_path / "suite.yaml", text)
    results = tmp_path / "r"
    suite_dir = results / "tiny"
    assert run_cli(suite, results, "--executor", "slurm") == 0
    ((run_id, record),) = records(suite_dir).items()
    run_dir = suite_dir / run_id
    deadline = time.time() + 120
    while not (run_dir / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (run_dir / "checkpoint.pt").exists(), "training never started"
    # What SLURM does on preemption: SIGTERM, then SIGUSR2 (submitit checkpoints and requeues).
    # As submitit's own SlurmJob._interrupt, but USR2 only once the job has logged SIGTERM: sent
    # back to back, a late SIGTERM could reach the `scontrol requeue` that USR2's handler runs,
    # killing it (seen once in CI).
    scancel = ["scancel", record["job_id"], "--signal"]
    subprocess.run(scancel + ["SIGTERM"], check=True)
    stderr = Path(record["stderr"])
    deadline = time.time() + 30
    while time.time() < deadline and not (stderr.is_file() and "Bypassing signal SIGTERM" in stderr.read_text()):
        time.sleep(0.1)
    assert "Bypassing signal SIGTERM" in stderr.read_text(), "the job never saw SIGTERM"
    subprocess.run(scancel + [submitit.slurm.slurm.SlurmJobEnvironment.USR_SIG], check=True)

    # The requeued job still holds the run: a new `run --wait` attaches to it, submits nothing.
    assert run_cli(suite, results, "--executor", "slurm", "--wait") == 0
    assert records(suite_dir)[run_id]["job_id"] == record["job_id"]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["cost"]["steps"] == steps and m["cost"]["sessions"] == 2
    assert 0 < m["cost"]["resumed_from_step"] < steps
    log = pd.read_csv(run_dir / "train_log.csv")
    assert set(log["session"]) == {0, 1}, "the training log does not show the resume"
    assert log["step"].is_monotonic_increasing and log["step"].is_unique
    assert log["step"].iloc[-1] == steps
    out = Path(record["stdout"]).read_text()
    assert "(start 1," in out and "(start 2," in out  # one job, started twice


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_preset_bigger_than_the_cluster_fails_at_submission(tmp_path, capsys):
    suite = write(tmp_path / "suite.yaml", SUITE)
    preset = write(tmp_path / "huge.yaml", "partition: debug\ncpus_per_task: 64\n")
    code = run_cli(suite, tmp_path / "r", "--executor", "slurm", "--slurm-preset", str(preset), "--wait")
    err = capsys.readouterr().err
    assert code == 2 and "More processors requested than permitted" in err  # SLURM's own words
    assert str(preset) in err and "Traceback" not in err
    assert not records(tmp_path / "r" / "tiny")


# --- faults on the real cluster -------------------------------------------------------------

def _one_long_run(tmp_path, steps=1000, seeds="[0]"):
    text = (SUITE.replace("steps: 6", f"steps: {steps}").replace("seeds: [0, 1]", f"seeds: {seeds}")
            .replace("checkpoint_every: 3, log_every: 3", "checkpoint_every: 20, log_every: 10")
            .replace(", {name: beta_vae, params: {beta: 4}}", ""))
    return write(tmp_path / "suite.yaml", text)


def _wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.2)
    assert condition(), what


def _assert_trained_once(run_dir, steps):
    log = pd.read_csv(run_dir / "train_log.csv")
    assert log["step"].is_monotonic_increasing and log["step"].is_unique  # no step trained twice
    assert log["step"].iloc[-1] == steps
    return json.loads((run_dir / "metrics.json").read_text())["cost"]


def _node() -> str:
    return subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.mark.slurm
@pytest.mark.timeout(400)
def test_controller_restart_mid_array_loses_and_repeats_nothing(tmp_path, capsys):
    suite = _one_long_run(tmp_path, seeds="[0, 1]")
    results = tmp_path / "r"
    suite_dir = results / "tiny"
    assert run_cli(suite, results, "--executor", "slurm") == 0
    first = records(suite_dir)
    _wait_for(lambda: any(suite_dir.glob("*/checkpoint.pt")), 180, "training never started")
    subprocess.run(["bash", str(REPO / "slurm" / "cluster.sh"), "restart-controller"], check=True,
                   capture_output=True, timeout=120)
    capsys.readouterr()
    assert main(["status", str(suite_dir)]) == 0  # the jobs are still there
    assert "0 failed" in capsys.readouterr().out
    assert run_cli(suite, results, "--executor", "slurm", "--wait") == 0
    assert records(suite_dir) == first  # nothing submitted again
    for rid in first:
        cost = _assert_trained_once(suite_dir / rid, 1000)
        assert cost["sessions"] == 1  # the jobs ran through the restart
    capsys.readouterr()
    assert main(["status", str(suite_dir)]) == 0
    assert "2 done, 0 failed" in capsys.readouterr().out


@pytest.mark.slurm
@pytest.mark.timeout(400)
def test_node_down_and_up_mid_job_requeues_and_resumes(tmp_path, capsys):
    # Long enough to outlast SLURM's kill: the controller requeues the job at once, but the step on
    # the node died up to ~3 s later (slurmctld.log), and a fresh-clone CI run once trained all of
    # 400 steps (3.6 s at 1,760 images/s) before it did, leaving nothing to resume.
    steps = 2000
    suite = _one_long_run(tmp_path, steps=steps)
    results = tmp_path / "r"
    suite_dir = results / "tiny"
    assert run_cli(suite, results, "--executor", "slurm") == 0
    ((run_id, record),) = records(suite_dir).items()
    run_dir = suite_dir / run_id
    _wait_for(lambda: (run_dir / "checkpoint.pt").exists(), 180, "training never started")
    node = _node()
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=vaebench-test"],
                   check=True)
    # SLURM kills the job (NODE_FAIL) and requeues it; the node takes a moment to accept "resume"
    deadline = time.time() + 60
    while subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                         capture_output=True).returncode != 0 and time.time() < deadline:
        time.sleep(1)
    # When the requeued job is dispatched before the node is back, its launch fails and SLURM
    # holds it ("launch failed requeued held"; seen once in a fresh-clone run), as a cluster
    # would; its admin releases it, which is what `vaebench run --wait` tells them to do.
    job_id, restarts = record["job_id"], 1
    deadline = time.time() + 30
    while time.time() < deadline:
        if job_id in slurm.held_jobs([job_id]):
            subprocess.run(["scontrol", "release", job_id], check=True)
            restarts = 2  # the failed launch counts as a restart of its own
            break
        if slurm.job_states([job_id]).get(job_id, "").startswith(("RUNNING", "COMPLETED")):
            break
        time.sleep(0.5)
    assert run_cli(suite, results, "--executor", "slurm", "--wait") == 0
    assert records(suite_dir)[run_id]["job_id"] == record["job_id"]  # SLURM requeued the same job
    cost = _assert_trained_once(run_dir, steps)
    assert cost["sessions"] == 2 and 0 < cost["resumed_from_step"] < steps
    capsys.readouterr()
    assert main(["status", str(suite_dir), "-v"]) == 0
    out = capsys.readouterr().out
    assert "1 done" in out and f"restarted {restarts}x" in out, out
    events = (run_dir / "events.log").read_text()
    assert "start 1" in events and f"start {restarts + 1}" in events


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_a_job_over_its_memory_is_a_failed_run_that_says_out_of_memory(tmp_path, capsys):
    suite = _one_long_run(tmp_path, steps=50)
    preset = write(tmp_path / "small.yaml", "partition: debug\ntime: 10\nmem_gb: 0.25\n")
    results = tmp_path / "r"
    suite_dir = results / "tiny"
    code = run_cli(suite, results, "--executor", "slurm", "--slurm-preset", str(preset), "--wait")
    assert code == 1
    ((run_id, record),) = records(suite_dir).items()
    failure = json.loads((suite_dir / run_id / "failed.json").read_text())
    assert "out of memory" in failure["reason"], failure["reason"]
    assert "mem_gb" in failure["reason"]
    capsys.readouterr()
    assert main(["status", str(suite_dir)]) == 0
    assert "out of memory" in capsys.readouterr().out


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_a_held_job_is_found_so_wait_can_say_how_to_release_it():
    out = subprocess.run(["sbatch", "--parsable", "--hold", "-p", "debug", "-o", "/dev/null", "--wrap", "true"],
                         capture_output=True, text=True, check=True).stdout.strip()
    job_id = out.split(";")[0]
    try:
        _wait_for(lambda: job_id in slurm.held_jobs([job_id]), 30, "the held job was not found")
        assert "held" in slurm.held_jobs([job_id])[job_id].lower()
        subprocess.run(["scontrol", "release", job_id], check=True)
        _wait_for(lambda: job_id not in slurm.held_jobs([job_id]), 30, "still held after release")
    finally:
        subprocess.run(["scancel", job_id], check=False)
