"""Section 2 on the site: the numbers the post quotes, the unit-graph pages and every unit's atlas panel,
read from the preferred-inputs artifacts (compute and drawing) of each model."""

from __future__ import annotations

import json
import statistics
from typing import Any

import numpy as np

from reportgen.cache import Artifact
from reportgen.config import PreferredConfig
from reportgen.drawing.colors import hot_colormap
from reportgen.report.pages import (
    AtlasCell,
    AtlasNote,
    AtlasPanel,
    ModelRecord,
    Page,
    Picture,
    Section,
    atlas_href,
    atlas_path,
)
from reportgen.sections.preferred.compute import SEED_CHECK_UNITS, PreferredInputs, read
from reportgen.sections.preferred.draw import EDGE_LOW, PRIOR_NAMES
from reportgen.stats import MIN_CLASSES_FOR_INTERVAL, bootstrap_ci, format_number

SHOWN = 64          # an atlas picture's longest side, CSS pixels
EDGE_BUCKETS = 8    # colours of edges on the graph page (one SVG path each)


def section(cfg: PreferredConfig, models: list[ModelRecord], computed: list[Artifact],
            drawn: list[Artifact], classes: Artifact, classes_drawn: Artifact) -> Section:
    """The Section record of the post's section 2."""
    contexts, pages, panels, notes = [], [], [], []
    class_summary = json.loads(classes.file("classes.json").read_text())
    agreements = [entry.get("seed_agreement") for entry in class_summary["models"]]
    for model, comp, draw, agreement in zip(models, computed, drawn, agreements, strict=True):
        result = read(comp)
        summary, weights = result.summary, result.weights
        graph = json.loads(draw.file(f"preferred/{model.key}/graph.json").read_text())
        folder = f"figures/preferred/{model.key}/"
        contexts.append(_model_context(model, result, graph, folder))
        contexts[-1]["filter_size"] = list(weights["filters"].shape[2:]) if "filters" in weights else None
        pages.append(Page(f"graph/{model.key}.html", "unitgraph.html",
                          {"graph": _graph_page(model, summary, graph, folder)}))
        model_panels, model_notes = _panels(model, result, graph, folder, agreement)
        panels += model_panels
        notes += model_notes
    first = json.loads(computed[0].file("preferred.json").read_text()) if computed else {}
    context = {"models": contexts, "steps": cfg.steps, "trials": cfg.trials, "search_units": cfg.search_units,
               "units_per_layer": cfg.units_per_layer,
               "class_seeds": cfg.class_seeds, "objective": cfg.objective, "parameterization": cfg.parameterization,
               "edges": cfg.edges, "test_images": first.get("test_images", 0),
               "precision": first.get("precision", "float32"),
               "search_steps": first.get("search_steps", cfg.steps), "finalists": first.get("search_finalists", 0),
               "hf_min_side": first.get("high_frequency_min_side", 0),
               "seed_check_units": SEED_CHECK_UNITS,
               "class_names": first.get("class_names", []),
               "class_units": class_units(models, classes, classes_drawn)}
    return Section("preferred", context, pages, [*drawn, classes_drawn], panels, notes)


def class_units(models: list[ModelRecord], classes: Artifact, drawn: Artifact) -> list[dict[str, Any]]:
    """Per model, its class units under each prior (compute.CLASS_KINDS): each kind's mean probability
    of the target class under every model, and its mean share of high-frequency energy."""
    summary = json.loads(classes.file("classes.json").read_text())
    out = []
    for model, entry in zip(models, summary["models"], strict=True):
        width, height = drawn.manifest["sizes"][model.key]
        kinds = {}
        for kind in summary["kinds"]:
            probability = np.asarray(entry["probability"][kind], dtype=np.float64)  # (judging model, class)
            kinds[kind] = {"label": PRIOR_NAMES[kind],
                           "probability": [{"judge": judge.name, "own": judge.key == model.key,
                                            "mean": float(row.mean()), "top1": int(np.sum(top)), "n": len(top)}
                                           for judge, row, top in zip(models, probability, entry["top1"][kind],
                                                                      strict=True)],
                           "high_frequency": float(np.mean(entry["high_frequency"][kind]))}
        agreement = entry.get("seed_agreement")
        seeds = None
        if agreement:
            same = np.asarray(agreement["same"], dtype=np.float64)
            # an interval over the classes, where there are enough of them to resample; without one the
            # agreement is given but not judged
            ci = bootstrap_ci(same) if len(same) >= MIN_CLASSES_FOR_INTERVAL else None
            seeds = {"layer": agreement["layer"], "seeds": agreement["seeds"],
                     "same": format_number(same.mean(), 2),
                     "low": format_number(ci.low, 2) if ci else None,
                     "high": format_number(ci.high, 2) if ci else None,
                     "different": format_number(agreement["different"], 2),
                     "judged": ci is not None, "classes": len(same),
                     "stable": bool(ci is not None and ci.low > agreement["different"])}
        out.append({"name": model.name, "key": model.key, "classes": entry["classes"], "kinds": kinds, "seeds": seeds,
                    "defaulted": [PRIOR_NAMES[k].removeprefix("+ ") for k in entry["defaulted"]],
                    "searched": entry["searched"], "prior_defaults": summary["prior_defaults"],
                    "src": f"figures/preferred/priors/{model.key}.png", "width": width, "height": height})
    return out


