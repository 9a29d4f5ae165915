"""Train once, evaluate any time: the identity is training only, each evaluation is its own record,
codes are kept, `evaluate` never trains."""

import json
import textwrap

import numpy as np
import pytest

from vaebench.cli import main
from vaebench.runner.store import RunStore

SUITE = """
name: stages
datasets: [{name: dsprites_procedural, params: {train_size: 2000}}]
models: [vae]
seeds: [0]
train: {steps: 3, batch_size: 8, lr: 1.0e-3, checkpoint_every: 3, log_every: 3}
metrics: [{name: mig, params: {num_train: 300, batch_size: 50}}]
"""


def cli(tmp_path, command, *extra, text=SUITE):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return main([command, str(path), "--results", str(tmp_path / "r"), "--no-progress", *extra])


def only_run(tmp_path):
    store = RunStore(tmp_path / "r" / "stages")
    (run_id,) = store.run_ids()
    return store, run_id


def test_adding_a_metric_trains_nothing_and_computes_that_metric_alone(tmp_path):
    assert cli(tmp_path, "run") == 0
    store, run_id = only_run(tmp_path)
    run_dir = store.run_dir(run_id)
    training_files = ["checkpoint.pt", "train_log.csv", "model.pt", "trained.json"]
    stamp = {f: ((run_dir / f).stat().st_mtime_ns, (run_dir / f).read_bytes()) for f in training_files}
    first = sorted(p.name for p in (run_dir / "evals").iterdir())
    assert len(first) == 1 and first[0].startswith("mig-")

    metrics = ["--set", "metrics=[{name: mig, params: {num_train: 300, batch_size: 50}}, "
                        "{name: modularity, params: {num_train: 300, num_test: 100, batch_size: 50}}]"]
    assert cli(tmp_path, "evaluate", *metrics) == 0
    # nothing of the training stage was written again: the trainer never ran
    assert stamp == {f: ((run_dir / f).stat().st_mtime_ns, (run_dir / f).read_bytes()) for f in training_files}
    assert store.run_ids() == [run_id]  # same run: the metrics are not part of its identity
    evals = sorted(p.name for p in (store.run_dir(run_id) / "evals").iterdir())
    assert len(evals) == 2 and first[0] in evals and any(e.startswith("modularity-") for e in evals)
    summary = json.loads((store.run_dir(run_id) / "metrics.json").read_text())
    assert {"mig", "modularity"} <= set(summary["scores"])
    # `run` too trains nothing more now
    assert cli(tmp_path, "run", *metrics) == 0
    assert stamp == {f: ((run_dir / f).stat().st_mtime_ns, (run_dir / f).read_bytes()) for f in training_files}


def test_array_metrics_are_rescored_from_the_kept_codes_without_the_model(tmp_path):
    assert cli(tmp_path, "run") == 0
    store, run_id = only_run(tmp_path)
    codes = store.codes(run_id)
    assert codes["codes"].dtype == np.float32 and codes["codes"].shape[1] == 10
    assert len(codes["rows"]) > 0 and codes["test_codes"].shape == (10_000, 10)
    mig_before = json.loads((store.run_dir(run_id) / "metrics.json").read_text())["scores"]["mig"]

    # The record is gone (a fixed metric, say) and model.pt is unreadable: the metric is re-scored
    # from codes.npz alone (loading the model would fail the metric).
    model_pt = store.run_dir(run_id) / "model.pt"
    weights = model_pt.read_bytes()
    model_pt.write_bytes(b"not a model")
    for rec in (store.run_dir(run_id) / "evals").iterdir():
        rec.unlink()
    assert cli(tmp_path, "evaluate") == 0
    summary = json.loads((store.run_dir(run_id) / "metrics.json").read_text())
    assert summary["scores"]["mig"] == mig_before
    # other params draw other points: the model is loaded for the new rows (it fails when unreadable)
    more = SUITE.replace("num_train: 300", "num_train: 600")
    cli(tmp_path, "evaluate", text=more)
    assert "mig" not in json.loads((store.run_dir(run_id) / "metrics.json").read_text())["scores"]
    model_pt.write_bytes(weights)
    assert cli(tmp_path, "evaluate", text=more) == 0
    assert len(store.codes(run_id)["rows"]) > len(codes["rows"])


def test_repeats_report_the_estimators_own_std(tmp_path):
    text = SUITE.replace("metrics: [{name: mig, params: {num_train: 300, batch_size: 50}}]",
                         "metrics: [{name: mig, params: {num_train: 300, batch_size: 50}, repeats: 3}]")
    assert cli(tmp_path, "run", text=text) == 0
    store, run_id = only_run(tmp_path)
    summary = json.loads((store.run_dir(run_id) / "metrics.json").read_text())
    recs = [json.loads(p.read_text()) for p in (store.run_dir(run_id) / "evals").iterdir()]
    assert sorted(r["eval_seed"] for r in recs) == [0, 1, 2]
    values = [r["scores"]["mig"] for r in recs]
    assert summary["scores"]["mig"] == pytest.approx(np.mean(values))
    assert summary["scores"]["mig_eval_std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["metrics"]["mig"]["repeats"] == 3


def test_evaluate_never_trains_a_run_that_is_not_trained(tmp_path, capsys):
    assert cli(tmp_path, "evaluate") == 0
    assert "not trained yet" in capsys.readouterr().out
    assert not list((tmp_path / "r" / "stages").glob("*/checkpoint.pt"))  # no training started


def test_evaluate_metrics_must_be_in_the_suite(tmp_path, capsys):
    assert cli(tmp_path, "evaluate", "--metrics", "sap") == 2
    assert "not in" in capsys.readouterr().err
