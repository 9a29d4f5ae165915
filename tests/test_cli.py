"""End to end through the CLI: run, rerun, failures, SIGKILL + resume, status, list."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from vaebench.cli import main

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


def write_suite(tmp_path, text=SUITE):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def vaebench(tmp_path, *args):
    return main(["run", str(write_suite(tmp_path)), "--results", str(tmp_path / "results"),
                 "--data-root", str(DATA), "--no-progress", *args])


def test_run_writes_results_and_rerun_trains_nothing(tmp_path, capsys):
    assert vaebench(tmp_path) == 0
    suite_dir = tmp_path / "results" / "tiny"
    board = pd.read_csv(suite_dir / "leaderboard.csv")
    assert sorted(board["model"]) == ["beta_vae", "vae"]
    assert (board["n_seeds"] == 2).all() and (board["n_done"] == 2).all() and (board["elbo_n"] == 2).all()
    for col in ["elbo_mean", "elbo_std", "recon_error_mean", "train_seconds_mean", "images_per_s_mean",
                "peak_memory_mib_mean", "eval_seconds_mean", "post_training_seconds_mean"]:
        assert board[col].notna().all(), col
    run_dirs = [p for p in suite_dir.iterdir() if (p / "config.json").is_file()]
    assert len(run_dirs) == 4
    for d in run_dirs:
        for name in ["config.json", "metrics.json", "checkpoint.pt", "train_log.csv", "recon.png", "samples.png"]:
            assert (d / name).is_file(), (d, name)
        m = json.loads((d / "metrics.json").read_text())
        assert m["schema_version"] == 2 and m["cost"]["steps"] == 6
        assert m["eval_seed"] == 0 and m["configuration_id"]
        prov = m["provenance"]
        for lib in ["python", "torch", "numpy", "scipy", "scikit-learn", "pytorch-fid", "vaebench"]:
            assert prov[lib], lib
        assert prov["device"] == "cpu" and len(prov["vaebench_git"].get("commit", "x" * 40)) == 40
        assert m["scores"]["elbo"] < 0
    assert not list(suite_dir.rglob("*.tmp"))
    stamps = {d: (d / "metrics.json").stat().st_mtime_ns for d in run_dirs}
    out = capsys.readouterr().out
    assert "beta=4" in out and "leaderboard" in out
    assert (suite_dir / "report" / "index.html").is_file() and "report:" in out

    assert vaebench(tmp_path) == 0
    assert stamps == {d: (d / "metrics.json").stat().st_mtime_ns for d in run_dirs}  # nothing retrained
    pd.testing.assert_frame_equal(board, pd.read_csv(suite_dir / "leaderboard.csv"))


def test_failed_run_is_recorded_and_the_suite_goes_on(tmp_path, capsys):
    # beta = NaN makes the loss NaN: a failure with its reason, not a crash
    text = SUITE.replace("{beta: 4}", "{beta: .nan}")
    path = write_suite(tmp_path, text)
    code = main(["run", str(path), "--results", str(tmp_path / "r"), "--data-root", str(DATA), "--no-progress"])
    assert code == 1
    suite_dir = tmp_path / "r" / "tiny"
    failed = [json.loads(p.read_text()) for p in suite_dir.glob("*/failed.json")]
    assert len(failed) == 2 and all("non-finite loss" in f["reason"] for f in failed)
    assert len(list(suite_dir.glob("*/metrics.json"))) == 2  # the vae runs finished
    assert main(["status", str(suite_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 done, 2 failed" in out and "non-finite loss" in out and "traceback.txt" in out


def test_bad_suite_exits_nonzero_without_writing(tmp_path, capsys):
    path = write_suite(tmp_path, SUITE.replace("[vae,", "[vea,"))
    code = main(["run", str(path), "--results", str(tmp_path / "r"), "--data-root", str(DATA)])
    err = capsys.readouterr().err
    assert code == 2 and "models[0].name" in err and "Did you mean 'vae'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_missing_dataset_files_exit_cleanly(tmp_path, capsys):
    path = write_suite(tmp_path)
    code = main(["run", str(path), "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert code == 2 and "MNIST" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "r").exists()


def test_dry_run_lists_runs_and_trains_nothing(tmp_path, capsys):
    assert vaebench(tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 4 and "beta=4" in out
    # the compute estimate: one probed row per variant, 2 runs of 6 steps each, and a total
    table = out.split("evaluation not included):\n")[1].splitlines()
    assert len(table) == 4 and table[-1].startswith("total: ") and "hours" in table[-1]
    assert all(line.split()[-4:-2] == ["2", "6"] for line in table[1:3])
    assert not (tmp_path / "results").exists()


def test_sigkill_mid_training_resumes_from_checkpoint(tmp_path):
    # 400 steps: ~3.6 s at the fastest speed seen (CI, 110 steps/s), so the kill 0.5 s after the
    # first checkpoint (step 20) lands mid-training with room to spare
    text = SUITE.replace("steps: 6", "steps: 400").replace("seeds: [0, 1]", "seeds: [0]").replace(
        "checkpoint_every: 3, log_every: 3", "checkpoint_every: 20, log_every: 10").replace(
        ", {name: beta_vae, params: {beta: 4}}", "")
    path = write_suite(tmp_path, text)
    cmd = [sys.executable, "-m", "vaebench.cli", "run", str(path), "--results", str(tmp_path / "r"),
           "--data-root", str(DATA), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    suite_dir = tmp_path / "r" / "tiny"
    deadline = time.time() + 120
    while not list(suite_dir.glob("*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = [p for p in suite_dir.iterdir() if (p / "config.json").is_file()]
    assert not (run_dir / "metrics.json").exists(), "killed too late: run the test on a slower budget"

    assert main(["status", str(suite_dir)]) == 0
    assert subprocess.run(cmd, cwd=REPO, capture_output=True).returncode == 0
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["cost"]["steps"] == 400 and m["cost"]["sessions"] == 2
    assert m["cost"]["resumed_from_step"] > 0
    log = pd.read_csv(run_dir / "train_log.csv")
    assert log["step"].tolist() == list(range(10, 401, 10))  # no step lost or duplicated
    assert set(log["session"]) == {0, 1}
    assert len([p for p in suite_dir.iterdir() if (p / "config.json").is_file()]) == 1


@pytest.mark.parametrize("kind, expected", [("models", "Kingma & Welling"), ("datasets", "mnist"),
                                            ("metrics", "elbo")])
def test_list(kind, expected, capsys):
    assert main(["list", kind]) == 0
    assert expected in capsys.readouterr().out


def test_help_explains_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for word in ["run", "list", "leaderboard", "status", "examples"]:
        assert word in out
