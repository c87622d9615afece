"""The load stage: a network trained elsewhere, made a reportgen checkpoint without training it.

Its architecture is built (a torchvision name, one of ours, or the user's own class), its weights
are loaded exactly (`architectures.load_weights`: every tensor, each of its shape), and it is given
the data's class names and its input normalization: the config's mean and std, or the training
set's per-channel statistics. Later stages read the result like any checkpoint a build trained; it
records where it came from and has no learning curves.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.cache import Artifact, plain, versions
from reportgen.config import TORCHSCRIPT, ModelConfig
from reportgen.errors import ModelError
from reportgen.nets.architectures import create_model, load_weights, read_state_dict
from reportgen.nets.checkpoint import CHECKPOINT_FORMAT, arch_kwargs, save_checkpoint
from reportgen.nets.data import Dataset, channel_stats


def load_stage(folder: Path, params: dict[str, Any], dataset: Artifact, weights: Artifact,
               *code: Artifact) -> dict[str, Any]:
    """`params`: {"model": the entry's settings, "arch": its architecture with a 'file:' path made
    absolute, "outputs": the name of each output (empty: one per data class)}; `weights` the state
    dict file; `code` the user's class file, keyed by its content."""
    data = Dataset.from_artifact(dataset)
    cfg: ModelConfig = params["model"]
    path = weights.file(weights.manifest["file"])
    names = list(params.get("outputs") or [])
    network, kwargs = build(params["arch"], cfg, data, path, names)
    if cfg.mean:
        mean, std = list(cfg.mean), list(cfg.std)
    else:
        mean, std = channel_stats(data.images, data.rows("train"))
    checkpoint = {"format": CHECKPOINT_FORMAT, "arch": params["arch"], "arch_kwargs": kwargs,
                  "arch_args": dict(cfg.args), "class_names": list(data.class_names),
                  "normalization": {"mean": mean, "std": std}, "config": plain(cfg), "metrics": {},
                  **({"output_names": names, "class_outputs": class_outputs(names, data.class_names)}
                     if names else {}),
                  "origin": {"weights": path.name, "normalization": "config" if cfg.mean else "training set"},
                  "versions": versions(), "state_dict": {k: v.cpu() for k, v in network.state_dict().items()}}
    save_checkpoint(checkpoint, folder / "checkpoint.pt")
    # the post is dated by its results: for weights trained elsewhere, the day their file was written
    written = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).date()
    form = "TorchScript archive" if params["arch"].startswith(TORCHSCRIPT + ":") else "state dict"
    return {"file": "checkpoint.pt", "origin": path.name, "form": form, "created": written.isoformat()}


def class_outputs(names: Sequence[str], classes: Sequence[str]) -> list[int]:
    """The output of each data class: where its name is among the network's output names."""
    missing = [c for c in classes if c not in names]
    if missing:
        raise ModelError(f"the data's class{'es' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:5]))}"
                         f"{', ...' if len(missing) > 5 else ''} {'are' if len(missing) > 1 else 'is'} not among "
                         f"the network's {len(names)} output names (classes or classes_file); each class folder "
                         "must be named as the output that predicts it")
    return [list(names).index(c) for c in classes]


def build(arch: str, cfg: ModelConfig, data: Dataset, weights: Path,
          names: Sequence[str] = ()) -> tuple[nn.Module, dict[str, Any]]:
    """The network of `arch` for the data's input and classes (or `names` outputs), with `weights`
    loaded exactly; also the architecture's keyword arguments as a checkpoint records them. Cheap
    enough (one forward pass on zeros) to run before any model trains, so a file that does not fit
    fails first."""
    if names:
        class_outputs(names, data.class_names)
    kwargs = arch_kwargs(data, cfg, len(names) or None)
    with torch.device("cpu"):
        network = create_model(arch, **kwargs, args=dict(cfg.args))
    if not arch.startswith(TORCHSCRIPT + ":"):  # an archive comes with its weights
        load_weights(network, read_state_dict(weights), weights, arch)
    return network.eval(), kwargs
