"""The sampling scores (FactorVAE, BetaVAE) and the registered metrics on a tiny in-memory factor
grid: known answers, the reference's random draws, and the code table's exactness."""

import json

import numpy as np
import pytest
import torch

from vaebench.data.base import TensorImageDataset
from vaebench.errors import NotApplicable
from vaebench.metrics import EvalContext, betavae_score, factorvae_score
from vaebench.metrics.disentanglement.code_table import CodeTable
from vaebench.metrics.disentanglement.context import code_table
from vaebench.metrics.disentanglement.sampling import sample_factors_batched
from vaebench.models.base import LatentVariableModel, ModelConfig
from vaebench.registry import METRICS

SIZES = np.array([3, 4, 5, 6])
PANEL = {  # small budgets so the whole file stays fast; defaults are the published ones
    "mig": {"num_train": 1000},
    "factorvae_score": {"num_train": 300, "num_eval": 200, "num_variance_estimate": 1000},
    "betavae_score": {"num_train": 300, "num_eval": 200, "batch_size": 16},
    "dci": {"num_train": 200, "num_test": 100},
    "sap": {"num_train": 500, "num_test": 300},
    "modularity": {"num_train": 1000, "num_test": 500},
}


class Grid:
    """A 3 x 4 x 5 x 6 factor grid whose image of a row is its factors scaled to [0, 1], as a
    (1, 1, 4) picture. Follows the GroundTruthFactors protocol."""

    factor_names = ["a", "b", "c", "d"]
    factor_sizes = SIZES.tolist()

    def __init__(self):
        self.rows_rendered = 0

    def sample_factors(self, num, random_state):
        return np.stack([random_state.randint(n, size=num) for n in self.factor_sizes], axis=1)

    def index_of(self, factors):
        return np.ravel_multi_index(np.asarray(factors).T, self.factor_sizes)

    def images_at(self, indices):
        self.rows_rendered += len(indices)
        factors = np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=1)
        return torch.tensor(factors / (SIZES - 1), dtype=torch.float32).view(-1, 1, 1, 4)

    def sample_observations_from_factors(self, factors, random_state):
        return self.images_at(self.index_of(factors))


def factors_of(images):
    return np.rint(images.reshape(-1, 4).numpy() * (SIZES - 1)).astype(int)


def identity(images):
    return images.reshape(len(images), -1).numpy().astype(np.float64)


def noise_fn(seed=0):
    table = np.random.RandomState(seed).randn(int(SIZES.prod()), 4)
    return lambda images: table[Grid().index_of(factors_of(images))]


class ElementwiseModel(LatentVariableModel):
    """Codes = (x, sin(5x), 0): elementwise, so a row's code never depends on its batch; counts
    the images it encodes. conditional=True checks it gets factor "a" as its label."""

    def __init__(self, conditional=False):
        super().__init__(ModelConfig(latent_dim=9), (1, 1, 4), num_classes=3)
        self.conditional = conditional
        self.images_encoded = 0

    def representation(self, x, y=None):
        if self.conditional:
            assert torch.equal(y, torch.as_tensor(factors_of(x)[:, 0]))
        self.images_encoded += len(x)
        x = x.flatten(1)
        return torch.cat([x, torch.sin(5 * x), torch.zeros(len(x), 1)], dim=1)


def make_ctx(model=None, factors=True, seed=0):
    empty = torch.zeros(0, 1, 1, 4, dtype=torch.uint8)
    dataset = TensorImageDataset("grid", empty, torch.zeros(0), empty, torch.zeros(0), 3,
                                 class_name="a")
    dataset.factors = Grid() if factors else None
    return EvalContext(model=model or ElementwiseModel(), dataset=dataset,
                       device=torch.device("cpu"), seed=seed, data_root=None, batch_size=64)


# ---- the sampling scores as public functions -------------------------------------------------

