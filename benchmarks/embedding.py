"""Clustering compute at 1K, 7K and 70K images: descriptors, t-SNE (openTSNE and scikit-learn), grid
snapping, nearest neighbours, each size in its own process so peak memory is per size.

    python benchmarks/embedding.py [--sizes 1000 7000 70000] [--sklearn-max 7000] [--threads 2]

Descriptors are Model II's fc5 at width 0.5 on random 28x28x1 images (the default config's model and input);
t-SNE, grid snapping and neighbours run on synthetic 128-D descriptors with 10 clusters on a
20-dimensional subspace (real fc descriptors are similarly low in intrinsic dimension), since
an untrained network's features have no clusters to find. Timings on a shared machine are noisy.

Measured on the shared 2-core machine at load 7-11 (about 4x oversubscribed; idle runs are
several times faster): 7K total 120 s (openTSNE 75 s FFT / 32 s BH, sklearn 255 s); 70K total
944 s, of which neighbours of every image 288 s, t-SNE 324 s, descriptors 271 s; peak 1.2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import find_layer, unit_layers
from reportgen.sections.clusters import compute as embedding


def synthetic(n: int, dims: int = 128, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered descriptors: class centres plus noise on a random 20-D subspace and a little everywhere."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(0, 2.5, (classes, dims))
    basis = np.linalg.qr(rng.normal(size=(dims, 20)))[0].T
    x = centres[labels] + rng.normal(0, 1, (n, 20)) @ basis + rng.normal(0, 0.1, (n, dims))
    return np.maximum(x, 0).astype(np.float32), labels  # ReLU outputs are non-negative


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def one(n: int, sklearn_max: int, threads: int, descriptor_images: int) -> dict[str, Any]:
    """Every timing for `n` points; runs in a fresh process."""
    torch.set_num_threads(threads)
    row: dict[str, Any] = {"n": n}
    model = create_model("model2", in_channels=1, image_size=28, num_classes=10, width=0.5).eval()
    layer = find_layer(unit_layers(model, (1, 28, 28)), "fc5")
    m = min(n, descriptor_images)
    images = np.random.default_rng(0).integers(0, 256, (m, 28, 28, 1), dtype=np.uint8)
    _, seconds = timed(lambda: embedding.layer_outputs(model, images, [0.13], [0.31], [layer.path], batch_size=256))
    row["descriptors_s"] = seconds * n / m  # measured on m images, scaled to n when m < n
    row["descriptors_measured_on"] = m

    x, labels = synthetic(n)
    xy, row["tsne_opentsne_s"] = timed(lambda: embedding.tsne(x, seed=0, n_jobs=threads))
    row["tsne_opentsne_method"] = "bh" if n < embedding.BH_BELOW else "fft"
    other = "opentsne-fft" if n < embedding.BH_BELOW else "opentsne-bh"
    row["tsne_opentsne_other_s"] = timed(lambda: embedding.tsne(x, seed=0, method=other, n_jobs=threads))[1] \
        if n <= 7000 else None
    row["tsne_sklearn_s"] = timed(lambda: embedding.tsne(x, seed=0, method="sklearn", n_jobs=threads))[1] \
        if n <= sklearn_max else None

    rows, cols = embedding.grid_shape(n)
    _, row["grid_assign_s"] = timed(lambda: embedding.grid_assign(xy, rows, cols))
    _, row["neighbours_all_k8_s"] = timed(lambda: embedding.nearest(x, np.arange(n), 8))
    queries = embedding.choose_queries(labels, labels, misclassified=0)
    _, row["neighbours_queries_s"] = timed(lambda: embedding.nearest(x, queries, 8))
    (row["knn_acc_descriptors"], seconds_d) = timed(lambda: embedding.knn_accuracy(x, labels, k=5))
    (row["knn_acc_map"], seconds_m) = timed(lambda: embedding.knn_accuracy(xy, labels, k=5))
    row["knn_accuracy_s"] = seconds_d + seconds_m
    row["total_s"] = (row["descriptors_s"] + row["tsne_opentsne_s"] + row["grid_assign_s"]
                      + row["neighbours_all_k8_s"] + row["neighbours_queries_s"] + row["knn_accuracy_s"])
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def _fmt(v: Any) -> str:
    if v is None:
        return "skipped"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 7000, 70000])
    parser.add_argument("--sklearn-max", type=int, default=7000,
                        help="skip scikit-learn t-SNE above this size (70K would take well over ten minutes here)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--descriptor-images", type=int, default=7000,
                        help="run the network on at most this many images and scale the time to n")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.sklearn_max, args.threads, args.descriptor_images)))
        return
    print("timings in seconds on a shared machine (other jobs running): noisy; "
          f"{args.threads} threads; total = descriptors + openTSNE (auto) + grid + neighbours + kNN accuracy")
    keys = ["n", "descriptors_s", "tsne_opentsne_method", "tsne_opentsne_s", "tsne_opentsne_other_s",
            "tsne_sklearn_s", "grid_assign_s", "neighbours_all_k8_s", "neighbours_queries_s", "knn_accuracy_s",
            "knn_acc_descriptors", "knn_acc_map", "total_s", "peak_rss_mib"]
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--sklearn-max", str(args.sklearn_max),
               "--threads", str(args.threads), "--descriptor-images", str(args.descriptor_images)]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print("  ".join(f"{k}={_fmt(result[k])}" for k in keys), flush=True)


if __name__ == "__main__":
    main()
