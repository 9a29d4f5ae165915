"""Pictures of one finished run: latent traversals (PNG + animated GIF) and training curves.

Traversal: for a few test images, each latent dimension is swept over posterior mean + [-2, 2]
with the others held at the posterior mean; rows are ordered by the dimension's KL (largest
first, averaged over the images), so collapsed dimensions sink to the bottom. The Ladder VAE gets
one traversal per layer (its top vector layer by dimension, each spatial layer by channel, the
channel shifted at every position); VQ-VAE has no continuous latent to sweep, so it gets a grid
of samples from its prior instead.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from vaebench.models.base import GaussianVAE, gaussian_kl  # noqa: E402
from vaebench.runner.store import CHECKPOINT, LOG, RunStore, atomic_write_bytes  # noqa: E402

SWEEP = np.linspace(-2.0, 2.0, 7)  # offsets from the posterior mean, in prior standard deviations


def load_checkpoint(path: Path) -> dict:
    """A run's checkpoint without unpickling arbitrary objects: tensors, plain types, and the numpy
    arrays of the saved RNG state."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype("uint32"))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_run_model(run_dir: Path, data_root: Path):
    """(spec, model in eval mode on the CPU, dataset) of a run with a checkpoint."""
    from vaebench.runner.run import build_model, load_dataset
    from vaebench.runner.suite import RunSpec

    store = RunStore(run_dir.parent)
    spec = RunSpec.from_json(store.config(run_dir.name))
    dataset = load_dataset(spec.dataset, spec.dataset_params, Path(data_root))
    model = build_model(spec, dataset)
    if store.is_trained(run_dir.name):  # the weights after the post-training stage (VQ-VAE's prior)
        model.load_state_dict(load_checkpoint(store.model_path(run_dir.name)))
    else:
        model.load_state_dict(load_checkpoint(run_dir / CHECKPOINT)["model"])
    return spec, model.eval(), dataset


def _test_images(dataset, n: int):
    return dataset.batch("test", torch.arange(min(n, dataset.num_examples("test"))), "cpu")


@torch.no_grad()
def traversal_frames(model, x, y) -> list[dict]:
    """Per layer: {"name", "labels" (row labels), "images" (rows, values, B, C, H, W) in [0, 1]}."""
    from vaebench.models.hvae import HVAE

    if isinstance(model, GaussianVAE):
        mu, logvar = model.encode(x, y)
        kl = gaussian_kl(mu, logvar).mean(0)
        order = torch.argsort(kl, descending=True)
        dims, values, b = len(order), len(SWEEP), len(x)
        z = mu.expand(dims, values, b, -1).clone()  # (rows, values, B, D), one decoder call
        z[torch.arange(dims), :, :, order] += torch.as_tensor(SWEEP, dtype=z.dtype).view(1, -1, 1)
        yy = None if y is None else y.repeat(dims * values)
        images = torch.sigmoid(model.decode(z.reshape(-1, z.shape[-1]), yy)).view(dims, values, *x.shape)
        labels = [f"z{d}  KL {kl[d]:.2f}" for d in order.tolist()]
        return [{"name": "latent", "labels": labels, "images": images}]
    if isinstance(model, HVAE):
        return _hvae_frames(model, x)
    return []


def _hvae_frames(model, x) -> list[dict]:
    bu = model.bottom_up(x)
    mu_top, logvar_top = bu[-1]
    top = model.num_layers - 1
    _, kls = model.top_down(mu_top, bu[:-1], mode="mean", kl_channels=True)
    kls[top] = gaussian_kl(mu_top, logvar_top).mean(0)
    layers = []
    for layer in range(model.num_layers - 1, -1, -1):
        kl = kls[layer]
        order = torch.argsort(kl, descending=True).tolist()
        rows = []
        for c in order:
            frames = []
            for v in SWEEP:
                if layer == top:
                    z = mu_top.clone()
                    z[:, c] += float(v)
                    logits, _ = model.top_down(z, bu[:-1], mode="mean")
                else:
                    logits, _ = model.top_down(mu_top, bu[:-1], mode="mean", shift=(layer, c, float(v)))
                frames.append(torch.sigmoid(logits))
            rows.append(torch.stack(frames))
        unit = "z" if layer == top else "channel "
        layers.append({"name": f"layer {layer}" + (" (top)" if layer == top else ""),
                       "labels": [f"{unit}{c}  KL {kl[c]:.2f}" for c in order],
                       "images": torch.stack(rows)})
    return layers


