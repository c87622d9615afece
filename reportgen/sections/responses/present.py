"""Section 3 on the site: the template context, the media and the atlas panels, read from the
artifacts of the responses stage (data) and the response-figures stage (pictures).

No torch and no drawing here: every number the post prints about activation responses is computed
from the stages' JSON, with its uncertainty (stats.py), and every claim of the write-up is stated
as held or not held on this data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from reportgen.cache import Artifact
from reportgen.config import ResponsesConfig
from reportgen.report.pages import AtlasCell, AtlasNote, AtlasPanel, ModelRecord, Picture, Section, atlas_path
from reportgen.report.prose import number
from reportgen.sections.responses.compute import ResponseFrames
from reportgen.stats import (
    MIN_CLASSES_FOR_INTERVAL,
    bootstrap_ci,
    format_number,
    format_percent,
    format_proportion_ci,
    proportion_ci,
    rank_correlation,
)

FIGURES = "figures/responses"
# top test images per class unit that the randomization test explains (2 x the classes: a few seconds
# even at 224x224); stages.py passes it, the text states it
RANDOMIZED_PER_CLASS = 2
ATLAS_CROP = 30           # displayed side of one crop in an atlas tile, CSS pixels


def section(cfg: ResponsesConfig, records: Sequence[ModelRecord], computed: Sequence[Artifact],
            drawn: Sequence[Artifact], pictured: Sequence[Artifact] = (),
            randomized: Sequence[tuple[Artifact, Artifact]] = (),
            checked_paths: Sequence[tuple[Artifact, Artifact]] = ()) -> Section:
    """Section 3's context (`responses` in the templates), media and atlas panels; `pictured`: the
    activated-inputs drawings, one per model, when section 2 ran; `randomized`: per model the
    randomization test and its figure; `checked_paths`: per model the path check and its figure, when
    section 2 ran."""
    models, panels, notes = [], [], []
    for index, (record, data, pictures) in enumerate(zip(records, computed, drawn, strict=True)):
        summary = json.loads(data.file("summary.json").read_text())
        layout = json.loads(pictures.file("layout.json").read_text())
        models.append(model_context(record, summary, layout, cfg))
        models[-1]["atlas_method"] = layout["saliency"]["method"]
        if index < len(randomized):  # the drawing stage read the test's verdict to choose the atlas's pictures
            models[-1]["randomization"] = randomization_context(record, *randomized[index],
                                                                layout["saliency"]["guided_fails"])
        if index < len(pictured):
            models[-1]["activated_inputs"] = [
                {**figure, "src": f"{FIGURES}/{record.key}/activated-inputs-{'ab'[j]}.png"}
                for j, figure in enumerate(pictured[index].manifest["figures"])]
        frames = ResponseFrames.load(data)
        models[-1]["verdicts"]["magnitude"] = magnitude(summary, frames)
        path_result, models[-1]["paths"] = None, None
        if index < len(checked_paths):
            path_result = json.loads(checked_paths[index][0].file("paths.json").read_text())
            models[-1]["paths"] = path_context(record, path_result, checked_paths[index][1])
        model_panels, model_notes = atlas_panels(record, summary, layout, frames)
        if path_result is not None:
            model_panels, model_notes = model_panels + path_cells(record, path_result), model_notes + path_notes(
                record, path_result)
        panels += model_panels
        notes += model_notes
    first = json.loads(computed[0].file("summary.json").read_text())
    names = first["classes"]
    context = {
        "models": models,
        "a": names[first["a"]], "b": names[first["b"]],
        "third": names[first["third"]] if first["third"] >= 0 else "",
        "chosen": not cfg.classes, "third_chosen": not cfg.third,
        # pairs and classes the choice was tied with (lower class indices break ties)
        "pair_ties": [f"{names[i]} and {names[j]}" for i, j in first["ties"]["pair"]],
        "pair_count": first["ties"]["pair_count"],
        "third_ties": [names[c] for c in first["ties"]["third"]], "third_count": first["ties"]["third_count"],
        "group": first["group"], "min_fraction": first["min_fraction"], "k": first["k"],
        "threshold": cfg.threshold, "few_classes": len(names) < RANK_ALL_BELOW, "classes": len(names),
        "preference_side": PREFERENCE_SIDE, "min_interval_classes": MIN_CLASSES_FOR_INTERVAL,
        "randomized_per_class": RANDOMIZED_PER_CLASS,
    }
    media = [*drawn, *pictured, *(fig for _, fig in randomized), *(fig for _, fig in checked_paths)]
    return Section("responses", context, media=media, atlas=panels, atlas_notes=notes)


def randomization_context(record: ModelRecord, checked: Artifact, figure: Artifact, guided_fails: bool
                          ) -> dict[str, Any] | None:
    """What the post says about one model's cascading randomization test: each method's similarity to
    the trained maps after the first step (the output layer alone) and the last (every layer), and
    whether guided backprop clearly changed less than the gradient (Adebayo et al.'s failure)."""
    result = json.loads(checked.file("randomization.json").read_text())
    methods = result["methods"]
    if not methods or not result["steps"]:
        return None

    def at(method: str, step: int) -> dict[str, Any]:
        entry = methods[method]
        low, high = entry["rank_low"][step], entry["rank_high"][step]
        return {"mean": entry["rank"][step], "low": low, "high": high,
                "text": f"{_num(entry['rank'][step])}" + (f" [{_num(low)}, {_num(high)}]" if low is not None else "")}

    first = {m: at(m, 0) for m in methods}
    last = {m: at(m, -1) for m in methods}
    return {"rows": result["rows"], "steps": result["steps"], "first": first, "last": last,
            "guided_fails": guided_fails, "src": f"{FIGURES}/{record.key}/randomization.png",
            "width": figure.manifest["width"], "height": figure.manifest["height"]}


def path_context(record: ModelRecord, result: dict[str, Any], figure: Artifact) -> dict[str, Any] | None:
    """What the post says about one model's path check, per layer: how many units were checked, the
    share whose preferred input the network processes like their top images (Wilson interval), the
    median path score beside the median yardstick, and a verdict the interval supports."""
    layers = []
    for entry in result["layers"]:
        n = sum(entry["checked"])
        if not n:
            continue
        like = n - sum(entry["flagged"])
        low, high = proportion_ci(like, n)
        verdict = "like" if low > 0.5 else "unlike" if high < 0.5 else "mixed"
        layers.append({"name": entry["name"], "checked": n, "like": like, "share": format_proportion_ci(like, n),
                       "verdict": verdict,
                       "score": _num(float(np.median([v for v in entry["score"] if v is not None]))),
                       "reference": _num(float(np.median([v for v in entry["reference"] if v is not None])))})
    if not layers:
        return None
    return {"layers": layers, "units": sum(la["checked"] for la in layers),
            "unlike": [la["name"] for la in layers if la["verdict"] == "unlike"],
            "like": [la["name"] for la in layers if la["verdict"] == "like"],
            "src": f"{FIGURES}/{record.key}/paths.png",
            "width": figure.manifest["width"], "height": figure.manifest["height"]}


PATH_COLUMN = "Path like its top images"


def path_cells(record: ModelRecord, result: dict[str, Any]) -> list[AtlasPanel]:
    """Each checked unit's path score against its yardstick, as an atlas cell that sorts by the score;
    a unit below its yardstick is flagged 'odd path'."""
    panels = []
    for entry in result["layers"]:
        for unit, ok, flagged, score, reference in zip(entry["units"], entry["checked"], entry["flagged"],
                                                       entry["score"], entry["reference"], strict=True):
            if not ok:
                continue
            verdict, sign = ("no", "<") if flagged else ("yes", "\u2265")
            text = f"{verdict}: {_num(score)} {sign} {_num(reference)}"
            panels.append(AtlasPanel(record.key, entry["name"], unit,
                                     (AtlasCell(PATH_COLUMN, text, value=score, prose=True),),
                                     ("odd path",) if flagged else ()))
    return panels


def path_notes(record: ModelRecord, result: dict[str, Any]) -> list[AtlasNote]:
    return [AtlasNote(record.key, entry["name"], f"{PATH_COLUMN}: the correlation of the layer-by-layer responses "
                      "to the unit's preferred input with the mean responses to its top images, averaged over the "
                      "layers up to this one, against the same for the least typical of those images (yes: at least as "
                      "high); flag odd path: below it, so the picture may not show what drives the unit in natural "
                      "images.")
            for entry in result["layers"] if any(entry["checked"])]


# with fewer classes than this every class is ranked; with more, the table shows at most
# PREFERENCE_SIDE preferred and PREFERENCE_SIDE avoided ones per layer
RANK_ALL_BELOW = 10
PREFERENCE_SIDE = 5


def preference_row(ratio: Sequence[float], counts: Sequence[int], names: Sequence[str],
                   accuracy: Sequence[float | None]) -> dict[str, Any]:
    """One layer's row of the class-preference table, which cannot contradict its caption for any
    number of classes: with few classes every class in rank order; with more, up to PREFERENCE_SIDE
    classes whose ratio (as printed) is above 1 and up to as many below 1, so no class is on both
    sides and none below 1 is 'preferred'. A class whose printed ratio equals a neighbour's in the
    ranking is marked as tied."""
    order = sorted(range(len(names)), key=lambda c: (-ratio[c], -counts[c], c))
    shown = {c: f"{ratio[c]:.2f}" for c in order}
    ties = {c for i, c in enumerate(order) if any(shown[c] == shown[order[j]] for j in (i - 1, i + 1)
                                                  if 0 <= j < len(order))}

    def entry(c: int) -> dict[str, Any]:
        acc = accuracy[c]
        return {"name": names[c], "ratio": shown[c], "tie": c in ties,
                "accuracy": "n/a" if acc is None else _pct(acc)}

    if len(names) < RANK_ALL_BELOW:
        return {"ranked": [entry(c) for c in order]}
    preferred = [c for c in order if float(shown[c]) > 1][:PREFERENCE_SIDE]
    avoided = [c for c in reversed(order) if float(shown[c]) < 1][:PREFERENCE_SIDE]
    return {"preferred": [entry(c) for c in preferred], "avoided": [entry(c) for c in avoided]}


def _pct(value: float, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f}%"


def _num(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else format_number(value, 2)


def _video(info: dict[str, Any], base: str) -> dict[str, Any]:
    """A response movie's two files (wide, and stacked for phones) as the post links them."""
    narrow = info["narrow"]
    return {**info, "src": f"{base}/{info['file']}", "poster": f"{base}/{info['poster']}",
            "narrow": {**narrow, "src": f"{base}/{narrow['file']}", "poster": f"{base}/{narrow['poster']}"}}


def model_context(record: ModelRecord, summary: dict[str, Any], layout: dict[str, Any],
                  cfg: ResponsesConfig) -> dict[str, Any]:
    """What the post says about one model."""
    names, a, b = summary["classes"], summary["a"], summary["b"]
    base = f"{FIGURES}/{record.key}"
    layers = summary["layers"]
    accuracy = summary["accuracy"]

    preferences = [{"layer": layer["name"], "units": layer["units"], "total": int(sum(prefs["counts"])),
                    **preference_row(prefs["ratio"], prefs["counts"], names, accuracy)}
                   for layer, prefs in zip(layers, summary["preferences"], strict=True)]
    claims = [_layer_claims(layer, claim, corr, groups, a, b)
              for layer, claim, corr, groups in zip(layers, summary["claims"], summary["class_corr"],
                                                   summary["groups"], strict=True)]
    videos = layout["videos"]
    return {
        "name": record.name, "key": record.key,
        "movie": _video(videos["movie"], base),
        "low": _video(videos["low"], base),
        "activated": [{"src": f"{base}/activated-{'ab'[j]}.png", "class": names[(a, b)[j]],
                       "width": info["width"], "height": info["height"], "counts": info["counts"]}
                      for j, info in enumerate(layout["activated"])],
        "feature_maps": f"{base}/feature-maps.png", "feature_layer": summary["feature_layer"],
        "feature_channels": next(la["units"] for la in layers if la["name"] == summary["feature_layer"]),
        "patches": f"{base}/patches.png",
        "layers": [{"name": la["name"], "kind": la["kind"], "units": la["units"],
                    "rf": "\u00d7".join(map(str, la["rf"])), "atlas": atlas_path(record.key, la["name"])}
                   for la in layers],
        "preferences": preferences,
        "claims": claims,
        "verdicts": verdicts(claims, summary),
        "seconds": summary["seconds"],
        "per_class": len(summary["movie"]) // 2 if summary["movie"] else 0,
    }


def _layer_claims(layer: dict[str, Any], claim: dict[str, Any], corr: list[list[float]], groups: dict[str, list[int]],
                  a: int, b: int) -> dict[str, Any]:
    """One layer's measured numbers: pattern correlation within vs between classes (with a bootstrap
    interval over classes of each class's gap), and units shared by the group vs tied to one class."""
    matrix = np.asarray(corr, dtype=np.float64)
    gaps = []
    for c in range(len(matrix)):
        others = np.delete(matrix[c], c)
        if np.isfinite(matrix[c, c]) and np.isfinite(others).any():
            gaps.append(matrix[c, c] - np.nanmean(others))
    # the interval resamples classes: with too few of them a resample is nearly the sample itself and
    # the interval would look precise for no reason, so none is given (the table says why)
    gap = bootstrap_ci(np.asarray(gaps)) if len(gaps) >= MIN_CLASSES_FOR_INTERVAL else None
    estimate = float(np.mean(gaps)) if gaps else float("nan")
    units = claim["units"]
    single = claim["single_by_class"]
    return {
        "layer": layer["name"], "kind": layer["kind"], "units": units,
        "within": _num(claim["within"]), "between": _num(claim["between"]),
        "gap": gap.estimate if gap else estimate, "gap_low": gap.low if gap else float("nan"),
        "gap_high": gap.high if gap else float("nan"),
        "gap_text": f"{_num(gap.estimate)} [{_num(gap.low)}, {_num(gap.high)}]" if gap else
        (f"{_num(estimate)} (no interval: {len(gaps)} classes)" if gaps else "n/a"),
        "between_value": claim["between"] if claim["between"] is not None else float("nan"),
        "selectivity": _num(claim["mean_selectivity"]), "selective": claim["selective"],
        "group": claim["group"], "group_only": claim["group_only"], "single": claim["single"],
        "single_a": single[a], "single_b": single[b], "none": claim["none"],
        "group_pct": format_percent(claim["group"], units), "single_pct": format_percent(claim["single"], units),
    }


def verdicts(claims: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """Whether each of the write-up's claims held for this model, with the numbers behind the answer."""
    conv = [c for c in claims if c["kind"] == "conv" and np.isfinite(c["gap"])]
    fc = [c for c in claims if c["kind"] == "fc" and np.isfinite(c["gap"])]
    out: dict[str, Any] = {}
    if conv and fc:
        top_conv = max(conv, key=lambda c: c["gap"])
        low_fc = min(fc, key=lambda c: c["gap"])
        out["correlation"] = {
            "held": low_fc["gap"] > top_conv["gap"],
            "clear": low_fc["gap_low"] > top_conv["gap_high"],
            "intervals": bool(np.isfinite(low_fc["gap_low"]) and np.isfinite(top_conv["gap_high"])),
            "conv": top_conv, "fc": low_fc,
        }
        # the claim as the write-up put it: convolutional patterns look random from image to image, fully
        # connected ones much more alike; read as two images of different classes correlating less in every
        # convolutional layer than in any hidden fully connected one
        # (hidden layers: an output layer's class scores of different classes are apart by design)
        hidden_fc = fc[:-1] or fc
        alike_conv = max(conv, key=lambda c: c["between_value"])
        apart_fc = min(hidden_fc, key=lambda c: c["between_value"])
        out["literal"] = {"held": alike_conv["between_value"] < apart_fc["between_value"],
                          "conv": alike_conv, "fc": apart_fc}
    hidden = [c for c in claims if c["kind"] == "fc"][:-1] or [c for c in claims if c["kind"] == "fc"]
    if hidden:
        last = hidden[-1]  # the write-up's FC6: the last hidden fully connected layer
        # "face" units: active for every class of the group and no other; "gender" units: for A or B alone
        out["shared"] = {"layer": last,
                         "held": last["group_only"] > 0 and last["single_a"] + last["single_b"] > 0}
    out["low"] = low_confidence(summary)
    return out


def magnitude(summary: dict[str, Any], frames: ResponseFrames) -> dict[str, Any] | None:
    """The write-up: the overall response of the fully connected layers falls as the classifier's
    probability falls. Spearman correlation, over the main movie's frames, between the probability of
    the true class and the mean response of the last hidden FC layer, with a bootstrap interval."""
    fc = [i for i, la in enumerate(summary["layers"]) if la["kind"] == "fc"]
    hidden = fc[:-1] or fc
    n = len(summary["movie"])
    if not hidden or n < 4:
        return None
    index = hidden[-1]
    pairs = np.column_stack([np.asarray(summary["movie_p"], dtype=np.float64),
                             frames.layers[index].units[:n].mean(axis=1)])
    pairs = pairs[np.isfinite(pairs).all(1)]
    if len(pairs) < 4:
        return None
    result = bootstrap_ci(pairs[:, 0], pairs[:, 1], stat=rank_correlation)
    return {"layer": summary["layers"][index]["name"], "n": len(pairs), "rho": _num(result.estimate),
            "low": _num(result.low), "high": _num(result.high), "held": result.low > 0,
            "against": result.high < 0}


def low_confidence(summary: dict[str, Any]) -> dict[str, Any]:
    """Of the low-confidence images of A and B, how many the model still puts in A or B (Wilson interval),
    and how many images of the third class it classifies as that class."""
    a, b, third = summary["a"], summary["b"], summary["third"]
    top = np.asarray(summary["low_top"], dtype=np.int64)
    n_third = len(summary["low"]) // 3 if third >= 0 else 0
    pair, rest = top[:len(top) - n_third], top[len(top) - n_third:]
    k = int(np.isin(pair, [a, b]).sum())
    low, high = proportion_ci(k, len(pair))
    return {"k": k, "n": len(pair), "pct": format_percent(k, len(pair)),
            "ci": f"{100 * low:.0f}\u2013{100 * high:.0f}%", "held": len(pair) > 0 and low > 0.5,
            "third_k": int((rest == third).sum()), "third_n": n_third}


def atlas_panels(record: ModelRecord, summary: dict[str, Any], layout: dict[str, Any],
                 frames: ResponseFrames) -> tuple[list[AtlasPanel], list[AtlasNote]]:
    """Every unit's cells of its atlas row (its top patches and the saliency pictures of the best of them
    as a strip of the layer's sheet, its peak response, the classes of its top images) and its flag; and
    per layer, once, what those cells mean."""
    names, k = summary["classes"], summary["k"]
    saliency = layout["saliency"]
    method, noun = (("gradient", "plain-gradient image") if saliency["method"] == "gradient" else
                    ("guided backprop", "guided-backprop image"))
    why = (" (the randomization test found guided backprop blind to the weights)" if saliency["setting"] == "auto"
           and saliency["guided_fails"] else "")
    panels, notes = [], []
    for index, (layer, sheet) in enumerate(zip(summary["layers"], layout["atlas"], strict=True)):
        scale = ATLAS_CROP / sheet["side"]
        gradients = sheet["gradients"]
        counts = np.asarray(summary["preferences"][index]["unit_counts"])
        rf = "\u00d7".join(map(str, layer["rf"]))
        field = "the whole image (the layer sees all of it)" if layer["kind"] == "fc" else \
            f"the unit's {rf}-pixel receptive field"
        explained = (f"; after the gap, the {noun}{'s' if gradients > 1 else ''} of the best "
                     f"{number(gradients) if gradients > 1 else 'one'}{why}") if gradients else ""
        column = f"Top {k} test images" + (f", {method}" if gradients else "")
        classes = f"Classes of its top {k}"
        notes.append(AtlasNote(record.key, layer["name"], f"{column}: the test images it responds to most, "
                               f"strongest first, cropped to {field}{explained}. Peak response: its strongest "
                               f"response to a test image. {classes}: their true classes, most frequent first; "
                               "this column sorts by the most frequent one's share, a measure of selectivity. "
                               "Flag: silent, no test image makes it respond above zero."))
        peaks = frames.layers[index].peak
        for unit, (page, x, y, w, h) in enumerate(sheet["tiles"]):
            alt = (f"Unit {unit}'s top {k} test images cropped to {field.removesuffix(' (the layer sees all of it)')}"
                   + (f", then the {noun}{'s' if gradients > 1 else ''} of the best "
                      f"{gradients if gradients > 1 else 'one'}" if gradients else ""))
            picture = Picture(f"{FIGURES}/{record.key}/{sheet['files'][page]}", alt, round(w * scale),
                              round(h * scale), tile=(x, y, w, h), sheet=tuple(sheet["sizes"][page]))
            order = [c for c in np.argsort(-counts[unit], kind="stable") if counts[unit, c] > 0]
            histogram = ", ".join(f"{names[c]}\u00a0\u00d7{int(counts[unit, c])}" for c in order)  # kept on one line
            found = peaks[unit][np.isfinite(peaks[unit])]
            cells = (AtlasCell(column, pictures=(picture,)),
                     AtlasCell("Peak response", _num(found[0]) if len(found) else "no test image",
                               value=float(found[0]) if len(found) else None),
                     AtlasCell(classes, histogram or "none", prose=True,
                               value=float(counts[unit, order[0]] / counts[unit].sum()) if order else None))
            flags = ("silent",) if len(found) and found[0] <= 0 else ()
            panels.append(AtlasPanel(record.key, layer["name"], unit, cells, flags))
    return panels, notes
