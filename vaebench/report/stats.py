"""Statistics over seeds on top of `run_table()`: per-cell confidence intervals, paired
comparisons against a reference configuration, mean ranks.

A *configuration* is one resolved config without its seed: the `configuration_id` column of
`run_table()` where it exists, else (dataset, model, params). Every interval is a seeded
percentile bootstrap (`scipy.stats.bootstrap`); with one seed there is no interval (NaN).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from vaebench.errors import VaebenchError
from vaebench.report.leaderboard import COST_COLUMNS, KEYS, lower_is_better

CONFIDENCE = 0.95
N_RESAMPLES = 2000
# The exact two-sided Wilcoxon signed-rank p-value cannot go below 2 / 2**n: with fewer than 6
# pairs it can never reach 0.05, so smaller samples get the paired bootstrap instead.
MIN_WILCOXON_PAIRS = 6
NOT_SCORES = set(KEYS) | {"configuration_id", "seed", "run_id", "device"}


def config_keys(runs: pd.DataFrame) -> list[str]:
    """The columns naming one configuration."""
    return ["configuration_id"] if "configuration_id" in runs.columns else list(KEYS)


def score_columns(runs: pd.DataFrame, with_cost: bool = False) -> list[str]:
    cols = [c for c in runs.columns if c not in NOT_SCORES and pd.api.types.is_numeric_dtype(runs[c])]
    return cols if with_cost else [c for c in cols if c not in COST_COLUMNS]


def config_label(model: str, params: str) -> str:
    """"beta_vae beta=4.0", "vae" (defaults)."""
    return f"{model} {params}" if isinstance(params, str) and params else model


def bootstrap_ci(values, seed: int = 0, confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of `values` (NaNs dropped); (nan, nan) below 2 values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (np.nan, np.nan)
    if np.all(x == x[0]):  # every resample has the same mean; scipy would warn and return NaN
        return (float(x[0]), float(x[0]))
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def cell_stats(runs: pd.DataFrame, scores: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per configuration: dataset, model, params, label, n_seeds, then per score
    `<s>_mean`, `<s>_std` (sample std), `<s>_n` (seeds with a value), `<s>_ci_low`, `<s>_ci_high`."""
    if runs.empty:
        return pd.DataFrame(columns=KEYS + ["label", "n_seeds"])
    scores = score_columns(runs, with_cost=True) if scores is None else scores
    keys = config_keys(runs)
    rows = []
    for _, g in runs.groupby(keys, sort=True, dropna=False):
        first = g.iloc[0]
        row = {k: first[k] for k in dict.fromkeys(keys + KEYS)}
        row["label"] = config_label(first["model"], first["params"])
        row["n_seeds"] = len(g)
        row["run_ids"] = list(g.sort_values("seed")["run_id"])
        for s in scores:
            v = g[s].to_numpy(dtype=float)
            ok = v[np.isfinite(v)]
            row[f"{s}_mean"] = ok.mean() if len(ok) else np.nan
            row[f"{s}_std"] = ok.std(ddof=1) if len(ok) > 1 else np.nan
            row[f"{s}_n"] = len(ok)
            row[f"{s}_ci_low"], row[f"{s}_ci_high"] = bootstrap_ci(ok, seed)
        rows.append(row)
    return pd.DataFrame(rows)


