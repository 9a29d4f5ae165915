"""Every variant of the zoo, through its own make_optimizers / training_step: a short training on
a small procedural dSprites subset lowers the loss, and prior samples are images in [0, 1]."""

import pytest
import torch

import vaebench.data  # noqa: F401  (registers datasets)
import vaebench.models  # noqa: F401  (registers models)
from vaebench.registry import DATASETS, MODELS

STEPS, BATCH = 30, 8

# Small settings only where the defaults are needlessly slow for a CPU test.
PARAMS = {
    "annealed_vae": {},
    "beta_tcvae": {"dataset_size": 64},
    "dip_vae_i": {},
    "dip_vae_ii": {},
    "factor_vae": {"disc_hidden": 256},
    "info_vae": {},
    "iwae": {"k": 3},
    "hvae": {},
    "vq_vae": {"num_codes": 32, "code_dim": 8, "hidden": 32, "res_hidden": 16,
               "prior_channels": 16, "prior_layers": 2, "prior_steps": 5, "prior_batch_size": 8},
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """64 training images of the procedural dSprites (rendered in memory, no download)."""
    return DATASETS.get("dsprites_procedural")(tmp_path_factory.mktemp("data"), test_size=32, train_size=64)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_short_training_lowers_the_loss_and_samples_are_images(name, dataset):
    torch.manual_seed(0)
    cls = MODELS.get(name)
    model = cls(cls.Config(**PARAMS[name]), dataset.image_shape, dataset.num_classes)
    opts = model.make_optimizers(1e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(STEPS):
        x, y = dataset.batch("train", torch.randint(0, 64, (BATCH,), generator=gen))
        terms = model.training_step(x, y, step, opts)
        assert all(torch.isfinite(v).all() for v in terms.values()), terms
        losses.append(terms["loss"].item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, f"{name}: loss {first:.1f} -> {last:.1f}"

    model.eval()
    after = model.after_training(dataset, torch.device("cpu"), seed=0)
    assert isinstance(after, dict)
    with torch.no_grad():
        s = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert s.shape == (5, 1, 64, 64)
    assert s.min() >= 0 and s.max() <= 1
