"""Suite pictures from per-configuration statistics."""

import pandas as pd
from PIL import Image

from vaebench.report.stats import cell_stats
from vaebench.report.suite_plots import parse_params, suite_plots


def test_parse_params_keeps_numbers():
    assert parse_params("beta=4.0,gamma=10,kind=ema") == {"beta": 4.0, "gamma": 10.0}
    assert parse_params("") == {}


def test_one_picture_per_varied_hyperparameter_plus_rate_distortion_and_cost(tmp_path):
    rows = [{"dataset": "d", "model": m, "params": p, "seed": s, "run_id": f"{m}{p}{s}", "device": "cpu",
             "mig": 0.1 * b + 0.01 * s, "elbo_kl": 10.0 / b, "elbo_recon": 50.0 + b, "train_seconds": 3.0 + s}
            for m, p, b in [("beta_vae", "beta=1", 1), ("beta_vae", "beta=4", 4), ("vae", "", 1)]
            for s in range(2)]
    cells = cell_stats(pd.DataFrame(rows))
    written = suite_plots(cells, ["mig", "elbo_kl"], tmp_path)
    assert [name for _, name in written] == ["score_vs_beta.png", "rate_distortion.png", "score_vs_cost.png"]
    for _, name in written:
        assert Image.open(tmp_path / name).width > 300
