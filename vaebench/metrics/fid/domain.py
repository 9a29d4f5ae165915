"""The domain extractor: a small conv classifier trained by vaebench on the dataset itself.

Inception features describe natural photographs; on 28x28 digits or 64x64 binary sprites they are
slow to compute and need a 91 MB download. The domain extractor is the offline alternative: a
classifier of the dataset's labels (MNIST: the digit) or, where the dataset has ground-truth
factors, of every factor (dSprites: shape, scale, orientation, x, y), whose 128-d penultimate
layer gives the features. FID under it is reported as `fid_domain`: comparable between runs and
machines of vaebench, never to Inception FID in papers.

It is trained on CPU, single-threaded, deterministically, from a fixed seed, on the train split of
the registered dataset with its default parameters (so a suite's train_size does not change it),
and cached under <cache_dir>/fid/domain/<dataset>-<key>/ by a content hash of what determines it:
dataset, image shape, targets, the source of this file's network and training code, the recipe
(DomainExtractorConfig) and EXTRACTOR_VERSION. The cache holds the weights (extractor.pt) and
extractor.json with the test accuracy.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaebench.data.base import ImageDataset
from vaebench.errors import NotApplicable
from vaebench.metrics.fid.frechet import FeatureExtractor
from vaebench.registry import DATASETS
from vaebench.files import atomic_write_bytes, read_json, write_json

# Raise when the extractor changes in a way its source code does not show (e.g. its data).
EXTRACTOR_VERSION = 1
TRAIN_COUNTER = {"trainings": 0}  # how many extractors this process trained (tests, benchmark)


@dataclass(frozen=True)
class DomainExtractorConfig:
    """The training recipe; part of the cache key. About two epochs of MNIST at the defaults
    (98.4% test accuracy, ~11 s on one CPU core; dSprites ~60 s)."""

    steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    feature_dim: int = 128
    test_examples: int = 10_000  # test images the recorded accuracy is measured on


class DomainClassifier(nn.Module):
    """Stride-2 3x3 convs (16, 32, 64, 64 channels) until the map is at most 4 pixels wide, an FC
    layer of feature_dim units, then one linear head per target. x: (B, C, H, W) in [0, 1]."""

    def __init__(self, image_shape, head_sizes: list[int], feature_dim: int = 128):
        super().__init__()
        c, h, w = image_shape
        layers, side = [], max(h, w)
        for width in (16, 32, 64, 64):
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU()]
            c, side, h, w = width, (side + 1) // 2, (h + 1) // 2, (w + 1) // 2
            if side <= 4:
                break
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(c * h * w, feature_dim)
        self.heads = nn.ModuleList(nn.Linear(feature_dim, k) for k in head_sizes)

    def features(self, x):
        """(B, feature_dim): the penultimate layer before its ReLU, so no unit is constantly zero
        and the feature covariance stays full rank."""
        return self.fc(self.convs(x))

    def forward(self, x):
        """Logits of every head: list of (B, k)."""
        h = F.relu(self.features(x))
        return [head(h) for head in self.heads]


class DomainExtractor(FeatureExtractor):
    """A trained DomainClassifier as a FeatureExtractor; resizes other image sizes to its own."""

    name = "domain"

    def __init__(self, classifier: DomainClassifier, image_shape, key: str, info: dict):
        super().__init__()
        self.classifier, self.image_shape = classifier.eval(), tuple(image_shape)
        self.key, self.info, self.dim = key, info, classifier.fc.out_features

    def forward(self, x):
        c, h, w = self.image_shape
        if x.shape[1] != c:  # e.g. RGB files of a grey dataset: to grey, then c channels
            x = x.mean(1, keepdim=True).expand(-1, c, -1, -1)
        if tuple(x.shape[-2:]) != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return self.classifier.features(x)


# --- what it learns ----------------------------------------------------------------------------
def target_names(dataset: ImageDataset) -> list[str]:
    if dataset.factors is not None:
        return list(dataset.factors.factor_names)
    return [dataset.class_name]


def target_sizes(dataset: ImageDataset) -> list[int]:
    if dataset.factors is not None:
        return list(dataset.factors.factor_sizes)
    return [dataset.num_classes]


def targets(dataset: ImageDataset, split: str, idx: torch.Tensor) -> torch.Tensor:
    """(B, K) int64 classes the classifier predicts: every ground-truth factor, else the label."""
    if dataset.factors is not None:
        return dataset.factor_classes(split, idx)
    return dataset.labels(split)[idx][:, None]


def data_id(dataset: ImageDataset, data_root: Path | None) -> str:
    """How the extractor's training data enters the cache key: the registered dataset's name
    (it is trained on its default parameters), or for a dataset made in memory a hash of its
    train split."""
    if dataset.name in DATASETS and data_root is not None:
        return f"registered:{dataset.name}"
    digest = hashlib.sha256()
    for x, y in dataset.iter_batches("train", 4096):
        digest.update((x * 255).round().to(torch.uint8).numpy().tobytes())
        digest.update(y.numpy().tobytes())
    return f"content:{digest.hexdigest()}"


def cache_key(dataset: ImageDataset, data_id: str, config: DomainExtractorConfig) -> str:
    code = "".join(inspect.getsource(f) for f in (DomainClassifier, train_classifier, targets))
    parts = {"dataset": dataset.name, "data": data_id, "image_shape": list(dataset.image_shape),
             "targets": dict(zip(target_names(dataset), target_sizes(dataset))),
             "code": hashlib.sha256(code.encode()).hexdigest(), "config": asdict(config),
             "version": EXTRACTOR_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# --- training ----------------------------------------------------------------------------------
@torch.enable_grad()  # metrics run under no_grad
def train_classifier(dataset: ImageDataset, config: DomainExtractorConfig) -> tuple[DomainClassifier, dict]:
    """Adam on the summed cross-entropy of every head, batches drawn with replacement from the
    train split by a seeded generator. CPU, one thread, deterministic algorithms: the same
    weights on every run of the same machine. Returns the classifier and per-target test
    accuracy."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = DomainClassifier(dataset.image_shape, target_sizes(dataset), config.feature_dim)
        gen = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        n = dataset.num_examples("train")
        model.train()
        for _ in range(config.steps):
            idx = torch.randint(0, n, (config.batch_size,), generator=gen)
            x, _ = dataset.batch("train", idx, generator=gen)
            t = targets(dataset, "train", idx)
            loss = sum(F.cross_entropy(logits, t[:, k]) for k, logits in enumerate(model(x)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        accuracy = heldout_accuracy(model, dataset, config.test_examples)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    TRAIN_COUNTER["trainings"] += 1
    return model, accuracy


@torch.no_grad()
def heldout_accuracy(model: DomainClassifier, dataset: ImageDataset, limit: int) -> dict[str, float]:
    """Accuracy of every head on the first `limit` test images: {target name: fraction}."""
    correct, n = np.zeros(len(model.heads)), 0
    for start in range(0, min(limit, dataset.num_examples("test")), 1000):
        idx = torch.arange(start, min(start + 1000, limit, dataset.num_examples("test")))
        x, _ = dataset.batch("test", idx)
        t = targets(dataset, "test", idx)
        correct += [(logits.argmax(1) == t[:, k]).sum().item() for k, logits in enumerate(model(x))]
        n += len(idx)
    return dict(zip(target_names(dataset), (correct / max(n, 1)).tolist()))


def domain_extractor(dataset: ImageDataset, cache_dir: Path | None, data_root: Path | None = None,
                     config: DomainExtractorConfig = DomainExtractorConfig()) -> DomainExtractor:
    """The dataset's domain extractor: loaded from the cache, else trained and cached.

    dataset: the run's dataset; a registered one is trained on as registered, with default
    parameters, loaded from data_root (only on a cache miss).
    cache_dir: None trains it in this process and writes nothing.
    """
    if dataset.factors is None and dataset.num_classes < 2:
        raise NotApplicable(f"the domain extractor learns a dataset's labels or factors; dataset "
                            f"{dataset.name!r} has neither (use extractor: inception)")
    source = data_id(dataset, data_root)
    key = cache_key(dataset, source, config)
    folder = None if cache_dir is None else Path(cache_dir) / "fid" / "domain" / f"{dataset.name}-{key[:16]}"
    if folder is not None and (folder / "extractor.json").is_file():
        return _load(folder, dataset, key)
    train_data = DATASETS.get(dataset.name)(Path(data_root)) if source.startswith("registered:") else dataset
    t0 = time.perf_counter()
    classifier, accuracy = train_classifier(train_data, config)
    info = {"extractor": "domain", "dataset": dataset.name, "data": source,
            "image_shape": list(dataset.image_shape), "test_accuracy": accuracy,
            "train_seconds": round(time.perf_counter() - t0, 3), "config": asdict(config),
            "version": EXTRACTOR_VERSION, "key": key, "torch": torch.__version__,
            "note": "vaebench's classifier features: not Inception FID, not comparable to papers"}
    if folder is not None:
        buf = io.BytesIO()
        torch.save(classifier.state_dict(), buf)
        atomic_write_bytes(folder / "extractor.pt", buf.getvalue())
        write_json(folder / "extractor.json", info)  # written last: its presence = complete
        info = info | {"cache": str(folder)}
    return DomainExtractor(classifier, dataset.image_shape, key, info)


def _load(folder: Path, dataset: ImageDataset, key: str) -> DomainExtractor:
    info = read_json(folder / "extractor.json") | {"cache": str(folder)}
    classifier = DomainClassifier(dataset.image_shape, target_sizes(dataset),
                                  info["config"]["feature_dim"])
    classifier.load_state_dict(torch.load(folder / "extractor.pt", map_location="cpu",
                                          weights_only=True))
    return DomainExtractor(classifier, dataset.image_shape, key, info)