def _settings_row(settings: dict[str, Any]) -> dict[str, str]:
    """A chosen setting as the search table prints it."""
    return {
        "param": settings["param"],
        "lr": f"{settings['lr']:.3g}",
        "decay": f"{settings['decay']:.2g}" if settings["decay"] else "off",
        "blur": f"every {settings['blur_every']}, σ {settings['blur_sigma']:.2f}" if settings["blur_every"] else "off",
        "norm_clip": f"{settings['norm_clip_pct']:.0f}%" if settings["norm_clip_pct"] else "off",
        "contrib_clip": f"{settings['contrib_clip_pct']:.0f}%" if settings["contrib_clip_pct"] else "off",
        "jitter": str(settings["jitter"]),
    }


def _model_context(model: ModelRecord, result: PreferredInputs, graph: dict[str, Any], folder: str) -> dict[str, Any]:
    summary = result.summary
    layers = []
    all_ratios = []
    for layer, inputs in zip(summary["layers"], result.layers, strict=True):
        dead = int(inputs.dead.sum())
        flat = int(inputs.flat[:, 0].sum())
        ratios = inputs.ratios()
        all_ratios += ratios.tolist()
        searched = layer["search"]
        scores = [s for s in searched["scores"] if s == s]
        best = searched["best"]
        full = dict(zip(searched["final_trials"], searched["final_scores"], strict=True))
        yardstick = searched["median_score"]
        layers.append({
            "name": layer["name"], "units": layer["units"], "shown": layer["shown"], "dead": dead, "flat": flat,
            "flagged": int(inputs.flagged.sum()),
            "live": int(len(ratios)),
            "ratio_median": float(np.median(ratios)) if len(ratios) else None,
            "beyond_best": int((ratios >= 1).sum()),
            "settings": _settings_row(layer["settings"]),
            "searched": best >= 0,
            "score": full[best] if best >= 0 else None,
            # the yardstick of the chosen setting: the median trial, also at full length (None: nothing scored)
            "median_score": yardstick if best >= 0 and yardstick == yardstick else None,
            "scores": {"min": min(scores), "median": statistics.median(scores), "max": max(scores),
                       "n": len(scores)} if scores else None,
            "crop": layer["box"] and [layer["box"][2] - layer["box"][0], layer["box"][3] - layer["box"][1]],
            "atlas": atlas_path(model.key, layer["name"]),
            "seed_check": _seed_check(layer.get("seed_check")),
            "high_frequency": layer.get("high_frequency"),
        })
    units = sum(layer["units"] for layer in layers)
    pairs = [(layer["score"], layer["median_score"]) for layer in layers if layer["median_score"] is not None]
    energies = [layer["high_frequency"] for layer in layers if layer["high_frequency"]]
    return {
        "name": model.name, "key": model.key, "layers": layers, "units": units,
        # the search's yield over the layers: median scores of the chosen and the median settings, and in how
        # many layers the chosen one did better (a score difference, defined where the median trial scored 0)
        "search": {"chosen": statistics.median(c for c, _ in pairs), "median": statistics.median(m for _, m in pairs),
                   "better": sum(c > m for c, m in pairs), "layers": len(pairs),
                   "everywhere": all(c > m for c, m in pairs)} if pairs else None,
        # how noise-like the pictures are beside the data, over the layers measured
        "high_frequency": {"inputs": statistics.median(e["inputs"] for e in energies),
                           "test": statistics.median(e["test"] for e in energies),
                           "noisier": sum(e["inputs"] > e["test"] for e in energies),
                           "layers": len(energies)} if energies else None,
        "shown": sum(layer["shown"] for layer in layers),
        "sampled": [layer for layer in layers if layer["shown"] < layer["units"]],
        "dead": sum(layer["dead"] for layer in layers), "flat": sum(layer["flat"] for layer in layers),
        "ratio_median": float(np.median(all_ratios)) if all_ratios else None,
        "beyond_best": sum(layer["beyond_best"] for layer in layers),
        "live": len(all_ratios),
        "class_figure": folder + "class-units.png",
        "filters": folder + "filters.png" if graph["filters"] else None,
        "filter_count": summary["layers"][0]["units"], "input_channels": summary["input_shape"][0],
        "movie": folder + "graph.mp4", "poster": folder + "graph.webp", "movie_info": graph["movie"],
        "graph_page": f"graph/{model.key}.html", "edges": len(graph["edges"]),
        "seed_figure": {**graph["seeds"], "src": folder + "seeds.png"} if graph.get("seeds") else None,
        "threads": summary["threads"],
    }


