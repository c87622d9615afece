"""The build, read top to bottom: data -> models (train or load) -> evaluate -> describe -> figures -> site.

Each stage is declared once below (`Stage`: the function it runs and the modules that shape its
output) and run with exactly the config it reads and the artifacts it depends on, which is also
what its cache key hashes (see cache.py). So a second build with nothing changed trains nothing, a
title or model-name change only redraws and re-renders, and a change to one model's
hyperparameters retrains only that model.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import (
    activation_figures,
    activations,
    checkpoint,
    clusters,
    data,
    describe,
    diagram,
    embedding,
    evaluate,
    figures,
    frames,
    imagemap,
    layers,
    models,
    preferred,
    preferred_figures,
    preferred_site,
    responses,
    section3,
    site,
    train,
    video,
)
from .cache import Artifact, Cache, Stage
from .checkpoint import check_compatible, load_model, pick_device, read_checkpoint
from .config import Config, ModelConfig
from .data import Dataset
from .errors import SettingError
from .models import ModelError

log = logging.getLogger("reportgen")

DATA = Stage("data", data.dataset_stage)
TRAIN = Stage("train", train.train_stage, code=(data, models))
EVALUATE = Stage("evaluate", evaluate.evaluate_stage, code=(data, models))
DESCRIBE = Stage("describe", describe.describe_stage, code=(models, layers, checkpoint))
FIGURES = Stage("figures", figures.figures_stage, code=(diagram,))
_OPTVIS = tuple(importlib.import_module(f"reportgen.optvis.{name}")
                for name in ("objectives", "param", "regularizers", "render", "search", "transforms"))
PREFERRED = Stage("preferred", preferred.preferred_stage, code=(*_OPTVIS, layers, checkpoint, data, models))
PREFERRED_FIGURES = Stage("preferred-figures", preferred_figures.preferred_figures_stage,
                          code=(preferred, frames, video))
RESPONSES = Stage("responses", activations.responses_stage, code=(responses, layers, checkpoint, models, data))
RESPONSE_FIGURES = Stage("response-figures", activation_figures.drawing_stage, code=(frames, video))
CLUSTERS = Stage("clusters", embedding.clusters_stage, code=(checkpoint, data, layers, models))
CLUSTER_FIGURES = Stage("clusters-figures", imagemap.clusters_figures_stage, code=(data,))


@dataclass
class BuildResult:
    out: Path
    stages: list[Artifact] = field(default_factory=list)
    seconds: float = 0.0
    pruned: tuple[int, int] | None = None   # (cache entries removed, bytes freed) with prune=True


def build(cfg: Config, out: Path | None = None, force: bool = False, prune: bool = False) -> BuildResult:
    """Run every stage and write the site; return the stage records for the summary."""
    start = time.perf_counter()
    out = out or cfg.resolve(cfg.build.out)
    site.check_output_dir(out)  # refuse a foreign folder before hours of training, not after
    _check_inputs(cfg, out)
    if cfg.build.workers:
        torch.set_num_threads(cfg.build.workers)
    cache = Cache(cfg.resolve(cfg.build.cache), force=force)
    cache.tag()
    if swept := cache.sweep():
        log.info("removed %d temporary folder%s left by interrupted builds", swept, "s" * (swept != 1))
    device = pick_device(cfg.build.device).type
    stages: list[Artifact] = []

    def run(stage: Stage, params: object, *inputs: Artifact, **kwargs: object) -> Artifact:
        artifact = cache.run(stage, params, *inputs, **kwargs)
        stages.append(artifact)
        return artifact

    dataset_art = run(DATA, _data_params(cfg), label="data")
    dataset = Dataset.from_artifact(dataset_art)
    _check_against_data(cfg, dataset)
    records = []
    for index, m in enumerate(cfg.models):
        model_art = _model(cfg, index, dataset_art, device, run)
        evaluation = run(EVALUATE, {"evaluate": dataclasses.replace(cfg.evaluate, batch_size=0), "device": device},
                         dataset_art, model_art, label=f"evaluate {m.name}",
                         runtime={"batch_size": cfg.evaluate.batch_size})
        description = run(DESCRIBE, {}, model_art, label=f"describe {m.name}")
        records.append(site.ModelRecord(m.name, m.key, model_art, bool(m.checkpoint), evaluation, description))
    drawings = [run(FIGURES, {"samples_per_class": cfg.site.samples_per_class, "seed": cfg.data.seed,
                              "models": [{"name": r.name, "key": r.key} for r in records]},
                    dataset_art, *(r.description for r in records), label="figures")]
    sections = []
    if cfg.preferred.enabled:
        sections.append(_preferred(cfg, dataset_art, records, device, run))
    if cfg.responses.enabled:
        sections.append(_responses(cfg, dataset, dataset_art, records, device, run))
    if cfg.clusters.enabled:
        # keyed on the mapped model's artifact, not its display name; threads and batch size are speed only
        computed = run(CLUSTERS, {"clusters": dataclasses.replace(cfg.clusters, model=""), "device": device},
                       dataset_art, records[clusters.mapped_model(cfg)].model, *(r.model for r in records),
                       label="clusters", runtime={"n_jobs": cfg.build.workers or embedding.TSNE_THREADS,
                                                  "batch_size": cfg.evaluate.batch_size})
        pictures = run(CLUSTER_FIGURES, {}, dataset_art, computed, label="clusters figures")
        sections.append(clusters.section(cfg, records, dataset.class_names, computed, pictures))

    site_start = time.perf_counter()
    site.render(cfg, out, dataset, records, drawings, sections)
    stages.append(Artifact("site", "", out, {"label": "site"}, False, time.perf_counter() - site_start))
    result = BuildResult(out, stages)
    if prune:
        result.pruned = cache.prune()
    result.seconds = time.perf_counter() - start
    return result


def _preferred(cfg: Config, dataset_art: Artifact, records: list[site.ModelRecord], device: str,
               run: Callable[..., Artifact]) -> site.Section:
    """Section 2: every unit's preferred input per model (compute), then its pictures (drawing)."""
    computed, drawn = [], []
    for r in records:
        # the thread count is keyed, as for training: float sums split across threads may round differently
        computed.append(run(PREFERRED, {"preferred": preferred.keyed(cfg.preferred), "device": device,
                                        "threads": cfg.preferred.threads or cfg.build.workers or 1},
                            dataset_art, r.model, label=f"preferred inputs {r.name}"))
        drawn.append(run(PREFERRED_FIGURES, {"key": r.key, "edges": cfg.preferred.edges,
                                             "fps": cfg.preferred.movie_fps},
                         computed[-1], label=f"preferred figures {r.name}"))
    return preferred_site.section(cfg.preferred, records, computed, drawn)


