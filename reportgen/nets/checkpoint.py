"""A trained model as later stages see it: load a checkpoint, rebuild the network in eval mode with
its input normalizer, predict.

Training writes checkpoints (train.py); every other stage reads them through this module, so an edit
to the training loop re-runs training only, never evaluation or the figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen.config import ModelConfig
from reportgen.nets.architectures import ModelError, create_model
from reportgen.nets.data import Dataset

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

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.device = device

    def images(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> normalized float NCHW on the device: what the network is fed."""
        return self(self.unit(images))

    def unit(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in [0, 1] on the device."""
        x = torch.as_tensor(images).to(self.device, non_blocking=True)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        return (unit - self.mean) / self.std


def arch_kwargs(data: Dataset, m: ModelConfig, outputs: int | None = None) -> dict[str, Any]:
    """The architecture's keyword arguments for the data's input and classes (or `outputs` outputs, for
    a loaded network with more), as checkpoints record them: what training, loading and the checks
    before training all build a network from."""
    return {"in_channels": data.images.shape[3], "image_size": data.images.shape[1],
            "num_classes": outputs or len(data.class_names), "width": m.width, "dropout": m.dropout}


def class_probabilities(logits: torch.Tensor, outputs: Sequence[int] | None = None) -> torch.Tensor:
    """Softmax probabilities of the data's classes from a network's logits. `outputs`: the output of
    each data class when the network has others too (an ImageNet model on a few of its classes); then
    a last column, 'other', holds the largest probability among the outputs of no data class, so the
    row's argmax is the network's top-1 prediction (column K when it is none of the data's classes)
    and its max that prediction's probability, as for any other model."""
    probs = torch.softmax(logits.float(), 1)
    if outputs is None:
        return probs
    rest = torch.ones(probs.shape[1], dtype=torch.bool, device=probs.device)
    rest[list(outputs)] = False
    other = probs[:, rest].max(1, keepdim=True).values if bool(rest.any()) else probs.new_zeros(len(probs), 1)
    return torch.cat([probs[:, list(outputs)], other], 1)


def predict(model: nn.Module, images: np.ndarray, norm: Normalizer, batch_size: int = 256,
            outputs: Sequence[int] | None = None) -> np.ndarray:
    """`class_probabilities` (N, classes [+ other]) of `model` in eval mode for uint8 NHWC images."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(norm.images(images[i:i + batch_size]))
            out.append(class_probabilities(logits, outputs).cpu().numpy())
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
    if problem := _malformed(checkpoint):
        raise ModelError(f"{path}: damaged or incomplete reportgen checkpoint ({problem})")
    return checkpoint


# What a checkpoint must hold, checked before any of it is used: a file from elsewhere may be
# hand-edited, truncated by another tool, or hostile (sizes that would allocate a huge network).
_ARCH_KWARGS = {"in_channels": int, "image_size": int, "num_classes": int, "width": float, "dropout": float}


def _malformed(c: dict[str, Any]) -> str | None:
    """What is missing or wrong in a checkpoint dict, or None when it is complete."""
    kwargs, norm = c.get("arch_kwargs"), c.get("normalization")
    names = c.get("class_names")
    if not isinstance(c.get("arch"), str):
        return "'arch' is not an architecture name"
    if not isinstance(kwargs, dict) or set(kwargs) != set(_ARCH_KWARGS):
        return f"'arch_kwargs' must hold exactly {', '.join(_ARCH_KWARGS)}"
    for key, kind in _ARCH_KWARGS.items():
        if not isinstance(kwargs[key], (int, float) if kind is float else int) or isinstance(kwargs[key], bool):
            return f"arch_kwargs.{key} is not a number"
    if kwargs["in_channels"] not in (1, 3) or not 8 <= kwargs["image_size"] <= 512:
        return "arch_kwargs: input must be 1 or 3 channels of 8 to 512 pixels"
    if not 0.01 <= kwargs["width"] <= 4 or not 0 <= kwargs["dropout"] < 1:
        return "arch_kwargs: width or dropout out of range"
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) < 2:
        return "'class_names' must list at least two names"
    outputs = c.get("class_outputs")
    if outputs is None and kwargs["num_classes"] != len(names):
        return f"arch_kwargs.num_classes = {kwargs['num_classes']} but {len(names)} class names"
    if outputs is not None and (not isinstance(outputs, list) or len(outputs) != len(names)
                                or len(set(outputs)) != len(outputs)
                                or not all(isinstance(o, int) and 0 <= o < kwargs["num_classes"] for o in outputs)):
        return "'class_outputs' must give each class its own output of the network"
    channels = kwargs["in_channels"]
    if not isinstance(norm, dict) or set(norm) != {"mean", "std"} or not all(
            isinstance(norm[k], list) and len(norm[k]) == channels
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in norm[k]) for k in norm):
        return f"'normalization' must hold a mean and a std of {channels} finite numbers"
    if not all(v > 0 for v in norm["std"]):
        return "normalization std must be positive"
    state = c.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        return "'state_dict' is not a dict of tensors"
    for key in ("config", "metrics", "arch_args", "origin"):
        if not isinstance(c.get(key, {}), dict):
            return f"{key!r} is not a table"
    return _malformed_curves(c.get("metrics") or {})


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _malformed_curves(m: dict[str, Any]) -> str | None:
    """Learning curves the post draws must be whole: a checkpoint without any is fine (nothing drawn)."""
    if not m:
        return None
    iters, ends = m.get("iter_acc"), m.get("epoch_end_iter")
    if not _numbers(iters) or not iters or not _numbers(m.get("iter_acc_smooth")) \
            or len(m["iter_acc_smooth"]) != len(iters):
        return "metrics: 'iter_acc' and 'iter_acc_smooth' must be equally long, non-empty lists of numbers"
    if not isinstance(m.get("iters_per_epoch"), int) or m["iters_per_epoch"] < 1:
        return "metrics: 'iters_per_epoch' must be a positive integer"
    if not _numbers(ends) or not ends or not _numbers(m.get("val_acc")) or len(m["val_acc"]) != len(ends):
        return "metrics: 'epoch_end_iter' and 'val_acc' must be equally long, non-empty lists of numbers"
    return None


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
    # the output of each class when the network has outputs of other classes too, else None
    outputs: tuple[int, ...] | None = None

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return predict(self.network, images, self.normalizer, batch_size, self.outputs)


def load_model(path: Path, device: torch.device) -> TrainedModel:
    """Rebuild the network a checkpoint describes, load its weights, and put it in eval mode."""
    checkpoint = read_checkpoint(path)
    kwargs = checkpoint["arch_kwargs"]
    try:
        network = create_model(checkpoint["arch"], **kwargs, args=checkpoint.get("arch_args") or {})
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    try:
        network.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:  # missing, unexpected or mis-shaped tensors
        first = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
        raise ModelError(f"{path}: its weights do not fit its architecture {checkpoint['arch']!r} "
                         f"({first.rstrip('.')})") from None
    size, channels = kwargs["image_size"], kwargs["in_channels"]
    return TrainedModel(network.to(device).eval(), Normalizer(**checkpoint["normalization"], device=device),
                        checkpoint["arch"], tuple(checkpoint["class_names"]), (channels, size, size),
                        checkpoint.get("config", {}), checkpoint.get("metrics") or {},
                        tuple(checkpoint["class_outputs"]) if checkpoint.get("class_outputs") is not None else None)


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
    try:
        load_model(path, torch.device("cpu"))  # do its weights fit? Know now, not after training the others
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None


def resolve_precision(choice: str, device: str) -> str:
    """A precision setting (preferred.precision, responses.precision) resolved for `device` ('cpu' or
    'cuda'): 'auto' is bfloat16 where the hardware computes in it natively (elsewhere torch emulates
    it, slower than float32)."""
    if choice != "auto":
        return choice
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    try:
        native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):  # a build of torch without oneDNN's check
        native = False
    return "bfloat16" if native else "float32"


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to `count` while a stage runs, and put back after: a stage whose
    result depends on them (sums split across threads round differently) keys the count and sets it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
