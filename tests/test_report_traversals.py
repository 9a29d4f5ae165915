"""Latent traversals and training curves on tiny untrained models."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from vaebench.models.hvae import HVAE, HVAEConfig
from vaebench.models.vae import VAE
from vaebench.report.traversals import (SWEEP, save_training_curves, save_traversals, traversal_frames,
                                        traversal_gif, traversal_png)


def test_vae_traversal_sweeps_one_dimension_around_the_mean_rows_by_kl():
    torch.manual_seed(0)
    model = VAE(VAE.Config(latent_dim=3), (1, 28, 28), 10).eval()
    x = torch.rand(2, 1, 28, 28)
    (layer,) = traversal_frames(model, x, None)
    imgs = layer["images"]
    assert imgs.shape == (3, len(SWEEP), 2, 1, 28, 28)
    middle = list(SWEEP).index(0.0)
    for row in range(3):  # offset 0 is the reconstruction from the posterior mean
        torch.testing.assert_close(imgs[row, middle], model.reconstruct(x).detach())
    kls = [float(label.split("KL ")[1]) for label in layer["labels"]]
    assert kls == sorted(kls, reverse=True)
    # moving one dimension changes the picture; the same offset on another dimension differs
    assert not torch.allclose(imgs[0, 0], imgs[0, -1]) and not torch.allclose(imgs[0, 0], imgs[1, 0])
    png = Image.open(io.BytesIO(traversal_png(layer, 2)))
    gif = Image.open(io.BytesIO(traversal_gif(layer)))
    assert png.width > 200 and gif.n_frames == 2 * len(SWEEP) - 2


def test_ladder_vae_gets_one_traversal_per_layer():
    torch.manual_seed(0)
    model = HVAE(HVAEConfig(latent_dim=4, spatial_channels=[2, 3]), (1, 28, 28), 0).eval()
    layers = traversal_frames(model, torch.rand(2, 1, 28, 28), None)
    assert [len(layer["labels"]) for layer in layers] == [4, 3, 2]  # top first, then channels
    assert layers[0]["name"] == "layer 2 (top)"
    for layer in layers:
        middle = list(SWEEP).index(0.0)
        torch.testing.assert_close(layer["images"][0, middle], layer["images"][-1, middle])
        assert not torch.allclose(layer["images"][0, 0], layer["images"][0, -1])


def test_training_curves_from_the_log(tmp_path):
    pd.DataFrame({"step": [5, 10, 15], "session": 0, "elapsed_s": [1, 2, 3], "images_per_s": 10.0,
                  "loss": [3.0, 2.0, 1.0], "kl": [0.1, 0.2, np.nan]}).to_csv(tmp_path / "train_log.csv")
    assert save_training_curves(tmp_path)
    assert Image.open(tmp_path / "training_curves.png").width > 300
    assert not save_training_curves(tmp_path / "nothing")


@pytest.mark.parametrize("model, params, files", [
    ("hvae", {"latent_dim": 3, "spatial_channels": [2]},
     ["traversal_layer1.png", "traversal_layer1.gif", "traversal_layer0.png", "traversal_layer0.gif"]),
    ("vq_vae", {"num_codes": 8, "code_dim": 4, "hidden": 8, "res_hidden": 4, "prior_steps": 0},
     ["prior_samples.png"])])
def test_pictures_from_a_runs_checkpoint(tmp_path, model, params, files):
    from vaebench.runner.run import build_model, load_dataset
    from vaebench.runner.store import write_json
    from vaebench.runner.suite import RunSpec

    spec = RunSpec(run_id="r", suite="s", dataset="dsprites_procedural",
                   dataset_params={"test_size": 8, "train_size": 16}, model=model, model_params=params,
                   seed=0, train={}, metrics=[])
    run_dir = tmp_path / "r"
    write_json(run_dir / "config.json", spec.to_json())
    net = build_model(spec, load_dataset(spec.dataset, spec.dataset_params, tmp_path))
    torch.save({"model": net.state_dict(), "step": 0}, run_dir / "checkpoint.pt")
    assert save_traversals(run_dir, tmp_path) == files
    for name in files:
        assert Image.open(run_dir / name).width > 0