def test_factorvae_score_known_answers():
    rs = lambda: np.random.RandomState(0)  # noqa: E731
    small = {"num_train": 300, "num_eval": 200, "num_variance_estimate": 1000}
    top = factorvae_score(Grid(), identity, rs(), **small)
    assert top.scores["factorvae_score"] == 1.0 and top.scores["factorvae_score_train"] == 1.0
    monotone = factorvae_score(Grid(), lambda x: np.exp(3 * identity(x)), rs(), **small)
    assert monotone.scores["factorvae_score"] == 1.0
    noise = factorvae_score(Grid(), noise_fn(), rs(), **small).scores["factorvae_score"]
    assert noise < 0.5  # chance is 0.25
    # (a, b) and (c, d) rotated by 45 degrees: fixing a or b shrinks the same two dims alike
    turn = np.array([[1, 1, 0, 0], [1, -1, 0, 0], [0, 0, 1, 1], [0, 0, 1, -1]]) / np.sqrt(2)
    rotated = factorvae_score(Grid(), lambda x: identity(x) @ turn, rs(), **small)
    assert rotated.scores["factorvae_score"] < 0.85
    # a dead dimension is pruned, not a crash; permuting codes changes nothing
    dead = factorvae_score(Grid(), lambda x: np.hstack([identity(x)[:, [2, 0, 3, 1]],
                                                        np.full((len(x), 1), 0.3)]), rs(), **small)
    assert dead.scores["factorvae_score"] == 1.0 and dead.scores["factorvae_active_dims"] == 4
    assert dead.details["active_dims"] == [0, 1, 2, 3]
    # a dataset that carries the factors works as well
    on_dataset = factorvae_score(make_ctx().dataset, identity, rs(), **small)
    assert on_dataset.scores == top.scores
    with pytest.raises(NotApplicable):
        factorvae_score(make_ctx(factors=False).dataset, identity, rs(), **small)
    everything_dead = factorvae_score(Grid(), lambda x: np.zeros((len(x), 3)), rs(), **small)
    assert everything_dead.scores == {"factorvae_score": 0.0, "factorvae_score_train": 0.0,
                                      "factorvae_active_dims": 0.0}


def test_betavae_score_known_answers():
    rs = lambda: np.random.RandomState(0)  # noqa: E731
    small = {"num_train": 300, "num_eval": 200, "batch_size": 16}
    top = betavae_score(Grid(), identity, rs(), **small).scores["betavae_score"]
    assert top > 0.95
    noise = betavae_score(Grid(), noise_fn(), rs(), **small).scores["betavae_score"]
    assert noise < 0.45  # chance is 0.25
    permuted = betavae_score(Grid(), lambda x: identity(x)[:, [3, 1, 2, 0]], rs(), **small)
    assert permuted.scores["betavae_score"] == pytest.approx(top)


def test_draws_follow_the_reference():
    """disentanglement_lib's generate_batch_factor_code draws `batch_size` rows at a time."""
    rs = np.random.RandomState(5)
    expected = np.concatenate([Grid().sample_factors(n, rs) for n in (16, 16, 8)])
    np.testing.assert_array_equal(sample_factors_batched(Grid(), 40, np.random.RandomState(5), 16),
                                  expected)


def test_factorvae_score_matches_reference_loop():
    """The reference's per-vote loop (disentanglement_lib factor_vae.py), written plainly."""
    grid, fn = Grid(), lambda x: identity(x) @ np.random.RandomState(2).randn(4, 5)
    rs = np.random.RandomState(3)
    global_var = np.var(fn(grid.sample_observations_from_factors(grid.sample_factors(500, rs), rs)),
                        axis=0, ddof=1)
    active = np.sqrt(global_var) >= 0.05

    def votes(n):
        v = np.zeros((4, 5), dtype=int)
        for _ in range(n):
            k = rs.randint(4)
            f = grid.sample_factors(64, rs)
            f[:, k] = f[0, k]
            local = np.var(fn(grid.sample_observations_from_factors(f, rs)), axis=0, ddof=1)
            v[k, np.argmin(local[active] / global_var[active])] += 1
        return v

    train, evaluation = votes(200), votes(100)
    clf = np.argmax(train, axis=0)
    expected = evaluation[clf, np.arange(5)].sum() / evaluation.sum()
    got = factorvae_score(grid, fn, np.random.RandomState(3), num_train=200, num_eval=100,
                          num_variance_estimate=500)
    assert got.scores["factorvae_score"] == pytest.approx(expected, abs=1e-12)
    assert got.scores["factorvae_score_train"] == pytest.approx(
        train[clf, np.arange(5)].sum() / train.sum(), abs=1e-12)


