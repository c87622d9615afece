"""Typed, validated build configuration loaded from a TOML file.

Every option is declared once, as a dataclass field whose metadata carries its documentation and
what values it accepts. `load_config` walks the TOML against these declarations and collects every
problem (bad value, wrong type, unknown key with a did-you-mean) before failing, so a user fixes a
config in one pass instead of one error per run.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints


class ConfigError(Exception):
    """A config file that cannot be used; `problems` holds one line per mistake."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def option(default: Any, doc: str, check: Callable[[Any], str | None] | None = None) -> Any:
    """Declare a config option: its default, its one-line documentation and an optional check.

    `check` returns None when the value is acceptable, else a description of what is accepted.
    """
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults so configs stay immutable")
    return field(default=default, metadata={"doc": doc, "check": check})


def table_option(doc: str) -> Any:
    """Declare an option holding a TOML table of plain values (numbers, strings, booleans, lists)."""
    return field(default_factory=dict, metadata={"doc": doc, "check": None})


def one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else "one of " + ", ".join(repr(c) for c in choices)


def at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"a number >= {low}"


def between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"a number between {low} and {high}"


def positive(v: float) -> str | None:
    return None if v > 0 else "a number > 0"


def _split_fractions(v: tuple[float, ...]) -> str | None:
    ok = len(v) == 3 and all(0 <= f < 1 for f in v) and abs(sum(v) - 1) < 1e-6 and v[0] > 0 and v[2] > 0
    return None if ok else "three fractions [train, val, test] in [0, 1) summing to 1, train and test > 0"


def _seed(v: int) -> str | None:
    return None if 0 <= v < 2**32 else "an integer from 0 to 4294967295 (numpy and torch seeds)"


# The architectures nets/architectures.py registers. config.py must not import it (it imports torch, and
# `--help` and config errors should be instant); tests/nets/test_architectures.py keeps the two lists equal.
BUILTIN_ARCHS = ("model1", "model2")
BATCH_NORM_ARCHS = ("model2",)  # batch norm cannot train on batches of one image
TORCHVISION_PREFIX = "torchvision:"
# a TorchScript archive (torch.jit.save) in `weights`: the architecture comes with it
TORCHSCRIPT = "torchscript"
# a network class of the user's own: 'file:<path to a .py file>:<Class>' or 'python:<module>:<Class>'
USER_CLASS = re.compile(r"(?P<kind>file|python):(?P<where>.+):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)")


def _slug(v: str) -> str | None:
    return None if re.fullmatch(r"[a-z0-9][a-z0-9-]*", v) else "lower-case letters, digits and dashes"


@dataclass(frozen=True)
class SiteConfig:
    title: str = option("Visualizing preferred inputs, activations and clusterings of two CNNs",
                        "Title of the post.")
    author: str = option("", "Author shown under the title; empty hides it.")
    date: str = option("", "Date shown on the post (free text); empty uses the date of SOURCE_DATE_EPOCH when "
                           "set, else the day the models were trained, never the day the site was rendered.")
    slug: str = option("visualizing-two-cnns", "URL folder of the post under posts/.", _slug)
    templates: str = option("", "A folder whose templates override the built-in ones (e.g. your own "
                                "post.md.j2); relative to the config file.")
    samples_per_class: int = option(8, "Images per class in the samples grid.", between(1, 32))


@dataclass(frozen=True)
class BuildConfig:
    out: str = option("site", "Output folder of the website, relative to the config file.")
    cache: str = option(".reportgen-cache", "Folder for cached stage artifacts, relative to the config file.")
    device: str = option("auto", "Where to run the networks.", one_of("auto", "cpu", "cuda"))
    workers: int = option(0, "Torch CPU threads. Training always runs on a fixed count, this one or 2 when 0, "
                             "since its results depend on the count (so changing it retrains), and so does "
                             "t-SNE (this one or 1); other stages use torch's default when 0.", at_least(0))


@dataclass(frozen=True)
class AugmentConfig:
    factor: int = option(1, "How many times each training image of an augmented class is used per epoch "
                            "(the original plus factor-1 randomly augmented copies).", between(1, 100))
    classes: tuple[str, ...] = option((), "Classes to augment; empty means all classes.")
    flip: bool = option(False, "Random horizontal flips (leave off for digits and text).")
    shift: int = option(0, "Largest random shift in pixels, in each direction.", between(0, 64))
    jitter: float = option(0.0, "Strength of random brightness/contrast jitter (0 = none).", between(0, 1))


