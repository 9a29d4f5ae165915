"""Damaged or missing results files, failed metrics, vanished run folders and concurrent runs:
one run's trouble is named and counted, and never takes down the rest."""

import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import vaebench.runner.train as train_module
from vaebench.cli import main
from vaebench.runner.lock import RunLock
from vaebench.runner.run import run_job
from vaebench.runner.store import RunStore
from vaebench.runner.suite import expand, load_suite

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

SUITE = """
name: rob
datasets: [{name: mnist, params: {train_size: 64}}]
models: [{name: vae, params: {latent_dim: 2}}]
seeds: [0, 1, 2]
train: {steps: 2, batch_size: 8, checkpoint_every: 1, log_every: 1}
metrics: [{name: recon_error, params: {num_examples: 16}}]
"""


def write_suite(folder, text=SUITE):
    path = folder / "s.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(suite, results, *extra):
    return main(["run", str(suite), "--results", str(results), "--data-root", str(DATA),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished three-run suite, trained once for the module; tests work on copies."""
    folder = tmp_path_factory.mktemp("finished")
    suite = write_suite(folder)
    assert run_cli(suite, folder / "r") == 0
    return folder


@pytest.fixture
def results(finished, tmp_path):
    shutil.copytree(finished / "r", tmp_path / "r")
    return tmp_path / "r" / "rob"


def run_dirs(suite_dir):
    return sorted(p for p in suite_dir.iterdir() if (p / "config.json").is_file())


DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "a list": lambda text: "[1, 2]\n",
    "wrong shape": lambda text: json.dumps({"status": "done"}),
}
FILES = ["metrics.json", "config.json", "failed.json"]


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_named_counted_and_skipped(results, capsys, name, damage):
    bad = run_dirs(results)[0]
    if name == "failed.json":  # make the run a failed one first
        (bad / "metrics.json").unlink()
        (bad / "failed.json").write_text(json.dumps({"status": "failed", "reason": "boom"}))
    target = bad / name
    target.write_text(DAMAGE[damage](target.read_text()))
    capsys.readouterr()
    assert main(["leaderboard", str(results)]) == 0
    out, err = capsys.readouterr()
    board = pd.read_csv(results / "leaderboard.csv")
    assert "Traceback" not in err
    if name == "failed.json":  # the failure stays a failure, its reason says the record is damaged
        assert board["n_done"].tolist() == [2] and board["n_failed"].tolist() == [1]
        assert main(["status", str(results)]) == 0
        out = capsys.readouterr().out
        assert "2 done, 1 failed" in out and "failure record is damaged" in out and str(target) in out
        return
    assert board["n_seeds"].tolist() == [2] and board["n_done"].tolist() == [2]  # the two intact runs
    assert "1 damaged run(s) skipped" in err and str(target) in err
    assert main(["status", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 done" in out and "1 damaged" in out and str(target) in out


def test_a_damaged_suite_json_still_counts_the_runs(results, capsys):
    (results / "suite.json").write_text('{"run_ids": ["a", ')
    assert main(["status", str(results)]) == 0
    out = capsys.readouterr().out
    assert "3 done" in out and str(results / "suite.json") in out and "not valid JSON" in out


def test_run_finishes_a_damaged_run_again_and_keeps_the_damaged_file(results, capsys):
    bad = run_dirs(results)[1]
    scores = json.loads((bad / "metrics.json").read_text())["scores"]
    trained = (bad / "trained.json").read_bytes()
    (bad / "metrics.json").write_text('{"scores": {"recon_')
    assert run_cli(write_suite(results.parent.parent), results.parent) == 0
    again = json.loads((bad / "metrics.json").read_text())
    assert again["scores"] == scores  # the summary is written again from the kept evaluations
    assert (bad / "trained.json").read_bytes() == trained  # and nothing was trained again
    (aside,) = bad.glob("metrics.json.damaged-*")
    assert aside.read_text() == '{"scores": {"recon_'
    assert "kept aside" in (bad / "events.log").read_text()


def test_a_metric_that_fails_at_run_time_is_named_counted_and_exits_1(tmp_path, capsys):
    text = SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]").replace(
        "metrics: [", f"metrics: [{{name: fid, params: {{extractor: inception, num_samples: 8, "
                     f"weights: {tmp_path / 'no-such-weights.pth'}}}}}, ")
    code = run_cli(write_suite(tmp_path, text), tmp_path / "r")
    out, err = capsys.readouterr()
    assert code == 1
    assert "metric fid failed" in out and "no-such-weights.pth" in out  # on the run's line
    assert "1 run(s) finished with a failed metric" in err
    board = pd.read_csv(tmp_path / "r" / "rob" / "leaderboard.csv")
    assert board["n_metric_errors"].tolist() == [1]
    assert board["recon_error_mean"].notna().all()  # the other metric is still there
    assert main(["status", str(tmp_path / "r" / "rob")]) == 0
    assert "metric fid failed" in capsys.readouterr().out


def test_a_run_folder_removed_while_training_still_finishes_complete(tmp_path, monkeypatch):
    (spec,) = expand(load_suite(write_suite(tmp_path, SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]"))))
    save = train_module.Trainer.save_checkpoint
    removed = []

    def save_then_lose_the_folder(self):
        if not removed:
            shutil.rmtree(self.run_dir)
            removed.append(True)
        save(self)

    monkeypatch.setattr(train_module.Trainer, "save_checkpoint", save_then_lose_the_folder)
    out = run_job(spec, tmp_path / "r", DATA, progress=False)
    store = RunStore(tmp_path / "r" / "rob")
    assert removed and out["status"] == "done"
    assert store.state(spec.run_id) == "done" and store.run_ids() == [spec.run_id]
    assert json.loads((store.run_dir(spec.run_id) / "config.json").read_text())["run_id"] == spec.run_id
    assert "config.json was gone" in (store.run_dir(spec.run_id) / "events.log").read_text()


def test_a_done_run_without_config_is_reported_damaged(results, capsys):
    bad = run_dirs(results)[2]
    (bad / "config.json").unlink()
    store = RunStore(results)
    assert bad.name in store.run_ids() and store.state(bad.name) == "damaged"
    assert main(["status", str(results)]) == 0
    out = capsys.readouterr().out
    assert "1 damaged" in out and f"{bad / 'config.json'}: missing" in out


def test_a_run_locked_by_another_process_is_skipped_and_said_so(tmp_path, capsys):
    suite = write_suite(tmp_path, SUITE.replace("seeds: [0, 1, 2]", "seeds: [0, 1]"))
    first, second = expand(load_suite(suite))
    other = RunLock(tmp_path / "r" / "rob" / first.run_id)
    assert other.acquire()  # as another `vaebench run` holds it (flock: per open file)
    try:
        assert run_cli(suite, tmp_path / "r") == 0
    finally:
        other.release()
    out, err = capsys.readouterr()
    store = RunStore(tmp_path / "r" / "rob")
    assert store.state(first.run_id) == "pending" and store.state(second.run_id) == "done"
    assert "another process is training it (pid" in out and "1 run(s) skipped" in err
    assert run_cli(suite, tmp_path / "r") == 0  # once released, it is trained
    assert store.state(first.run_id) == "done"
