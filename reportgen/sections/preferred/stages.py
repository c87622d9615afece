"""Section 2 as the pipeline runs it: per model, every unit's preferred input (compute), then its
pictures (draw); then the presentation."""

from __future__ import annotations

from reportgen.cache import Stage
from reportgen.nets.checkpoint import resolve_precision
from reportgen.report.pages import Section
from reportgen.sections.base import BuildContext, SectionSpec
from reportgen.sections.preferred import compute, draw, present

PREFERRED = Stage("preferred", compute.preferred_stage)
# section 2's torch threads when neither preferred.threads nor build.workers sets them: a fixed count,
# since it is keyed, and both cores of the 2-core machines reportgen is measured on
DEFAULT_THREADS = 2
PREFERRED_FIGURES = Stage("preferred-figures", draw.preferred_figures_stage)
CLASS_UNITS = Stage("class-units", compute.class_units_stage)
CLASS_UNITS_FIGURES = Stage("class-units-figures", draw.class_units_figures_stage)


def build(ctx: BuildContext) -> Section:
    cfg = ctx.cfg
    computed, drawn = [], []
    for r, m in zip(ctx.records, cfg.models, strict=True):
        # the thread count is keyed, as for training: float sums split across threads may round
        # differently; so is the precision the machine runs the ascent in
        computed.append(ctx.run(PREFERRED, {"preferred": compute.keyed(cfg.preferred), "device": ctx.device,
                                            "threads": cfg.preferred.threads or cfg.build.workers or DEFAULT_THREADS,
                                            "precision": resolve_precision(cfg.preferred.precision,
                                                                                  ctx.device),
                                            "layers": list(m.layers)},
                                r.data, r.model, label=f"preferred inputs {r.name}"))
        drawn.append(ctx.run(PREFERRED_FIGURES, {"key": r.key, "name": r.name, "edges": cfg.preferred.edges,
                                                 "fps": cfg.preferred.movie_fps},
                             computed[-1], label=f"preferred figures {r.name}"))
    ctx.shared["preferred"] = computed
    # every model's class units without regularizers, each image judged by every model
    classes = ctx.run(CLASS_UNITS, {"seed": cfg.preferred.seed, "device": ctx.device,
                                    "threads": cfg.preferred.threads or cfg.build.workers or DEFAULT_THREADS},
                      *(art for r, comp in zip(ctx.records, computed, strict=True) for art in (r.model, comp)),
                      label="class units")
    classes_drawn = ctx.run(CLASS_UNITS_FIGURES, {"keys": [r.key for r in ctx.records],
                                                  "class_names": list(ctx.dataset.class_names)},
                            classes, label="class units figures")
    return present.section(cfg.preferred, ctx.records, computed, drawn, classes, classes_drawn)


SECTION = SectionSpec("preferred", (PREFERRED, PREFERRED_FIGURES, CLASS_UNITS, CLASS_UNITS_FIGURES),
                      lambda cfg: cfg.preferred.enabled, build)