@dataclass(frozen=True)
class DataConfig:
    source: str = option("mnist5k", "Where images come from: 'mnist5k', 'lfw-faces' and 'skimage-textures' "
                                    "(24x24 tiles of scikit-image's brick, grass and gravel photographs) ship "
                                    "with pip packages; 'folder' reads `path`.",
                         one_of("mnist5k", "lfw-faces", "skimage-textures", "folder"))
    path: str = option("", "For source = 'folder': a directory with one subfolder per class, or train/, val/ "
                           "and test/ subfolders each holding one subfolder per class.")
    image_size: int = option(28, "Side of the square network input, in pixels.", between(8, 512))
    channels: int = option(1, "Channels of the network input: 1 (gray) or 3 (RGB).",
                           lambda v: None if v in (1, 3) else "1 or 3")
    resize: str = option("crop", "How an image becomes the square input: 'crop' scales its shorter side to "
                                 "image_size and keeps the centre; 'stretch' scales it whole, ignoring the "
                                 "aspect ratio; 'pad' fits it whole on a black square.",
                         one_of("crop", "stretch", "pad"))
    crop: float = option(1.0, "Fraction of each side kept around the centre before resizing (torchvision's "
                              "ImageNet models expect 0.875: Resize(256), then CenterCrop(224)).", between(0.05, 1))
    min_width: int = option(20, "Skip images whose original width is below this many pixels.", at_least(1))
    split: tuple[float, ...] = option((0.7, 0.1, 0.2), "Fractions [train, val, test] for sources that are "
                                                       "not already split.", _split_fractions)
    max_per_class: int = option(0, "Use at most this many images per class (0 = all).", at_least(0))
    seed: int = option(0, "Seed of the split and of augmentation.", _seed)
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"doc": "Training augmentation."})


@dataclass(frozen=True)
class EvaluateConfig:
    uncertain: str = option("threshold", "When a prediction counts as uncertain: 'none'; 'threshold' (top "
                                         "probability below `threshold`); 'group' (top class in `group` and "
                                         "the group's top two probabilities closer than `margin`).",
                            one_of("none", "threshold", "group"))
    threshold: float = option(0.5, "Top-probability threshold of the 'threshold' rule.", between(0, 1))
    group: tuple[str, ...] = option((), "Classes of the 'group' rule, e.g. ['male', 'female'].")
    margin: float = option(0.1, "Probability margin of the 'group' rule.", between(0, 1))
    batch_size: int = option(256, "Images per forward pass when predicting.", at_least(1))


