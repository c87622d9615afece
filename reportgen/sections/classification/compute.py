"""Test-set predictions and the write-up's confusion table with an "uncertain" column (and an "other"
column for a network with outputs of classes the data does not have)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reportgen.cache import Artifact
from reportgen.config import EvaluateConfig
from reportgen.errors import EvaluateError
from reportgen.nets.checkpoint import load_model
from reportgen.nets.data import Dataset


def check_group(cfg: EvaluateConfig, class_names: tuple[str, ...]) -> None:
    """The 'group' rule's classes must be classes of the data."""
    unknown = [c for c in cfg.group if c not in class_names]
    if cfg.uncertain == "group" and unknown:
        raise EvaluateError(f"evaluate.group: {unknown} not among the classes {list(class_names)}")


def uncertain_mask(probs: np.ndarray, cfg: EvaluateConfig, class_names: tuple[str, ...]) -> np.ndarray:
    """True where the rule in `cfg` calls a prediction uncertain."""
    if cfg.uncertain == "none" or len(probs) == 0:
        return np.zeros(len(probs), bool)
    if cfg.uncertain == "threshold":
        return probs.max(1) < cfg.threshold
    check_group(cfg, class_names)
    group = [class_names.index(c) for c in cfg.group]
    in_group = np.isin(probs.argmax(1), group)
    top_two = np.sort(probs[:, group], axis=1)[:, -2:]
    return in_group & (top_two[:, 1] - top_two[:, 0] < cfg.margin)


@dataclass(frozen=True)
class ConfusionTable:
    """Rows are true classes; `counts[t, p]` counts certain predictions of p for true class t, with a
    last column for predictions of none of the data's classes when `other`."""

    class_names: list[str]
    counts: list[list[int]]
    uncertain: list[int]
    rule: str
    other: bool = False

    @property
    def row_totals(self) -> list[int]:
        return [sum(row) + u for row, u in zip(self.counts, self.uncertain, strict=True)]

    def row_percents(self, i: int) -> tuple[float, float, float]:
        """% correct, % uncertain, % incorrect of true class i."""
        total = self.row_totals[i]
        if total == 0:
            return (0.0, 0.0, 0.0)
        correct, uncertain = self.counts[i][i], self.uncertain[i]
        return (100 * correct / total, 100 * uncertain / total, 100 * (total - correct - uncertain) / total)

    def totals(self) -> dict[str, float]:
        """Overall counts and percentages over the test set."""
        n = sum(self.row_totals)
        correct = sum(self.counts[i][i] for i in range(len(self.counts)))
        uncertain = sum(self.uncertain)
        incorrect = n - correct - uncertain
        pct = (lambda k: 100 * k / n) if n else (lambda k: 0.0)
        return {"n": n, "correct": correct, "uncertain": uncertain, "incorrect": incorrect,
                "pct_correct": pct(correct), "pct_uncertain": pct(uncertain), "pct_incorrect": pct(incorrect)}

    def to_dict(self) -> dict:
        return asdict(self)


def confusion_table(probs: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                    cfg: EvaluateConfig) -> ConfusionTable:
    """Tabulate predictions: uncertain ones go to their own column instead of a predicted class.
    `probs` has a last 'other' column for a network with outputs of other classes (see
    `checkpoint.class_probabilities`), which becomes the table's "other" column."""
    k = len(class_names)
    other = probs.ndim == 2 and probs.shape[1] == k + 1
    unsure = uncertain_mask(probs, cfg, class_names)
    predicted = probs.argmax(1) if len(probs) else np.zeros(0, int)
    counts = np.zeros((k, k + other), int)
    np.add.at(counts, (labels[~unsure], predicted[~unsure]), 1)
    uncertain = np.bincount(labels[unsure], minlength=k)
    return ConfusionTable(list(class_names), counts.tolist(), uncertain.tolist(), cfg.uncertain, other)


def evaluate_stage(folder: Path, params: dict[str, Any], dataset: Artifact, model: Artifact, *,
                   batch_size: int = 256) -> dict[str, Any]:
    """The build's evaluate stage: test-set probabilities and the confusion table of one model."""
    cfg: EvaluateConfig = params["evaluate"]
    data = Dataset.from_artifact(dataset)
    trained = load_model(model.file(model.manifest["file"]), torch.device(params["device"]))
    images, labels = data.part("test")
    probs = trained.predict(images, batch_size)
    table = confusion_table(probs, labels, data.class_names, cfg)
    # per image: right and certain, as the table counts "correct"; paired tests compare models on it
    correct = (probs.argmax(1) == labels) & ~uncertain_mask(probs, cfg, data.class_names) if len(probs) else \
        np.zeros(0, bool)
    np.savez(folder / "predictions.npz", probs=probs, labels=labels, correct=correct)
    (folder / "confusion.json").write_text(json.dumps(table.to_dict()))
    return {"totals": table.totals()}
