"""Figures of section 1: sample grid, learning curves, architecture diagrams.

A drawing stage: it reads the data and each model's description (JSON written by describe.py) and
writes PNG/SVG files the site copies. No model runs here, so a colour or size change redraws in a
second; nothing here knows about HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on build machines or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .cache import Artifact  # noqa: E402
from .data import Dataset  # noqa: E402
from .describe import read_layers, read_summary  # noqa: E402
from .diagram import architecture_svg  # noqa: E402

# the write-up's colours: dark blue raw training accuracy, cyan smoothed, red held-out
RAW, SMOOTH, HELD_OUT = "#1f3a93", "#17becf", "#d62728"


def figures_stage(folder: Path, params: dict[str, Any], dataset: Artifact, *descriptions: Artifact) -> None:
    """Draw every section-1 figure; `params` holds the sample-grid settings and each model's display
    name and file key, in the order of `descriptions`."""
    samples_grid(Dataset.from_artifact(dataset), params["samples_per_class"], params["seed"],
                 folder / "samples.png")
    curves = []
    for model, description in zip(params["models"], descriptions, strict=True):
        summary = read_summary(description)
        svg = architecture_svg(read_layers(description), model["name"], summary["params"])
        (folder / f"architecture-{model['key']}.svg").write_text(svg, encoding="utf-8")
        if summary["metrics"]:
            curves.append((model["name"], summary["metrics"]))
    if curves:
        learning_curves(curves, folder / "learning-curves.png")


def samples_grid(dataset: Dataset, per_class: int, seed: int, path: Path) -> None:
    """One row per class of randomly chosen preprocessed training inputs, labelled by class."""
    images, labels = dataset.part("train")
    rng = np.random.default_rng(seed)
    size, channels = images.shape[1], images.shape[3]
    gap = max(1, size // 16)
    rows = len(dataset.class_names)
    cell = size + gap
    mosaic = np.full((rows * cell - gap, per_class * cell - gap, channels), 255, np.uint8)
    for r in range(rows):
        members = np.flatnonzero(labels == r)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for c, i in enumerate(chosen):
            mosaic[r * cell:r * cell + size, c * cell:c * cell + size] = images[i]
    fig, ax = plt.subplots(figsize=(0.5 * per_class + 1.3, 0.5 * rows + 0.2), dpi=160)
    ax.imshow(mosaic.squeeze(-1) if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    # names are data, not mathtext: '$' in a class name must print as '$', not raise
    ax.set_yticks([r * cell + size / 2 for r in range(rows)], list(dataset.class_names), parse_math=False)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.savefig(path, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def learning_curves(curves: list[tuple[str, dict[str, Any]]], path: Path) -> None:
    """Accuracy against epoch per model: raw and smoothed training accuracy, held-out accuracy."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), dpi=160, sharey=True,
                             squeeze=False)
    for ax, (name, m) in zip(axes[0], curves, strict=True):
        per_epoch = m["iters_per_epoch"]
        x = (np.arange(len(m["iter_acc"])) + 1) / per_epoch
        ax.plot(x, m["iter_acc"], color=RAW, lw=0.6, alpha=0.55, label="training (raw)")
        ax.plot(x, m["iter_acc_smooth"], color=SMOOTH, lw=1.8, label="training (smoothed)")
        epochs = np.asarray(m["epoch_end_iter"]) / per_epoch
        ax.plot(epochs, m["val_acc"], color=HELD_OUT, lw=1.8, marker="o", ms=3.5, label="held-out",
                clip_on=False)  # the last epoch's point sits on the right edge
        ax.set_title(name, fontsize=10, parse_math=False)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(epochs[-1], x[-1]))
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].set_ylim(0, 1.02)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # below the panels, where it cannot hide a curve
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, facecolor="white")
    plt.close(fig)