@dataclass(frozen=True)
class ModelConfig:
    name: str = option("", "Display name, e.g. 'Model I'.", lambda v: None if v.strip() else "a non-empty name")
    arch: str = option("model1", "Architecture: 'model1', 'model2', 'torchvision:<name>', a network class of "
                                 "your own: 'file:<file.py>:<Class>' (relative to the config) or "
                                 "'python:<module>:<Class>', or 'torchscript' for a TorchScript archive "
                                 "(torch.jit.save) in `weights`, which holds its architecture.")
    args: dict[str, Any] = table_option("Keyword arguments of a 'file:' or 'python:' class's constructor, e.g. "
                                        "{ num_classes = 3 }.")
    train: bool = option(True, "Train this network (true), or load `weights` as they are and report on the "
                               "network trained elsewhere (false): nothing is trained and the post says so.")
    width: float = option(1.0, "Width multiplier for model1/model2 (1.0 = the write-up's size at 96x96x3).",
                          between(0.01, 4))
    dropout: float = option(0.5, "Dropout probability where the architecture uses dropout.", between(0, 0.95))
    checkpoint: str = option("", "Load this reportgen checkpoint instead of training (relative to the config).")
    weights: str = option("", "A state dict file (torch.save(model.state_dict(), path), or a .safetensors "
                              "file; DataParallel's 'module.' prefixes and {'state_dict': ...} or {'model': ...} "
                              "wrappers are unwrapped): the network's weights when train = false, else where "
                              "training starts. With arch = 'torchscript', the TorchScript archive.")
    layers: tuple[str, ...] = option((), "Module paths whose outputs hold the units sections 2-4 show, e.g. "
                                         "['layer1', 'layer2', 'layer3', 'layer4', 'fc'] (the last: the output "
                                         "layer, whose units are the classes). Empty: model1/model2's blocks, or "
                                         "the outputs of another network's top-level blocks.")
    classes: tuple[str, ...] = option((), "The class name of each output of a loaded network (train = false), in "
                                          "output order, for one with more outputs than the data has classes (an "
                                          "ImageNet model on a folder of a few ImageNet classes): every data class "
                                          "must be one of them, and predictions of the others count as 'other'. "
                                          "Empty: one output per data class, in the data's sorted order.")
    classes_file: str = option("", "The same as a text file of one name per line (relative to the config).")
    image_size: int = option(0, "This network's input side, if it differs from data.image_size (0: the "
                                "data's); the two models of a report may differ.",
                             lambda v: None if v == 0 or 8 <= v <= 512 else "0 or a number between 8 and 512")
    channels: int = option(0, "This network's input channels, if they differ from data.channels (0: the data's).",
                           lambda v: None if v in (0, 1, 3) else "0, 1 or 3")
    resize: str = option("", "This network's data.resize, if it differs ('': the data's).",
                         one_of("", "crop", "stretch", "pad"))
    crop: float = option(0.0, "This network's data.crop, if it differs (0: the data's).",
                         lambda v: None if v == 0 or 0.05 <= v <= 1 else "0 or a number between 0.05 and 1")
    mean: tuple[float, ...] = option((), "Per-channel input mean of a loaded network (train = false), on images "
                                         "scaled to [0, 1]; empty: the training set's own.")
    std: tuple[float, ...] = option((), "Per-channel input standard deviation of a loaded network, as `mean`.",
                                    lambda v: None if all(x > 0 for x in v) else "positive numbers")
    lr: float = option(0.01, "Base learning rate of SGD.", positive)
    step: int = option(1000, "Multiply the learning rate by `gamma` every this many iterations.", at_least(1))
    gamma: float = option(0.1, "Learning-rate step-down factor.", between(0, 1))
    momentum: float = option(0.9, "SGD momentum.", between(0, 1))
    weight_decay: float = option(0.0005, "L2 weight decay.", at_least(0))
    epochs: int = option(5, "Passes over the augmented training set.", at_least(1))
    batch_size: int = option(64, "Training batch size.", at_least(1))
    seed: int = option(0, "Seed of initialization and batch order.", _seed)
    precision: str = option("float32", "What training computes in: 'float32', or 'bfloat16' (autocast, images "
                                       "and weights channels-last: on a 2-core CPU with AVX-512 bfloat16 it trained "
                                       "the write-up's Model I and II at width 1.0 at 2.0x and 2.1x the images/s "
                                       "(benchmarks/train.py), the default models at about 1.2x; on a CUDA GPU, "
                                       "PyTorch's mixed precision); "
                                       "'auto' = bfloat16 where the CPU or GPU computes it natively, else float32. "
                                       "It changes the weights, so it is keyed (as resolved).",
                            one_of("auto", "float32", "bfloat16"))

    def class_file(self, root: Path) -> Path | None:
        """The source file of a 'file:' or 'python:' class (None for other architectures), so that
        editing the user's code re-runs what used it. Finding a 'python:' module's file imports its
        parent packages, which is the user's code."""
        match = USER_CLASS.fullmatch(self.arch)
        if not match:
            return None
        if match["kind"] == "file":
            return (root / match["where"]).resolve()
        import importlib.util

        try:
            spec = importlib.util.find_spec(match["where"])
        except (ImportError, ValueError):
            spec = None
        return Path(spec.origin) if spec is not None and spec.origin else None

    @property
    def key(self) -> str:
        """A file-name-safe identifier derived from the display name."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "model"


@dataclass(frozen=True)
class PreferredConfig:
    enabled: bool = option(True, "Section 2: a preferred input for every unit of every layer, by regularized "
                                 "activation maximization.")
    steps: int = option(16, "Adam steps of gradient ascent per unit (the searched settings and the final renders "
                            "alike).", between(1, 4096))
    trials: int = option(16, "Random-search trials of regularization settings per model. Each first runs for a "
                             "quarter of `steps`; in each layer the two best and the median one run again at full "
                             "length and the layer keeps the best (successive halving).", between(1, 200))
    search_units: int = option(4, "Units sampled per layer to score each trial, among those some test image "
                                              "activates.",
                               between(1, 512))
    class_seeds: int = option(3, "Noise seeds, hence reconstructions, per output-class unit.", between(1, 8))
    units_per_layer: int = option(256, "Most units of a hidden layer given a preferred input: a larger layer "
                                       "(a ResNet's 512-channel blocks) shows this many, evenly spaced over its "
                                       "unit indices, and the post says so; 0 = every unit. Output-class units are "
                                       "never sampled.", at_least(0))
    objective: str = option("center", "What a conv channel maximizes: its 'center' neuron (only its receptive "
                                      "field matters; that crop is shown) or its spatial 'mean'.",
                            one_of("center", "mean"))
    parameterization: str = option("search", "Image parameterization: 'pixel', 'fourier', or 'search' to let "
                                             "the random search pick per layer.", one_of("search", "pixel", "fourier"))
    edges: int = option(3, "Strongest incoming edges drawn per unit in the unit graph.", between(1, 16))
    movie_fps: int = option(12, "Frames per second of the unit-graph movies (their length is fixed in seconds).",
                            between(1, 60))
    threads: int = option(0, "Torch CPU threads while optimizing; 0 takes build.workers, else 2 (on an idle "
                             "2-core CPU two threads made section 2 of the default build 1.6x faster than one). "
                             "Keyed: sums split across threads may round differently.",
                          at_least(0))
    precision: str = option("auto", "What the network computes in during the ascent: 'bfloat16' (autocast; about "
                                    "1.5x faster where the processor has bfloat16 instructions), 'float32', or "
                                    "'auto' = bfloat16 on such a CPU or a CUDA device, else float32. Activations are "
                                    "always measured in float32. Keyed.", one_of("auto", "float32", "bfloat16"))
    seed: int = option(0, "Seed of the unit samples, the search and the starting noise.", _seed)


@dataclass(frozen=True)
class ClustersConfig:
    enabled: bool = option(True, "Section 4: a t-SNE map of test images and their nearest neighbours.")
    model: str = option("", "Display name of the model whose descriptors are mapped; empty means the last "
                            "model (the write-up used Model II).")
    layer: str = option("", "Layer whose outputs are the descriptors: a layer name such as 'fc5', or a "
                            "module path of another network; empty: the first hidden fully connected layer "
                            "(fc5 of ours), else the last layer before the output.")
    images: str = option("test", "'test' maps the test images; 'all' maps every image, as the write-up did.",
                         one_of("test", "all"))
    perplexity: float = option(30.0, "t-SNE perplexity (lowered automatically for very few images).",
                               between(2, 100))
    neighbours: int = option(5, "Nearest neighbours per query image, also the k of precision@k.", between(1, 50))
    queries: tuple[int, ...] = option((), "Positions of query images among the mapped images; empty picks one "
                                          "per class plus four misclassified ones.")
    seed: int = option(0, "Seed of the t-SNE embedding.", _seed)


@dataclass(frozen=True)
class ResponsesConfig:
    enabled: bool = option(True, "Section 3: response movies, activated units, feature maps, top patches, class "
                                 "preferences and measured claims.")
    classes: tuple[str, ...] = option((), "Classes A and B of the response movies; empty picks the pair the models "
                                          "confuse most with each other on the test set.",
                                      lambda v: None if len(v) in (0, 2) and len(set(v)) == len(v) else
                                      "two distinct class names, or [] to choose")
    third: str = option("", "The third class of the low-confidence movie; empty picks the class the models "
                            "confuse least with A and B.")
    per_class: int = option(50, "Test images of A and of B in each model's response movie, ordered by probability "
                                "(evenly spaced over the ranking, most confident first).", between(1, 500))
    low_confidence: int = option(10, "Least confident test images of A and of B, and images of the third class, in "
                                     "the low-confidence movie.", between(1, 100))
    threshold: float = option(0.0, "Activated-units figure: a unit counts as active when its response exceeds this "
                                   "fraction of the largest response in its layer for that image (0 = any positive "
                                   "response); the others are grey.", between(0, 0.99))
    feature_layer: str = option("", "Conv layer whose activation maps are shown as a grid for one input (a "
                                    "layer name such as 'conv2', or a module path of another network); empty: "
                                    "the second convolutional layer.")
    k: int = option(9, "Top test images kept per unit (top patches, class preferences).", between(1, 50))
    group: tuple[str, ...] = option((), "Classes whose shared units are counted (the write-up's 'face, independent "
                                        "of gender'); empty uses evaluate.group when set, else classes A and B.")
    min_fraction: float = option(0.5, "A unit counts as active for a class when it fires on at least this fraction "
                                      "of that class's test images.", between(0.01, 1))
    patches: int = option(4, "Channels per layer whose top patches the post shows (the atlas shows every unit).",
                          between(1, 32))
    atlas_gradients: int = option(1, "Saliency images (see atlas_method) per unit in the atlas, for its best top "
                                     "images (0 to k; each costs a backward pass per unit).", between(0, 50))
    atlas_method: str = option("auto", "What the atlas's saliency pictures show: 'guided' backpropagation, the plain "
                                       "'gradient', or 'auto' = the gradient where the randomization test finds "
                                       "that guided backprop ignores the weights (Adebayo et al. 2018), else "
                                       "guided backprop.", one_of("auto", "guided", "gradient"))
    precision: str = option("auto", "What the network computes guided backpropagation in: 'bfloat16' (autocast; "
                                    "2x faster for a ResNet-18 at 224x224 where the processor has bfloat16 "
                                    "instructions, its images within 0.998 cosine of float32's), 'float32', or "
                                    "'auto' = bfloat16 on such a CPU or a CUDA device. Keyed.",
                            one_of("auto", "float32", "bfloat16"))


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig, metadata={"doc": "The post."})
    build: BuildConfig = field(default_factory=BuildConfig, metadata={"doc": "Where and how to build."})
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "Images and splits."})
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig, metadata={"doc": "Test-set evaluation."})
    models: tuple[ModelConfig, ...] = field(default=(), metadata={"doc": "The networks, as [[models]] tables."})
    preferred: PreferredConfig = field(default_factory=PreferredConfig,
                                       metadata={"doc": "Section 2: preferred inputs."})
    responses: ResponsesConfig = field(default_factory=ResponsesConfig,
                                       metadata={"doc": "Section 3: activation responses."})
    clusters: ClustersConfig = field(default_factory=ClustersConfig, metadata={"doc": "Section 4: clusterings."})
    root: Path = field(default=Path("."), metadata={"internal": True})

    def resolve(self, relative: str) -> Path:
        """A path from the config, taken relative to the config file's folder."""
        return (self.root / relative).resolve()

    def model_data(self, index: int) -> DataConfig:
        """The data as model `index` sees it: the data settings with its own input size, channels and
        resizing where it sets them (a loaded ImageNet network at 224x224 beside a small one trained here)."""
        m = self.models[index]
        return dataclasses.replace(self.data, image_size=m.image_size or self.data.image_size,
                                   channels=m.channels or self.data.channels, resize=m.resize or self.data.resize,
                                   crop=m.crop or self.data.crop)


