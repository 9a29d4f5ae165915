"""FID (Heusel et al. 2017) through pytorch-fid: Inception features, or vaebench's offline domain
classifier. Array-level functions in frechet.py; the registered metrics in metric.py."""

from vaebench.metrics.fid import metric  # noqa: F401  (registers fid, fid_recon)
from vaebench.metrics.fid.domain import DomainExtractorConfig, domain_extractor
from vaebench.metrics.fid.frechet import (FeatureExtractor, FeatureStatistics, feature_statistics,
                                          frechet_distance, frechet_distance_of_images)
from vaebench.metrics.fid.inception import InceptionExtractor, resolve_weights
from vaebench.metrics.fid.metric import make_extractor
from vaebench.metrics.fid.reference import reference_statistics

__all__ = ["DomainExtractorConfig", "FeatureExtractor", "FeatureStatistics", "InceptionExtractor",
           "domain_extractor", "feature_statistics", "frechet_distance",
           "frechet_distance_of_images", "make_extractor", "reference_statistics", "resolve_weights"]
