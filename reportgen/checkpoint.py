"""A trained model as later stages see it: load a checkpoint, rebuild the network in eval mode with
its input normalizer, predict.

Training writes checkpoints (train.py); every other stage reads them through this module, so an edit
to the training loop re-runs training only, never evaluation or the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Dataset
from .models import ModelError, create_model

CHECKPOINT_FORMAT = "reportgen-checkpoint-1"


def pick_device(choice: str) -> torch.device:
    """'auto' means CUDA when available, else CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("build.device = 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


class Normalizer:
    """uint8 NHWC arrays -> normalized float NCHW tensors with the training set's statistics."""

    def __init__(self, mean: list[float], std: list[float], device: torch.device) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.device = device

    def unit(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in [0, 1] on the device."""
        x = torch.as_tensor(images).to(self.device, non_blocking=True)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        return (unit - self.mean) / self.std


def predict(model: nn.Module, images: np.ndarray, norm: Normalizer, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, classes) of `model` in eval mode for uint8 NHWC images."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(norm(norm.unit(images[i:i + batch_size])))
            out.append(torch.softmax(logits.float(), 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    torch.save(checkpoint, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a reportgen checkpoint; one-line ModelError when the file is not one."""
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many unrelated types for a non-checkpoint file
        raise ModelError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a reportgen checkpoint (expected format {CHECKPOINT_FORMAT!r}, "
                         "as written by `reportgen build`)")
    return checkpoint


@dataclass
class TrainedModel:
    """A network in eval mode with what it needs to read images, and what its checkpoint records."""

    network: nn.Module
    normalizer: Normalizer
    arch: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]      # (channels, height, width)
    config: dict[str, Any]                 # the training settings, as trained
    metrics: dict[str, Any]                # learning curves; empty for a checkpoint without them

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return predict(self.network, images, self.normalizer, batch_size)


def load_model(path: Path, device: torch.device) -> TrainedModel:
    """Rebuild the network a checkpoint describes, load its weights, and put it in eval mode."""
    checkpoint = read_checkpoint(path)
    kwargs = checkpoint["arch_kwargs"]
    network = create_model(checkpoint["arch"], **kwargs)
    network.load_state_dict(checkpoint["state_dict"])
    size, channels = kwargs["image_size"], kwargs["in_channels"]
    return TrainedModel(network.to(device).eval(), Normalizer(**checkpoint["normalization"], device=device),
                        checkpoint["arch"], tuple(checkpoint["class_names"]), (channels, size, size),
                        checkpoint.get("config", {}), checkpoint.get("metrics") or {})


def check_compatible(path: Path, data: Dataset, where: str) -> None:
    """A user's checkpoint must classify the same classes at the same input shape as the data."""
    checkpoint = read_checkpoint(path)
    kwargs = checkpoint["arch_kwargs"]
    want = {"class_names": list(data.class_names), "image_size": data.images.shape[1],
            "in_channels": data.images.shape[3]}
    have = {"class_names": checkpoint["class_names"], "image_size": kwargs["image_size"],
            "in_channels": kwargs["in_channels"]}
    for name in want:
        if want[name] != have[name]:
            raise ModelError(f"{where}: checkpoint has {name} = {have[name]!r} but the data has {want[name]!r}")
