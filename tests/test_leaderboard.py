"""Leaderboard aggregation on hand-written run results."""

import math

import pandas as pd
import pytest

from vaebench.errors import VaebenchError
from vaebench.report.leaderboard import leaderboard, params_label, write_csv
from vaebench.runner.store import write_json


def fake_run(root, run_id, model, beta, seed, elbo, failed=False):
    d = root / run_id
    cfg = {"dataset": "dsprites", "model": model, "model_params": {"latent_dim": 10, "beta": beta},
           "seed": seed, "grid_keys": ["beta"]}
    write_json(d / "config.json", cfg)
    if failed:
        write_json(d / "failed.json", {"reason": "boom"})
        return
    write_json(d / "metrics.json", {**cfg, "scores": {"elbo": elbo, "mig": None},
                                    "cost": {"train_seconds": 2.0, "images_per_s": 100.0, "eval_seconds": 1.0,
                                             "peak_memory_bytes": 2**20, "device": "cpu"}})


def test_mean_and_std_over_seeds_one_row_per_config(tmp_path):
    fake_run(tmp_path, "a0", "beta_vae", 4, 0, -100.0)
    fake_run(tmp_path, "a1", "beta_vae", 4, 1, -110.0)
    fake_run(tmp_path, "a2", "beta_vae", 4, 2, 0.0, failed=True)
    fake_run(tmp_path, "b0", "beta_vae", 1, 0, -90.0)
    board = leaderboard(tmp_path)
    assert len(board) == 2
    row = board[board["params"] == "beta=4"].iloc[0]
    assert row["elbo_mean"] == pytest.approx(-105.0)
    assert row["elbo_std"] == pytest.approx(math.sqrt(50.0))  # sample std over seeds
    assert row["n_seeds"] == 2 and row["n_failed"] == 1
    assert math.isnan(row["mig_mean"])  # not applicable stays empty, not 0
    assert row["peak_memory_mb_mean"] == pytest.approx(1.0)
    best = leaderboard(tmp_path, sort_by="elbo").iloc[0]
    assert best["params"] == "beta=1"  # higher ELBO is better


def test_csv_round_trip_and_unknown_sort_column(tmp_path):
    fake_run(tmp_path, "a0", "vae", 1, 0, -100.0)
    write_csv(leaderboard(tmp_path), tmp_path / "lb.csv")
    assert pd.read_csv(tmp_path / "lb.csv")["elbo_mean"].tolist() == [-100.0]
    with pytest.raises(VaebenchError, match="choose one of.*elbo"):
        leaderboard(tmp_path, sort_by="fidd")


def test_params_label_only_names_what_the_suite_set():
    assert params_label({"latent_dim": 10, "beta": 4.0, "gamma": 2}, ["gamma", "beta"]) == "beta=4.0,gamma=2"
    assert params_label({"latent_dim": 10}, []) == ""