def _configs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: its keys, dataset, label."""
    keys = config_keys(runs)
    first = runs.groupby(keys, sort=True, dropna=False).first().reset_index()
    first["label"] = [config_label(m, p) for m, p in zip(first["model"], first["params"])]
    return first


def resolve_reference(runs: pd.DataFrame, reference: str | None, order: list[str] | None = None) -> str:
    """The label of the reference configuration: `reference` may be a label ("beta_vae beta=4.0"),
    a model with one configuration ("vae"), or a configuration_id; default: the configuration of the first
    run in `order` (run ids in the suite's order, so the suite's first model), else the first label."""
    configs = _configs(runs)
    labels = list(dict.fromkeys(configs["label"]))
    if reference is None:
        first = [rid for rid in (order or []) if rid in set(runs["run_id"])]
        if first:
            row = runs[runs["run_id"] == first[0]].iloc[0]
            return config_label(row["model"], row["params"])
        return labels[0]
    if reference in labels:
        return reference
    if "configuration_id" in configs and reference in set(configs["configuration_id"]):
        return configs.loc[configs["configuration_id"] == reference, "label"].iloc[0]
    of_model = list(dict.fromkeys(configs.loc[configs["model"] == reference, "label"]))
    if len(of_model) == 1:
        return of_model[0]
    if len(of_model) > 1:
        raise VaebenchError(f"--reference {reference!r}: the suite has {len(of_model)} configurations "
                            f"of that model; name one: {', '.join(repr(x) for x in of_model)}")
    raise VaebenchError(f"--reference {reference!r}: no such configuration; choose one of "
                        f"{', '.join(repr(x) for x in labels)}")


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (scipy has only Benjamini-Hochberg/Yekutieli);
    NaNs stay NaN and do not count as comparisons."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, (m - i) * p[idx])
        out[idx] = min(1.0, running)
    return out


def paired_test(diff: np.ndarray, seed: int = 0) -> tuple[float, str]:
    """(two-sided p-value, test name) for paired differences `diff` (n,)."""
    n = len(diff)
    if n < 2 or np.all(diff == 0):
        return (np.nan if n < 2 else 1.0), ("none" if n < 2 else "all equal")
    if n >= MIN_WILCOXON_PAIRS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ties/zeros: scipy falls back to the normal approximation
            return float(sps.wilcoxon(diff).pvalue), "wilcoxon"
    res = sps.bootstrap((diff,), np.mean, n_resamples=N_RESAMPLES, method="percentile",
                        random_state=np.random.default_rng(seed))
    dist = res.bootstrap_distribution
    # The smallest two-sided level at which the percentile CI of the mean difference excludes 0,
    # floored at 2 / 2**n: with a handful of pairs every resample can share a sign, and no exact
    # paired test (sign flips) can claim more than that from n pairs.
    p = max(2 * min(np.mean(dist <= 0), np.mean(dist >= 0)), 2 / 2**n)
    return float(min(1.0, p)), "paired bootstrap"


def paired_comparisons(runs: pd.DataFrame, score: str, reference: str | None = None,
                       seed: int = 0, order: list[str] | None = None) -> pd.DataFrame:
    """Every configuration against the reference, per dataset, over the seeds both have a value for.

    Columns: dataset, label, reference, n_pairs, mean_diff (config - reference), ci_low, ci_high,
    test, p_value, p_holm (Holm over this score's comparisons), verdict ("better" / "worse" than
    the reference at 5 % after Holm, in the score's direction, else "no evidence").
    """
    if score not in runs.columns:
        known = ", ".join(score_columns(runs))
        raise VaebenchError(f"--score {score!r}: no such score in these results; choose one of {known}")
    ref_label = resolve_reference(runs, reference, order)
    configs = _configs(runs)
    keys = config_keys(runs)
    labelled = runs.merge(configs[keys + ["label"]], on=keys, how="left")
    rows = []
    for dataset, d in labelled.groupby("dataset", sort=True):
        ref = d[d["label"] == ref_label].set_index("seed")[score]
        if ref.empty:
            continue
        for label in dict.fromkeys(d["label"]):
            if label == ref_label:
                continue
            other = d[d["label"] == label].set_index("seed")[score]
            both = pd.concat([other, ref], axis=1, keys=["x", "r"], join="inner").dropna()
            diff = (both["x"] - both["r"]).to_numpy(dtype=float)
            p, test = paired_test(diff, seed)
            lo, hi = bootstrap_ci(diff, seed)
            rows.append({"dataset": dataset, "label": label, "reference": ref_label,
                         "n_pairs": len(diff), "mean_diff": diff.mean() if len(diff) else np.nan,
                         "ci_low": lo, "ci_high": hi, "test": test, "p_value": p})
    out = pd.DataFrame(rows, columns=["dataset", "label", "reference", "n_pairs", "mean_diff",
                                      "ci_low", "ci_high", "test", "p_value"])
    out["p_holm"] = holm(out["p_value"]) if len(out) else []
    sign = -1.0 if lower_is_better(score) else 1.0
    out["verdict"] = ["no evidence" if not (ph < 0.05) else "better" if sign * md > 0 else "worse"
                      for ph, md in zip(out["p_holm"], out["mean_diff"])]
    return out


def mean_ranks(cells: pd.DataFrame, scores: list[str]) -> pd.DataFrame:
    """Mean rank (1 = best) of each configuration over the chosen scores, ranking within each
    dataset by the score's mean in its direction. Columns: label, mean_rank, n_ranked."""
    ranks = []
    for _, d in cells.groupby("dataset", sort=True):
        for s in scores:
            col = f"{s}_mean"
            if col not in d or d[col].notna().sum() < 2:
                continue
            r = d[col].rank(ascending=lower_is_better(s), method="average")
            ranks.append(pd.DataFrame({"dataset": d["dataset"], "label": d["label"], "rank": r}).dropna())
    if not ranks:
        return pd.DataFrame(columns=["dataset", "label", "mean_rank", "n_ranked"])
    allr = pd.concat(ranks)
    out = allr.groupby(["dataset", "label"], sort=False)["rank"].agg(["mean", "size"]).reset_index()
    out.columns = ["dataset", "label", "mean_rank", "n_ranked"]
    return out.sort_values(["dataset", "mean_rank"], kind="stable").reset_index(drop=True)


def format_comparisons(table: pd.DataFrame, score: str) -> str:
    if table.empty:
        return f"(no configuration shares seeds with the reference for {score})"
    direction = "lower" if lower_is_better(score) else "higher"
    lines = [f"{score} ({direction} is better): each configuration minus {table['reference'].iloc[0]}, "
             f"paired over shared seeds; Holm-adjusted over {int(table['p_value'].notna().sum())} "
             f"comparison(s)"]
    view = pd.DataFrame({
        "dataset": table["dataset"], "configuration": table["label"], "pairs": table["n_pairs"],
        "mean diff": [f"{v:+.4g}" for v in table["mean_diff"]],
        "95% CI": ["-" if np.isnan(lo) else f"[{lo:+.3g}, {hi:+.3g}]"
                   for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "test": table["test"], "p": [f"{p:.3g}" for p in table["p_value"]],
        "p (Holm)": [f"{p:.3g}" for p in table["p_holm"]],
        "verdict": table["verdict"]})
    lines.append(view.to_string(index=False))
    return "\n".join(lines)
