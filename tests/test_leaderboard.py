"""Leaderboard aggregation on hand-written run results in the store's layout."""

import math

import pandas as pd
import pytest

from vaebench.errors import VaebenchError
from vaebench.report.leaderboard import format_table, leaderboard, params_label, write_csv
from vaebench.runner.store import RESULTS_SCHEMA_VERSION, write_json
from vaebench.runner.suite import RunSpec


def spec(model="beta_vae", beta=4, seed=0, steps=4):
    return RunSpec(run_id="", suite="s", dataset="dsprites", dataset_params={}, model=model,
                   model_params={"latent_dim": 10, "beta": beta}, seed=seed,
                   train={"steps": steps, "batch_size": 8, "lr": 1e-3}, metrics=[{"name": "elbo", "params": {}}],
                   grid_keys=("beta",))


def fake_run(root, run_id, scores=None, failed=False, **kw):
    s = spec(**kw)
    d = root / run_id
    write_json(d / "config.json", s.to_json() | {"run_id": run_id})
    if failed:
        write_json(d / "failed.json", {"reason": "boom"})
        return
    write_json(d / "metrics.json", {"schema_version": RESULTS_SCHEMA_VERSION, "scores": scores or {},
                                    "dataset": s.dataset, "model": s.model,
                                    "model_params": s.model_params, "seed": s.seed,
                                    "cost": {"train_seconds": 2.0, "images_per_s": 100.0, "eval_seconds": 1.0,
                                             "post_training_seconds": 0.5,
                                             "peak_memory_bytes": 2**20, "device": "cpu"}})


def test_mean_and_std_over_seeds_one_row_per_config(tmp_path):
    fake_run(tmp_path, "a0", {"elbo": -100.0, "mig": None}, seed=0)
    fake_run(tmp_path, "a1", {"elbo": -110.0, "mig": None}, seed=1)
    fake_run(tmp_path, "a2", failed=True, seed=2)
    fake_run(tmp_path, "b0", {"elbo": -90.0, "mig": None}, beta=1)
    board = leaderboard(tmp_path)
    assert len(board) == 2
    row = board[board["params"] == "beta=4"].iloc[0]
    assert row["elbo_mean"] == pytest.approx(-105.0)
    assert row["elbo_std"] == pytest.approx(math.sqrt(50.0))  # sample std over seeds
    assert (row["n_seeds"], row["n_done"], row["n_failed"], row["elbo_n"]) == (3, 2, 1, 2)
    assert math.isnan(row["mig_mean"]) and row["mig_n"] == 0  # not applicable stays empty, not 0
    assert row["peak_memory_mib_mean"] == pytest.approx(1.0)
    assert row["post_training_seconds_mean"] == pytest.approx(0.5)
    assert row["eval_seconds_mean"] == pytest.approx(1.0)
    best = leaderboard(tmp_path, sort_by="elbo").iloc[0]
    assert best["params"] == "beta=1"  # higher ELBO is better


def test_two_versions_of_a_config_are_never_pooled(tmp_path):
    """The same seed at train.steps=4 and =8: two rows of one seed each, told apart by a column."""
    fake_run(tmp_path, "v4", {"elbo": -100.0}, steps=4)
    fake_run(tmp_path, "v8", {"elbo": -80.0}, steps=8)
    board = leaderboard(tmp_path)
    assert len(board) == 2
    assert board["n_seeds"].tolist() == [1, 1]
    assert sorted(board["train.steps"].tolist()) == [4, 8]
    assert sorted(board["elbo_mean"].tolist()) == [-100.0, -80.0]
    # the suite as it stands: only its runs
    assert leaderboard(tmp_path, run_ids=["v8"])["elbo_mean"].tolist() == [-80.0]


def test_a_configuration_whose_every_seed_failed_keeps_its_row(tmp_path):
    fake_run(tmp_path, "ok", {"elbo": -100.0}, beta=1)
    fake_run(tmp_path, "f0", failed=True, beta=4, seed=0)
    fake_run(tmp_path, "f1", failed=True, beta=4, seed=1)
    board = leaderboard(tmp_path)
    row = board[board["params"] == "beta=4"].iloc[0]
    assert (row["n_done"], row["n_failed"], row["elbo_n"]) == (0, 2, 0)
    # a board of failures only still prints (no cost columns to show)
    only_failed = tmp_path / "only_failed"
    fake_run(only_failed, "f0", failed=True)
    assert "n_failed" in format_table(leaderboard(only_failed))
    assert math.isnan(row["elbo_mean"])
    write_csv(board, tmp_path / "lb.csv")
    assert len(pd.read_csv(tmp_path / "lb.csv")) == 2


def test_a_score_missing_for_some_seeds_is_counted_and_flagged(tmp_path):
    fake_run(tmp_path, "s0", {"elbo": -1.0, "mig": 0.1}, seed=0)
    fake_run(tmp_path, "s1", {"elbo": -1.0, "mig": 0.3}, seed=1)
    fake_run(tmp_path, "s2", {"elbo": -1.0, "mig": None}, seed=2)
    board = leaderboard(tmp_path)
    row = board.iloc[0]
    assert row["mig_mean"] == pytest.approx(0.2)
    assert (row["mig_n"], row["elbo_n"], row["n_seeds"]) == (2, 3, 3)
    text = format_table(board)
    assert "[2/3]" in text and "rests on k of the row's n seeds" in text
    assert "-1 [" not in text  # a cell on every seed carries no mark


def test_csv_round_trip_and_unknown_sort_column(tmp_path):
    fake_run(tmp_path, "a0", {"elbo": -100.0})
    write_csv(leaderboard(tmp_path), tmp_path / "lb.csv")
    assert pd.read_csv(tmp_path / "lb.csv")["elbo_mean"].tolist() == [-100.0]
    with pytest.raises(VaebenchError, match="choose one of.*elbo"):
        leaderboard(tmp_path, sort_by="fidd")


def test_results_of_an_older_schema_are_left_out_with_a_message(tmp_path):
    fake_run(tmp_path, "new", {"elbo": -100.0})
    old = tmp_path / "old"
    write_json(old / "config.json", {k: v for k, v in spec(beta=2).to_json().items() if k != "config_version"})
    write_json(old / "metrics.json", {"schema_version": 1, "scores": {"elbo": -5.0}, "dataset": "dsprites",
                                      "model": "beta_vae", "model_params": {}, "seed": 0,
                                      "cost": {"device": "cpu", "train_seconds": 1, "images_per_s": 1,
                                               "eval_seconds": 1, "peak_memory_bytes": 1}})
    board = leaderboard(tmp_path)
    assert board["params"].tolist() == ["beta=4"]
    text = format_table(board)
    assert "1 run folder(s)" in text and "older vaebench" in text and "old" in text


def test_params_label_only_names_what_the_suite_set():
    assert params_label({"latent_dim": 10, "beta": 4.0, "gamma": 2}, ["gamma", "beta"]) == "beta=4.0,gamma=2"
    assert params_label({"latent_dim": 10}, []) == ""
