"""The build, read top to bottom: data -> models (train or load) -> evaluate, describe -> each
section of SECTIONS (its stages, then its presentation) -> site.

Each stage is declared once (`Stage`: the function it runs) and run with exactly the config it reads
and the artifacts it depends on, which is also what its cache key hashes, with the source of every
module that function's module imports (see cache.py). So a build with nothing changed is answered
from the record of the last one (builds.py), a title or model-name change only redraws and
re-renders, and a change to one model's hyperparameters retrains only that model.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from reportgen import builds
from reportgen.cache import Artifact, Cache, Stage
from reportgen.config import TORCHSCRIPT, USER_CLASS, Config, DataConfig, ModelConfig
from reportgen.errors import DataError, EvaluateError, Problems, SettingError, SiteError
from reportgen.nets import architectures, data, distributed, imported, train
from reportgen.nets.architectures import ModelError
from reportgen.nets.checkpoint import (
    arch_kwargs,
    check_compatible,
    load_model,
    pick_device,
    read_checkpoint,
    resolve_precision,
)
from reportgen.nets.data import Dataset
from reportgen.nets.layers import LayerError, find_layer, unit_layers
from reportgen.report import publish, site
from reportgen.report.pages import ModelRecord
from reportgen.sections.base import BuildContext
from reportgen.sections.classification import compute as evaluate
from reportgen.sections.classification import describe
from reportgen.sections.classification import stages as classification
from reportgen.sections.clusters import compute as embedding
from reportgen.sections.clusters import stages as clusters
from reportgen.sections.clusters.present import mapped_model
from reportgen.sections.preferred import compute as preferred_compute
from reportgen.sections.preferred import stages as preferred
from reportgen.sections.responses import compute as responses_compute
from reportgen.sections.responses import stages as responses

log = logging.getLogger("reportgen")

# the stages every section reads: the data, then per model its weights, test predictions and description
DATA = Stage("data", data.dataset_stage)
TRAIN = Stage("train", train.train_stage)
LOAD = Stage("load", imported.load_stage)
EVALUATE = Stage("evaluate", evaluate.evaluate_stage)
DESCRIBE = Stage("describe", describe.describe_stage)
# the post's sections, in the order the post shows them
SECTIONS = (classification.SECTION, preferred.SECTION, responses.SECTION, clusters.SECTION)


def build(cfg: Config, out: Path | None = None, force: bool = False, prune: bool = False,
          check_unchanged: bool = True) -> builds.BuildResult:
    """Run every stage and write the site; return the stage records for the summary. When nothing the
    build reads changed since the site in `out` was built, return at once (unless forced or pruning;
    `check_unchanged=False` when the caller has just checked)."""
    start = time.perf_counter()
    out = out or cfg.resolve(cfg.build.out)
    if check_unchanged and not (force or prune) and (unchanged := builds.up_to_date(cfg, out)):
        return unchanged
    inputs = builds.inputs_fingerprint(cfg, out)  # before any stage runs: an edit during the build shows next time
    publish.check_output_dir(out)  # refuse a foreign folder before hours of training, not after
    _check_inputs(cfg, out)
    if cfg.build.workers:
        torch.set_num_threads(cfg.build.workers)
    cache = Cache(cfg.resolve(cfg.build.cache), force=force)
    cache.tag()
    if swept := cache.sweep():
        log.info("removed %d temporary folder%s left by interrupted builds", swept, "s" * (swept != 1))
    device = pick_device(cfg.build.device).type
    stages: list[Artifact] = []

    def run(stage: Stage, params: object, *inputs: Artifact, **kwargs: object) -> Artifact:
        artifact = cache.run(stage, params, *inputs, **kwargs)
        stages.append(artifact)
        return artifact

    dataset_art, views = _data_views(cfg, run)
    dataset = Dataset.from_artifact(dataset_art)
    datasets = _model_datasets(cfg, dataset, dataset_art, views)
    _check_against_data(cfg, datasets)
    records = []
    for index, m in enumerate(cfg.models):
        model_art, origin = _model(cfg, index, views[index], device, run)
        evaluation = run(EVALUATE, {"evaluate": dataclasses.replace(cfg.evaluate, batch_size=0), "device": device},
                         views[index], model_art, label=f"evaluate {m.name}",
                         runtime={"batch_size": cfg.evaluate.batch_size})
        description = run(DESCRIBE, {}, model_art, label=f"describe {m.name}")
        records.append(ModelRecord(m.name, m.key, model_art, origin, evaluation, description, views[index]))
    ctx = BuildContext(cfg, dataset, dataset_art, records, device, run)
    sections = [spec.build(ctx) for spec in SECTIONS if spec.enabled(cfg)]
    distributed.release()  # under torchrun, the other ranks have trained and rendered their share

    site_start = time.perf_counter()
    site.render(cfg, out, records, sections)
    builds.save_record(cfg, out, inputs, stages)
    stages.append(Artifact("site", "", out, {"label": "site"}, False, time.perf_counter() - site_start))
    result = builds.BuildResult(out, stages)
    if prune:
        result.pruned = cache.prune()
    result.seconds = time.perf_counter() - start
    return result


def build_ranks(cfg: Config, out: Path | None = None, force: bool = False, prune: bool = False
                ) -> builds.BuildResult | None:
    """`build` under torchrun (see nets/distributed.py): rank 0 builds, handing each training and its
    share of section 2's preferred inputs to every rank; the other ranks do those and return None.
    Every rank joins first, even when the site turns out to be up to date, so that none waits for a
    rank that has left."""
    world = distributed.join(pick_device(cfg.build.device).type)
    try:
        if world is None or world.leader:
            try:
                return build(cfg, out, force, prune)
            finally:
                distributed.release()
        if cfg.build.workers:
            torch.set_num_threads(cfg.build.workers)
        distributed.serve({"train": train.train_job, "render": preferred_compute.render_job})
        return None
    finally:
        distributed.leave()


def _data_params(cfg: Config, settings: DataConfig, source: str) -> dict[str, object]:
    """What the data stage reads: the data settings without augmentation (applied while training, so
    not part of the decoded images), the folder made absolute, and `source`, a fingerprint of its files."""
    settings = dataclasses.replace(settings, augment=type(settings.augment)(),
                                   path=str(cfg.resolve(settings.path)) if settings.path else "")
    return {"data": settings, "source": source}


def _data_views(cfg: Config, run: Callable[..., Artifact]) -> tuple[Artifact, list[Artifact]]:
    """The data as the config's data settings decode it (section 1's samples, section 4's thumbnails),
    and as each model's input takes it (`Config.model_data`): one data stage per distinct view."""
    decoded: dict[tuple, Artifact] = {}
    source = data.source_fingerprint(cfg.data, cfg.root)

    def view(settings: DataConfig, label: str) -> Artifact:
        shape = (settings.image_size, settings.channels, settings.resize, settings.crop)
        if shape not in decoded:
            decoded[shape] = run(DATA, _data_params(cfg, settings, source), label=label)
        return decoded[shape]

    shared = view(cfg.data, "data")
    return shared, [view(cfg.model_data(i), f"data {m.name}") for i, m in enumerate(cfg.models)]


