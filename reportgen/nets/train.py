"""Training (SGD with momentum and step-down learning rate, as in the write-up); writes checkpoints.

Only the build's train stage imports this module: everything downstream reads checkpoints through
checkpoint.py, so editing the training loop retrains and nothing else.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from reportgen.cache import Artifact, plain, source_date, versions
from reportgen.config import AugmentConfig, ModelConfig
from reportgen.nets import distributed
from reportgen.nets.architectures import ModelError, create_model
from reportgen.nets.checkpoint import (
    CHECKPOINT_FORMAT,
    Normalizer,
    arch_kwargs,
    predict,
    resolve_precision,
    save_checkpoint,
)
from reportgen.nets.data import Augmenter, Dataset, channel_stats
from reportgen.progress import current_label, track

log = logging.getLogger("reportgen")

# Training uses this many CPU threads unless build.workers says otherwise. The count is fixed rather
# than left to torch (which uses one per core) because float reductions split across threads add up
# in a different order: the same seed gave a different Model I on a 1-core and a 2-core machine.
DEFAULT_THREADS = 2


def train_stage(folder: Path, params: dict[str, Any], dataset: Artifact, *weights: Artifact) -> dict[str, Any]:
    """The build's train stage: `params` holds the model's training settings (no display name), the
    augmentation settings, the device, the CPU thread count and, under torchrun, the number of ranks
    (`world`: results depend on it); `weights` optionally a torchvision state_dict to start from.
    Under torchrun this runs on rank 0, which hands the same job to the other ranks first."""
    if distributed.current() is not None:
        distributed.hand_out(("train", params, dataset, *weights))
    start = time.perf_counter()
    checkpoint = train_job(params, dataset, *weights)
    save_checkpoint(checkpoint, folder / "checkpoint.pt")
    # wall time and date stay out of the checkpoint, so the same settings give the same bytes
    return {"file": "checkpoint.pt", "train_seconds": time.perf_counter() - start, "created": created_date()}


def train_job(params: dict[str, Any], dataset: Artifact, *weights: Artifact) -> dict[str, Any]:
    """The training itself, on every rank: rank 0's checkpoint is the stage's, the others' are dropped."""
    start_from = weights[0].file(weights[0].manifest["file"]) if weights else None
    with deterministic(params["threads"]):
        return train(params["model"], params["augment"], Dataset.from_artifact(dataset),
                     torch.device(params["device"]), start_from)


def created_date() -> str:
    """The date these results were produced: today, or SOURCE_DATE_EPOCH's date when set."""
    return (source_date() or datetime.date.today()).isoformat()


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Run torch with a fixed CPU thread count and deterministic algorithms; restore both afterwards."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
    # cuBLAS needs this to be deterministic; it only takes effect if CUDA was not initialized yet
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    # warn_only: an op without a deterministic version warns instead of failing the build
    _deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        _deterministic_algorithms(before[1], warn_only=before[2])
        torch.backends.cudnn.benchmark = before[3]


def _deterministic_algorithms(mode: bool, *, warn_only: bool) -> None:
    """torch.use_deterministic_algorithms without its first step, which imports torch._inductor to set
    the compiler's own flag: 1.5 s on an idle machine and 3 s on a loaded one, a third of a tiny build's
    training, for a compiler nothing here runs. The flag the eager kernels read is the one set here."""
    if "torch._inductor.config" in sys.modules:  # something compiles after all: keep its flag in step
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


def environment(device: torch.device) -> dict[str, Any]:
    """What a trained model's exact weights depend on besides its settings and data."""
    env: dict[str, Any] = {"device": str(device), "threads": torch.get_num_threads(),
                           **({"ranks": world.size} if (world := distributed.current()) else {}),
                           "deterministic": torch.are_deterministic_algorithms_enabled(),
                           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def smooth(values: list[float], span: int) -> list[float]:
    """Exponential moving average with the given span: the write-up's temporally smoothed curve."""
    alpha, out, acc = 2.0 / (span + 1), [], None
    for v in values:
        acc = v if acc is None else alpha * v + (1 - alpha) * acc
        out.append(acc)
    return out


def _over_ranks(loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
                world: distributed.World | None) -> tuple[float, float]:
    """The batch's mean loss and accuracy over every rank's share (all ranks get the same figures, so
    a diverged loss stops them all at the same step)."""
    correct = (logits.argmax(1) == labels).sum()
    if world is None:
        return float(loss.detach()), float(correct) / len(labels)
    # float64 on the batch's device: what both gloo (CPU) and NCCL (CUDA) reduce
    totals = torch.stack([loss.detach().double() * len(labels), correct.double(),
                          torch.tensor(float(len(labels)), dtype=torch.float64, device=loss.device)])
    torch.distributed.all_reduce(totals)
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, norm: Normalizer) -> float:
    """Top-1 accuracy on uint8 images; NaN for an empty set (no validation split)."""
    if len(labels) == 0:
        return float("nan")
    return float((predict(model, images, norm).argmax(1) == labels).mean())


