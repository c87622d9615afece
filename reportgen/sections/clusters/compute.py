"""Clusterings of test images: layer descriptors, a 2D t-SNE map, its grid snapping and nearest neighbours.

Compute only (numpy, torch, scipy, scikit-learn, openTSNE); drawing lives in `draw.py`.

- `layer_outputs`: layers' outputs (flattened) for a batch of uint8 images, the vectors the map and
  the neighbours are computed from (the write-up used Model II's first FC layer).
- `tsne`: a seeded 2D embedding; openTSNE or scikit-learn, whichever measured faster for the size.
- `grid_assign`: one image per grid cell, as close to its t-SNE position as possible; exact with a
  linear assignment up to `EXACT_CAP` points, a documented block approximation above.
- `nearest`, `precision_at_k`, `knn_accuracy`, `choose_queries`: neighbours in descriptor space and
  how well they (or the 2D map) keep the classes apart.

Nothing here builds an N x N matrix: distances are computed in chunks of rows.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from torch import nn

from reportgen.cache import Artifact
from reportgen.errors import SettingError
from reportgen.nets.checkpoint import Normalizer, class_probabilities, load_model
from reportgen.nets.data import SPLITS, Dataset
from reportgen.nets.layers import LayerError, default_descriptor_layer, find_layer, unit_layers
from reportgen.optvis.hooks import capture, eval_mode, forward_to

log = logging.getLogger(__name__)

# Grid snapping is an O(n^3) linear assignment on an n x n cost matrix. On a 4096-point t-SNE map
# it took 20 s exactly, against 1.7 s in 32 x 32 blocks with 9% more mean displacement (2048 points:
# 0.64 s vs 0.25 s, +1.4%), so `grid_assign` solves blocks of at most this many cells exactly.
EXACT_CAP = 1024
# Below this many points openTSNE's Barnes-Hut gradient beats its FFT one: 2.5 s vs 9.4 s at 1K and
# faster in two of three 7K runs on our shared 2-core machine (benchmarks/embedding.py); openTSNE's
# own "auto" switches at the same 10,000.
BH_BELOW = 10_000
# t-SNE input width: the common practice (van der Maaten's tsne, Karpathy's CNN embeddings) of
# reducing descriptors to 50 principal components first: it keeps the cluster structure, drops
# noise, and the neighbour search that t-SNE starts with costs in proportion to the width.
PCA_DIMS = 50
# Distances are computed for this many query-by-point pairs at a time (64 MiB of float32).
_CHUNK_PAIRS = 1 << 24
# Candidates beyond k that `nearest` re-ranks with exact distances.
_SPARE = 8


def layer_outputs(model: nn.Module, images: np.ndarray, mean: Sequence[float], std: Sequence[float],
                  paths: Sequence[str], batch_size: int = 256,
                  probabilities: bool = True, outputs: Sequence[int] | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({path: float32 (N, D) outputs of each module, flattened per image}, class probabilities
    (N, classes [+ other]: `checkpoint.class_probabilities` with `outputs`)) for uint8 NHWC `images`,
    in one pass: the descriptors the map and the neighbours are computed from. Images are normalized
    the way training saw them: to [0, 1], then per channel (x - mean) / std. The model runs in eval
    mode without gradients; each module's own train/eval flag is restored. With `probabilities` the
    whole network runs and its class probabilities come back too (else the pass stops after the last
    of `paths`)."""
    reference = next(model.parameters(), None)
    norm = Normalizer(mean, std, reference.device if reference is not None else torch.device("cpu"))
    out: dict[str, list[np.ndarray]] = {p: [] for p in paths}
    probs: list[np.ndarray] = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = norm.images(np.ascontiguousarray(images[start:start + batch_size]))
            if probabilities:
                with capture(model, list(paths)) as seen:
                    logits = model(x)
                probs.append(class_probabilities(logits, outputs).cpu().numpy())
            else:
                seen = forward_to(model, x, list(paths), grad=False)
            for p in paths:
                out[p].append(seen[p].flatten(1).float().cpu().numpy())
    arrays = {p: np.concatenate(v).astype(np.float32, copy=False) if v else np.zeros((0, 0), np.float32)
              for p, v in out.items()}
    return arrays, (np.concatenate(probs) if probs else np.zeros((0, 0), np.float32))