def _model_datasets(cfg: Config, dataset: Dataset, dataset_art: Artifact, views: list[Artifact]) -> list[Dataset]:
    """Each model's view of the data, which must hold the same images in the same splits as the
    shared one (the same files pass the same filters whatever the size), so every section can pair
    one model's rows with another's."""
    out = []
    for index, art in enumerate(views):
        own = dataset if art.key == dataset_art.key else Dataset.from_artifact(art)
        if own.class_names != dataset.class_names or not (np.array_equal(own.labels, dataset.labels)
                                                          and np.array_equal(own.splits, dataset.splits)):
            raise SiteError(f"models[{index}] ({cfg.models[index].name}): its own input size or resizing decoded "
                            "a different set of images than the data settings; rebuild with --force")
        out.append(own)
    return out


def _model(cfg: Config, index: int, dataset_art: Artifact, device: str,
           run: Callable[..., Artifact]) -> tuple[Artifact, str]:
    """The model's checkpoint and, for one trained elsewhere, the file it came from ('' when this
    build trained it): a reportgen checkpoint as is, a state dict through the load stage (nothing
    trained), else the train stage; each cached by its settings and files."""
    m = cfg.models[index]
    if m.checkpoint:  # already checked against the data by _check_against_data
        path = cfg.resolve(m.checkpoint)
        return Artifact.external("checkpoint", path), path.name
    weights = [Artifact.external("weights", cfg.resolve(m.weights))] if m.weights else []
    # the user's class file is an input too: editing it re-runs what used it
    code = [Artifact.external("code", path)] if (path := m.class_file(cfg.root)) and path.is_file() else []
    # 'auto' precision keyed as this machine resolves it: another machine may train in another
    settings = dataclasses.replace(_training_settings(m), arch=_arch(cfg, m),
                                   precision=resolve_precision(m.precision, device))
    try:
        if not m.train:
            return run(LOAD, {"model": settings, "arch": settings.arch, "outputs": output_names(cfg, index)},
                       dataset_art, *weights, *code,
                       label=f"load {m.name}"), cfg.resolve(m.weights).name
        # the thread count is keyed: results depend on it (see train.DEFAULT_THREADS), as on the
        # number of ranks training together under torchrun
        threads = cfg.build.workers or train.DEFAULT_THREADS
        ranks = {"world": world.size} if (world := distributed.current()) else {}
        return run(TRAIN, {"model": settings, "augment": cfg.data.augment, "device": device, "threads": threads,
                           **ranks}, dataset_art, *weights, *code, label=f"train {m.name}"), ""
    except ModelError as e:
        raise ModelError(f"models[{index}] ({m.name}): {e}") from None


