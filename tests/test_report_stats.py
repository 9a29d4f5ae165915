"""Statistics over seeds: intervals, paired comparisons, Holm, ranks, on hand-made run tables."""

import numpy as np
import pandas as pd
import pytest

from vaebench.errors import VaebenchError
from vaebench.report.stats import (bootstrap_ci, cell_stats, holm, mean_ranks, paired_comparisons,
                                   paired_test, resolve_reference)


def runs_table(values: dict[tuple[str, str], dict[int, float]], score="mig") -> pd.DataFrame:
    rows = [{"dataset": "d", "model": m, "params": p, "seed": s, "run_id": f"{m}{p}{s}", "device": "cpu",
             score: v} for (m, p), by_seed in values.items() for s, v in by_seed.items()]
    return pd.DataFrame(rows)


def test_cell_stats_mean_std_n_and_a_ci_inside_the_range():
    runs = runs_table({("vae", ""): {0: 0.1, 1: 0.2, 2: 0.3, 3: np.nan}, ("beta_vae", "beta=4"): {0: 0.5}})
    cells = cell_stats(runs, ["mig"]).set_index("label")
    vae = cells.loc["vae"]
    assert vae["mig_mean"] == pytest.approx(0.2) and vae["mig_std"] == pytest.approx(0.1)
    assert vae["mig_n"] == 3 and vae["n_seeds"] == 4
    assert 0.1 <= vae["mig_ci_low"] < 0.2 < vae["mig_ci_high"] <= 0.3
    one = cells.loc["beta_vae beta=4"]
    assert one["mig_n"] == 1 and np.isnan(one["mig_ci_low"]) and np.isnan(one["mig_std"])


def test_bootstrap_is_seeded_and_constant_data_has_a_point_interval():
    x = [1.0, 2.0, 4.0, 8.0]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(.03, 2*0.03), max(.06, 1*0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])


def test_wilcoxon_from_six_pairs_else_paired_bootstrap():
    p, test = paired_test(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    assert test == "wilcoxon" and p == pytest.approx(2 / 2**6)  # exact: all six signs positive
    p, test = paired_test(np.array([0.1, 0.2, 0.3]))
    # no resample of all-positive diffs reaches 0; the floor is the exact sign-flip minimum 2/2**3
    assert test == "paired bootstrap" and p == pytest.approx(0.25)
    p, _ = paired_test(np.array([-1.0, 1.0, -0.5, 0.5]))
    assert p > 0.5


def test_paired_comparisons_use_shared_seeds_and_direction():
    runs = runs_table({("vae", ""): {s: 0.1 for s in range(6)},
                       ("beta_vae", "beta=4"): {s: 0.3 + 0.01 * s for s in range(6)},
                       ("cvae", ""): {0: 0.0, 7: 0.9}}, score="mig")
    table = paired_comparisons(runs, "mig", reference="vae").set_index("label")
    beta = table.loc["beta_vae beta=4"]
    assert beta["n_pairs"] == 6 and beta["mean_diff"] == pytest.approx(0.225)
    # Holm over one comparison: cvae's single pair has no test
    assert beta["test"] == "wilcoxon" and beta["p_holm"] == pytest.approx(2 / 2**6)
    assert beta["verdict"] == "better"
    cvae = table.loc["cvae"]
    assert cvae["n_pairs"] == 1 and cvae["mean_diff"] == pytest.approx(-0.1)  # seed 7 unpaired
    assert cvae["test"] == "none" and np.isnan(cvae["p_holm"]) and cvae["verdict"] == "no evidence"
    # lower is better for recon_error: a larger error is worse
    runs = runs.rename(columns={"mig": "recon_error"})
    assert paired_comparisons(runs, "recon_error", "vae").set_index("label").loc["beta_vae beta=4", "verdict"] == "worse"


def test_reference_by_model_label_and_errors():
    runs = runs_table({("vae", ""): {0: 1.0}, ("beta_vae", "beta=1"): {0: 1.0}, ("beta_vae", "beta=4"): {0: 1.0}})
    assert resolve_reference(runs, None) == "beta_vae beta=1"  # sorted configurations, first one
    assert resolve_reference(runs, None, order=["x", "vae0", "beta_vaebeta=10"]) == "vae"  # suite order
    assert resolve_reference(runs, "vae") == "vae"
    with pytest.raises(VaebenchError, match="2 configurations.*beta=4"):
        resolve_reference(runs, "beta_vae")
    with pytest.raises(VaebenchError, match="no such configuration"):
        resolve_reference(runs, "vea")
    with pytest.raises(VaebenchError, match="no such score"):
        paired_comparisons(runs, "migg")


def test_mean_rank_follows_each_scores_direction():
    runs = runs_table({("a", ""): {0: 0.9}, ("b", ""): {0: 0.5}, ("c", ""): {0: 0.1}})
    runs["recon_error"] = [30.0, 10.0, 20.0]  # lower is better: b, c, a
    ranks = mean_ranks(cell_stats(runs), ["mig", "recon_error"]).set_index("label")["mean_rank"]
    assert ranks.to_dict() == {"b": 1.5, "a": 2.0, "c": 2.5}