def _seed_check(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """A layer's seed check as the post says it: the sampled units' mean agreement between two seeds with
    its 95% bootstrap interval, against different units' agreement, and whether the interval clears it."""
    if not check:
        return None
    same = np.asarray(check["same"], dtype=np.float64)
    ci = bootstrap_ci(same)
    return {"units": len(same), "same": format_number(same.mean(), 2), "low": format_number(ci.low, 2),
            "high": format_number(ci.high, 2), "different": format_number(check["different"], 2),
            "stable": bool(ci.low > check["different"])}


def _tile(sheet: dict[str, Any], k: int, count: int = 1) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Tiles k to k + count - 1 of a sprite sheet, side by side in one of its rows: (x, y, w, h), and the
    sheet's (W, H)."""
    w, h = sheet["tile"]
    pitch = sheet.get("gap", 0)
    row, col = divmod(k, sheet["columns"])
    return ((col * (w + pitch), row * (h + pitch), count * w + (count - 1) * pitch, h),
            (sheet["size"][0], sheet["size"][1]))

def _fit(w: int, h: int) -> tuple[int, int]:
    """A picture's displayed size: small tiles enlarged by a whole factor (pixels stay square), large
    ones shrunk to SHOWN on their longest side."""
    side = max(w, h)
    scale = max(1, round(SHOWN / side)) if side <= SHOWN else SHOWN / side
    return max(1, round(w * scale)), max(1, round(h * scale))


def _panels(model: ModelRecord, result: PreferredInputs, graph: dict[str, Any], folder: str,
            agreement: dict[str, Any] | None = None) -> tuple[list[AtlasPanel], list[AtlasNote]]:
    """Every shown unit's cells of its atlas row (its reconstruction(s) as tiles of the layer's sheet,
    the activation reached and against its best test image) and its flags; and per layer, once, what
    those cells mean. `agreement`: the class units' seed agreement (compute.seed_agreement), said under
    their pictures (in the same cell: a row's elements are the atlas's budget)."""
    panels, notes = [], []
    last = len(result.layers) - 1
    for i, (layer, inputs) in enumerate(zip(result.summary["layers"], result.layers, strict=True)):
        sheet = graph["sheets"][i]
        w, h = sheet["tile"]
        shown_w, shown_h = _fit(w, h)
        seeds = layer["seeds"]
        what = (f"Preferred input{'s' if seeds > 1 else ''}: what the ascent drew from "
                f"{f'{seeds} noise seeds' if seeds > 1 else 'noise'}")
        if layer["box"]:
            top, left, bottom, right = layer["box"]
            what += (f", shown on the {bottom - top}\u00d7{right - left}-pixel receptive field of the channel's "
                     "centre neuron")
        if i == last and agreement:
            notes.append(AtlasNote(model.key, layer["name"], f"Seeds alike: how alike {model.name} finds a unit's "
                                   f"{agreement['seeds']} preferred inputs, the mean correlation of their responses "
                                   f"in {agreement['layer']}, against {agreement['different']:.2f} between different "
                                   "units' first seeds; flag unstable seeds: no higher, so one seed's picture is one "
                                   "sample, not the unit's."))
        notes.append(AtlasNote(model.key, layer["name"], what + ". Reached: the activation it reached "
                               f"{'(first seed) ' if seeds > 1 else ''}from its value on the starting noise; "
                               "reached / best test image: that activation against the best test image's, which "
                               "follows 'of'. Flags: dead, never active on a test image; flat, not raised above its "
                               "start, so the picture is not a result."))
        check = layer.get("seed_check") if i < last else None
        checked = dict(zip(check["units"], check["same"], strict=True)) if check else {}
        baseline = agreement["different"] if i == last and agreement else check["different"] if check else 0.0
        if check:
            notes.append(AtlasNote(model.key, layer["name"], f"Seeds alike (for {len(checked)} units drawn from a "
                                   "second noise seed too): how alike the network finds the two pictures, the "
                                   "correlation of this layer's responses to them where the objective reads them, "
                                   f"against {check['different']:.2f} between different units' pictures; flag "
                                   "unstable seeds: no higher."))
        for row, unit in enumerate(inputs.unit.tolist()):
            # all of a unit's seeds in one view of the sheet: a row of the sheet holds whole units
            tile, size = _tile(sheet, row * seeds, seeds)
            alt = (f"Preferred input of {layer['name']} unit {unit}" if seeds == 1 else
                   f"Preferred inputs of {layer['name']} unit {unit} from {seeds} noise seeds, side by side")
            pictures = [Picture(folder + sheet["file"], alt, round(shown_w * tile[2] / w), shown_h, tile=tile,
                                sheet=size)]
            reached, start, best = float(inputs.reached[row][0]), float(inputs.start[row][0]), float(inputs.best[row])
            same = agreement["same"][row] if i == last and agreement else checked.get(unit)
            cells = [AtlasCell("Preferred input" if seeds == 1 else f"Preferred inputs ({seeds} seeds)",
                               f" seeds alike {same:.2f}" if same is not None else "", pictures=tuple(pictures)),
                     AtlasCell("Reached", f"{reached:.3g} from {start:.3g}", value=reached),
                     # the best test image's activation beside the ratio, not in a column of its own: a
                     # row's elements are the atlas's budget (1,500 per 100 units)
                     AtlasCell("Reached / best test image", f"{reached / best:.2f} of {best:.3g}" if best > 0
                               else f"\u2014 (best {best:.3g})", value=reached / best if best > 0 else None)]
            flags = (["dead"] if inputs.dead[row] else []) + (["flat"] if inputs.flat[row, 0] else []) + (
                ["unstable seeds"] if same is not None and same <= baseline else [])
            panels.append(AtlasPanel(model.key, layer["name"], unit, tuple(cells), tuple(flags)))
    return panels, notes


def _graph_page(model: ModelRecord, summary: dict[str, Any], graph: dict[str, Any], folder: str) -> dict[str, Any]:
    """What templates/unitgraph.html draws: nodes as tiles of the sheets, linked to their atlas entries,
    and edges as one SVG path per colour."""
    thumb = graph["thumb"]
    names = [band["name"] for band in graph["layers"]]
    nodes = []
    for layer, row, x, y, flagged, unit in graph["nodes"]:
        sheet = graph["input_sheet"] if layer == 0 else graph["sheets"][layer - 1]
        seeds = 1 if layer == 0 else summary["layers"][layer - 1]["seeds"]
        tile, size = _tile(sheet, row * seeds)
        nodes.append({"x": x, "y": y, "view": tile, "sheet": folder + sheet["file"], "size": size,
                      "flagged": bool(flagged), "label": f"{names[layer]} unit {unit}" if layer else
                      f"input channel {unit}",
                      "href": atlas_href(model.key, names[layer], unit) if layer else None})
    lut = hot_colormap()
    paths: dict[int, list[str]] = {}
    for x1, y1, x2, y2, w in graph["edges"]:
        bucket = min(EDGE_BUCKETS - 1, int(w * EDGE_BUCKETS))
        paths.setdefault(bucket, []).append(f"M{x1:g} {y1:g}L{x2:g} {y2:g}")
    edges = []
    for bucket in sorted(paths):
        level = EDGE_LOW + (1 - EDGE_LOW) * (bucket + 0.5) / EDGE_BUCKETS
        r, g, b = lut[int(round(level * 255))]
        edges.append({"color": f"#{r:02x}{g:02x}{b:02x}", "d": "".join(paths[bucket])})
    return {"model": model.name, "key": model.key, "width": graph["size"][0], "height": graph["size"][1],
            "thumb": thumb, "nodes": nodes, "edges": edges,
            "layers": [{"name": band["name"], "y": (band["top"] + band["bottom"]) / 2, "units": band["units"],
                        "atlas": atlas_path(model.key, band["name"]) if k else None}
                       for k, band in enumerate(graph["layers"])]}
