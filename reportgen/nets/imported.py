"""The load stage: a network trained elsewhere, made a reportgen checkpoint without training it.

Its architecture is built (a torchvision name, one of ours, or the user's own class), its weights
are loaded exactly (`architectures.load_weights`: every tensor, each of its shape), and it is given
the data's class names and its input normalization: the config's mean and std, or the training
set's per-channel statistics. Later stages read the result like any checkpoint a build trained; it
records where it came from and has no learning curves.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.cache import Artifact, plain, versions
from reportgen.config import TORCHSCRIPT, ModelConfig
from reportgen.nets.architectures import create_model, load_weights, read_state_dict
from reportgen.nets.checkpoint import CHECKPOINT_FORMAT, arch_kwargs, save_checkpoint
from reportgen.nets.data import Dataset, channel_stats


def load_stage(folder: Path, params: dict[str, Any], dataset: Artifact, weights: Artifact,
               *code: Artifact) -> dict[str, Any]:
    """`params`: {"model": the entry's settings, "arch": its architecture with a 'file:' path made
    absolute}; `weights` the state dict file; `code` the user's class file, keyed by its content."""
    data = Dataset.from_artifact(dataset)
    cfg: ModelConfig = params["model"]
    path = weights.file(weights.manifest["file"])
    network, kwargs = build(params["arch"], cfg, data, path)
    if cfg.mean:
        mean, std = list(cfg.mean), list(cfg.std)
    else:
        mean, std = channel_stats(data.part("train")[0])
    checkpoint = {"format": CHECKPOINT_FORMAT, "arch": params["arch"], "arch_kwargs": kwargs,
                  "arch_args": dict(cfg.args), "class_names": list(data.class_names),
                  "normalization": {"mean": mean, "std": std}, "config": plain(cfg), "metrics": {},
                  "origin": {"weights": path.name, "normalization": "config" if cfg.mean else "training set"},
                  "versions": versions(), "state_dict": {k: v.cpu() for k, v in network.state_dict().items()}}
    save_checkpoint(checkpoint, folder / "checkpoint.pt")
    # the post is dated by its results: for weights trained elsewhere, the day their file was written
    written = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).date()
    return {"file": "checkpoint.pt", "origin": path.name, "created": written.isoformat()}


def build(arch: str, cfg: ModelConfig, data: Dataset, weights: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network of `arch` for the data's input and classes, with `weights` loaded exactly; also
    the architecture's keyword arguments as a checkpoint records them. Cheap enough (one forward pass
    on zeros) to run before any model trains, so a file that does not fit fails first."""
    kwargs = arch_kwargs(data, cfg)
    with torch.device("cpu"):
        network = create_model(arch, **kwargs, args=dict(cfg.args))
    if not arch.startswith(TORCHSCRIPT + ":"):  # an archive comes with its weights
        load_weights(network, read_state_dict(weights), weights, arch)
    return network.eval(), kwargs
