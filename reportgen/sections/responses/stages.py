"""Section 3 as the pipeline runs it: per model, one streamed pass of hooks (compute) and its pictures
and movies (draw); then the presentation. Classes and images are chosen here from the evaluate
stage's predictions and passed as exact indices, so the keys hold choices rather than the
predictions' own (threshold-dependent) keys."""

from __future__ import annotations

import numpy as np

from reportgen.cache import Stage
from reportgen.nets.checkpoint import resolve_precision
from reportgen.report.pages import Section
from reportgen.sections.base import BuildContext, SectionSpec
from reportgen.sections.responses import compute, draw, paths, present

RESPONSES = Stage("responses", compute.responses_stage)
# the randomization test's and the path check's torch threads without build.workers: fixed, since they are keyed
RANDOMIZATION_THREADS = 2
RESPONSE_FIGURES = Stage("response-figures", draw.drawing_stage)
ACTIVATED_INPUTS = Stage("activated-inputs", draw.activated_inputs_stage)
RANDOMIZATION = Stage("randomization", compute.randomization_stage)
RANDOMIZATION_FIGURE = Stage("randomization-figure", draw.randomization_figure_stage)
PATHS = Stage("path-check", paths.path_stage)
PATH_FIGURE = Stage("path-figure", draw.path_figure_stage)


def build(ctx: BuildContext) -> Section:
    cfg = ctx.cfg
    predictions = []
    for r in ctx.records:
        with np.load(r.evaluation.file("predictions.npz")) as z:
            predictions.append((z["probs"], z["labels"]))
    settings = compute.choose(cfg.responses, cfg.evaluate.group, ctx.dataset.class_names, predictions)
    computed, drawn, randomized = [], [], []
    for r, m, (probs, labels) in zip(ctx.records, cfg.models, predictions, strict=True):
        chosen = compute.movie_images(labels, probs, settings)
        art = ctx.run(RESPONSES, {"responses": settings, "images": chosen, "device": ctx.device,
                                  "precision": resolve_precision(cfg.responses.precision, ctx.device),
                                  "layers": list(m.layers)}, r.data,
                      r.model, label=f"responses {r.name}", runtime={"batch_size": min(cfg.evaluate.batch_size, 256)})
        computed.append(art)
        # does guided backprop explain what the network learned? (Adebayo et al.'s cascading test); its
        # verdict chooses the atlas's saliency pictures, so it runs before the drawings
        checked = ctx.run(RANDOMIZATION, {"per_class": present.RANDOMIZED_PER_CLASS, "seed": cfg.preferred.seed,
                                          "device": ctx.device, "layers": list(m.layers),
                                          "threads": cfg.build.workers or RANDOMIZATION_THREADS},
                          r.data, r.model, art, label=f"randomization {r.name}")
        drawn.append(ctx.run(RESPONSE_FIGURES, {"name": r.name, "key": r.key, "threshold": cfg.responses.threshold,
                                                  "atlas_gradients": cfg.responses.atlas_gradients,
                                                  "atlas_method": cfg.responses.atlas_method},
                             r.data, art, checked, label=f"response figures {r.name}"))
        randomized.append((checked, ctx.run(RANDOMIZATION_FIGURE, {"name": r.name, "key": r.key}, checked,
                                            label=f"randomization figure {r.name}")))
    # with section 2's preferred inputs, the activated units as pictures (the write-up's figure)
    pictured, checked_paths = [], []
    for r, art, pref in zip(ctx.records, computed, ctx.shared.get("preferred", []), strict=False):
        pictured.append(ctx.run(ACTIVATED_INPUTS, {"key": r.key, "threshold": cfg.responses.threshold}, r.data, art,
                                pref, label=f"activated inputs {r.name}"))
        # are the preferred inputs processed like the natural images that drive their units? (Geirhos et al.)
        checked = ctx.run(PATHS, {"device": ctx.device, "threads": cfg.build.workers or RANDOMIZATION_THREADS},
                          r.data, r.model, art, pref, label=f"path check {r.name}")
        checked_paths.append((checked, ctx.run(PATH_FIGURE, {"name": r.name, "key": r.key}, checked,
                                               label=f"path figure {r.name}")))
    return present.section(cfg.responses, ctx.records, computed, drawn, pictured, randomized, checked_paths)


SECTION = SectionSpec("responses", (RESPONSES, RESPONSE_FIGURES, RANDOMIZATION, RANDOMIZATION_FIGURE, ACTIVATED_INPUTS,
                                    PATHS, PATH_FIGURE),
                      lambda cfg: cfg.responses.enabled, build)