# ---- the registered metrics and the code table ---------------------------------------------

def test_panel_with_code_table_equals_per_sample_encoding():
    table_ctx = make_ctx()
    for name, params in PANEL.items():
        with_table = METRICS.get(name)(table_ctx, **params)
        per_sample = METRICS.get(name)(make_ctx(), **params, code_table=False)
        assert with_table.scores == per_sample.scores, name
        assert with_table.details == per_sample.details, name
    # every metric of the run shared one table; no grid row was encoded twice
    table = code_table(table_ctx)
    assert isinstance(table, CodeTable)
    assert table_ctx.model.images_encoded == table.num_encoded <= int(SIZES.prod())
    assert table_ctx.dataset.factors.rows_rendered == table.num_encoded


def test_registered_scores_on_the_grid():
    ctx = make_ctx()
    results = {name: METRICS.get(name)(ctx, **params) for name, params in PANEL.items()}
    scores = {k: v for r in results.values() for k, v in r.scores.items()}
    # codes 0-3 are the factors, 4-7 monotone in them on part of the range, 8 is dead
    assert scores["factorvae_score"] == 1.0 and scores["factorvae_active_dims"] == 8
    assert scores["betavae_score"] > 0.95
    assert scores["dci_informativeness"] > 0.95
    assert results["modularity"].details["per_code"][8] == 0.0  # the reference scores it 0 ...
    assert scores["modularity"] > 0.85  # ... so the mean is at most 8/9
    assert scores["modularity_explicitness"] > 0.9
    assert 0 <= scores["mig"] <= 1 and 0 <= scores["sap"] <= 1
    assert set(results["mig"].details["per_factor"]) == {"a", "b", "c", "d"}
    for result in results.values():  # the run writes them to metrics.json
        json.dumps(result.details, allow_nan=False)
        assert all(isinstance(v, float) for v in result.scores.values())
    # same (model, dataset, seed) -> same scores; another seed draws other points
    again = METRICS.get("mig")(make_ctx(), **PANEL["mig"])
    assert again.scores == results["mig"].scores
    other = METRICS.get("mig")(make_ctx(seed=1), **PANEL["mig"])
    assert other.scores != results["mig"].scores


def test_conditional_model_gets_its_label_from_the_factors():
    ctx = make_ctx(ElementwiseModel(conditional=True))
    assert METRICS.get("mig")(ctx, num_train=200).scores["mig"] >= 0  # the model asserts its labels


def test_no_factors_is_not_applicable():
    for name in PANEL:
        with pytest.raises(NotApplicable, match="ground-truth factors"):
            METRICS.get(name)(make_ctx(factors=False))


def test_trained_beta_vae_scores_higher_mig_than_untrained(tmp_path):
    """The quickstart's claim on a small budget: 300 steps of beta_vae (beta=4) on the procedural
    dSprites already give MIG well above the same model untrained (~0.003 vs ~0.04 here)."""
    from vaebench.models.beta_vae import BetaVAE, BetaVAEConfig
    from vaebench.registry import DATASETS
    from vaebench.runner.train import Trainer, seed_everything

    dataset = DATASETS.get("dsprites_procedural")(tmp_path)
    cfg = {"steps": 300, "batch_size": 64, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
           "checkpoint_every": 1000, "log_every": 100, "optimizer": "adam"}

    def mig_after(steps):
        seed_everything(0)
        model = BetaVAE(BetaVAEConfig(beta=4), dataset.image_shape, dataset.num_classes)
        if steps:
            Trainer(model, dataset, cfg | {"steps": steps}, tmp_path / f"run{steps}", seed=0,
                    device=torch.device("cpu"), progress=False).run()
        ctx = EvalContext(model=model.eval(), dataset=dataset, device=torch.device("cpu"), seed=0,
                          data_root=tmp_path)
        return METRICS.get("mig")(ctx, num_train=2000).scores["mig"]

    untrained, trained = mig_after(0), mig_after(300)
    assert trained > untrained + 0.01, (untrained, trained)