def output_names(cfg: Config, index: int) -> list[str]:
    """The class name of each output of a loaded network, from its `classes` or `classes_file` (one
    name per line, blank lines skipped); empty when it has one output per data class."""
    m = cfg.models[index]
    if not m.classes_file:
        return list(m.classes)
    path = cfg.resolve(m.classes_file)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ModelError(f"models[{index}].classes_file: file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"models[{index}].classes_file: cannot read {path} as UTF-8 text "
                         f"({e.__class__.__name__})") from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if len(names) < 2 or repeated:
        raise ModelError(f"models[{index}].classes_file: {path} " + (
            f"names {', '.join(map(repr, repeated[:3]))} more than once; each output needs its own name"
            if repeated else "needs one class name per line, one line per output of the network"))
    return names


def _arch(cfg: Config, m: ModelConfig) -> str:
    """The entry's architecture with a 'file:' class's file made absolute (it is relative to the config),
    and a TorchScript archive named by its absolute path: 'torchscript:<path>'."""
    if m.arch == TORCHSCRIPT:
        return f"{TORCHSCRIPT}:{cfg.resolve(m.weights)}"
    match = USER_CLASS.fullmatch(m.arch)
    if match and match["kind"] == "file":
        return f"file:{m.class_file(cfg.root)}:{match['cls']}"
    return m.arch


def _check_inputs(cfg: Config, out: Path) -> None:
    """Everything about the output folder and the models' files that can fail, checked before any image
    is decoded (the config's own checks ran when it was loaded)."""
    cache = cfg.resolve(cfg.build.cache)
    if out == cache or out in cache.parents or cache in out.parents:
        raise SiteError(f"{out}: the output folder and the cache folder ({cache}) must be separate folders")
    for index, m in enumerate(cfg.models):
        if m.checkpoint:
            path = cfg.resolve(m.checkpoint)
            try:
                read_checkpoint(path)
            except ModelError as e:
                raise ModelError(f"models[{index}].checkpoint: {e}") from None
        elif m.weights and not cfg.resolve(m.weights).is_file():
            raise ModelError(f"models[{index}].weights: file not found: {cfg.resolve(m.weights)}")
        if m.arch.startswith("file:") and not (path := m.class_file(cfg.root)).is_file():
            raise ModelError(f"models[{index}].arch: file not found: {path}")
        output_names(cfg, index)


def _check_against_data(cfg: Config, datasets: list[Dataset]) -> None:
    """Settings that name classes, and checkpoints that must fit the data (`datasets`: each model's
    view of it): checked once the data is known and before any model trains, so a mistake in the last
    model does not cost the first's training. Every problem is found before any is raised: one alone
    as itself, several as `Problems`."""
    problems: list[Exception] = []

    def attempt(check: Callable[[], object]) -> bool:
        try:
            check()
        except (DataError, ModelError, SettingError, LayerError, EvaluateError) as e:
            problems.append(e)
            return False
        return True

    classes = datasets[0].class_names
    attempt(lambda: data.Augmenter(cfg.data.augment, classes))
    attempt(lambda: evaluate.check_group(cfg.evaluate, classes))
    usable = [attempt(lambda i=index: _check_model(cfg, i, datasets[i])) for index in range(len(cfg.models))]
    if cfg.responses.enabled:
        attempt(lambda: responses_compute.check_classes(cfg.responses, classes))
        if cfg.responses.feature_layer:  # of the models whose own checks passed: the others said why
            for index in (i for i, ok in enumerate(usable) if ok):
                attempt(lambda i=index: _check_feature_layer(cfg, i, _untrained(cfg, i, datasets[i]), datasets[i]))
    if cfg.clusters.enabled and usable[mapped_model(cfg)]:
        attempt(lambda: _check_clusters(cfg, datasets[mapped_model(cfg)]))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise Problems(problems)


