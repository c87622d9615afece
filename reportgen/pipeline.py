"""The build, read top to bottom: data -> models (train or load) -> evaluate -> figures -> site.

Each stage is a function of its own config section and the artifacts it reads, cached under a hash
of both (see cache.py), so a second build with nothing changed trains nothing, a template change
only re-renders the site, and a change to one model's hyperparameters retrains only that model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data as data_mod
from . import diagram, figures, site
from . import evaluate as evaluate_mod
from . import models as models_mod
from . import train as train_mod
from .cache import Artifact, Cache
from .config import Config, ModelConfig, section
from .data import Dataset
from .evaluate import confusion_table
from .models import ModelError
from .train import (
    Normalizer,
    check_compatible,
    load_checkpoint,
    model_from_checkpoint,
    pick_device,
    predict,
    save_checkpoint,
    train,
)

log = logging.getLogger("reportgen")

# the modules whose code shapes each stage's artifacts (see cache.source_digest)
DATA_CODE = (data_mod,)
TRAIN_CODE = (data_mod, models_mod, train_mod)
EVALUATE_CODE = (*TRAIN_CODE, evaluate_mod)
FIGURES_CODE = (*TRAIN_CODE, figures, diagram)


@dataclass
class ModelResult:
    """Everything the site needs about one model."""

    cfg: ModelConfig
    checkpoint: Artifact | None      # None when the config names an existing checkpoint file
    checkpoint_path: Path
    model_key: str                   # identifies the weights in the keys of the stages that read them
    evaluation: Artifact


@dataclass
class BuildResult:
    out: Path
    stages: list[Artifact] = field(default_factory=list)
    seconds: float = 0.0


def build(cfg: Config, out: Path | None = None, force: bool = False) -> BuildResult:
    """Run every stage and write the site; return the stage records for the summary."""
    start = time.perf_counter()
    out = out or cfg.resolve(cfg.build.out)
    site.check_output_dir(out)  # refuse a foreign folder before hours of training, not after
    if cfg.build.workers:
        torch.set_num_threads(cfg.build.workers)
    cache = Cache(cfg.resolve(cfg.build.cache), force=force)
    device = pick_device(cfg.build.device)
    result = BuildResult(out)

    # augmentation happens during training, so its settings are not part of the decoded data's key
    decoded = {k: v for k, v in section(cfg.data).items() if k != "augment"}
    dataset_art = cache.run("data", {"data": decoded,
                                     "source": data_mod.source_fingerprint(cfg.data, cfg.root)},
                            lambda d: _make_dataset(cfg, d), label="data", code=DATA_CODE)
    result.stages.append(dataset_art)
    dataset = Dataset.load(dataset_art.file("dataset.npz"))

    models = []
    for index, m in enumerate(cfg.models):
        checkpoint_art, checkpoint_path = _train_or_load(cache, cfg, index, dataset_art, dataset, device)
        if checkpoint_art:
            result.stages.append(checkpoint_art)
        # a trained model is named by its cache key; a user's checkpoint file by its content
        model_key = checkpoint_art.key if checkpoint_art else _file_digest(checkpoint_path)
        evaluation = cache.run(
            "evaluate", {"evaluate": section(cfg.evaluate), "data": dataset_art.key, "model": model_key},
            lambda d, p=checkpoint_path: _evaluate(cfg, p, dataset, device, d), label=f"evaluate {m.name}",
            code=EVALUATE_CODE)
        result.stages.append(evaluation)
        models.append(ModelResult(m, checkpoint_art, checkpoint_path, model_key, evaluation))

    figure_art = cache.run(
        "figures",
        # only what the figures draw: a title or template change must not redraw them
        {"samples_per_class": cfg.site.samples_per_class, "seed": cfg.data.seed, "data": dataset_art.key,
         "models": [(r.cfg.name, r.model_key) for r in models]},
        lambda d: figures.make_all(cfg, dataset, models, d), label="figures", code=FIGURES_CODE)
    result.stages.append(figure_art)

    site_start = time.perf_counter()
    site.render(cfg, out, dataset, models, figure_art)
    result.stages.append(Artifact("site", "", out, {"label": "site"}, False, time.perf_counter() - site_start))
    result.seconds = time.perf_counter() - start
    return result


def _make_dataset(cfg: Config, folder: Path) -> dict[str, Any]:
    dataset = data_mod.load_dataset(cfg.data, cfg.root)
    dataset.save(folder / "dataset.npz")
    return {"skipped": dataset.skipped, "images": int(len(dataset.labels))}


def _train_or_load(cache: Cache, cfg: Config, index: int, dataset_art: Artifact, dataset: Dataset,
                   device: torch.device) -> tuple[Artifact | None, Path]:
    """A model entry naming a checkpoint is loaded as is; otherwise train, cached by config and data."""
    m = cfg.models[index]
    if m.checkpoint:
        path = cfg.resolve(m.checkpoint)
        check_compatible(load_checkpoint(path), dataset, f"models[{index}].checkpoint ({path})")
        return None, path
    weights = cfg.resolve(m.weights) if m.weights else None
    if weights and not weights.is_file():
        raise ModelError(f"models[{index}].weights: file not found: {weights}")
    inputs = {"model": section(m), "augment": section(cfg.data.augment), "data": dataset_art.key,
              "weights": _file_digest(weights) if weights else None, "device": device.type}

    def produce(folder: Path) -> dict[str, Any]:
        try:
            checkpoint = train(m, cfg.data.augment, dataset, device, weights)
        except ModelError as e:
            raise ModelError(f"models[{index}] ({m.name}): {e}") from None
        save_checkpoint(checkpoint, folder / "checkpoint.pt")
        (folder / "metrics.json").write_text(json.dumps(checkpoint["metrics"]))
        return {"final_val_acc": checkpoint["metrics"]["val_acc"][-1]}

    art = cache.run("train", inputs, produce, label=f"train {m.name}", code=TRAIN_CODE)
    return art, art.file("checkpoint.pt")


def _evaluate(cfg: Config, checkpoint_path: Path, dataset: Dataset, device: torch.device,
              folder: Path) -> dict[str, Any]:
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, device)
    norm = Normalizer(**checkpoint["normalization"], device=device)
    images, labels = dataset.part("test")
    probs = predict(model, images, norm, cfg.evaluate.batch_size)
    np.savez(folder / "predictions.npz", probs=probs, labels=labels)
    table = confusion_table(probs, labels, dataset.class_names, cfg.evaluate)
    (folder / "confusion.json").write_text(json.dumps(table.to_dict()))
    return {"totals": table.totals()}


def _file_digest(path: Path) -> str:
    """Content hash of a file, so a replaced checkpoint or weights file invalidates what used it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
