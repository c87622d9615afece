"""What the post says about one model, read off its checkpoint: parameter counts, regularizers,
training settings, learning curves and the layers a forward pass runs.

A compute stage of its own, so drawing (draw.py) and the site only read JSON and never open a
checkpoint: a change of colour redraws without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.cache import Artifact
from reportgen.nets.architectures import parameter_count, regularizers
from reportgen.nets.checkpoint import load_model, read_checkpoint
from reportgen.nets.layers import LayerSpec, describe_layers


def describe_stage(folder: Path, params: dict[str, Any], model: Artifact) -> dict[str, Any]:
    """Write summary.json (numbers the post prints) and layers.json (the architecture diagram's input)."""
    path = model.file(model.manifest["file"])
    trained = load_model(path, torch.device("cpu"))
    recorded = read_checkpoint(path)
    metrics = trained.metrics
    layers = describe_layers(trained.network, trained.input_shape)
    summary = {
        "arch": trained.arch,
        "params": parameter_count(trained.network),
        "regularizers": regularizers(trained.network),
        "hp": trained.config,
        "metrics": metrics,
        "iterations": len(metrics.get("iter_acc", [])),
        "input_shape": list(trained.input_shape),
        "structure": structure(trained.network, layers),
        # what the exact weights depend on besides settings and data, as recorded when training
        "environment": recorded.get("environment") or {},
        "versions": recorded.get("versions") or {},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "layers.json").write_text(json.dumps([dataclasses.asdict(layer) for layer in layers]))
    return {}


_COMPUTE = ("conv", "fc")


def structure(network: nn.Module, layers: list[LayerSpec]) -> list[dict[str, Any]]:
    """Per computational layer (conv, fc), the facts the architecture prose states, read off the
    network itself: whether it has a bias, what follows it before the next computational layer
    (batch norm, ReLU, dropout with its p, pooling), its kernel or its in/out features."""
    names = [layer.name for layer in layers if layer.kind in _COMPUTE]
    tops = [name.split(".")[0] for name in names]
    # our models name blocks conv1 ... fc7; other networks go by module path
    label = dict(zip(names, tops if len(set(tops)) == len(tops) else names, strict=True))
    out: list[dict[str, Any]] = []
    for layer in layers:
        if layer.kind in _COMPUTE:
            module = network.get_submodule(layer.name)
            entry: dict[str, Any] = {"name": label[layer.name], "kind": layer.kind, "after": [], "dropout": None,
                                     "pool": "", "bias": getattr(module, "bias", None) is not None,
                                     "params": layer.params}
            if isinstance(module, nn.Conv2d):
                entry["kernel"] = "x".join(map(str, module.kernel_size))
            if isinstance(module, nn.Linear):
                entry["in"], entry["out"] = module.in_features, module.out_features
            out.append(entry)
        elif out and layer.kind in ("bn", "relu", "dropout"):
            out[-1]["after"].append(layer.kind)
            if layer.kind == "dropout":
                out[-1]["dropout"] = network.get_submodule(layer.name).p
        elif out and layer.kind == "pool":
            kind = "max" if "Max" in layer.type else "average" if "Avg" in layer.type else ""
            out[-1]["pool"] = f"{layer.detail.split(' ')[0]} {kind}".strip()
    return out


def read_summary(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("summary.json").read_text())


def read_layers(artifact: Artifact) -> list[LayerSpec]:
    return [LayerSpec(**{**d, "output_shape": tuple(d["output_shape"])})
            for d in json.loads(artifact.file("layers.json").read_text())]
