"""Suite YAML: typed validation and expansion into runs.

A suite is models x (hyperparameter grid points) x datasets x seeds. Each resolved run gets a
stable id from a hash of everything that changes its trained weights (never the metrics), so
re-running a suite skips trainings that are done, adding a metric retrains nothing, and two
different trainings never share a folder. Each evaluation is keyed on its own by (metric, its
params, evaluation seed).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator,
                      model_validator)

from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS, METRICS, MODELS
from vaebench.runner.safe_yaml import load_bounded

# Bump when the meaning of a resolved config changes, so old results are not mixed with new.
# 2: FactorVAE on the whole batch, disentanglement_lib's conv encoder, binarised MNIST, evaluation
#    seed, one ELBO of log p(x) for every model; the identity is training only.
CONFIG_VERSION = 2
DEFAULT_MAX_RUNS = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _name_shorthand(value):
    """Allow `- vae` as a shorthand for `- {name: vae}`."""
    return {"name": value} if isinstance(value, str) else value


class DatasetSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("grid")
    @classmethod
    def _nonempty_grid(cls, grid):
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid for {key!r} is empty; give at least one value")
        return grid


class MetricSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    # R > 1: evaluate with R evaluation seeds (eval_seed, eval_seed + 1, ...) and report the mean
    # and the estimator's own std as <score>_eval_std.
    repeats: int = Field(1, ge=1, le=1000)


class TrainSpec(_Strict):
    # strict: `steps: true` is a mistake, not one step
    steps: int = Field(1000, gt=0, strict=True)
    batch_size: int = Field(64, gt=0, strict=True)
    optimizer: Literal["adam"] = "adam"
    lr: float = Field(1e-4, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    # Bookkeeping only: not part of a run's identity.
    checkpoint_every: int = Field(500, gt=0, strict=True)
    log_every: int = Field(50, gt=0, strict=True)


# numpy's seed range; strict, so `seeds: [true]` is refused rather than read as seed 1
Seed = Annotated[int, Field(ge=0, lt=2**32, strict=True)]


class Suite(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    datasets: list[DatasetSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    train: TrainSpec = Field(default_factory=TrainSpec)
    metrics: list[MetricSpec] = Field(default_factory=lambda: [MetricSpec(name="elbo"),
                                                               MetricSpec(name="recon_error")])
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    # Seeds the metrics' sampling, independently of the training seed (disentanglement_lib's
    # evaluation.random_seed), so the std over training seeds is not mixed with estimator noise.
    eval_seed: int = Field(0, ge=0, lt=2**32)
    # Keep each run's code table (codes.npz) so array metrics are re-scored without the model.
    keep_codes: bool = True
    # Train up to this many runs of one configuration (differing in seed) as one batched
    # computation (vaebench/runner/pack.py); 1: every run alone. Not part of a run's identity:
    # a packed run equals its separate training within float rounding.
    pack: int = Field(1, ge=1, le=64, strict=True)
    results_dir: str = "results"
    data_root: str | None = None
    # A guard against typos that expand to millions of runs; raise it here or with --max-runs.
    max_runs: int = Field(DEFAULT_MAX_RUNS, ge=1)

    @field_validator("metrics")
    @classmethod
    def _metrics_once(cls, metrics):
        names = [m.name for m in metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice; list each metric once (its "
                             f"params in one entry)")
        return metrics

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data):
        if isinstance(data, dict):
            for key in ("datasets", "models", "metrics"):
                if isinstance(data.get(key), list):
                    data[key] = [_name_shorthand(v) for v in data[key]]
        return data


@dataclass(frozen=True)
class RunSpec:
    """One fully resolved training run; picklable, so any executor can ship it."""

    run_id: str
    suite: str
    dataset: str
    dataset_params: dict
    model: str
    model_params: dict  # every hyperparameter, defaults filled in
    seed: int
    train: dict
    metrics: list  # [{"name": ..., "params": {...}}]
    device: str = "auto"
    grid_keys: tuple = field(default=())  # hyperparameters that vary in this suite (for tables)
    eval_seed: int = 0
    keep_codes: bool = True
    pack: int = 1  # how many runs of this configuration may train together (not identity)

    def identity(self) -> dict:
        """What determines the trained weights: not the metrics, nor where or how often it
        checkpoints."""
        train = {k: v for k, v in self.train.items() if k not in ("checkpoint_every", "log_every")}
        return {"version": CONFIG_VERSION, "dataset": self.dataset, "dataset_params": self.dataset_params,
                "model": self.model, "model_params": self.model_params, "seed": self.seed,
                "train": train}

    def evaluations(self) -> list[tuple[str, dict, int]]:
        """(metric, params, evaluation seed) of every evaluation the suite asks of this run."""
        return [(m["name"], m["params"], self.eval_seed + r)
                for m in self.metrics for r in range(m.get("repeats", 1))]

    def configuration(self) -> dict:
        """The identity without the training seed: what the seeds of one leaderboard row share."""
        return {k: v for k, v in self.identity().items() if k != "seed"}

    def to_json(self) -> dict:
        return asdict(self) | {"grid_keys": list(self.grid_keys), "config_version": CONFIG_VERSION}

    @classmethod
    def from_json(cls, obj: dict) -> "RunSpec":
        """Inverse of to_json (config.json); check `config_version_of` first for old files."""
        fields = {k: v for k, v in obj.items() if k != "config_version"}
        return cls(**{**fields, "grid_keys": tuple(fields.get("grid_keys", ()))})


def config_version_of(config: dict) -> int:
    """The config version a config.json was written under (1: before the field existed)."""
    return config.get("config_version", 1)


def config_hash(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def run_id_for(identity: dict, model: str, dataset: str, seed: int) -> str:
    return f"{model}-{dataset}-s{seed}-{config_hash(identity)}"


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _format_validation(path: Path, err: ValidationError, prefix: str = "") -> str:
    lines = [f"{path}: invalid suite."]
    for e in err.errors():
        where = _loc(tuple(prefix.split(".")) + tuple(e["loc"]) if prefix else e["loc"])
        given = f" (given: {e['input']!r})" if e["type"] not in ("missing",) and not isinstance(
            e.get("input"), dict) else ""
        lines.append(f"  {where}: {e['msg']}{given}")
    return "\n".join(lines)


def _child(node, part: str, item: str):
    """Step into a mapping by key, or into a list by index or by an entry's `name`."""
    if isinstance(node, dict):
        return node.setdefault(part, {})
    if isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        for i, entry in enumerate(node):
            if entry == part:  # shorthand `- mig` becomes a mapping that can take params
                node[i] = entry = {"name": part}
            if isinstance(entry, dict) and entry.get("name") == part:
                return entry
        names = [e["name"] if isinstance(e, dict) else e for e in node]
        raise VaebenchError(f"--set {item!r}: no entry {part!r} in that list; entries: {names}")
    raise VaebenchError(f"--set {item!r}: cannot set a key inside {node!r}")


