"""Section 4 as the site shows it: the clusters stages' artifacts -> a `site.Section` (the post's
numbers and sentences, the map figures, and the zoomable map page).

Reads finished artifacts only; every number comes from `embedding.clusters_stage` and every picture
from `imagemap.clusters_figures_stage`. Display names enter here, never in a stage's key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reportgen.cache import Artifact
from reportgen.config import Config
from reportgen.report.pages import ModelRecord, Page, Section
from reportgen.stats import compare_phrase, format_count, format_percent, format_proportion_ci, mcnemar_from_counts

# The map page, relative to the post's folder: beside the post, so its sprites are at figures/...
PAGE = "clusters-map.html"


def mapped_model(cfg: Config) -> int:
    """Index of the model whose descriptors are mapped: `clusters.model` by display name, else the last."""
    names = [m.name for m in cfg.models]
    return names.index(cfg.clusters.model) if cfg.clusters.model else len(names) - 1


def _per_class(counts: list[int]) -> str:
    """How many mapped images each class has, as a caption says it: 'the 100 images of each class',
    'the 88 to 112 images of each class'."""
    low, high = min(counts, default=0), max(counts, default=0)
    return f"the {format_count(low)} images of each class" if low == high else \
        f"the {format_count(low)} to {format_count(high)} images of each class"


def _percent(fraction: float | None, count: int, k: int) -> str:
    """A precision@k (the fraction of count * k neighbour votes that hit) with the digits those votes carry."""
    if fraction is None or count == 0:
        return "n/a"
    votes = count * k
    return format_percent(round(fraction * votes), votes)


def _precision(summary: dict[str, Any], models: Sequence[ModelRecord], classes: Sequence[str]) -> dict[str, Any]:
    """The precision@k table: a row per model and FC layer, a column per class, then all images."""
    counts, k, n = summary["class_counts"], summary["k"], summary["count"]
    rows = []
    for entry in summary["precision"]:
        values = [_percent(p, c, k) for p, c in zip(entry["per_class"], counts, strict=True)]
        rows.append({"model": models[entry["model"]].name, "layer": entry["layer"], "dims": entry["dims"],
                     "values": values, "all": _percent(entry["all"], n, k),
                     "mapped": entry["model"] == summary["model"] and entry["layer"] == summary["layer"]})
    mapped = next((e for e in summary["precision"] if e["model"] == summary["model"]
                   and e["layer"] == summary["layer"]), None)
    extremes = {}
    if mapped and len(classes) > 1:
        scored = [(p, i) for i, p in enumerate(mapped["per_class"]) if p is not None]
        if scored:
            # ties go to the lower class index, as everywhere in the post, and the others tied are named
            (low, worst), (high, best) = min(scored), min(scored, key=lambda pi: (-pi[0], pi[1]))
            extremes = {"worst": classes[worst], "worst_value": _percent(low, counts[worst], k),
                        "best": classes[best], "best_value": _percent(high, counts[best], k),
                        "worst_ties": [classes[i] for p, i in scored if p == low and i != worst],
                        "best_ties": [classes[i] for p, i in scored if p == high and i != best]}
    return {"classes": list(classes), "rows": rows, **extremes}


def _knn(knn: dict[str, Any]) -> dict[str, Any]:
    """kNN accuracy in descriptor space and in the map, with intervals and their paired comparison."""
    n = knn["count"]
    if n == 0:
        return {"count": 0}
    # A = the 2D map, B = the descriptors: diff > 0 means the map classifies more images right
    res = mcnemar_from_counts(knn["both"], knn["map_only"], knn["descriptor_only"], knn["neither"])
    verdict = "same" if not res.significant else ("map" if res.diff > 0 else "descriptor")
    return {"count": n, "count_text": format_count(n), "descriptor": format_proportion_ci(knn["descriptor"], n),
            "map": format_proportion_ci(knn["map"], n), "majority": format_percent(knn["majority"], n),
            "comparison": compare_phrase(res, with_ci=True), "verdict": verdict}


def section(cfg: Config, models: Sequence[ModelRecord], classes: Sequence[str], computed: Artifact,
            pictures: Artifact) -> Section:
    """Section 4's context (`clusters` in the templates), its map page and its figures."""
    summary = json.loads(computed.file("clusters.json").read_text())
    figures = json.loads(pictures.file("figures.json").read_text())
    viewer = json.loads(pictures.file("viewer.json").read_text())
    viewer["sprites"]["files"] = ["figures/" + f for f in viewer["sprites"]["files"]]  # the page sits beside the post
    model = models[summary["model"]].name
    rows, cols = summary["grid"]
    set_name = "test" if summary["images"] == "test" else "all"
    context = {
        "model": model, "layer": summary["layer"], "dims": summary["dims"], "images": set_name,
        "count": summary["count"], "count_text": format_count(summary["count"]), "classes": summary["classes"],
        "perplexity": summary["perplexity"], "perplexity_used": summary["perplexity_used"],
        "method": summary["method"], "pca_dims": summary["pca_dims"], "seed": summary["seed"], "k": summary["k"],
        "grid": {"rows": rows, "cols": cols, "exact": summary["exact_grid"]}, "queries": summary["queries"],
        "figures": {name.removeprefix("clusters-").removesuffix(".png").replace("-", "_"):
                    {"src": "figures/" + name, **size} for name, size in figures.items()},
        "page": PAGE, "precision": _precision(summary, models, classes), "knn": _knn(summary["knn"]),
        "timings": summary["timings"], "no_variation": summary.get("no_variation", False),
        "per_class_text": _per_class(summary["class_counts"]),
    }
    what = f"{format_count(summary['count'])} {'test ' if set_name == 'test' else ''}images"
    page = Page(PAGE, "imagemap.html", {
        "title": f"Image map of {what}",
        "intro": (f"Each image is placed by a 2D t-SNE embedding of its {summary['layer']} descriptor in {model} "
                  f"({summary['dims']} values); the grid layout snaps the same map to one image per cell. "
                  f"The nearest neighbours a click shows are the {summary['k']} closest images in descriptor space."),
        "imagemap": viewer, "back": "index.html#figure-clusters-map",
    })
    return Section("clusters", context, pages=[page], media=[pictures])