def _perplexity(n: int, perplexity: float) -> float:
    # both libraries need n > 3 * perplexity (the neighbour count); tiny sets get a smaller one
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


def tsne(x: np.ndarray, seed: int, *, perplexity: float = 30.0, method: str = "auto", n_jobs: int = 2,
         pca_dims: int | None = PCA_DIMS) -> np.ndarray:
    """float32 (N, 2) t-SNE map of `x`; the same seed, data and `n_jobs` give the same map, whatever
    the machine's core count or OMP_NUM_THREADS: the BLAS and OpenMP pools of the PCA and of the
    initialization are held to one thread, since float sums split across threads round differently.

    `method`: "auto" (openTSNE, Barnes-Hut below `BH_BELOW` points and FFT interpolation above),
    "opentsne-bh", "opentsne-fft" or "sklearn" (Barnes-Hut), for benchmarks and comparisons.
    Descriptors wider than `pca_dims` are first projected on their leading principal components
    (None: never), which speeds up the neighbour search that t-SNE's affinities start from.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _tsne(np.ascontiguousarray(x, dtype=np.float32), seed, perplexity, method, n_jobs, pca_dims)


def no_variation(x: np.ndarray) -> bool:
    """Whether every row of `x` is the same descriptor (constant images, a dead layer): nothing to map."""
    return len(x) > 0 and float(np.ptp(x, axis=0).max(initial=0.0)) == 0.0


def _tsne(x: np.ndarray, seed: int, perplexity: float, method: str, n_jobs: int, pca_dims: int | None) -> np.ndarray:
    n = len(x)
    if n < 4 or no_variation(x):
        # t-SNE needs neighbours and some spread (its initialization divides by it); a line keeps the
        # contract, one finite 2D point per row, and the post says why there is no map
        return np.stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)], 1)
    if pca_dims is not None and x.shape[1] > pca_dims and n > pca_dims:
        from sklearn.decomposition import PCA

        x = PCA(pca_dims, svd_solver="randomized", random_state=seed).fit_transform(x).astype(np.float32)
    perp = _perplexity(n, perplexity)
    if method == "auto":
        method = "opentsne-bh" if n < BH_BELOW else "opentsne-fft"
    if method == "sklearn":
        from sklearn.manifold import TSNE as SkTSNE

        y = SkTSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed,
                   n_jobs=n_jobs).fit_transform(x)
        return np.asarray(y, dtype=np.float32)
    if method not in ("opentsne-bh", "opentsne-fft"):
        raise ValueError(f"unknown t-SNE method {method!r}; known: auto, opentsne-bh, opentsne-fft, sklearn")
    from openTSNE import TSNE as OpenTSNE

    # "exact" neighbours for small sets: Annoy's approximate search is where openTSNE's randomness lives
    neighbors = "exact" if n < 1000 else "annoy"
    gradient = "bh" if method == "opentsne-bh" else "fft"
    y = OpenTSNE(n_components=2, perplexity=perp, negative_gradient_method=gradient, neighbors=neighbors,
                 initialization="pca", random_state=seed, n_jobs=n_jobs, verbose=False).fit(x)
    return np.asarray(y, dtype=np.float32)


def grid_shape(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, cols) of the smallest grid of about `aspect` = cols / rows that holds `n` cells."""
    cols = max(1, math.ceil(math.sqrt(n * aspect)))
    rows = max(1, math.ceil(n / cols))
    return rows, cols


