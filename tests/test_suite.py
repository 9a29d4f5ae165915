"""Suite validation and expansion."""

import textwrap
import time

import pytest

from vaebench.errors import VaebenchError
from vaebench.runner.suite import expand, load_suite

import vaebench.runner.run  # noqa: F401  (registers models, datasets, metrics)

GOOD = """
name: tiny
datasets: [mnist]
models:
  - vae
  - {name: beta_vae, grid: {beta: [1, 4, 16]}}
seeds: [0, 1]
train: {steps: 10, batch_size: 8}
metrics: [elbo]
"""


def write(tmp_path, text, name="suite.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_expansion_is_the_cartesian_product(tmp_path):
    runs = expand(load_suite(write(tmp_path, GOOD)))
    assert len(runs) == (1 + 3) * 2
    betas = sorted({r.model_params["beta"] for r in runs if r.model == "beta_vae"})
    assert betas == [1.0, 4.0, 16.0]
    assert len({r.run_id for r in runs}) == len(runs)
    # defaults are filled in, so the resolved config is complete
    assert runs[0].model_params == {"latent_dim": 10, "likelihood": "bernoulli", "likelihood_scale": None}


def test_run_ids_are_stable_and_depend_on_the_config(tmp_path):
    a = [r.run_id for r in expand(load_suite(write(tmp_path, GOOD)))]
    b = [r.run_id for r in expand(load_suite(write(tmp_path, GOOD)))]
    assert a == b
    c = [r.run_id for r in expand(load_suite(write(tmp_path, GOOD), ["train.steps=11"]))]
    assert set(a).isdisjoint(c)
    # bookkeeping keys do not change what a run computes, so they keep its id
    d = [r.run_id for r in expand(load_suite(write(tmp_path, GOOD), ["train.checkpoint_every=3"]))]
    assert a == d


def test_explicit_default_value_gives_the_same_run(tmp_path):
    explicit = GOOD.replace("- vae\n", "- {name: vae, params: {latent_dim: 10}}\n")
    a = {r.run_id for r in expand(load_suite(write(tmp_path, GOOD))) if r.model == "vae"}
    b = {r.run_id for r in expand(load_suite(write(tmp_path, explicit, "b.yaml"))) if r.model == "vae"}
    assert a == b


def test_overrides_parse_yaml_values(tmp_path):
    suite = load_suite(write(tmp_path, GOOD), ["train.steps=5", "seeds=[3]"])
    assert suite.train.steps == 5 and suite.seeds == [3]


def test_overrides_reach_list_entries_by_name(tmp_path):
    suite = load_suite(write(tmp_path, GOOD), ["metrics.elbo.params.num_examples=100",
                                               "models.beta_vae.grid.beta=[2]"])
    assert suite.metrics[0].params == {"num_examples": 100}
    assert [r.model_params.get("beta") for r in expand(suite)] == [None, None, 2.0, 2.0]
    with pytest.raises(VaebenchError, match="no entry 'fid'.*'elbo'"):
        load_suite(write(tmp_path, GOOD), ["metrics.fid.params.num_samples=10"])


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("- vae\n", "- vea\n"), ["models[0].name", "unknown model 'vea'", "Did you mean 'vae'"]),
    (GOOD.replace("steps: 10", "steps: ten"), ["train.steps", "valid integer", "'ten'"]),
    (GOOD.replace("steps: 10", "steps: -1"), ["train.steps", "greater than 0"]),
    (GOOD.replace("datasets: [mnist]\n", ""), ["datasets", "Field required"]),
    (GOOD.replace("[mnist]", "[mnsit]"), ["datasets[0].name", "unknown dataset", "'mnist'"]),
    (GOOD.replace("[elbo]", "[elbow]"), ["metrics[0].name", "Did you mean 'elbo'"]),
    (GOOD.replace("beta: [1, 4, 16]", "betta: [1]"), ["models[1]", "betta", "beta_vae takes"]),
    (GOOD.replace("beta: [1, 4, 16]", "beta: [high]"), ["models[1]", "beta", "'high'"]),
    (GOOD.replace("seeds: [0, 1]", "seeds: [0, 1]\nepochs: 3"), ["epochs", "Extra inputs"]),
    ("name: x\ndatasets: [mnist\n", ["not valid YAML"]),
])
def test_bad_suites_name_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(VaebenchError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_duplicate_runs_are_rejected(tmp_path):
    text = GOOD.replace("- vae\n", "- vae\n  - vae\n")
    with pytest.raises(VaebenchError, match="same run"):
        load_suite(write(tmp_path, text))


def test_missing_suite_file(tmp_path):
    with pytest.raises(VaebenchError, match="does not exist"):
        load_suite(tmp_path / "nope.yaml")


def billion_laughs(levels=9):
    doc, prev = 'name: x\nlol0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "l0"
    for i in range(1, levels + 1):
        doc += f"lol{i}: &l{i} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = f"l{i}"
    return doc


def test_a_yaml_alias_bomb_is_refused_in_under_a_second(tmp_path):
    path = write(tmp_path, billion_laughs())
    assert path.stat().st_size < 2000
    t0 = time.perf_counter()
    with pytest.raises(VaebenchError, match="more than 100,000 values once its aliases") as err:
        load_suite(path)
    assert time.perf_counter() - t0 < 1.0
    assert str(path) in str(err.value)


def test_small_aliases_still_work(tmp_path):
    text = GOOD.replace("train: {steps: 10, batch_size: 8}", "train: &t {steps: 10, batch_size: 8}")
    assert load_suite(write(tmp_path, text)).train.steps == 10


def test_a_huge_suite_file_is_refused_before_parsing(tmp_path):
    seeds = "\n".join(f"  - {i}" for i in range(300_000))
    path = write(tmp_path, GOOD.replace("seeds: [0, 1]", "seeds:\n" + seeds))
    t0 = time.perf_counter()
    with pytest.raises(VaebenchError, match="suite files are limited to 1,000,000"):
        load_suite(path)
    assert time.perf_counter() - t0 < 1.0


def test_too_many_runs_are_refused_before_expanding_and_the_limit_can_be_raised(tmp_path):
    betas = ", ".join(str(b) for b in range(1, 101))
    text = GOOD.replace("seeds: [0, 1]", f"seeds: [{', '.join(map(str, range(100)))}]").replace(
        "{name: beta_vae, grid: {beta: [1, 4, 16]}}", f"{{name: beta_vae, grid: {{beta: [{betas}]}}}}")
    path = write(tmp_path, text)
    t0 = time.perf_counter()
    with pytest.raises(VaebenchError) as err:
        load_suite(path)
    assert time.perf_counter() - t0 < 1.0
    assert "10,100 runs" in str(err.value) and "limit of 10,000" in str(err.value)
    assert "--max-runs 10100" in str(err.value) and "max_runs: 10100" in str(err.value)
    assert load_suite(path, max_runs=10_100).max_runs == 10_000  # the flag wins over the key
    assert len(expand(load_suite(write(tmp_path, text + "max_runs: 30000\n", "b.yaml")))) == 10_100


@pytest.mark.parametrize("item, expected", [
    ("seeds=[0", "not valid YAML"),
    ("seeds", "expected KEY=VALUE"),
])
def test_bad_overrides_are_one_clear_error(tmp_path, item, expected):
    with pytest.raises(VaebenchError, match=expected) as err:
        load_suite(write(tmp_path, GOOD), [item])
    assert repr(item) in str(err.value)
