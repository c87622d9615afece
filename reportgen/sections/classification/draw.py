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
from matplotlib.ticker import MaxNLocator  # noqa: E402

from reportgen.cache import Artifact  # noqa: E402
from reportgen.nets.data import Dataset  # noqa: E402
from reportgen.sections.classification.describe import read_layers, read_summary  # noqa: E402
from reportgen.sections.classification.diagram import architecture_svg  # noqa: E402

# (colour, the name a caption gives it): the raw batch accuracies are thin and many, so they get a
# light colour that reads as what the caption calls it; the two curves a reader follows get strong ones
CURVE_COLOURS = {"raw": ("#b0b0b0", "grey"), "smooth": ("#1f4e9c", "blue"), "validation": ("#d62728", "red")}
# One learning-curve panel per file, drawn at the width it is shown: a 4-inch figure at 160 dpi is
# 640 px wide, so on a 390 px phone (about 350 px of image) 11-pt text still renders at 11 * 160/72 *
# 350/640 = 13 CSS px, and at most 26rem (416 px) wide on a desktop beside its neighbour.
CURVE_SIZE, CURVE_DPI, CURVE_FONT_PT = (4.0, 3.0), 160, 11


def figures_stage(folder: Path, params: dict[str, Any], dataset: Artifact,
                  *descriptions: Artifact) -> dict[str, Any]:
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
            learning_curves(model["name"], summary["metrics"], folder / f"curves-{model['key']}.png")
            curves.append(model["key"])
    # what the pictures show that their captions must name
    return {"drawn": {"curves": curves, "curve_colours": {k: name for k, (_, name) in CURVE_COLOURS.items()}}}


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


def learning_curves(name: str, m: dict[str, Any], path: Path) -> None:
    """One model's accuracy against epoch: raw and smoothed training accuracy per batch, validation
    accuracy after each epoch. Epoch ticks are whole numbers; the legend sits below the axes."""
    with plt.rc_context({"font.size": CURVE_FONT_PT}):
        fig, ax = plt.subplots(figsize=CURVE_SIZE, dpi=CURVE_DPI)
        per_epoch = m["iters_per_epoch"]
        x = (np.arange(len(m["iter_acc"])) + 1) / per_epoch
        ax.plot(x, m["iter_acc"], color=CURVE_COLOURS["raw"][0], lw=0.7, label="training, per batch")
        ax.plot(x, m["iter_acc_smooth"], color=CURVE_COLOURS["smooth"][0], lw=2, label="training, smoothed")
        epochs = np.asarray(m["epoch_end_iter"]) / per_epoch
        ax.plot(epochs, m["val_acc"], color=CURVE_COLOURS["validation"][0], lw=2, marker="o", ms=4,
                label="validation", clip_on=False)  # the last epoch's point sits on the right edge
        ax.set_title(name, fontsize=CURVE_FONT_PT + 1, parse_math=False)  # a "$" in a name is not mathtext
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(epochs[-1], x[-1]))
        ax.set_ylim(0, 1.02)
        # whole epochs only, and few enough ticks that their labels never touch
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False,
                   fontsize=CURVE_FONT_PT - 1, handlelength=1.5, columnspacing=1.2)
        fig.tight_layout(rect=(0, 0.14, 1, 1))
        fig.savefig(path, facecolor="white")
        plt.close(fig)
