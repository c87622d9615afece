"""Checkpoints from elsewhere: incomplete, mis-shaped or foreign files are one-line ModelErrors."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reportgen.nets.architectures import ModelError, create_model
from reportgen.nets.checkpoint import CHECKPOINT_FORMAT, check_compatible, load_model, save_checkpoint
from reportgen.nets.data import Dataset

CURVES = {"iter_acc": [0.5, 0.6], "iter_acc_smooth": [0.5, 0.55], "iters_per_epoch": 1, "epoch_end_iter": [1, 2],
          "val_acc": [0.5, float("nan")]}
KWARGS = {"in_channels": 1, "image_size": 16, "num_classes": 2, "width": 0.125, "dropout": 0.5}


def _checkpoint(**changes: Any) -> dict[str, Any]:
    """A complete checkpoint of an untrained tiny model1, with `changes` applied (None deletes a key)."""
    checkpoint = {"format": CHECKPOINT_FORMAT, "arch": "model1", "arch_kwargs": dict(KWARGS),
                  "class_names": ["a", "b"], "normalization": {"mean": [0.5], "std": [0.25]},
                  "config": {}, "metrics": {},
                  "state_dict": create_model("model1", **KWARGS).state_dict()}
    for key, value in changes.items():
        if value is None:
            del checkpoint[key]
        else:
            checkpoint[key] = value
    return checkpoint


def _data() -> Dataset:
    return Dataset(np.zeros((4, 16, 16, 1), np.uint8), np.array([0, 1, 0, 1]), np.array([0, 0, 2, 2], np.int8),
                   ("a", "b"), {})


@pytest.mark.parametrize("metrics", [{}, CURVES])
def test_a_complete_checkpoint_loads(tmp_path: Path, metrics: dict) -> None:
    save_checkpoint(_checkpoint(metrics=metrics), tmp_path / "c.pt")
    check_compatible(tmp_path / "c.pt", _data(), "models[0].checkpoint")
    assert load_model(tmp_path / "c.pt", torch.device("cpu")).class_names == ("a", "b")


other = create_model("model2", **KWARGS).state_dict()
wider = create_model("model1", **{**KWARGS, "width": 0.25}).state_dict()


@pytest.mark.parametrize(("changes", "message"), [
    ({"arch_kwargs": None}, "damaged or incomplete reportgen checkpoint ('arch_kwargs' must hold exactly"),
    ({"state_dict": None}, "'state_dict' is not a dict of tensors"),
    ({"normalization": None}, "'normalization' must hold a mean and a std of 1 finite numbers"),
    ({"normalization": {"mean": [0.5], "std": [float("nan")]}}, "'normalization' must hold"),
    ({"class_names": None}, "'class_names' must list at least two names"),
    ({"class_names": ["a", "b", "c"]}, "arch_kwargs.num_classes = 2 but 3 class names"),
    ({"arch": 7}, "'arch' is not an architecture name"),
    ({"arch_kwargs": {**KWARGS, "image_size": 10**9}}, "input must be 1 or 3 channels of 8 to 512 pixels"),
    ({"arch_kwargs": {**KWARGS, "weights": "x"}}, "'arch_kwargs' must hold exactly"),
    ({"arch": "resnet9000"}, "unknown architecture 'resnet9000'"),
    ({"metrics": {"iter_acc": [], "iter_acc_smooth": []}}, "metrics: 'iter_acc' and 'iter_acc_smooth' must be"),
    ({"metrics": {**CURVES, "val_acc": [0.5]}}, "metrics: 'epoch_end_iter' and 'val_acc' must be equally long"),
    ({"metrics": {**CURVES, "iters_per_epoch": 0}}, "metrics: 'iters_per_epoch' must be a positive integer"),
    ({"state_dict": other}, "its weights do not fit its architecture 'model1' (Missing key(s)"),
    ({"state_dict": wider}, "its weights do not fit its architecture 'model1' (size mismatch"),
    ({"state_dict": {"x": torch.zeros(1)}}, "its weights do not fit its architecture 'model1'"),
])
def test_incomplete_or_misfitting_checkpoints_are_one_line_errors(tmp_path: Path, changes: dict,
                                                                 message: str) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(_checkpoint(**changes), path)
    for load in (lambda: load_model(path, torch.device("cpu")),
                 lambda: check_compatible(path, _data(), "models[0].checkpoint")):
        with pytest.raises(ModelError) as err:
            load()
        assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_foreign_files_are_not_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "text.pt").write_text("hello")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_model(tmp_path / "text.pt", torch.device("cpu"))
    with pytest.raises(ModelError, match="not a reportgen checkpoint"):
        load_model(tmp_path / "list.pt", torch.device("cpu"))
