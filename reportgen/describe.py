"""What the post says about one model, read off its checkpoint: parameter counts, regularizers,
training settings, learning curves and the layers a forward pass runs.

A compute stage of its own, so drawing (figures.py) and the site only read JSON and never open a
checkpoint: a change of colour redraws without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from .cache import Artifact
from .checkpoint import load_model
from .layers import LayerSpec, describe_layers
from .models import parameter_count, regularizers


def describe_stage(folder: Path, params: dict[str, Any], model: Artifact) -> dict[str, Any]:
    """Write summary.json (numbers the post prints) and layers.json (the architecture diagram's input)."""
    trained = load_model(model.file(model.manifest["file"]), torch.device("cpu"))
    metrics = trained.metrics
    summary = {
        "arch": trained.arch,
        "params": parameter_count(trained.network),
        "regularizers": regularizers(trained.network),
        "hp": trained.config,
        "metrics": metrics,
        "iterations": len(metrics.get("iter_acc", [])),
        "train_seconds": metrics.get("train_seconds"),
        "device": metrics.get("device"),
        "input_shape": list(trained.input_shape),
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    layers = [dataclasses.asdict(layer) for layer in describe_layers(trained.network, trained.input_shape)]
    (folder / "layers.json").write_text(json.dumps(layers))
    return {}


def read_summary(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("summary.json").read_text())


def read_layers(artifact: Artifact) -> list[LayerSpec]:
    return [LayerSpec(**{**d, "output_shape": tuple(d["output_shape"])})
            for d in json.loads(artifact.file("layers.json").read_text())]
