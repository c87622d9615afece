"""Descriptors, t-SNE, grid snapping and nearest neighbours on tiny inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import find_layer, unit_layers
from reportgen.sections.clusters import compute


def _clusters(n: int, dims: int = 8, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(0, 4, (classes, dims))
    return (centres[labels] + rng.normal(0, 1, (n, dims))).astype(np.float32), labels


def test_descriptors_are_the_configured_layer_flattened() -> None:
    torch.manual_seed(0)
    model = create_model("model2", in_channels=3, image_size=16, num_classes=4, width=0.125)
    layers = unit_layers(model.eval(), (3, 16, 16))
    fc5 = find_layer(layers, "fc5")
    conv2 = find_layer(layers, "conv2")
    model.train()  # outputs must not depend on (or change) the mode the caller left the model in
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]

    outputs, probs = compute.layer_outputs(model, images, mean, std, [fc5.path, conv2.path], batch_size=2)
    got = outputs[fc5.path]
    assert got.dtype == np.float32 and got.shape == (5, fc5.units)
    assert model.training

    # the same numbers by hand: normalize, run the whole network in eval mode, read the module's output
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) \
        / torch.tensor(std).view(1, 3, 1, 1)
    seen: dict[str, torch.Tensor] = {}
    handle = model.get_submodule(fc5.path).register_forward_hook(lambda _m, _i, out: seen.setdefault("y", out))
    model.eval()
    with torch.no_grad():
        model(x)
    handle.remove()
    np.testing.assert_allclose(got, seen["y"].numpy(), rtol=1e-5, atol=1e-5)

    conv = outputs[conv2.path]
    assert probs.shape == (5, 4)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    stopped, _ = compute.layer_outputs(model, images, mean, std, [conv2.path], probabilities=False)
    np.testing.assert_allclose(stopped[conv2.path], conv, rtol=1e-5, atol=1e-6)  # the pass that stops early agrees
    assert conv.shape == (5, int(np.prod(conv2.shape)))  # conv maps are flattened (C*H*W)


def _brute_force(x: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((x[queries, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    d[np.arange(len(queries)), queries] = np.inf
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


@pytest.mark.parametrize("dims", [2, 16])  # 2D maps take the k-d tree path, descriptors the chunked one
def test_nearest_equals_brute_force(dims: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "_CHUNK_PAIRS", 200 * 7)  # several chunks even for 200 points
    x, _ = _clusters(200, dims)
    queries = np.array([0, 5, 199, 42, 17, 100, 3])
    idx, dist = compute.nearest(x, queries, 6)
    want_idx, want_dist = _brute_force(x, queries, 6)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-5)
    assert not (idx == queries[:, None]).any()


def test_nearest_excludes_the_query_among_duplicates() -> None:
    x = np.zeros((5, 2), np.float32)  # every point is at distance 0 from every other
    for data in (x, np.zeros((5, 10), np.float32)):
        idx, dist = compute.nearest(data, np.arange(5), 4)
        assert all(set(row) == set(range(5)) - {q} for q, row in enumerate(idx))
        assert (dist == 0).all()


def _is_permutation_into(cells: np.ndarray, n: int, rows: int, cols: int) -> bool:
    return cells.shape == (n,) and len(set(cells.tolist())) == n and cells.min() >= 0 and cells.max() < rows * cols


@pytest.mark.parametrize("n", [100, 90])  # a full grid, and one with empty cells
def test_grid_assign_exact_is_an_optimal_permutation(n: int) -> None:
    xy = np.random.default_rng(1).normal(size=(n, 2))
    rows, cols = compute.grid_shape(100)
    cells = compute.grid_assign(xy, rows, cols)
    assert _is_permutation_into(cells, n, rows, cols)
    # exactness: no swap of two points' cells (and no move to an empty cell) lowers the cost
    units = compute._to_grid_units(xy, rows, cols)
    centres = np.stack([np.arange(rows * cols) % cols + 0.5, np.arange(rows * cols) // cols + 0.5], 1)
    cost = ((units[:, None] - centres[None]) ** 2).sum(-1)
    mine = cost[np.arange(n), cells]
    swapped = cost[:, cells]  # swapped[i, j]: point i in j's cell
    assert (mine[:, None] + mine[None, :] <= swapped + swapped.T + 1e-9).all()
    free = np.setdiff1d(np.arange(rows * cols), cells)
    assert (cost[:, free] >= mine[:, None] - 1e-9).all()


@pytest.mark.parametrize("n, rows, cols", [(400, 20, 20), (350, 19, 21), (37, 1, 40)])
def test_grid_assign_blocks_are_a_permutation_and_keep_places(n: int, rows: int, cols: int) -> None:
    xy, _ = _clusters(n, 2, seed=3)
    cells = compute.grid_assign(xy, rows, cols, cap=64)  # forces several levels of splitting
    assert _is_permutation_into(cells, n, rows, cols)
    # points keep their order across the map: the left fifth of the points stays left of the right fifth
    col = cells % cols
    left, right = xy[:, 0] < np.quantile(xy[:, 0], 0.2), xy[:, 0] > np.quantile(xy[:, 0], 0.8)
    assert col[left].max() <= col[right].min() or col[left].mean() < col[right].mean() - cols / 3
    exact = compute.grid_assign(xy, rows, cols, cap=rows * cols)
    units = compute._to_grid_units(xy, rows, cols)

    def cost(c: np.ndarray) -> float:
        return float((((units - np.stack([c % cols + 0.5, c // cols + 0.5], 1)) ** 2).sum(1)).sum())
    assert cost(exact) <= cost(cells) < 2.0 * cost(exact)  # an approximation, and not a bad one


def test_grid_assign_refuses_too_many_points() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        compute.grid_assign(np.zeros((10, 2)), 3, 3)


def test_same_seed_gives_the_same_map() -> None:
    x, labels = _clusters(120, 16)
    # one thread: on a busy machine two OpenMP threads spin and take many times longer
    a, b = compute.tsne(x, seed=7, n_jobs=1), compute.tsne(x, seed=7, n_jobs=1)
    assert a.shape == (120, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, compute.tsne(x, seed=8, n_jobs=1))
    # the map keeps well-separated clusters apart
    assert compute.knn_accuracy(a, labels, k=5) > 0.9


def test_precision_at_k_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    queries = np.array([0, 1, 3])
    indices = np.array([[1, 3],    # query 0 (class 0): one of two neighbours is class 0
                        [0, 2],    # query 1 (class 0): both
                        [0, 5]])   # query 3 (class 1): none
    got = compute.precision_at_k(indices, labels, queries)
    np.testing.assert_allclose(got[:2], [0.75, 0.0])
    assert np.isnan(got[2])  # class 2 had no query


def test_knn_accuracy_by_hand() -> None:
    # two tight pairs far apart and a point between them, nearer to point 1 than to point 2
    points = np.array([[0, 0], [0, 1], [10, 10], [10, 11], [5, 5.2]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 0])
    # k=2: points 2 and 4 each see one neighbour of either class; the nearer neighbour's class wins the
    # tie (breaking it by the lower class index would call point 2 class 0)
    assert compute.knn_accuracy(points, labels, k=2) == 1.0
    # k=1 with point 4 relabelled: its nearest neighbour (point 1) is class 0, so 4 of 5 are right
    assert compute.knn_accuracy(points, np.array([0, 0, 1, 1, 1]), k=1) == pytest.approx(0.8)


def test_choose_queries_is_deterministic_and_covers_classes() -> None:
    labels = np.repeat(np.arange(3), 10)
    predictions = labels.copy()
    predictions[[1, 12, 25, 26]] = (labels[[1, 12, 25, 26]] + 1) % 3
    q = compute.choose_queries(labels, predictions, per_class=1, misclassified=3, seed=4)
    assert np.array_equal(q, compute.choose_queries(labels, predictions, per_class=1, misclassified=3, seed=4))
    assert labels[q[:3]].tolist() == [0, 1, 2] and (predictions[q[:3]] == labels[q[:3]]).all()
    assert len(q) == 6 and (predictions[q[3:]] != labels[q[3:]]).all() and len(set(q.tolist())) == 6


def test_the_map_is_the_same_bytes_whatever_the_blas_and_openmp_threads() -> None:
    """The map depends on how float sums are split across threads: t-SNE's own thread count is keyed,
    and the BLAS/OpenMP pools of its PCA and initialization are pinned, so the machine's core count
    and OMP_NUM_THREADS change nothing."""
    script = ("import hashlib, sys, numpy as np; from reportgen.sections.clusters import compute; "
              "rng = np.random.default_rng(0); "
              "x = np.concatenate([rng.normal(c, 1.0, (150, 64)) for c in range(4)]).astype(np.float32); "
              "xy = compute.tsne(x, 0, n_jobs=compute.TSNE_THREADS); "
              "cells = compute.grid_assign(xy, *compute.grid_shape(len(xy))); "
              "print(hashlib.sha256(xy.tobytes() + cells.tobytes()).hexdigest())")
    runs = []
    for threads in ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, {}):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")} | threads
        runs.append(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                   check=True).stdout.strip())
    assert runs[0] == runs[1] and len(runs[0]) == 64


def test_descriptors_without_variation_give_a_finite_layout_and_say_so() -> None:
    """Constant images (or a dead layer) give every image the same descriptor: t-SNE's initialization
    would divide by a zero spread and hand NaN to the grid assignment."""
    x = np.ones((40, 16), np.float32)
    assert compute.no_variation(x) and not compute.no_variation(np.eye(4, dtype=np.float32))
    xy = compute.tsne(x, 0, n_jobs=1)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    cells = compute.grid_assign(xy, *compute.grid_shape(40))
    assert sorted(cells.tolist()) == sorted(set(cells.tolist()))  # one image per cell
