"""Section 1 as the pipeline runs it. Its compute stages (evaluate, describe) run per model in the
pipeline itself, since every section reads them; here the drawing stage, then the presentation."""

from __future__ import annotations

from reportgen.cache import Stage
from reportgen.report.pages import Section
from reportgen.sections.base import BuildContext, SectionSpec
from reportgen.sections.classification import draw, present

FIGURES = Stage("figures", draw.figures_stage)


def build(ctx: BuildContext) -> Section:
    cfg = ctx.cfg
    drawings = ctx.run(FIGURES, {"samples_per_class": cfg.site.samples_per_class, "seed": cfg.data.seed,
                                 "models": [{"name": r.name, "key": r.key} for r in ctx.records]},
                       ctx.dataset_art, *(r.description for r in ctx.records), label="figures")
    return present.section(cfg, ctx.dataset, ctx.records, drawings)


SECTION = SectionSpec("classification", (FIGURES,), lambda cfg: True, build)