def _to_grid_units(xy: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Points scaled so the map's bounding box spans the grid: x in [0, cols], y in [0, rows]."""
    lo, hi = xy.min(0), xy.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    unit = (xy - lo) / span
    return unit * np.array([cols, rows], dtype=np.float64)


def _assign_exact(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Index into `cells` for each point minimizing the total squared distance (one point per cell)."""
    cost = ((points[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    out = np.empty(len(points), dtype=np.int64)
    out[rows] = cols
    return out


def grid_assign(xy: np.ndarray, rows: int, cols: int, cap: int = EXACT_CAP) -> np.ndarray:
    """Cell index (row * cols + col) per point: distinct cells, each point near its place in the map.

    The map's bounding box is stretched over the grid. For a grid of at most `cap` cells the
    assignment is exact: it minimizes the total squared distance between points and their cells
    (linear_sum_assignment).

    Larger grids get a block approximation: the grid is split in two along its longer side, again
    and again (a k-d split), until every block has at most `cap` cells; at each split the points go
    to the side their position falls in, moved across by rank along that axis only when one side has
    more points than cells. Each block is then solved exactly. What this loses against the exact
    optimum: a point never crosses a split line it was sorted past, so near the lines (and wherever
    a side overflowed, which pushes the excess in order along one axis) points can land a few cells
    further from their place than they would have to (on t-SNE maps of 2048 and 4096 points, 1% and
    9% more mean displacement than exact); clusters stay whole and in place, and memory stays at one
    block's cap x cap cost matrix.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    if n > rows * cols:
        raise ValueError(f"{n} points do not fit a {rows} x {cols} grid")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    points = _to_grid_units(xy, rows, cols)
    out = np.empty(n, dtype=np.int64)
    _assign_block(points, np.arange(n), (0, rows, 0, cols), cols, max(1, cap), out)
    return out


def _assign_block(points: np.ndarray, members: np.ndarray, block: tuple[int, int, int, int], grid_cols: int,
                  cap: int, out: np.ndarray) -> None:
    """Assign `members` (indices into `points`) to the cells of `block` = (r0, r1, c0, c1); fills `out`."""
    r0, r1, c0, c1 = block
    height, width = r1 - r0, c1 - c0
    if len(members) == 0:
        return
    if height * width <= cap:
        rr, cc = np.mgrid[r0:r1, c0:c1]
        centres = np.stack([cc.ravel() + 0.5, rr.ravel() + 0.5], 1)
        chosen = _assign_exact(points[members], centres)
        out[members] = rr.ravel()[chosen] * grid_cols + cc.ravel()[chosen]
        return
    # split the longer side in the middle; axis 0 of `points` is x (columns), axis 1 is y (rows)
    if width >= height:
        axis, cut = 0, c0 + width // 2
        first, second = (r0, r1, c0, cut), (r0, r1, cut, c1)
        first_cells = height * (cut - c0)
    else:
        axis, cut = 1, r0 + height // 2
        first, second = (r0, cut, c0, c1), (cut, r1, c0, c1)
        first_cells = (cut - r0) * width
    second_cells = height * width - first_cells
    coord = points[members, axis]
    order = members[np.argsort(coord, kind="stable")]
    # as many points as lie before the cut, clamped so that neither side gets more points than cells
    k = int(np.count_nonzero(coord < cut))
    k = min(max(k, len(members) - second_cells), first_cells)
    _assign_block(points, order[:k], first, grid_cols, cap, out)
    _assign_block(points, order[k:], second, grid_cols, cap, out)


def _row_chunk(n_points: int) -> int:
    return max(1, min(4096, _CHUNK_PAIRS // max(1, n_points)))


def nearest(x: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (Q, k): the k points of `x` nearest each query row index, itself excluded.

    Euclidean distance, nearest first; equal distances are ordered by index. Computed in chunks of
    queries (2D maps use a k-d tree), so memory stays O(Q x k + chunk x N).
    """
    x = np.asarray(x)
    queries = np.asarray(queries, dtype=np.int64)
    n = len(x)
    k = min(k, n - 1)
    if k <= 0 or len(queries) == 0:
        return np.zeros((len(queries), max(k, 0)), np.int64), np.zeros((len(queries), max(k, 0)), np.float32)
    if x.ndim == 2 and x.shape[1] <= 3:
        return _nearest_tree(x, queries, k)
    data = x.reshape(n, -1).astype(np.float32)
    sq = np.einsum("ij,ij->i", data, data)
    indices = np.empty((len(queries), k), np.int64)
    distances = np.empty((len(queries), k), np.float32)
    step = _row_chunk(n)
    for start in range(0, len(queries), step):
        q = queries[start:start + step]
        d2 = sq[q, None] - 2.0 * (data[q] @ data.T) + sq[None, :]
        d2[np.arange(len(q)), q] = np.inf  # the query itself is never its own neighbour
        # a few spare candidates, re-ranked by exact distance: the expanded form above loses digits
        # for close pairs, which could otherwise swap the k-th and (k+1)-th neighbour
        m = min(k + _SPARE, n - 1)
        part = np.argpartition(d2, m - 1, axis=1)[:, :m] if m < n - 1 else np.argsort(d2, axis=1)[:, :m]
        exact = np.sqrt(((data[part] - data[q][:, None, :]) ** 2).sum(-1))
        order = np.lexsort((part, exact), axis=1)[:, :k]
        indices[start:start + step] = np.take_along_axis(part, order, 1)
        distances[start:start + step] = np.take_along_axis(exact, order, 1)
    return indices, distances


def _nearest_tree(x: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`nearest` for low-dimensional points (the 2D map) with a k-d tree."""
    data = np.asarray(x, dtype=np.float64)
    tree = cKDTree(data)
    dist, idx = tree.query(data[queries], k=k + 1)
    dist, idx = dist.reshape(len(queries), k + 1), idx.reshape(len(queries), k + 1)
    # drop the query itself; if k + 1 duplicates hide it, drop the farthest instead
    is_self = idx == queries[:, None]
    drop = np.where(is_self.any(1), is_self.argmax(1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(len(queries)), drop] = False
    idx, dist = idx[keep].reshape(-1, k), dist[keep].reshape(-1, k)
    order = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, order, 1).astype(np.int64), np.take_along_axis(dist, order, 1).astype(np.float32)


def precision_at_k(indices: np.ndarray, labels: np.ndarray, queries: np.ndarray,
                   num_classes: int | None = None) -> np.ndarray:
    """Per class: the mean, over that class's queries, of the fraction of neighbours sharing the query's label.

    `indices` is `nearest`'s (Q, k) output for `queries`. NaN for a class without queries.
    """
    labels = np.asarray(labels)
    queries = np.asarray(queries, dtype=np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    query_labels = labels[queries]
    hits = (labels[indices] == query_labels[:, None]).mean(1) if indices.shape[1] else np.zeros(len(queries))
    sums = np.bincount(query_labels, weights=hits, minlength=num_classes)
    counts = np.bincount(query_labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def knn_correct(points: np.ndarray, labels: np.ndarray, k: int = 5, max_queries: int | None = 5000,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(queries, correct): leave-one-out k-nearest-neighbour classification of `labels` from `points`.

    `correct[i]` says whether the k neighbours of point `queries[i]` vote for its own label; votes
    are tied in favour of the nearer neighbour's class. Above `max_queries` points a seeded random
    sample of that many points is classified (against all points), to bound the cost; the same
    seed and size give the same sample, so two spaces can be compared image by image.
    """
    labels = np.asarray(labels)
    n = len(labels)
    queries = np.arange(n)
    if n < 2:
        return queries, np.zeros(n, dtype=bool)
    if max_queries is not None and n > max_queries:
        queries = np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))
    indices, _ = nearest(points, queries, k)
    k = indices.shape[1]
    # weight 1 per vote plus a tie-breaker below one vote in total, larger for nearer neighbours
    weights = 1.0 + (k - np.arange(k)) / (k * (k + 1.0))
    num_classes = int(labels.max()) + 1
    votes = np.zeros((len(queries), num_classes))
    np.add.at(votes, (np.repeat(np.arange(len(queries)), k), labels[indices].ravel()), np.tile(weights, len(queries)))
    return queries, votes.argmax(1) == labels[queries]


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5, max_queries: int | None = 5000,
                 seed: int = 0) -> float:
    """Leave-one-out k-nearest-neighbour classification accuracy of `labels` from `points` (see
    `knn_correct`): compare the 2D map with the descriptors it came from, how much separation t-SNE kept."""
    if len(labels) < 2:
        return float("nan")
    return float(knn_correct(points, labels, k, max_queries, seed)[1].mean())


def choose_queries(labels: np.ndarray, predictions: np.ndarray, per_class: int = 1, misclassified: int = 4,
                   seed: int = 0) -> np.ndarray:
    """Query image indices: `per_class` per class (correctly classified where possible), then up to
    `misclassified` misclassified ones; a seeded choice, so the same inputs give the same queries."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        right = members[predictions[members] == c]
        pool = right if len(right) >= per_class else members
        chosen.extend(int(i) for i in np.sort(rng.choice(pool, min(per_class, len(pool)), replace=False)))
    wrong = np.setdiff1d(np.flatnonzero(predictions != labels), chosen)
    if len(wrong) and misclassified > 0:
        chosen.extend(int(i) for i in np.sort(rng.choice(wrong, min(misclassified, len(wrong)), replace=False)))
    return np.asarray(chosen, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The clusters stage: section 4's numbers, written once and drawn by imagemap.clusters_figures_stage

# openTSNE threads: on the shared 2-core machine under load (about 6), 1,000 points took 7-11 s with
# one thread and 48-52 s with two, which spin waiting for each other; more only pays on idle cores,
# so the stage uses one unless build.workers asks for more (a runtime setting: threads change the
# map's last digits, never which images cluster).
TSNE_THREADS = 1
# Query images chosen automatically: one per class, plus this many misclassified ones.
MISCLASSIFIED_QUERIES = 4


def mapped_layer(network: nn.Module, input_shape: tuple[int, int, int], name: str,
                 model: str = "the model", paths: Sequence[str] = ()) -> tuple[str, str]:
    """(name, module path) of the layer `clusters.layer` names: a unit layer (by name or path), or any
    module of the network by path (for torchvision models); SettingError naming the known ones.
    `paths`: the model's `layers` setting."""
    layers = unit_layers(network, input_shape, paths)
    if not name:
        layer = default_descriptor_layer(layers)
        return layer.name, layer.path
    try:
        layer = find_layer(layers, name)
    except LayerError:
        if name and name in dict(network.named_modules()):
            return name, name
        raise SettingError(f"clusters.layer: {name!r} is not a layer of {model}; known: "
                           f"{', '.join(layer.name for layer in layers)} (or any module path)") from None
    return layer.name, layer.path


def mapped_rows(dataset: Dataset, images: str) -> np.ndarray:
    """Dataset rows the map shows: the test images, or with images = "all" every image."""
    if images == "all":
        return np.arange(len(dataset.labels))
    return np.flatnonzero(dataset.splits == SPLITS.index("test"))


def check_queries(queries: Sequence[int], count: int) -> None:
    """Query positions must point at mapped images."""
    bad = [q for q in queries if not 0 <= q < count]
    if bad:
        raise SettingError(f"clusters.queries: position {bad[0]} is outside the {count:,} mapped images "
                            f"(positions 0 to {count - 1})")


def _finite(values: np.ndarray) -> list[float | None]:
    """A float array as JSON: NaN (a class without images) as null."""
    return [None if not np.isfinite(v) else round(float(v), 6) for v in values]


def clusters_stage(folder: Path, params: dict[str, Any], *arts: Artifact, batch_size: int = 256) -> dict[str, Any]:
    """Section 4: descriptors of the mapped images, their t-SNE map and grid cells, nearest neighbours,
    queries, precision@k per class for every FC layer of every model, and kNN accuracy in the map
    versus descriptor space -> clusters.npz (arrays, one row per mapped image) and clusters.json.

    `arts` are each model's data (the images as its input takes them: the same rows, labels and splits
    for every model) and checkpoint, in config order: (data 0, model 0, data 1, model 1, ...); the model
    at position `params["mapped"]` has its `clusters.layer` mapped.
    """
    settings = params["clusters"]
    device = torch.device(params["device"])
    views, model_arts = arts[0::2], arts[1::2]
    mapped_at = params["mapped"]
    dataset = Dataset.from_artifact(views[mapped_at])
    rows = mapped_rows(dataset, settings.images)
    labels = dataset.labels[rows]
    n, num_classes, k = len(rows), len(dataset.class_names), settings.neighbours
    check_queries(settings.queries, n)
    everyone = np.arange(n)
    timings = {"descriptors": 0.0, "neighbours": 0.0}
    precision: list[dict[str, Any]] = []
    mapped: dict[str, Any] = {}
    # each model's unit layers by module path, in config order (its `layers` setting; empty: automatic)
    chosen = params.get("layers") or []
    for position, (view, art) in enumerate(zip(views, model_arts, strict=True)):
        start = time.perf_counter()
        trained = load_model(art.file(art.manifest["file"]), device)
        images = (dataset if position == mapped_at else Dataset.from_artifact(view)).images[rows]
        own = chosen[position] if position < len(chosen) else []
        fc = [layer for layer in unit_layers(trained.network, trained.input_shape, own) if layer.kind == "fc"]
        paths = [layer.path for layer in fc]
        is_mapped = position == mapped_at
        if is_mapped:
            name, path = mapped_layer(trained.network, trained.input_shape, settings.layer, paths=own)
            paths += [path] if path not in paths else []
        outputs, probs = layer_outputs(trained.network, images, trained.normalizer.mean.flatten().tolist(),
                                       trained.normalizer.std.flatten().tolist(), paths, batch_size,
                                       outputs=trained.outputs)
        timings["descriptors"] += time.perf_counter() - start
        start = time.perf_counter()
        found = {}
        for layer in fc:
            found[layer.path] = nearest(outputs[layer.path], everyone, k)
            hits = labels[found[layer.path][0]] == labels[:, None]
            precision.append({"model": position, "key": art.key, "layer": layer.name,
                              "dims": int(outputs[layer.path].shape[1]),
                              "per_class": _finite(precision_at_k(found[layer.path][0], labels, everyone, num_classes)),
                              "all": round(float(hits.mean()), 6) if n else None})
        if is_mapped:
            found.setdefault(path, nearest(outputs[path], everyone, k))
            mapped = {"position": position, "name": name, "path": path, "x": outputs[path], "probs": probs,
                      "neighbours": found[path]}
        timings["neighbours"] += time.perf_counter() - start
    x = mapped["x"]
    predictions = mapped["probs"].argmax(1) if n else np.zeros(0, np.int64)
    confidence = mapped["probs"].max(1) if n else np.zeros(0, np.float32)
    start = time.perf_counter()
    xy = tsne(x, settings.seed, perplexity=settings.perplexity, n_jobs=params.get("tsne_threads", TSNE_THREADS))
    timings["tsne"] = time.perf_counter() - start
    start = time.perf_counter()
    grid = grid_shape(n)
    cells = grid_assign(xy, *grid)
    timings["grid"] = time.perf_counter() - start
    start = time.perf_counter()
    # the same images in both spaces (a seeded sample above 5,000), so the comparison is paired
    queried, right_desc = knn_correct(x, labels, k, seed=settings.seed)
    _, right_map = knn_correct(xy, labels, k, seed=settings.seed)
    timings["knn"] = time.perf_counter() - start
    queries = (np.asarray(settings.queries, dtype=np.int64) if settings.queries
               else choose_queries(labels, predictions, misclassified=MISCLASSIFIED_QUERIES, seed=settings.seed))
    neighbours, distances = mapped["neighbours"]
    np.savez(folder / "clusters.npz", rows=rows, labels=labels, predictions=predictions,
             confidence=confidence.astype(np.float32), xy=xy, cells=cells, neighbours=neighbours,
             distances=distances, queries=queries, knn_queries=queried, knn_descriptor=right_desc, knn_map=right_map)
    summary = {
        "model": mapped["position"], "key": model_arts[mapped_at].key, "layer": mapped["name"], "path": mapped["path"],
        "dims": int(x.shape[1]) if n else 0, "images": settings.images, "count": n, "classes": num_classes,
        "no_variation": no_variation(x),
        "class_counts": np.bincount(labels, minlength=num_classes).tolist(),
        "perplexity": settings.perplexity, "perplexity_used": _perplexity(n, settings.perplexity),
        "method": ("opentsne-bh" if n < BH_BELOW else "opentsne-fft") if n >= 4 else "line",
        "pca_dims": PCA_DIMS if n > PCA_DIMS and x.shape[1] > PCA_DIMS else None,
        "seed": settings.seed, "k": int(neighbours.shape[1]) if n else 0, "grid": list(grid),
        "exact_grid": grid[0] * grid[1] <= EXACT_CAP,
        "queries": {"chosen": not settings.queries, "count": len(queries),
                    "extra": 0 if settings.queries else max(0, len(queries) - len(np.unique(labels))),
                    "misclassified": int(np.sum(predictions[queries] != labels[queries])) if n else 0},
        "knn": {"count": len(queried), "descriptor": int(right_desc.sum()), "map": int(right_map.sum()),
                "both": int((right_desc & right_map).sum()), "descriptor_only": int((right_desc & ~right_map).sum()),
                "map_only": int((~right_desc & right_map).sum()), "neither": int((~right_desc & ~right_map).sum()),
                "majority": int(np.bincount(labels[queried]).max()) if len(queried) else 0},
        "precision": precision,
        "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
    }
    (folder / "clusters.json").write_text(json.dumps(summary, indent=1))
    log.info("clusters: %d images, %s", n, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return {"timings": summary["timings"]}
