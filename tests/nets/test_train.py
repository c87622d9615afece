"""Training: a tiny run learns, and the checkpoint it writes loads back to the same predictions."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.config import AugmentConfig, ModelConfig
from reportgen.nets.architectures import ModelError
from reportgen.nets.checkpoint import load_model, save_checkpoint
from reportgen.nets.data import Dataset
from reportgen.nets.train import smooth, train


def _stripes(n_per_class: int = 60) -> Dataset:
    """Three classes told apart by the orientation of a bright bar, plus noise: learnable in seconds."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for c in range(3):
        for _ in range(n_per_class):
            img = rng.integers(0, 60, (12, 12, 1)).astype(np.uint8)
            k = rng.integers(3, 9)
            if c == 0:
                img[k, :, 0] = 255
            elif c == 1:
                img[:, k, 0] = 255
            else:
                np.fill_diagonal(img[:, :, 0], 255)
            images.append(img)
            labels.append(c)
    n = len(labels)
    splits = np.zeros(n, np.int8)
    splits[rng.permutation(n)[: n // 4]] = 2
    return Dataset(np.stack(images), np.array(labels), splits, ("row", "column", "diagonal"), {})


def test_a_tiny_run_learns_well_above_chance_and_its_checkpoint_reloads(tmp_path: Path) -> None:
    data = _stripes()
    cfg = ModelConfig(name="", arch="model1", width=0.125, dropout=0.0, lr=0.02, step=1000, epochs=4,
                      batch_size=16)
    checkpoint = train(cfg, AugmentConfig(), data, torch.device("cpu"))
    metrics = checkpoint["metrics"]
    assert len(metrics["iter_acc"]) == 4 * metrics["iters_per_epoch"] == metrics["epoch_end_iter"][-1]
    save_checkpoint(checkpoint, tmp_path / "checkpoint.pt")
    model = load_model(tmp_path / "checkpoint.pt", torch.device("cpu"))
    images, labels = data.part("test")
    accuracy = float((model.predict(images).argmax(1) == labels).mean())
    assert accuracy > 0.8  # chance is 1/3
    assert model.class_names == data.class_names and model.input_shape == (1, 12, 12)
    assert not model.network.training


def test_same_seed_gives_the_same_weights() -> None:
    data = _stripes(20)
    cfg = ModelConfig(name="", arch="model2", width=0.125, epochs=1, batch_size=16)
    first = train(cfg, AugmentConfig(factor=2, shift=1), data, torch.device("cpu"))["state_dict"]
    second = train(cfg, AugmentConfig(factor=2, shift=1), data, torch.device("cpu"))["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_bfloat16_training_learns_and_saves_float32_weights_in_the_default_layout(tmp_path: Path) -> None:
    """precision = 'bfloat16': the forward and backward run under autocast (the weights come out
    different from float32's), the model still learns, and the checkpoint holds float32 weights in
    the default memory layout, like any other."""
    data = _stripes()
    cfg = ModelConfig(name="", arch="model1", width=0.125, dropout=0.0, lr=0.02, step=1000, epochs=4,
                      batch_size=16, precision="bfloat16")
    low = train(cfg, AugmentConfig(), data, torch.device("cpu"))
    full = train(replace(cfg, precision="float32"), AugmentConfig(), data, torch.device("cpu"))
    weights = low["state_dict"]
    assert all(v.dtype == full["state_dict"][k].dtype and v.is_contiguous() for k, v in weights.items())
    assert not all(torch.equal(v, full["state_dict"][k]) for k, v in weights.items())
    save_checkpoint(low, tmp_path / "checkpoint.pt")
    images, labels = data.part("test")
    model = load_model(tmp_path / "checkpoint.pt", torch.device("cpu"))
    assert float((model.predict(images).argmax(1) == labels).mean()) > 0.8  # chance is 1/3


def test_smoothing_follows_the_trend_without_overshooting() -> None:
    values = [0.0] * 5 + [1.0] * 20
    smoothed = smooth(values, span=5)
    assert smoothed[:5] == [0.0] * 5 and 0.9 < smoothed[-1] <= 1.0
    assert all(a <= b for a, b in zip(smoothed, smoothed[1:], strict=False))


def test_a_diverging_run_stops_with_the_learning_rate_instead_of_saving_nan_weights() -> None:
    cfg = ModelConfig(name="", arch="model1", width=0.125, dropout=0.0, lr=1e12, epochs=2, batch_size=16)
    with pytest.raises(ModelError, match=r"training diverged: the loss became (nan|inf) at epoch 1, iteration \d+, "
                                         r"with learning rate lr = 1e\+12; lower lr"):
        train(cfg, AugmentConfig(), _stripes(20), torch.device("cpu"))


def test_batch_norm_with_batches_of_one_is_an_error_not_an_empty_run() -> None:
    cfg = ModelConfig(name="", arch="torchvision:resnet18", epochs=1, batch_size=1)
    with pytest.raises(ModelError, match="no training step ran: 45 training images in batches of 1; batch norm"):
        train(cfg, AugmentConfig(), _stripes(20), torch.device("cpu"))