def section(cfg: Any) -> dict[str, Any]:
    """A config section as plain data, for hashing into cache keys."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "root"}


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem at once."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, [f"cannot read: {e}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [f"not valid TOML: {e}"]) from None
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        table = raw
        for p in parents:
            table = table.setdefault(p, {})
        table[leaf] = value
    problems: list[str] = []
    cfg = _build(Config, raw, "", problems)
    for i, m in enumerate(cfg.models):  # each entry on its own, so listed alongside any other problem
        problems += _model_problems(m, f"models[{i}]")
    if not problems:
        _check_cross(cfg, problems)
    if problems:
        raise ConfigError(path, problems)
    return dataclasses.replace(cfg, root=path.resolve().parent)


def _check_cross(cfg: Config, problems: list[str]) -> None:
    """Checks that involve more than one key."""
    if not cfg.models:
        problems.append("models: at least one [[models]] table is required")
    names = [m.name for m in cfg.models]
    keys = [m.key for m in cfg.models]
    if len(set(keys)) != len(keys):
        problems.append(f"models.name: names must be distinct (got {names})")
    out, cache = cfg.resolve(cfg.build.out), cfg.resolve(cfg.build.cache)
    if out == cache or out in cache.parents or cache in out.parents:
        problems.append(f"build.out: {cfg.build.out!r} and build.cache {cfg.build.cache!r} must be separate "
                        "folders (publishing the site would replace the cache, or the cache would be published)")
    if cfg.data.source == "folder" and not cfg.data.path:
        problems.append("data.path: required when data.source = 'folder'")
    if cfg.clusters.model and cfg.clusters.model not in names:
        problems.append(f"clusters.model: got {cfg.clusters.model!r}; expected one of the model names {names}")
    if cfg.responses.third and cfg.responses.third in cfg.responses.classes:
        problems.append(f"responses.third: got {cfg.responses.third!r}, which is one of responses.classes "
                        f"{list(cfg.responses.classes)}; the third class of the low-confidence movie must differ "
                        "from classes A and B")
    if cfg.responses.atlas_gradients > cfg.responses.k:
        problems.append(f"responses.atlas_gradients: got {cfg.responses.atlas_gradients}; expected at most "
                        f"responses.k ({cfg.responses.k})")
    for i, m in enumerate(cfg.models):
        channels = cfg.model_data(i).channels  # std's length is checked against mean's
        if m.mean and len(m.mean) != channels:
            where = f"models[{i}].channels" if m.channels else "data.channels"
            problems.append(f"models[{i}].mean: got {len(m.mean)} values; the input has {where} = {channels}, so "
                            f"give {channels}")
    if cfg.evaluate.uncertain == "group" and len(cfg.evaluate.group) < 2:
        problems.append("evaluate.group: the 'group' rule needs at least two class names")


def _model_problems(m: ModelConfig, where: str) -> list[str]:
    """What can be known wrong about a model entry before any data is read or any network built."""
    problems = []
    if m.arch.startswith(TORCHVISION_PREFIX):
        known = _torchvision_archs()
        name = m.arch[len(TORCHVISION_PREFIX):]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{TORCHVISION_PREFIX}{close[0]}'?)" if close else ""
            problems.append(f"{where}.arch: got {m.arch!r}, an unknown torchvision architecture{hint}; known: "
                            f"{', '.join(known)}")
    elif m.arch.startswith(("file:", "python:")):
        if not USER_CLASS.fullmatch(m.arch):
            problems.append(f"{where}.arch: got {m.arch!r}; expected 'file:<path/to/file.py>:<Class>' or "
                            "'python:<module>:<Class>'")
        elif m.arch.startswith("file:") and not m.arch[len("file:"):].rpartition(":")[0].endswith(".py"):
            problems.append(f"{where}.arch: got {m.arch!r}; the file of a 'file:' class must be a .py file")
    elif m.arch == TORCHSCRIPT:
        if m.train or not m.weights:
            problems.append(f"{where}.arch: 'torchscript' reports on a trained archive as it is: set "
                            f"{where}.train = false and the archive's file in {where}.weights")
    elif m.arch not in BUILTIN_ARCHS:
        close = difflib.get_close_matches(m.arch, (*BUILTIN_ARCHS, TORCHSCRIPT), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"{where}.arch: got {m.arch!r}{hint}; expected one of "
                        f"{', '.join(map(repr, BUILTIN_ARCHS))}, '{TORCHVISION_PREFIX}<name>', "
                        f"'file:<file.py>:<Class>', 'python:<module>:<Class>' or '{TORCHSCRIPT}'")
    if m.args and not USER_CLASS.fullmatch(m.arch):
        problems.append(f"{where}.args: constructor arguments apply to a 'file:' or 'python:' class only, "
                        f"not {m.arch!r}")
    if m.checkpoint and m.weights:
        problems.append(f"{where}.weights: a model loaded from 'checkpoint' is not trained, so 'weights' "
                        "would be ignored; set one of the two")
    if not m.train and not m.checkpoint and not m.weights:
        problems.append(f"{where}.train: false needs the trained network's state dict in {where}.weights "
                        "(or a reportgen checkpoint in 'checkpoint')")
    if (m.classes or m.classes_file) and (m.train or m.checkpoint):
        problems.append(f"{where}.classes: names the outputs of a network loaded from `weights` (train = false); "
                        "a network this build trains, or a checkpoint's, has one output per class of the data")
    if m.classes and m.classes_file:
        problems.append(f"{where}.classes_file: set classes or classes_file, not both")
    if len(set(m.classes)) != len(m.classes):
        problems.append(f"{where}.classes: a name appears twice; each output needs its own")
    if (m.mean or m.std) and m.train:
        problems.append(f"{where}.mean: the normalization of a network this build trains is its training "
                        "set's own; set mean and std only with train = false")
    if len(m.mean) != len(m.std):
        problems.append(f"{where}.std: got {len(m.std)} values for {len(m.mean)} in mean; give one per channel")
    if m.batch_size < 2 and m.arch in BATCH_NORM_ARCHS and not m.checkpoint:
        problems.append(f"{where}.batch_size: got {m.batch_size}; {m.arch} uses batch normalization, which "
                        "needs batches of at least 2 images")
    return problems


def _torchvision_archs() -> list[str]:
    """torchvision's classification architectures; imported only for configs that name one."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _type_name(t: Any) -> str:
    if get_origin(t) is tuple:
        return f"a list of {_type_name(get_args(t)[0])}"
    if get_origin(t) is dict:
        return "a table of numbers, strings, booleans or lists of them"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(t, str(t))


