"""Section 4 as the pipeline runs it: descriptors, t-SNE and neighbours of the mapped model (compute),
the maps and neighbour rows (draw), then the presentation."""

from __future__ import annotations

import dataclasses

from reportgen.cache import Stage
from reportgen.report.pages import Section
from reportgen.sections.base import BuildContext, SectionSpec
from reportgen.sections.clusters import compute, draw, present

CLUSTERS = Stage("clusters", compute.clusters_stage)
CLUSTER_FIGURES = Stage("clusters-figures", draw.clusters_figures_stage)


def build(ctx: BuildContext) -> Section:
    cfg = ctx.cfg
    # keyed on the mapped model's position, not its display name, and on t-SNE's thread count, which
    # changes the map (float sums split across threads round differently); the batch size is speed only
    computed = ctx.run(CLUSTERS, {"clusters": dataclasses.replace(cfg.clusters, model=""), "device": ctx.device,
                                  "tsne_threads": cfg.build.workers or compute.TSNE_THREADS,
                                  "layers": [list(m.layers) for m in cfg.models], "mapped": present.mapped_model(cfg)},
                       *(art for r in ctx.records for art in (r.data, r.model)),
                       label="clusters", runtime={"batch_size": cfg.evaluate.batch_size})
    pictures = ctx.run(CLUSTER_FIGURES, {}, ctx.dataset_art, computed, label="clusters figures")
    return present.section(cfg, ctx.records, ctx.dataset.class_names, computed, pictures)


SECTION = SectionSpec("clusters", (CLUSTERS, CLUSTER_FIGURES), lambda cfg: cfg.clusters.enabled, build)