def _responses(cfg: Config, dataset: Dataset, dataset_art: Artifact, records: list[site.ModelRecord], device: str,
               run: Callable[..., Artifact]) -> site.Section:
    """Section 3: per model, one streamed pass (data) and its pictures and movies (drawing). Classes and
    images are chosen here from the evaluate stage's predictions and passed as exact indices, so the
    keys hold choices rather than the predictions' own (threshold-dependent) keys."""
    predictions = []
    for r in records:
        with np.load(r.evaluation.file("predictions.npz")) as z:
            predictions.append((z["probs"], z["labels"]))
    settings = activations.choose(cfg.responses, cfg.evaluate.group, dataset.class_names, predictions)
    computed, drawn = [], []
    for r, (probs, labels) in zip(records, predictions, strict=True):
        chosen = activations.movie_images(labels, probs, settings)
        art = run(RESPONSES, {"responses": settings, "images": chosen, "device": device}, dataset_art, r.model,
                  label=f"responses {r.name}", runtime={"batch_size": min(cfg.evaluate.batch_size, 256)})
        computed.append(art)
        drawn.append(run(RESPONSE_FIGURES, {"name": r.name, "key": r.key, "threshold": cfg.responses.threshold},
                         dataset_art, art, label=f"response figures {r.name}"))
    return section3.section(cfg.responses, records, computed, drawn)


