"""FID: known answers of the Frechet distance, the cached domain extractor and reference
statistics, the metrics in a run, the Inception path on weights this file makes, and `vaebench fid`.

Nothing here touches the network: `urllib.request.urlopen` raises for every test. The MNIST domain
extractor is trained once for the module (about 10 s) into a temporary cache.
"""

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_fid import inception as pfi
from pytorch_fid.fid_score import get_activations
from torchvision.utils import save_image

from vaebench.cli import main
from vaebench.data.base import TensorImageDataset
from vaebench.errors import VaebenchError
from vaebench.metrics.base import EvalContext
from vaebench.metrics.fid import (DomainExtractorConfig, FeatureStatistics, domain_extractor,
                                  feature_statistics, frechet_distance, frechet_distance_of_images,
                                  make_extractor, reference_statistics)
from vaebench.metrics.fid.domain import TRAIN_COUNTER
from vaebench.metrics.fid.frechet import extract_features
from vaebench.metrics.fid.images import load_image_folder
from vaebench.metrics.fid.inception import FID_WEIGHTS_FILE, hub_weights_path, resolve_weights
from vaebench.metrics.fid.metric import fid, fid_recon, label_sampler, prior_samples
from vaebench.models.cvae import CVAE, CVAEConfig
from vaebench.models.vae import VAE, VAEConfig
from vaebench.registry import DATASETS
from vaebench.report.leaderboard import lower_is_better
from vaebench.runner.run import evaluate_metric, load_dataset
from vaebench.runner.suite import RunSpec

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"  # real MNIST in torchvision's layout
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The test machine's cores are shared: two torch threads there run 10x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", {}, DATA)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vaebench-cache")


@pytest.fixture(scope="module")
def extractor(mnist, cache):
    return domain_extractor(mnist, cache, DATA)


def mnist_test_images(mnist, start, n):
    """(n, 1, 28, 28) MNIST test images from index start."""
    return mnist.batch("test", torch.arange(start, start + n))[0]


# --- the distance ------------------------------------------------------------------------------
def test_fid_of_a_set_against_itself_is_zero(mnist, extractor):
    x = mnist_test_images(mnist, 0, 500)
    assert abs(frechet_distance_of_images(x, x, extractor)) < 1e-3
    other_half = frechet_distance_of_images(x, mnist_test_images(mnist, 500, 500), extractor)
    assert other_half > 1.0  # two samples of one distribution differ by their sampling noise