def _apply_override(data: dict, item: str, path: Path) -> None:
    """`train.steps=200`, `seeds=[0]`, `metrics.mig.params.num_train=1000`: values are YAML."""
    if "=" not in item:
        raise VaebenchError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.steps=200")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = _child(node, part, item)
    if not isinstance(node, dict):
        raise VaebenchError(f"--set {item!r}: {'.'.join(parts[:-1])} in {path} is not a mapping")
    try:
        node[parts[-1]] = load_bounded(raw, f"--set {item!r}")
    except yaml.YAMLError as e:
        raise VaebenchError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(e)}); "
                            f"quote lists and mappings whole, e.g. --set 'seeds=[0, 1]'") from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    return " ".join(str(e).split())


def count_runs(suite: Suite) -> int:
    """len(expand(suite)) without expanding: datasets x (grid points of every model) x seeds."""
    points = 0
    for m in suite.models:
        n = 1
        for values in m.grid.values():
            n *= len(values)
        points += n
    return len(suite.datasets) * points * len(suite.seeds)


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise VaebenchError(f"{path} is a folder; give a suite file inside it, e.g. "
                            f"suites/quickstart.yaml")
    if not path.is_file():
        raise VaebenchError(f"suite file {path} does not exist (suites ship in suites/, e.g. "
                            f"suites/quickstart.yaml)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise VaebenchError(f"{path}: not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at "
                            f"offset {e.start}); save the suite as UTF-8") from None
    except OSError as e:
        raise VaebenchError(f"{path}: cannot be read ({e.strerror})") from None


def load_suite(path: str | Path, overrides: list[str] | tuple = (),
               max_runs: int | None = None) -> Suite:
    """Read and validate a suite file; `overrides` are `KEY=VALUE` strings applied first.

    `max_runs` (e.g. --max-runs) overrides the suite's own `max_runs` key.
    """
    path = Path(path)
    try:
        data = load_bounded(_read_text(path), str(path))
    except yaml.YAMLError as e:
        raise VaebenchError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise VaebenchError(f"{path}: a suite is a YAML mapping with keys name, datasets, models, "
                            f"seeds, train, metrics; got {type(data).__name__}")
    data = copy.deepcopy(data)
    for item in overrides:
        _apply_override(data, item, path)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise VaebenchError(_format_validation(path, e)) from None
    if max_runs is not None and max_runs < 1:
        raise VaebenchError(f"--max-runs {max_runs}: give a positive number of runs")
    limit = max_runs if max_runs is not None else suite.max_runs
    n_runs = count_runs(suite)
    if n_runs > limit:
        raise VaebenchError(
            f"{path}: expands to {n_runs:,} runs ({len(suite.datasets)} dataset(s) x grid points "
            f"x {len(suite.seeds)} seed(s)), more than the limit of {limit:,}. If you mean it, "
            f"raise the limit with --max-runs {n_runs} or the suite key `max_runs: {n_runs}`.")
    for i, d in enumerate(suite.datasets):
        DATASETS.get(d.name, where=f"{path}: datasets[{i}].name")
    for i, m in enumerate(suite.models):
        MODELS.get(m.name, where=f"{path}: models[{i}].name")
    for i, m in enumerate(suite.metrics):
        _check_params(METRICS.get(m.name, where=f"{path}: metrics[{i}].name"), m.params,
                      f"{path}: metrics[{i}].params")
    for i, d in enumerate(suite.datasets):
        _check_params(DATASETS.get(d.name), d.params, f"{path}: datasets[{i}].params",
                      skip_first=True)
    expand(suite, path)  # validates every model's hyperparameters
    return suite


