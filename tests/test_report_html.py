"""The HTML report of a tiny finished suite: files, numbers on the page, offline-only links."""

import json
import re

import pandas as pd
import pytest

from vaebench.cli import main
from vaebench.report.baselines import BASELINES_FILE
from vaebench.report.leaderboard import run_table
from vaebench.report.stats import cell_stats


def test_run_writes_a_self_contained_report(tiny_suite):
    index = (tiny_suite / "report" / "index.html").read_text()
    runs = run_table(tiny_suite)
    assert len(runs) == 4
    # every run has a page, linked from the leaderboard
    for rid in runs["run_id"]:
        assert f'href="runs/{rid}.html"' in index
        page = (tiny_suite / "report" / "runs" / f"{rid}.html").read_text()
        assert rid in page and "traversal.png" in page and "training_curves.png" in page
    # the mean shown for vae's MIG is the mean over its seeds
    cells = cell_stats(runs, ["mig"]).set_index("model")
    assert f"{cells.loc['vae', 'mig_mean']:.4g}" in index
    # the failures and their reason, the baselines, the comparisons against the first model
    assert index.count("non-finite loss") == 2
    assert "baseline: true factors" in index and "baseline: random projection" in index
    assert f"Paired comparisons against {cells.loc['vae', 'label']}" in index  # the suite's first model
    # nothing from the network: every src/href is relative and present on disk
    for ref in re.findall(r'(?:src|href)="([^"]+)"', index):
        assert not re.match(r"[a-z]+://", ref), ref
        assert (tiny_suite / "report" / ref).is_file(), ref


def test_baselines_are_cached_and_bracket_the_floor(tiny_suite):
    cached = json.loads((tiny_suite / BASELINES_FILE).read_text())
    (rows,) = cached.values()
    mig = pd.DataFrame(rows).groupby("model")["mig"].mean()
    # the true factors are the ceiling; untrained and random codes sit far below
    assert mig["baseline: true factors"] > 0.3
    assert mig["baseline: random projection"] < 0.15 and mig["baseline: untrained encoder"] < 0.15
    stamp = (tiny_suite / BASELINES_FILE).stat().st_mtime_ns
    out = tiny_suite / "report2"
    assert main(["report", str(tiny_suite), "-o", str(out), "--score", "mig"]) == 0
    assert (tiny_suite / BASELINES_FILE).stat().st_mtime_ns == stamp  # reused, not recomputed
    index = (out / "index.html").read_text()
    assert "<th data-type=\"number\">mig" in index and "elbo_recon" not in index


def test_compare_prints_the_paired_table(tiny_suite, capsys):
    assert main(["compare", str(tiny_suite), "--reference", "beta_vae", "--score", "mig"]) == 0
    out = capsys.readouterr().out
    assert "each configuration minus beta_vae beta=4.0,latent_dim=4" in out and "paired bootstrap" in out
    assert main(["compare", str(tiny_suite), "--reference", "vea", "--score", "mig"]) == 2
    assert "no such configuration" in capsys.readouterr().err


def test_a_suite_with_only_failures_still_gets_a_report(tmp_path):
    from vaebench.report.html import write_report
    from vaebench.runner.store import write_json

    from vaebench.runner.suite import RunSpec

    cfg = RunSpec(run_id="r0", suite="s", dataset="mnist", dataset_params={}, model="vae",
                  model_params={"beta": 4}, seed=0, train={"steps": 1}, metrics=[], grid_keys=("beta",))
    write_json(tmp_path / "r0" / "config.json", cfg.to_json())
    write_json(tmp_path / "r0" / "failed.json", {"reason": "out of memory <on the GPU>"})
    index = write_report(tmp_path, data_root=tmp_path).read_text()
    assert "0 finished run(s)" in index and "1 failed run(s)" in index
    assert "out of memory &lt;on the GPU&gt;" in index  # escaped, not markup