def test_fid_grows_monotonically_with_gaussian_noise(mnist, extractor):
    real = mnist_test_images(mnist, 0, 500)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    values = [frechet_distance_of_images(real, (real + s * noise).clamp(0, 1), extractor)
              for s in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert abs(values[0]) < 1e-3
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_fid_is_symmetric(mnist, extractor):
    a = feature_statistics(mnist_test_images(mnist, 0, 300), extractor)
    b = feature_statistics((mnist_test_images(mnist, 300, 300) + 0.1).clamp(0, 1), extractor)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    assert frechet_distance(a, b) > 1.0


def test_frechet_distance_of_gaussians_has_the_closed_form_value():
    # Features ~ N(0, I) vs N(m, 4 I) in 3-d: d^2 = |m|^2 + Tr(I + 4I - 2 * 2I) = |m|^2 + 3.
    a = FeatureStatistics(np.zeros(3), np.eye(3), 100)
    b = FeatureStatistics(np.array([1.0, 2.0, 0.0]), 4 * np.eye(3), 100)
    assert frechet_distance(a, b) == pytest.approx(5.0 + 3.0)


# --- the domain extractor and its cache ---------------------------------------------------------
def tiny_dataset(name="tiny", n=96, seed=0):
    """Bars: label k = a vertical bar in column block k, on 28x28."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i, k in enumerate(y.tolist()):
        x[i, 0, :, 4 + 8 * k:8 + 8 * k] = 255
    x = torch.where(torch.rand(x.shape, generator=gen) < 0.05, 255 - x, x)
    return TensorImageDataset(name, x[:64], y[:64], x[64:], y[64:], num_classes=3)


def test_mnist_extractor_is_accurate_and_named_as_not_inception(extractor):
    assert extractor.name == "domain" and extractor.dim == 128
    assert extractor.info["test_accuracy"]["digit"] > 0.95
    assert "not Inception" in extractor.info["note"]
    saved = json.loads((Path(extractor.info["cache"]) / "extractor.json").read_text())
    assert saved["test_accuracy"] == extractor.info["test_accuracy"]


def test_domain_extractor_is_trained_once_then_loaded(tmp_path):
    config = DomainExtractorConfig(steps=20, batch_size=16)
    ds = tiny_dataset()
    before = TRAIN_COUNTER["trainings"]
    first = domain_extractor(ds, tmp_path, config=config)
    assert TRAIN_COUNTER["trainings"] == before + 1
    folder = Path(first.info["cache"])
    stamp = (folder / "extractor.pt").stat().st_mtime_ns
    second = domain_extractor(ds, tmp_path, config=config)
    assert TRAIN_COUNTER["trainings"] == before + 1  # loaded, not trained again
    assert (folder / "extractor.pt").stat().st_mtime_ns == stamp
    assert second.key == first.key and second.info["test_accuracy"] == first.info["test_accuracy"]
    x = ds.batch("test", torch.arange(32))[0]
    with torch.no_grad():
        assert torch.equal(first(x), second(x))
    assert not list(tmp_path.rglob("*.tmp"))

    # deterministic: trained again without a cache, the same weights
    again = domain_extractor(ds, None, config=config)
    for (name, p), q in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name
    # a different recipe or different data is a different extractor
    other_recipe = DomainExtractorConfig(steps=21, batch_size=16)
    assert domain_extractor(ds, tmp_path, config=other_recipe).key != first.key
    assert domain_extractor(tiny_dataset(seed=1), tmp_path, config=config).key != first.key
    assert TRAIN_COUNTER["trainings"] == before + 4


def test_dsprites_extractor_classifies_every_factor(tmp_path):
    ds = DATASETS.get("dsprites_procedural")(tmp_path, test_size=64, train_size=256)
    ex = domain_extractor(ds, tmp_path, config=DomainExtractorConfig(steps=5, batch_size=16))
    assert list(ex.info["test_accuracy"]) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert ex.info["data"].startswith("content:")  # no data_root: keyed by the data it saw
    with torch.no_grad():
        assert ex(ds.batch("test", torch.arange(8))[0]).shape == (8, 128)


def test_reference_statistics_are_cached(mnist, extractor, tmp_path):
    calls = []
    hook = extractor.register_forward_hook(lambda module, inputs, out: calls.append(len(out)))
    try:
        first, info = reference_statistics(mnist, extractor, 400, tmp_path)
        assert info["cache"] == "miss" and sum(calls) == 400
        second, info2 = reference_statistics(mnist, extractor, 400, tmp_path)
        assert info2 == {"cache": "hit", "path": info["path"]} and sum(calls) == 400
    finally:
        hook.remove()
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    assert second.num_images == 400
    # another count is another reference
    assert reference_statistics(mnist, extractor, 300, tmp_path)[1]["cache"] == "miss"


# --- the metrics in a run ----------------------------------------------------------------------
def small_mnist(mnist, n_test):
    """MNIST with a small test split; its name keeps the cached MNIST extractor."""
    as_uint8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    xtr, ytr = mnist.batch("train", torch.arange(2000))
    xte, yte = mnist.batch("test", torch.arange(n_test))
    return TensorImageDataset("mnist", as_uint8(xtr), ytr, as_uint8(xte), yte, num_classes=10,
                              class_name="digit")


def context(model, dataset, cache, seed=0):
    return EvalContext(model=model.eval(), dataset=dataset, device=CPU, seed=seed, data_root=DATA,
                       cache_dir=cache)


def test_fid_metrics_on_a_conditional_model(mnist, extractor, cache):
    torch.manual_seed(0)
    ctx = context(CVAE(CVAEConfig(latent_dim=4), (1, 28, 28), 10), small_mnist(mnist, 40), cache)
    out = fid(ctx, num_samples=100)
    assert set(out.scores) == {"fid_domain"} and out.scores["fid_domain"] > 0
    assert out.details["num_generated"] == out.details["num_real"] == 40
    assert "capped" in out.details and out.details["num_samples_requested"] == 100
    assert out.details["extractor"]["key"] == extractor.key  # the cached MNIST extractor
    assert out.details["reference"]["cache"] == "miss"
    recon = fid_recon(ctx, num_samples=100)
    assert set(recon.scores) == {"fid_recon_domain"} and recon.scores["fid_recon_domain"] > 0
    assert recon.details["reference"]["cache"] == "hit"
    assert fid(ctx, num_samples=100).scores == out.scores  # seeded by ctx.seed
    assert fid(context(ctx.model, ctx.dataset, cache, seed=1), num_samples=100).scores != out.scores
    assert all(lower_is_better(c) for c in ["fid_domain", "fid_recon_domain", "fid_inception",
                                            "fid_recon_inception"])
    with pytest.raises(VaebenchError, match="domain, inception"):
        fid(ctx, extractor="clip")


def test_conditional_samples_follow_the_train_label_frequencies():
    x = torch.zeros(1000, 1, 28, 28, dtype=torch.uint8)
    y = torch.cat([torch.zeros(900), torch.full((100,), 2)]).long()
    ds = TensorImageDataset("skewed", x, y, x[:10], y[:10], num_classes=3)
    labels = label_sampler(ds, 4000, torch.Generator().manual_seed(0))
    assert (labels != 1).all() and 0.87 < (labels == 0).float().mean() < 0.93

    class Recorder(torch.nn.Module):
        conditional = True

        def __init__(self):
            super().__init__()
            self.seen = []

        def sample(self, n, y=None, generator=None):
            self.seen.append(y)
            return torch.rand(n, 1, 28, 28, generator=generator)

    model = Recorder()
    batches = list(prior_samples(model, ds, 250, 100, seed=0, device=CPU))
    assert [len(b) for b in batches] == [100, 100, 50]
    seen = torch.cat(model.seen)
    assert len(seen) == 250 and (seen != 1).all() and (seen == 0).sum() > 200


def test_a_trained_vae_has_a_clearly_better_domain_fid_than_an_untrained_one(mnist, extractor, cache):
    torch.manual_seed(0)
    model = VAE(VAEConfig(), mnist.image_shape, mnist.num_classes)
    untrained = fid(context(model, mnist, cache), num_samples=1000).scores["fid_domain"]
    untrained_recon = fid_recon(context(model, mnist, cache), num_samples=1000).scores["fid_recon_domain"]
    model.train()
    opts = model.make_optimizers(1e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(400):
        x, y = mnist.batch("train", torch.randint(0, len(mnist), (64,), generator=gen))
        model.training_step(x, y, step, opts)
    trained = fid(context(model, mnist, cache), num_samples=1000).scores["fid_domain"]
    trained_recon = fid_recon(context(model, mnist, cache), num_samples=1000).scores["fid_recon_domain"]
    assert trained < 0.5 * untrained, (trained, untrained)
    assert trained_recon < 0.5 * untrained_recon, (trained_recon, untrained_recon)


# --- Inception ---------------------------------------------------------------------------------
def write_random_inception_weights(path: Path) -> None:
    """pytorch-fid's FID Inception structure (fid_inception_v3 without the download), random
    weights from seed 0, BatchNorm statistics set from a few random images so eval-mode features
    depend on the input."""
    torch.manual_seed(0)
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.rand(6, 3, 299, 299) * 2 - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


def test_inception_fid_end_to_end_on_weights_in_the_torch_hub_cache(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = tmp_path / "torch" / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    assert hub_weights_path() == weights
    write_random_inception_weights(weights)
    assert resolve_weights() == weights

    # The same features as pytorch-fid's own pipeline (its InceptionV3 finds the file itself).
    folder = tmp_path / "pngs"
    folder.mkdir()
    x = mnist_test_images(mnist, 0, 6)
    for i, img in enumerate(x):
        save_image(img, folder / f"{i}.png")
    theirs = get_activations(sorted(folder.glob("*.png")), pfi.InceptionV3([3]).eval(), batch_size=6,
                             dims=2048, num_workers=0)
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2), mnist.image_shape, mnist.num_classes)
    ours = extract_features([load_image_folder(folder, 3)], make_extractor("inception", mnist, None, None))
    assert ours.shape == (6, 2048) and ours.std(axis=0).mean() > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)

    out = fid(context(model, mnist, tmp_path / "cache"), extractor="inception", num_samples=6)
    assert set(out.scores) == {"fid_inception"}
    assert np.isfinite(out.scores["fid_inception"]) and out.scores["fid_inception"] > 0
    assert out.details["extractor"]["weights"] == str(weights)


def test_missing_inception_weights_say_which_file_and_where(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    checkpoints = tmp_path / "empty" / "hub" / "checkpoints"
    with pytest.raises(VaebenchError) as e:
        resolve_weights()
    msg = str(e.value)
    assert FID_WEIGHTS_FILE in msg and str(checkpoints) in msg and "--fid-weights" in msg
    assert "https://github.com/mseitzer/pytorch-fid/releases" in msg and "URLError" in msg
    with pytest.raises(VaebenchError, match="nowhere.pth"):
        resolve_weights(tmp_path / "nowhere.pth")

    # In a run, that metric records the message and the other metrics are still written.
    spec = RunSpec(run_id="r", suite="s", dataset="mnist", dataset_params={}, model="vae",
                   model_params={}, seed=0, train={},
                   metrics=[{"name": "fid", "params": {"extractor": "inception", "num_samples": 8}},
                            {"name": "recon_error", "params": {"num_examples": 16}}])
    model = VAE(VAEConfig(latent_dim=2), mnist.image_shape, mnist.num_classes).eval()
    ctx = EvalContext(model=model, dataset=mnist, device=CPU, seed=spec.eval_seed, data_root=DATA,
                      cache_dir=tmp_path / "cache")
    results = {m["name"]: evaluate_metric(ctx, m["name"], m["params"]) for m in spec.metrics}
    assert FID_WEIGHTS_FILE in results["fid"]["error"] and "traceback" not in results["fid"]
    assert results["recon_error"]["scores"]["recon_error"] > 0


# --- `vaebench fid` ------------------------------------------------------------------------------
def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        save_image(img, folder / f"{i:04d}.png")
    return folder


def test_cli_fid_on_two_png_folders(mnist, extractor, cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAEBENCH_CACHE", str(cache))  # the module's trained MNIST extractor
    real_x, fake_x = mnist_test_images(mnist, 0, 200), mnist_test_images(mnist, 200, 200)
    noise = torch.randn(fake_x.shape, generator=torch.Generator().manual_seed(0))
    noisy_x = (fake_x + 0.3 * noise).clamp(0, 1)
    real = write_pngs(tmp_path / "real", real_x)
    fake = write_pngs(tmp_path / "fake", fake_x)
    noisy = write_pngs(tmp_path / "noisy", noisy_x)

    def cli_fid(*args):
        assert main(["fid", *map(str, args), "--data-root", str(DATA), "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    out = cli_fid(real, fake, "--dataset", "mnist")
    assert out["num_real"] == out["num_fake"] == 200 and out["extractor"]["key"] == extractor.key
    # PNG files hold 8-bit images, as the array-level function quantises them: the same number
    assert out["fid_domain"] == pytest.approx(frechet_distance_of_images(real_x, fake_x, extractor), rel=1e-6)
    assert cli_fid(real, noisy)["fid_domain"] > 3 * out["fid_domain"]
    assert cli_fid(fake, real)["fid_domain"] == pytest.approx(out["fid_domain"], rel=1e-6)

    vs_test_split = cli_fid("mnist", fake)
    assert vs_test_split["num_real"] == 10_000 and vs_test_split["fid_domain"] > 0

    assert main(["fid", str(tmp_path / "missing"), str(fake), "--data-root", str(DATA)]) == 2
    err = capsys.readouterr().err
    assert "neither a folder nor a dataset" in err and "Traceback" not in err
    assert main(["fid", "mnist", str(tmp_path / "nothing-here"), "--data-root", str(DATA)]) == 2
    assert "is not a folder of images" in capsys.readouterr().err