def _check_params(fn, params: dict, where: str, skip_first: bool = True) -> None:
    """Keyword parameters of a registered function: unknown names are an error, and each value
    is validated (strictly: no "3" for 3, no true for 1) against the signature's annotation."""
    import inspect

    sig = list(inspect.signature(fn, eval_str=True).parameters.values())[1 if skip_first else 0:]
    kw = [p for p in sig if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    allowed = {p.name for p in kw}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise VaebenchError(f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                            f"allowed: {', '.join(sorted(allowed)) or 'none'}")
    fields = {p.name: (Any if p.annotation is p.empty else p.annotation, p.default)
              for p in kw if p.name in params}
    typed = create_model(f"{getattr(fn, '__name__', 'params')}_params",
                         __config__=ConfigDict(strict=True, arbitrary_types_allowed=True), **fields)
    try:
        typed(**params)
    except ValidationError as e:
        msgs = "; ".join(f"{where}.{_loc(err['loc'][:1])}: {err['msg']} (given: {err.get('input')!r})"
                         for err in e.errors())
        raise VaebenchError(msgs) from None


def resolve_model_params(name: str, params: dict, where: str) -> dict:
    """Validate hyperparameters against the variant's typed config; return all of them."""
    config_cls = MODELS.get(name).Config
    try:
        return asdict(config_cls(**params))
    except ValidationError as e:
        msgs = "; ".join(f"{_loc(err['loc'])}: {err['msg']} (given: {err.get('input')!r})"
                         for err in e.errors())
        allowed = ", ".join(f"{k}={v!r}" for k, v in asdict(config_cls()).items())
        raise VaebenchError(f"{where}: {msgs}. {name} takes: {allowed}") from None
    except TypeError as e:
        raise VaebenchError(f"{where}: {e}") from None


def _check_likelihood(dataset: DatasetSpec, model_params: dict, model: str, path) -> None:
    """Grey levels under a Bernoulli decoder bound no log-likelihood: refuse that pairing."""
    likelihood = model_params.get("likelihood", "bernoulli")
    if dataset.params.get("binarize") == "none" and likelihood == "bernoulli":
        raise VaebenchError(
            f"{path}: datasets[{dataset.name}].params.binarize: 'none' keeps grey levels, but {model} "
            f"decodes with a Bernoulli likelihood, whose ELBO on grey levels is no bound on "
            f"log p(x). Use binarize: dynamic (the default; resampled every batch) or static, or "
            f"a model whose decoder models grey levels.")


def expand(suite: Suite, path: Path | str = "<suite>") -> list[RunSpec]:
    """All runs of the suite: datasets x models x grid points x seeds, in that nesting order."""
    runs: list[RunSpec] = []
    for d in suite.datasets:
        for i, m in enumerate(suite.models):
            keys = list(m.grid)
            for values in itertools.product(*(m.grid[k] for k in keys)):
                params = dict(m.params) | dict(zip(keys, values))
                resolved = resolve_model_params(m.name, params, f"{path}: models[{i}]")
                _check_likelihood(d, resolved, m.name, path)
                for seed in suite.seeds:
                    spec = RunSpec(
                        run_id="", suite=suite.name, dataset=d.name, dataset_params=dict(d.params),
                        model=m.name, model_params=resolved, seed=seed,
                        train=suite.train.model_dump(),
                        metrics=[mt.model_dump() for mt in suite.metrics],
                        device=suite.device, grid_keys=tuple(sorted(set(keys) | set(m.params))),
                        eval_seed=suite.eval_seed, keep_codes=suite.keep_codes, pack=suite.pack,
                    )
                    rid = run_id_for(spec.identity(), m.name, d.name, seed)
                    runs.append(RunSpec(**(asdict(spec) | {"run_id": rid, "grid_keys": spec.grid_keys})))
    seen = {}
    for r in runs:
        if r.run_id in seen:
            raise VaebenchError(f"{path}: two entries resolve to the same run ({r.model} on "
                                f"{r.dataset}, seed {r.seed}, {r.model_params}); remove the duplicate")
        seen[r.run_id] = r
    return runs
