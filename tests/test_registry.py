import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_lookup_and_did_you_mean():
    reg = Registry("model", "vaebench.models")
    reg.register("beta_vae", description="d", paper="p")(object)
    assert reg.get("beta_vae") is object
    with pytest.raises(VaebenchError, match=r"suite.yaml: models\[0\]\.name: unknown model 'beta_vea'\. "
                                            r"Did you mean 'beta_vae'\?"):
        reg.get("beta_vea", where="suite.yaml: models[0].name")


def test_double_registration_is_a_bug():
    reg = Registry("metric", "vaebench.metrics")
    reg.register("x", description="d")(len)
    with pytest.raises(ValueError):
        reg.register("x", description="d")(len)


# --- registries fill themselves -----------------------------------------------------------------

def _names_in_a_fresh_interpreter(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_lookup_works_whatever_was_imported_first():
    from vaebench.registry import DATASETS, EXECUTORS, METRICS, MODELS

    expected = {r.kind: [e.name for e in r.entries()] for r in (MODELS, DATASETS, METRICS, EXECUTORS)}
    assert {"vae", "dsprites_procedural", "mig", "local"} <= {n for v in expected.values() for n in v}
    # load_suite alone: every shipped suite's datasets, models and metrics are found
    got = _names_in_a_fresh_interpreter(
        "import glob, json\n"
        "from vaebench.runner.suite import load_suite\n"
        "for path in sorted(glob.glob('suites/*.yaml')): load_suite(path)\n"
        "from vaebench.registry import DATASETS, EXECUTORS, METRICS, MODELS\n"
        "print(json.dumps({r.kind: [e.name for e in r.entries()] "
        "for r in (MODELS, DATASETS, METRICS, EXECUTORS)}))")
    assert got == expected
    # the report alone knows which way each score is better
    got = _names_in_a_fresh_interpreter(
        "import json\nfrom vaebench.report.leaderboard import lower_is_better\n"
        "print(json.dumps([lower_is_better(s) for s in ['elbo', 'elbo_kl', 'fid_domain', 'mig', "
        "'train_seconds', 'images_per_s']]))")
    assert got == [False, True, True, False, True, False]


# --- metrics declare which way each score is better -------------------------------------------

# Their scores are named after the feature extractor; checked against every extractor name, as a
# run needs a trained domain extractor (about a minute on dSprites).
NAMED_BY_EXTRACTOR = {"fid": "fid_{}", "fid_recon": "fid_recon_{}"}


def test_every_metric_declares_a_direction_for_every_score_it_returns():
    from vaebench.metrics.base import EvalContext
    from vaebench.metrics.fid.metric import EXTRACTORS
    from vaebench.models.vae import VAE, VAEConfig
    from vaebench.registry import METRICS, score_direction
    from vaebench.runner.run import load_dataset

    dataset = load_dataset("dsprites_procedural", {"train_size": 256, "test_size": 64}, REPO / "data")
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4), dataset.image_shape, dataset.num_classes).eval()
    ctx = EvalContext(model=model, dataset=dataset, device=torch.device("cpu"), seed=0,
                      data_root=REPO / "data")
    for entry in METRICS.entries():
        if entry.name in NAMED_BY_EXTRACTOR:
            returned = [NAMED_BY_EXTRACTOR[entry.name].format(ex) for ex in EXTRACTORS]
        else:
            returned = list(entry.obj(ctx, **entry.quick_params).scores)
        assert returned, entry.name
        for score in returned:
            assert score_direction(score, entry.name) in ("higher", "lower"), (entry.name, score)
    assert score_direction("elbo", "elbo") == "higher" and score_direction("elbo_kl", "elbo") == "lower"
    assert score_direction("recon_error") == "lower" and score_direction("no_such_score") is None


def test_a_metric_without_directions_or_with_unknown_quick_params_is_refused():
    from vaebench.registry import register_metric

    with pytest.raises(ValueError, match="'higher' or 'lower'"):
        register_metric("x", description="d", scores={"x": "up"})
    with pytest.raises(ValueError, match="quick_params"):
        register_metric("x", description="d", scores={"x": "higher"},
                        quick_params={"num_trian": 10})(lambda ctx, num_train=100: None)
