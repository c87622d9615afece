"""Section 1 as the site shows it: the data, each model's description, confusion table and accuracy,
and the paired comparison of the models, from the evaluate, describe and figures stages."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from reportgen import stats
from reportgen.cache import Artifact
from reportgen.config import Config
from reportgen.nets.data import SPLITS, Dataset, augmented_train_count, split_counts
from reportgen.report.pages import ModelRecord, Section
from reportgen.sections.classification.compute import ConfusionTable
from reportgen.sections.classification.describe import read_summary


def section(cfg: Config, dataset: Dataset, models: list[ModelRecord], drawings: Artifact) -> Section:
    """Section 1: its numbers are the post's shared facts (the data, the models), which every section's
    template reads at the top level; its pictures are the figures stage's files."""
    split_rows = split_counts(dataset)
    model_rows = [{**_model_context(m), "input": _input(cfg, i)} for i, m in enumerate(models)]
    best = max(model_rows, key=lambda r: r["totals"]["correct"])
    augment = cfg.data.augment
    shared = {
        "data": {
            "source": cfg.data.source,
            "image_size": dataset.images.shape[1],
            "channels": dataset.images.shape[3],
            "resize": cfg.data.resize,
            "crop": cfg.data.crop,
            "min_width": cfg.data.min_width,
            "classes": list(dataset.class_names),
            "split_rows": split_rows,
            "split_totals": {s: sum(r[s] for r in split_rows) for s in SPLITS},
            "augmented_total": augmented_train_count(dataset, augment),
            "augment": augment,
            "augmented_classes": list(augment.classes) or list(dataset.class_names),
            "skipped": dataset.skipped,
        },
        "evaluate": cfg.evaluate,
        "models": model_rows,
        "best": best,
        "comparisons": _comparisons(best, model_rows, models),
        # what the drawings say about themselves (the curve colours the caption names)
        "drawn": drawings.manifest.get("drawn", {}),
    }
    return Section("classification", {}, media=[drawings], shared=shared)


def _comparisons(best: dict[str, Any], rows: list[dict[str, Any]], models: list[ModelRecord]) -> list[dict[str, Any]]:
    """The best model against each other one on the same test images: exact McNemar test and the
    paired interval of the accuracy difference, from the per-image correctness each evaluation saved."""
    correct = {r["name"]: np.load(m.evaluation.file("predictions.npz"))["correct"]
               for r, m in zip(rows, models, strict=True)}
    out = []
    for other in rows:
        if other is best:
            continue
        result = stats.mcnemar(correct[best["name"]], correct[other["name"]])
        out.append({"better": best, "other": other, "result": result,
                    "phrase": stats.compare_phrase(result, with_ci=True)})
    return out


def _input(cfg: Config, index: int) -> dict[str, Any]:
    """How model `index` takes its images, and whether that differs from the data settings (the post
    then says so for that model)."""
    own = cfg.model_data(index)
    fields = ("image_size", "channels", "resize", "crop")
    return {**{f: getattr(own, f) for f in fields},
            "differs": any(getattr(own, f) != getattr(cfg.data, f) for f in fields)}


def _model_context(m: ModelRecord) -> dict[str, Any]:
    """A model's description and confusion table, as the templates read them."""
    summary = read_summary(m.description)
    confusion = ConfusionTable(**json.loads(m.evaluation.file("confusion.json").read_text()))
    rows = [{"name": name, "counts": confusion.counts[i], "uncertain": confusion.uncertain[i],
             "total": confusion.row_totals[i], "correct": confusion.counts[i][i],
             "incorrect": confusion.row_totals[i] - confusion.counts[i][i] - confusion.uncertain[i]}
            for i, name in enumerate(confusion.class_names)]
    metrics = summary["metrics"]
    val_acc = [a for a in metrics.get("val_acc", []) if a == a]  # NaN when there was no validation split
    best_val = max(val_acc, default=None)
    return {
        "architecture": _architecture(summary.get("structure", [])),
        "column_totals": [sum(col) for col in zip(*confusion.counts, strict=True)],
        **summary,
        "name": m.name,
        "key": m.key,
        "architecture_file": f"architecture-{m.key}.svg",
        "has_curves": bool(metrics),
        "val_acc": metrics.get("val_acc", []),
        "loaded": m.loaded,
        "checkpoint": m.origin,
        "origin_form": m.model.manifest.get("form", ""),  # what the load stage read: a state dict, an archive
        "best_val": best_val,
        # first epoch within one accuracy point of the best: how fast a model converges
        "epochs_to_best": next((i + 1 for i, a in enumerate(val_acc) if a >= best_val - 0.01), None)
        if best_val is not None else None,
        "confusion": confusion,
        "other": confusion.other,
        "rows": rows,
        "totals": confusion.totals(),
        "environment": summary.get("environment") or {},
    }


def _architecture(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The architecture facts the prose states, grouped the way a person would say them: runs of
    consecutive layers followed by the same operations, the pooled layers, biases, the output layer."""
    if not layers:
        return {}
    hidden, output = layers[:-1], layers[-1]
    runs: list[dict[str, Any]] = []
    for layer in hidden:
        after = _operations(layer)
        if runs and runs[-1]["after"] == after:
            runs[-1]["names"].append(layer["name"])
        else:
            runs.append({"names": [layer["name"]], "after": after})
    pools: dict[str, list[str]] = {}
    for layer in layers:
        if layer["pool"]:
            pools.setdefault(layer["pool"], []).append(layer["name"])
    without = [layer["name"] for layer in hidden if not layer["bias"]]
    return {
        "conv": sum(layer["kind"] == "conv" for layer in layers),
        "fc": sum(layer["kind"] == "fc" for layer in layers),
        "kernels": sorted({layer["kernel"].replace("x", "×") for layer in layers if "kernel" in layer}),
        "runs": runs,
        "pools": [{"window": window.split(" ")[0].replace("x", "×"), "kind": " ".join(window.split(" ")[1:]),
                   "names": names} for window, names in pools.items()],
        "hidden_bias": "all" if not without else "none" if len(without) == len(hidden) else "some",
        "without_bias": without,
        # a layer without bias followed by batch norm loses nothing: batch norm's shift takes its place
        "bn_shift": bool(without) and all("bn" in layer["after"] for layer in hidden if not layer["bias"]),
        "output": {**output, "after": _operations(output)},
        "detailed": len(layers) <= 12,  # per-layer prose for small networks; a ResNet gets counts only
    }


def _operations(layer: dict[str, Any]) -> list[str]:
    """What follows a layer, in order, as prose names it (pooling is stated on its own)."""
    words = {"bn": "batch normalization", "relu": "a ReLU"}
    return [f"dropout with p\u00a0=\u00a0{layer['dropout']:g}" if kind == "dropout" else words[kind]
            for kind in layer["after"]]