def _check_model(cfg: Config, index: int, dataset: Dataset) -> None:
    """A checkpoint must fit the data, loaded weights their architecture and the classes, and the unit
    layers (chosen, or found in the architecture) must exist."""
    m = cfg.models[index]
    if m.checkpoint:
        path = cfg.resolve(m.checkpoint)
        check_compatible(path, dataset, f"models[{index}].checkpoint ({path})")
    elif not m.train:  # the weights must fit the architecture and the classes: known without training
        try:
            imported.build(_arch(cfg, m), m, dataset, cfg.resolve(m.weights), output_names(cfg, index))
        except ModelError as e:
            raise ModelError(f"models[{index}] ({m.name}): {e}") from None
    try:
        unit_layers(_untrained(cfg, index, dataset), _input_shape(dataset), m.layers)
    except LayerError as e:
        raise SettingError(f"models[{index}]{'.layers' if m.layers else f' ({m.name})'}: {e}") from None


def _untrained(cfg: Config, index: int, dataset: Dataset) -> torch.nn.Module:
    """The architecture of model `index` (a checkpoint's network), for checks of the layers settings
    name: known before any model trains."""
    m = cfg.models[index]
    if m.checkpoint:
        return load_model(cfg.resolve(m.checkpoint), torch.device("cpu")).network
    try:
        outputs = len(output_names(cfg, index)) or None
        return architectures.create_model(_arch(cfg, m), **arch_kwargs(dataset, m, outputs), args=dict(m.args)).eval()
    except ModelError as e:
        raise ModelError(f"models[{index}] ({m.name}): {e}") from None


def _input_shape(dataset: Dataset) -> tuple[int, int, int]:
    return dataset.images.shape[3], dataset.images.shape[1], dataset.images.shape[2]


def _check_feature_layer(cfg: Config, index: int, network: torch.nn.Module, dataset: Dataset) -> None:
    """responses.feature_layer must name a convolutional layer of every model (section 3 runs on each)."""
    name, model = cfg.responses.feature_layer, cfg.models[index].name
    layers = unit_layers(network, _input_shape(dataset), cfg.models[index].layers)
    try:
        layer = find_layer(layers, name)
    except LayerError:
        raise SettingError(f"responses.feature_layer: {name!r} is not a layer of {model}; known: "
                           f"{', '.join(la.name for la in layers)}") from None
    if layer.kind != "conv":
        conv = [la.name for la in layers if la.kind == "conv"]
        raise SettingError(f"responses.feature_layer: {name!r} of {model} is not a convolutional layer; "
                           f"convolutional layers: {', '.join(conv) or 'none'}")


def _check_clusters(cfg: Config, dataset: Dataset) -> None:
    """The mapped layer must exist in the mapped model and the queries must point at mapped images:
    known from the architecture (an untrained copy) before any model trains."""
    index = mapped_model(cfg)
    embedding.mapped_layer(_untrained(cfg, index, dataset), _input_shape(dataset), cfg.clusters.layer,
                           cfg.models[index].name, cfg.models[index].layers)
    count = len(embedding.mapped_rows(dataset, cfg.clusters.images))
    if count < 2:
        raise SettingError(f"clusters.images: {count} {cfg.clusters.images} image(s), too few to map; "
                           "choose 'all', or set clusters.enabled = false")
    embedding.check_queries(cfg.clusters.queries, count)


def _training_settings(m: ModelConfig) -> ModelConfig:
    """The model's settings as training reads them: the display name and the checkpoint path (which
    only decides whether to train at all) are blanked, so renaming a model retrains nothing, and so
    are the layers the sections show (their own stages' parameters); the output names reach the load
    stage on their own, read from their file (`output_names`)."""
    return dataclasses.replace(m, name="", checkpoint="", weights="", classes=(), classes_file="", layers=())
