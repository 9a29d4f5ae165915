import pytest

from vaebench.errors import VaebenchError
from vaebench.registry import Registry


def test_lookup_and_did_you_mean():
    reg = Registry("model")
    reg.register("beta_vae", description="d", paper="p")(object)
    assert reg.get("beta_vae") is object
    with pytest.raises(VaebenchError, match=r"suite.yaml: models\[0\]\.name: unknown model 'beta_vea'\. "
                                            r"Did you mean 'beta_vae'\?"):
        reg.get("beta_vea", where="suite.yaml: models[0].name")


def test_double_registration_is_a_bug():
    reg = Registry("metric")
    reg.register("x", description="d")(len)
    with pytest.raises(ValueError):
        reg.register("x", description="d")(len)
