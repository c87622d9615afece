"""Training (SGD with momentum and step-down learning rate, as in the write-up) and checkpoints."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .cache import versions
from .config import AugmentConfig, ModelConfig, section
from .data import Augmenter, Dataset
from .models import ModelError, create_model
from .progress import track

log = logging.getLogger("reportgen")
CHECKPOINT_FORMAT = "reportgen-checkpoint-1"


def pick_device(choice: str) -> torch.device:
    """'auto' means CUDA when available, else CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("build.device = 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 NHWC images, on the [0, 1] scale."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return x.mean(0).tolist(), np.maximum(x.std(0), 1e-3).tolist()


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


def smooth(values: list[float], span: int) -> list[float]:
    """Exponential moving average with the given span: the write-up's temporally smoothed curve."""
    alpha, out, acc = 2.0 / (span + 1), [], None
    for v in values:
        acc = v if acc is None else alpha * v + (1 - alpha) * acc
        out.append(acc)
    return out


def predict(model: nn.Module, images: np.ndarray, norm: Normalizer, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, classes) of `model` in eval mode for uint8 NHWC images."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(norm(norm.unit(images[i:i + batch_size])))
            out.append(torch.softmax(logits.float(), 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, norm: Normalizer) -> float:
    """Top-1 accuracy on uint8 images; NaN for an empty set (no validation split)."""
    if len(labels) == 0:
        return float("nan")
    return float((predict(model, images, norm).argmax(1) == labels).mean())


def train(cfg: ModelConfig, augment: AugmentConfig, data: Dataset, device: torch.device,
          weights: Path | None = None) -> dict[str, Any]:
    """Train one model from scratch; return the checkpoint dict (weights, architecture, metrics)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    x_train, y_train = data.part("train")
    x_val, y_val = data.part("val")
    size, channels = data.images.shape[1], data.images.shape[3]
    arch_kwargs = {"in_channels": channels, "image_size": size, "num_classes": len(data.class_names),
                   "width": cfg.width, "dropout": cfg.dropout}
    model = create_model(cfg.arch, weights=weights, **arch_kwargs).to(device)
    mean, std = channel_stats(x_train)
    norm = Normalizer(mean, std, device)
    augmenter = Augmenter(augment, data.class_names)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    # stepped every iteration, so `step` counts iterations like caffe's stepsize
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step, gamma=cfg.gamma)
    loss_fn = nn.CrossEntropyLoss()
    x_all = torch.from_numpy(x_train)
    y_all = torch.from_numpy(y_train.astype(np.int64))

    iter_acc: list[float] = []
    val_acc: list[float] = []
    epoch_iters: list[int] = []
    batch_norm_1d = any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        order, augmented = augmenter.epoch(y_train, rng)
        batches = range(0, len(order), cfg.batch_size)
        live: dict[str, str] = {}
        model.train()
        for i in track(batches, desc=f"train {cfg.name} epoch {epoch}/{cfg.epochs}", unit="batch",
                       postfix=live):
            idx = torch.from_numpy(order[i:i + cfg.batch_size])
            if len(idx) < 2 and batch_norm_1d:
                continue  # batch norm cannot normalize a single sample
            x = norm.unit(x_all[idx])
            x = augmenter.apply(x, torch.from_numpy(augmented[i:i + cfg.batch_size]).to(device), generator)
            y = y_all[idx].to(device)
            logits = model(norm(x))
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            iter_acc.append(float((logits.argmax(1) == y).float().mean()))
            live["acc"] = f"{np.mean(iter_acc[-20:]):.3f}"
        epoch_iters.append(len(iter_acc))
        val_acc.append(accuracy(model, x_val, y_val, norm))
        log.info("%s epoch %d/%d: train acc %.3f, held-out acc %.3f", cfg.name, epoch, cfg.epochs,
                 float(np.mean(iter_acc[-max(1, len(batches)):])), val_acc[-1])
    per_epoch = max(1, epoch_iters[0])
    metrics = {
        "iter_acc": iter_acc,
        # a quarter-epoch window smooths batch noise without hiding the epoch-scale trend
        "iter_acc_smooth": smooth(iter_acc, max(5, per_epoch // 4)),
        "iters_per_epoch": per_epoch,
        "epoch_end_iter": epoch_iters,
        "val_acc": val_acc,
        "train_seconds": time.perf_counter() - start,
        "device": str(device),
    }
    return {"format": CHECKPOINT_FORMAT, "arch": cfg.arch, "arch_kwargs": arch_kwargs,
            "class_names": list(data.class_names), "normalization": {"mean": mean, "std": std},
            "config": section(cfg), "metrics": metrics, "versions": versions(),
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    torch.save(checkpoint, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
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


def model_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> nn.Module:
    """Rebuild the network a checkpoint describes and load its weights, in eval mode."""
    model = create_model(checkpoint["arch"], **checkpoint["arch_kwargs"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def check_compatible(checkpoint: dict[str, Any], data: Dataset, where: str) -> None:
    """A loaded checkpoint must classify the same classes at the same input shape as the data."""
    kwargs = checkpoint["arch_kwargs"]
    want = {"class_names": list(data.class_names), "image_size": data.images.shape[1],
            "in_channels": data.images.shape[3]}
    have = {"class_names": checkpoint["class_names"], "image_size": kwargs["image_size"],
            "in_channels": kwargs["in_channels"]}
    for name in want:
        if want[name] != have[name]:
            raise ModelError(f"{where}: checkpoint has {name} = {have[name]!r} but the data has {want[name]!r}")
