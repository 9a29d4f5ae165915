"""FID cost with the domain extractor: features + statistics + distance for 10,000 MNIST images,
the matrix square root alone, training the extractor, and a cached reference statistic.

    python benchmarks/fid_speed.py [--data-root ../shared/data] [--num-images 10000] [--threads 1]

The cache is a fresh temporary folder (or --cache DIR), so the first extractor and reference
statistics are computed, not loaded. The "generated" set is the first num-images MNIST training
images. Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from threadpoolctl import threadpool_limits

from vaebench.metrics.fid import domain_extractor, frechet_distance, reference_statistics
from vaebench.metrics.fid.frechet import batches_of, extract_features, statistics_of_features
from vaebench.runner.run import load_dataset


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def sqrtm_seconds(dim: int, seed: int = 0) -> float:
    """One scipy.linalg.sqrtm of a product of two (dim, dim) sample covariances, one BLAS thread
    (as frechet_distance runs it)."""
    rs = np.random.RandomState(seed)
    a, b = (np.cov(rs.randn(2 * dim, dim), rowvar=False) for _ in range(2))
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timed(lambda: linalg.sqrtm(a @ b))[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("VAEBENCH_DATA", "data"))
    p.add_argument("--num-images", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cache", metavar="DIR", help="default: a fresh temporary folder")
    p.add_argument("--skip-inception-sqrtm", action="store_true",
                   help="do not time a 2048x2048 square root (Inception's size, ~15 s)")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = Path(args.cache or tempfile.mkdtemp(prefix="vaebench-fid-speed-"))

    mnist, load_s = timed(lambda: load_dataset("mnist", {}, Path(args.data_root)))
    extractor, train_s = timed(lambda: domain_extractor(mnist, cache, Path(args.data_root)))
    _, load_extractor_s = timed(lambda: domain_extractor(mnist, cache, Path(args.data_root)))
    n = min(args.num_images, mnist.num_examples("test"))
    fake_images = mnist.batch("train", torch.arange(n))[0]

    features, features_s = timed(
        lambda: extract_features(batches_of(fake_images, args.batch_size), extractor))
    fake, stats_s = timed(lambda: statistics_of_features(features))

    def reference():
        return reference_statistics(mnist, extractor, n, cache, args.batch_size)

    (real, cold_info), reference_cold_s = timed(reference)
    (real_again, warm_info), reference_warm_s = timed(reference)
    assert cold_info["cache"] == "miss" and warm_info["cache"] == "hit"
    assert np.array_equal(real.sigma, real_again.sigma)
    value, distance_s = timed(lambda: frechet_distance(real, fake))
    sqrtm_s = sqrtm_seconds(extractor.dim)
    sqrtm_2048_s = None if args.skip_inception_sqrtm else sqrtm_seconds(2048)

    report = {
        "benchmark": "fid_speed", "extractor": "domain", "dataset": "mnist", "num_images": n,
        "feature_dim": extractor.dim, "device": "cpu", "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(), "dataset_load_s": load_s,
        "extractor_train_s": train_s, "extractor_load_s": load_extractor_s,
        "extractor_test_accuracy": extractor.info["test_accuracy"],
        "features_s": features_s, "statistics_s": stats_s, "distance_s": distance_s,
        "features_statistics_distance_s": features_s + stats_s + distance_s,
        "sqrtm_s": sqrtm_s, "sqrtm_2048_s": sqrtm_2048_s,
        "reference_cold_s": reference_cold_s, "reference_cached_s": reference_warm_s,
        "reference_speedup": reference_cold_s / reference_warm_s, "fid_domain_train_vs_test": value,
    }
    print(f"MNIST, domain extractor ({extractor.dim}-d), {n} images, CPU, {report['cpu_threads']} "
          f"torch thread(s); dataset ready in {load_s:.1f} s")
    print(f"extractor: trained in {train_s:8.2f} s (test accuracy "
          f"{extractor.info['test_accuracy']}), loaded from the cache in {load_extractor_s:.3f} s")
    print(f"features                 : {features_s:8.3f} s")
    print(f"statistics (mean, cov)   : {stats_s:8.3f} s")
    print(f"Frechet distance         : {distance_s:8.3f} s  (of which sqrtm {sqrtm_s:.3f} s, "
          f"{extractor.dim}x{extractor.dim})")
    print(f"features+statistics+distance: {report['features_statistics_distance_s']:.3f} s  "
          f"(fid_domain, MNIST train vs test = {value:.3f})")
    if sqrtm_2048_s is not None:
        print(f"sqrtm at Inception's 2048x2048: {sqrtm_2048_s:.2f} s (one BLAS thread)")
    print(f"reference statistics     : {reference_cold_s:8.3f} s computed, {reference_warm_s:.3f} s "
          f"from the cache ({report['reference_speedup']:.0f}x faster)")
    line = json.dumps(report)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