def _grid_image(images: torch.Tensor) -> np.ndarray:
    """(rows, values, B, C, H, W) -> one HWC uint8 picture: per row, each image's sweep side by side."""
    rows, values, b = images.shape[:3]
    tiles = images.permute(0, 2, 1, 3, 4, 5).reshape(rows * b * values, *images.shape[3:])
    grid = make_grid(tiles.float(), nrow=b * values, padding=1, pad_value=0.5)
    return (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def traversal_png(layer: dict, n_images: int) -> bytes:
    img = _grid_image(layer["images"])
    rows = len(layer["labels"])
    fig, ax = plt.subplots(figsize=(img.shape[1] / 90 + 1.4, img.shape[0] / 90 + 0.5))
    ax.imshow(img, interpolation="nearest")
    ax.set_yticks((np.arange(rows) + 0.5) * img.shape[0] / rows, layer["labels"], fontsize=7)
    per = img.shape[1] / (n_images * len(SWEEP))
    ax.set_xticks((np.arange(n_images * len(SWEEP)) + 0.5) * per,
                  [f"{v:+.1f}" for v in SWEEP] * n_images, fontsize=6)
    ax.tick_params(length=0)
    ax.set_title(f"{layer['name']}: mean + offset, rows by KL (nats)", fontsize=8)
    return _png(fig)


def traversal_gif(layer: dict) -> bytes:
    """One frame per offset, there and back: rows = dimensions, columns = test images."""
    imgs = layer["images"]  # (rows, values, B, C, H, W)
    frames = []
    order = list(range(len(SWEEP))) + list(range(len(SWEEP) - 2, 0, -1))
    for i in order:
        grid = make_grid(imgs[:, i].flatten(0, 1).float(), nrow=imgs.shape[2], padding=1, pad_value=0.5)
        arr = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
        frames.append(Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=180, loop=0)
    return buf.getvalue()


def save_traversals(run_dir: Path, data_root: Path, n_images: int = 2) -> list[str]:
    """Write traversal[_layerN].png/.gif (or prior_samples.png for models without a continuous
    latent) into run_dir; returns the file names written."""
    spec, model, dataset = load_run_model(run_dir, data_root)
    x, y = _test_images(dataset, n_images)
    layers = traversal_frames(model, x, y if getattr(model, "conditional", False) else None)
    written = []
    if not layers:  # VQ-VAE and other discrete models: samples from the prior
        with torch.no_grad():
            s = model.sample(64, generator=torch.Generator().manual_seed(spec.seed))
        buf = io.BytesIO()
        from torchvision.utils import save_image

        save_image(s.float(), buf, format="png", nrow=8, padding=2, pad_value=0.5)
        atomic_write_bytes(run_dir / "prior_samples.png", buf.getvalue())
        return ["prior_samples.png"]
    for layer in layers:
        stem = "traversal" if len(layers) == 1 else f"traversal_{layer['name'].split(' (')[0].replace(' ', '')}"
        atomic_write_bytes(run_dir / f"{stem}.png", traversal_png(layer, len(x)))
        atomic_write_bytes(run_dir / f"{stem}.gif", traversal_gif(layer))
        written += [f"{stem}.png", f"{stem}.gif"]
    return written


def save_training_curves(run_dir: Path, smooth: int = 5) -> bool:
    """training_curves.png from train_log.csv: every loss term against step, raw (faint) and a
    centred rolling mean over `smooth` log rows."""
    path = run_dir / LOG
    if not path.is_file():
        return False
    log = pd.read_csv(path)
    terms = [c for c in log.columns if c not in ("step", "session", "elapsed_s", "images_per_s")]
    if log.empty or not terms:
        return False
    cols = min(3, len(terms))
    rows = -(-len(terms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.4 * rows), squeeze=False)
    for ax, t in zip(axes.flat, terms):
        ax.plot(log["step"], log[t], color="tab:blue", alpha=0.3, lw=1)
        ax.plot(log["step"], log[t].rolling(smooth, center=True, min_periods=1).mean(), color="tab:blue", lw=1.5)
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write_bytes(run_dir / "training_curves.png", _png(fig))
    return True