def train(cfg: ModelConfig, augment: AugmentConfig, data: Dataset, device: torch.device,
          weights: Path | None = None) -> dict[str, Any]:
    """Train one model from scratch; return the checkpoint dict (weights, architecture, metrics).

    With a validation set, the checkpoint keeps the weights of the epoch with the best validation
    accuracy (the first such epoch on ties), so the model evaluated and shown is the one whose
    validation accuracy the post reports; without one, the last epoch's.
    """
    world = distributed.current()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # the epochs' sample order: the same on every rank
    # the training images are read a batch at a time from the data stage's mapped file: memory holds
    # a batch, not the training set
    train_rows = data.rows("train")
    y_train = data.labels[train_rows]
    x_val, y_val = data.part("val")
    kwargs = arch_kwargs(data, cfg)
    model = create_model(cfg.arch, weights=weights, args=dict(cfg.args), **kwargs).to(device)
    # bfloat16 autocast runs fastest on channels-last weights and images (oneDNN on CPU, tensor cores on
    # CUDA); the weights stay float32 and go back to the default layout before they are saved
    low = resolve_precision(cfg.precision, device.type) == "bfloat16"
    layout = torch.channels_last if low else torch.contiguous_format
    model = model.to(memory_format=layout)
    # the network every rank steps: DDP starts each rank from rank 0's weights and averages gradients
    net = model if world is None else DistributedDataParallel(
        model, device_ids=[world.local_rank] if device.type == "cuda" else None)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # augmentation's draws
    if world is not None:  # augmentation and dropout draw differently on each rank, each from its own seed
        rank_seed = int(np.random.SeedSequence([cfg.seed, world.rank]).generate_state(1)[0])
        torch.manual_seed(rank_seed)
        generator.manual_seed(rank_seed)
    # each batch is split across the ranks: this rank's share, and the least a batch must hold
    share = slice(None) if world is None else slice(world.rank, None, world.size)
    mean, std = channel_stats(data.images, train_rows)
    norm = Normalizer(mean, std, device)
    augmenter = Augmenter(augment, data.class_names)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    # stepped every iteration, so `step` counts iterations like caffe's stepsize
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step, gamma=cfg.gamma)
    loss_fn = nn.CrossEntropyLoss()
    y_all = torch.from_numpy(y_train.astype(np.int64))

    iter_acc: list[float] = []
    val_acc: list[float] = []
    epoch_iters: list[int] = []
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # batch norm cannot normalize a single sample, and every rank needs its share of a batch
    least = (2 if batch_norm else 1) * (1 if world is None else world.size)
    best_epoch, best_state = cfg.epochs, None
    for epoch in range(1, cfg.epochs + 1):
        order, augmented = augmenter.epoch(y_train, rng)
        batches = range(0, len(order), cfg.batch_size)
        live: dict[str, str] = {}
        net.train()
        epoch_start = time.perf_counter()
        for i in track(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", postfix=live):
            batch = slice(i, i + cfg.batch_size)
            if len(order[batch]) < least:
                continue
            idx = order[batch][share]
            x = norm.unit(torch.from_numpy(data.images[train_rows[idx]]))
            x = augmenter.apply(x, torch.from_numpy(augmented[batch][share]).to(device), generator)
            y = y_all[torch.from_numpy(idx)].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                logits = net(norm(x).contiguous(memory_format=layout))
                loss = loss_fn(logits, y)
            batch_loss, batch_acc = _over_ranks(loss, logits, y, world)
            if not math.isfinite(batch_loss):  # a diverged model would publish a site of garbage
                raise ModelError(f"training diverged: the loss became {batch_loss} at epoch {epoch}, "
                                 f"iteration {len(iter_acc) + 1}, with learning rate lr = {cfg.lr:g}; "
                                 "lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            iter_acc.append(batch_acc)
            live["last-20-batch acc"] = f"{np.mean(iter_acc[-20:]):.3f}"
        if not iter_acc:
            raise ModelError(f"no training step ran: {len(order)} training images in batches of {cfg.batch_size}"
                             + ("; batch norm needs batches of at least 2 images" if batch_norm else ""))
        epoch_iters.append(len(iter_acc))
        rate = len(order) / max(time.perf_counter() - epoch_start, 1e-9)  # every rank's images together
        # the other ranks' checkpoints are dropped: only rank 0 spends the time to validate
        val_acc.append(accuracy(model, x_val, y_val, norm) if world is None or world.leader else float("nan"))
        if val_acc[-1] == val_acc[-1] and (best_state is None or val_acc[-1] > val_acc[best_epoch - 1]):
            best_epoch, best_state = epoch, copy.deepcopy(model.state_dict())
        # named by the stage (which model) and saying which accuracy, unlike the progress line's recent one
        log.info("%sepoch %d/%d: training accuracy %.3f (mean over the epoch), validation accuracy %.3f, "
                 "%.0f training images/s", f"{current_label()}: " if current_label() else "", epoch, cfg.epochs,
                 float(np.mean(iter_acc[-max(1, len(batches)):])), val_acc[-1], rate)
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to(memory_format=torch.contiguous_format)
    per_epoch = max(1, epoch_iters[0])
    metrics = {
        "iter_acc": iter_acc,
        # a quarter-epoch window smooths batch noise without hiding the epoch-scale trend
        "iter_acc_smooth": smooth(iter_acc, max(5, per_epoch // 4)),
        "iters_per_epoch": per_epoch,
        "epoch_end_iter": epoch_iters,
        "val_acc": val_acc,
        "epoch": best_epoch,  # whose weights the checkpoint holds
        "weights": "best validation" if best_state is not None else "last epoch",
    }
    return {"format": CHECKPOINT_FORMAT, "arch": cfg.arch, "arch_kwargs": kwargs, "arch_args": dict(cfg.args),
            "class_names": list(data.class_names), "normalization": {"mean": mean, "std": std},
            "config": plain(cfg), "metrics": metrics, "versions": versions(), "environment": environment(device),
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
