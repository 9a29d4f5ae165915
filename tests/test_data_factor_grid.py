"""The factor interface the new datasets share: every disentanglement metric and the FID domain
classifier run on them with no per-dataset code, and a model trains on 3-channel images."""

import numpy as np
import pytest
import torch

import vaebench.metrics  # noqa: F401  (registers metrics)
import vaebench.models  # noqa: F401  (registers models)
from vaebench.data.factor_grid import GridDataset, GridFactors, strides
from vaebench.metrics.base import EvalContext
from vaebench.metrics.fid.domain import DomainExtractorConfig, domain_extractor
from vaebench.registry import DATASETS, METRICS, MODELS

from test_data_shapes3d import SIZES as SHAPES_SIZES, write_h5
from test_data_smallnorb import SIZES as NORB_SIZES, write_norb

SMALL = {"mig": {"num_train": 64}, "factorvae_score": {"num_train": 20, "num_eval": 10,
         "num_variance_estimate": 64, "batch_size": 8},
         "betavae_score": {"num_train": 20, "num_eval": 10, "batch_size": 4},
         "dci": {"num_train": 64, "num_test": 32, "n_jobs": 1}, "sap": {"num_train": 64, "num_test": 32},
         "modularity": {"num_train": 64, "num_test": 32, "n_jobs": 1}}


def test_row_major_strides_and_round_trip():
    assert strides([4, 24, 183]).tolist() == [24 * 183, 183, 1]
    gt = GridFactors(["a", "b", "c"], [2, 3, 4], lambda rows: np.zeros((len(rows), 1, 2, 2), np.uint8))
    f = np.array([[1, 2, 3], [0, 1, 0]])
    assert gt.rows_of(f).tolist() == [1 * 12 + 2 * 4 + 3, 4] and np.array_equal(gt.all_factors_of(gt.rows_of(f)), f)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_h5(root / "3dshapes" / "3dshapes.h5")
    write_norb(root / "small_norb")
    return {"shapes3d": DATASETS.get("shapes3d")(root, test_size=20, factor_sizes=SHAPES_SIZES),
            "smallnorb": DATASETS.get("smallnorb")(root, test_size=16, factor_sizes=NORB_SIZES)}


# smallnorb stands for the random-observation datasets (its instance; colour dSprites' colour)
@pytest.mark.parametrize("name", ["shapes3d", "smallnorb"])
def test_metrics_domain_classifier_and_training_need_no_dataset_code(name, datasets):
    ds = datasets[name]
    torch.manual_seed(0)
    cls = MODELS.get("vae")
    model = cls(cls.Config(), ds.image_shape, ds.num_classes)
    opts = model.make_optimizers(1e-3)
    for step in range(2):  # the encoder/decoder take the dataset's channel count
        x, y = ds.batch("train", torch.randint(0, ds.num_examples("train"), (8,)))
        terms = model.training_step(x, y, step, opts)
        assert torch.isfinite(terms["loss"])
    model.eval()
    ctx = EvalContext(model=model, dataset=ds, device=torch.device("cpu"), seed=0, data_root=None,
                      batch_size=64)
    for metric, params in SMALL.items():
        scores = METRICS.get(metric)(ctx, **params).scores
        assert scores and all(np.isfinite(v) for v in scores.values()), (metric, scores)
    # a random-observation dataset is never looked up in a code table
    assert ("disentanglement.code_table" in ctx.cache) == ds.factors.deterministic
    extractor = domain_extractor(ds, None, None, DomainExtractorConfig(steps=3, batch_size=8, test_examples=16))
    assert set(extractor.info["test_accuracy"]) == set(ds.factors.factor_names)
    assert extractor(ds.batch("test", torch.arange(4))[0]).shape == (4, 128)