def _data_params(cfg: Config) -> dict[str, object]:
    """What the data stage reads: the data settings without augmentation (applied while training, so
    not part of the decoded images), the folder made absolute, and a fingerprint of its files."""
    settings = dataclasses.replace(cfg.data, augment=type(cfg.data.augment)(),
                                   path=str(cfg.resolve(cfg.data.path)) if cfg.data.path else "")
    return {"data": settings, "source": data.source_fingerprint(cfg.data, cfg.root)}


def _model(cfg: Config, index: int, dataset_art: Artifact, device: str,
           run: Callable[..., Artifact]) -> Artifact:
    """A model entry naming a checkpoint is loaded as is; otherwise trained, cached by its settings."""
    m = cfg.models[index]
    if m.checkpoint:  # already checked against the data by _check_against_data
        return Artifact.external("checkpoint", cfg.resolve(m.checkpoint))
    weights = [Artifact.external("weights", cfg.resolve(m.weights))] if m.weights else []
    try:
        # the thread count is keyed: results depend on it (see train.DEFAULT_THREADS)
        threads = cfg.build.workers or train.DEFAULT_THREADS
        return run(TRAIN, {"model": _training_settings(m), "augment": cfg.data.augment, "device": device,
                           "threads": threads},
                   dataset_art, *weights, label=f"train {m.name}")
    except ModelError as e:
        raise ModelError(f"models[{index}] ({m.name}): {e}") from None


def _check_inputs(cfg: Config, out: Path) -> None:
    """Everything about the output folder and the models' files that can fail, checked before any image
    is decoded (the config's own checks ran when it was loaded)."""
    cache = cfg.resolve(cfg.build.cache)
    if out == cache or out in cache.parents or cache in out.parents:
        raise site.SiteError(f"{out}: the output folder and the cache folder ({cache}) must be separate folders")
    for index, m in enumerate(cfg.models):
        if m.checkpoint:
            path = cfg.resolve(m.checkpoint)
            try:
                read_checkpoint(path)
            except ModelError as e:
                raise ModelError(f"models[{index}].checkpoint: {e}") from None
        elif m.weights and not cfg.resolve(m.weights).is_file():
            raise ModelError(f"models[{index}].weights: file not found: {cfg.resolve(m.weights)}")


def _check_against_data(cfg: Config, dataset: Dataset) -> None:
    """Settings that name classes, and checkpoints that must fit the data: checked once the data is
    known and before any model trains, so a mistake in the last model does not cost the first's training."""
    data.Augmenter(cfg.data.augment, dataset.class_names)
    evaluate.check_group(cfg.evaluate, dataset.class_names)
    for index, m in enumerate(cfg.models):
        if m.checkpoint:
            path = cfg.resolve(m.checkpoint)
            check_compatible(path, dataset, f"models[{index}].checkpoint ({path})")
    if cfg.clusters.enabled:
        _check_clusters(cfg, dataset)


def _check_clusters(cfg: Config, dataset: Dataset) -> None:
    """The mapped layer must exist in the mapped model and the queries must point at mapped images:
    known from the architecture (an untrained copy) before any model trains."""
    m = cfg.models[clusters.mapped_model(cfg)]
    shape = (dataset.images.shape[3], dataset.images.shape[1], dataset.images.shape[2])
    if m.checkpoint:
        network = load_model(cfg.resolve(m.checkpoint), torch.device("cpu")).network
    else:
        network = models.create_model(m.arch, in_channels=shape[0], image_size=shape[1],
                                      num_classes=len(dataset.class_names), width=m.width, dropout=m.dropout)
    embedding.mapped_layer(network.eval(), shape, cfg.clusters.layer, m.name)
    count = len(embedding.mapped_rows(dataset, cfg.clusters.images))
    if count < 2:
        raise SettingError(f"clusters.images: {count} {cfg.clusters.images} image(s), too few to map; "
                           "choose 'all', or set clusters.enabled = false")
    embedding.check_queries(cfg.clusters.queries, count)


def _training_settings(m: ModelConfig) -> ModelConfig:
    """The model's settings as training reads them: the display name and the checkpoint path (which
    only decides whether to train at all) are blanked, so renaming a model retrains nothing."""
    return dataclasses.replace(m, name="", checkpoint="", weights="")