def _coerce(value: Any, t: Any) -> tuple[bool, Any]:
    """Convert a TOML value to the declared type; (False, None) when it does not fit."""
    if get_origin(t) is dict:  # a table of plain values: no nested tables, no dates
        plain_value = (str, int, float, bool)
        ok = isinstance(value, dict) and all(
            isinstance(v, plain_value) or (isinstance(v, list) and all(isinstance(x, plain_value) for x in v))
            for v in value.values()) and not _non_finite(list(value.values()))
        return ok, dict(value) if ok else None
    if get_origin(t) is tuple:
        if not isinstance(value, list):
            return False, None
        inner = get_args(t)[0]
        items = [_coerce(v, inner) for v in value]
        return (all(ok for ok, _ in items), tuple(v for _, v in items))
    if t is float:
        # TOML has inf and nan; no option means either, and both slip past range checks (nan >= 0 is
        # False, inf > 0 is True), so they are refused here for every float option at once
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else None
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, t), value


def _non_finite(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


def _build(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    """Instantiate dataclass `cls` from a TOML table, appending problems instead of raising."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table, got {raw!r}")
        return cls()
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{prefix}{key}: unknown key{hint}; known keys: {', '.join(fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        t, value, key = hints[name], raw[name], prefix + name
        if dataclasses.is_dataclass(t):
            values[name] = _build(t, value, key + ".", problems)
        elif get_origin(t) is tuple and dataclasses.is_dataclass(get_args(t)[0]):
            if not isinstance(value, list):
                problems.append(f"{key}: expected an array of tables ([[{key}]]), got {value!r}")
                continue
            values[name] = tuple(_build(get_args(t)[0], v, f"{key}[{i}].", problems) for i, v in enumerate(value))
        else:
            ok, converted = _coerce(value, t)
            if not ok:
                expected = "finite numbers (not inf or nan)" if _non_finite(value) else _type_name(t)
                problems.append(f"{key}: got {value!r}; expected {expected}")
                continue
            check = f.metadata.get("check")
            accepted = check(converted) if check else None
            if accepted:
                problems.append(f"{key}: got {value!r}; expected {accepted}")
                continue
            values[name] = converted
    try:
        return cls(**values)
    except TypeError as e:  # only reachable through a declaration mistake, not user input
        raise AssertionError(e) from e


def describe_options(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default as TOML, doc) for every option, for the README's config reference."""
    rows: list[tuple[str, str, str]] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            rows += describe_options(t, prefix + f.name + ".")
        elif get_origin(t) is tuple and dataclasses.is_dataclass(get_args(t)[0]):
            rows += describe_options(get_args(t)[0], prefix + f.name + "[].")
        else:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            default = list(default) if isinstance(default, tuple) else default
            rows.append((prefix + f.name, json.dumps(default), f.metadata.get("doc", "")))
    return rows
