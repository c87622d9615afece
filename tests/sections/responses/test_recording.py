"""One streamed pass: hooks equal a manual forward, top-k equals a full argsort, summaries and claims add up."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.checkpoint import Normalizer
from reportgen.nets.layers import receptive_box, receptive_fields, unit_layers
from reportgen.optvis.hooks import capture
from reportgen.sections.responses.recording import (
    LayerResponses,
    Responses,
    active_for_classes,
    class_accuracy,
    class_preferences,
    class_selectivity,
    gradient_image,
    guided_backprop,
    measured_claims,
    record_responses,
    top_patch_boxes,
    top_patch_gradients,
    unit_groups,
)

MEAN, STD = [0.4], [0.3]
NAMES = ("female", "male", "$x^2$ \\n <b>")


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch: str = "model2", classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return create_model(arch, in_channels=1, image_size=16, num_classes=classes, width=0.125)


def _data(n: int = 40, duplicate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 16, 16, 1), dtype=np.uint8)
    if duplicate:  # exact ties: image i + n/2 repeats image i
        images[n // 2:] = images[: n - n // 2]
    return images, rng.integers(0, 3, n)


def _all_outputs(model: nn.Module, images: np.ndarray, paths: list[str], batch: int) -> dict[str, np.ndarray]:
    """Brute force: every output of every image, batched like the streamed pass."""
    parts: dict[str, list[np.ndarray]] = {p: [] for p in paths}
    model.eval()
    for start in range(0, len(images), batch):
        with torch.no_grad(), capture(model, paths) as out:
            model(Normalizer(MEAN, STD, torch.device("cpu")).images(images[start:start + batch]))
        for p in paths:
            parts[p].append(out[p].numpy().copy())
    return {p: np.concatenate(v) for p, v in parts.items()}


def test_kept_outputs_equal_a_manual_forward_in_the_order_asked() -> None:
    model, (images, labels) = _model("model1"), _data(12, duplicate=False)
    model.train()
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, keep=[7, 0, 7], batch_size=5)
    assert model.training and all(not m._forward_hooks for m in model.modules())
    model.eval()
    x = Normalizer(MEAN, STD, torch.device("cpu")).images(images[[7, 0, 7]])
    with torch.no_grad():
        conv2 = model.conv2.relu(model.conv2.conv(model.conv1(x)))
        fc5 = model.fc5(model.flatten(model.conv4(model.conv3(model.conv2(model.conv1(x))))))
        logits = model(Normalizer(MEAN, STD, torch.device("cpu")).images(images))
    assert np.allclose(rec.layer("conv2").kept, conv2.numpy(), atol=1e-6)
    assert np.allclose(rec.layer("fc5.relu").kept, fc5.numpy(), atol=1e-6)
    assert np.allclose(rec.layer("conv2").kept_units, conv2.numpy().mean(axis=(2, 3)), atol=1e-6)
    assert np.allclose(rec.probs, torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert rec.keep.tolist() == [7, 0, 7]


def test_top_k_equals_a_brute_force_argsort_with_ties_to_the_lower_image() -> None:
    model, (images, labels) = _model(), _data(40)
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, k=9, batch_size=8)
    layers = unit_layers(model.eval(), (1, 16, 16))
    full = _all_outputs(model, images, [la.path for la in layers], batch=8)
    for layer in layers:
        maps = full[layer.path].reshape(len(images), layer.units, -1)
        peak, where = maps.max(2), maps.argmax(2)
        got = rec.layer(layer.name)
        for c in range(layer.units):
            order = np.lexsort((np.arange(len(images)), -peak[:, c]))[:9]
            # only images above the unit's weakest one are top images: a silent unit's zeros name none
            order = order[peak[order, c] > peak[:, c].min()]
            n = len(order)
            assert got.top_image[c, :n].tolist() == order.tolist() and (got.top_image[c, n:] == -1).all()
            assert np.array_equal(got.top_value[c, :n], peak[order, c]) and np.isnan(got.top_value[c, n:]).all()
            width = layer.shape[2] if layer.kind == "conv" else 1
            assert got.top_pos[c, :n].tolist() == [[w // width, w % width] for w in where[order, c]]
        silent = np.flatnonzero(peak.max(0) <= 0)
        assert (got.top_image[silent] == -1).all()
        # a duplicate (index >= 20) ties with its original, which must come first
        assert all(img - 20 in got.top_image[c, :j] for c in range(layer.units)
                   for j, img in enumerate(got.top_image[c]) if img >= 20)
        assert (got.top_image >= 20).any()
    assert any((rec.layer(la.name).top_image == -1).all(1).any() for la in layers)  # some unit is silent
    small = record_responses(model, images[:5], labels[:5], MEAN, STD, class_names=NAMES, k=9)
    assert (small.layers[0].top_image[:, 5:] == -1).all() and np.isnan(small.layers[0].top_value[:, 5:]).all()
    # memory does not grow with the number of images (only labels and probabilities do)
    sizes = [sum(getattr(la, key).nbytes for la in r.layers for key in ("top_value", "class_mean", "kept"))
             for r in (small, rec)]
    assert sizes[0] == sizes[1]


def test_summaries_class_means_and_pattern_correlations_add_up() -> None:
    model, (images, labels) = _model(), _data(30, duplicate=False)
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, batch_size=7)
    full = _all_outputs(model, images, ["conv3a.relu", "fc6.relu"], batch=7)
    counts = np.bincount(labels, minlength=3)
    for name, path in (("conv3a", "conv3a.relu"), ("fc6", "fc6.relu")):
        got = rec.layer(name)
        maps = full[path].reshape(len(images), got.units, -1)
        response, peak = maps.mean(2), maps.max(2)
        assert np.allclose(got.mean, response.mean(0), atol=1e-6) and np.array_equal(got.max, peak.max(0))
        assert np.allclose(counts @ got.class_mean, len(images) * got.mean, atol=1e-5)
        assert np.allclose(counts @ got.class_active, len(images) * got.frac_active)
        assert np.allclose(got.class_mean[2], response[labels == 2].mean(0), atol=1e-6)
        # pairwise Pearson correlations of the response patterns, computed the slow way
        corr = np.corrcoef(response)
        for a in range(3):
            for b in range(3):
                block = corr[np.ix_(labels == a, labels == b)]
                want = block[~np.eye(len(block), dtype=bool)].mean() if a == b else block.mean()
                assert got.class_corr[a, b] == pytest.approx(want, abs=1e-6)  # float32 responses
    assert np.allclose(class_accuracy(rec), [((rec.probs.argmax(1) == labels)[labels == c]).mean() for c in range(3)])


def test_class_preference_histograms_count_each_units_top_images() -> None:
    model, (images, labels) = _model(), _data(30, duplicate=False)
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, k=9, batch_size=30)
    for layer in rec.layers:
        prefs = class_preferences(rec, layer.name, n=2)
        found = (layer.top_image >= 0).sum(1)  # a unit's top images: those above its weakest (up to 9)
        assert prefs.unit_counts.shape == (layer.units, 3) and (prefs.unit_counts.sum(1) == found).all()
        assert prefs.counts.sum() == found.sum() and prefs.expected.sum() == pytest.approx(found.sum())
        assert prefs.ratio[prefs.most[0]] == prefs.ratio.max() and prefs.ratio[prefs.least[0]] == prefs.ratio.min()
        assert len(prefs.most) == len(prefs.least) == 2
    top = rec.layer("fc5").top_image
    unit = int(np.flatnonzero((top >= 0).all(1))[0])  # a unit with all 9 top images
    truth = labels[top[unit]]
    assert class_preferences(rec, "fc5").unit_counts[unit].tolist() == np.bincount(truth, minlength=3).tolist()


def _synthetic(class_active: list[list[float]], class_mean: list[list[float]]) -> Responses:
    """A recording of one fc layer whose units have the given per-class active fractions and means (K x C)."""
    active, means = np.array(class_active).T, np.array(class_mean).T
    k_classes, c = active.shape
    empty = np.zeros((c, 1))
    layer = LayerResponses("fc6", "fc6.relu", "fc", (c,), empty, empty.astype(np.int64), np.zeros((c, 1, 2)),
                           means.mean(0), means.max(0), active.mean(0), means, active, np.eye(k_classes),
                           np.ones(k_classes), np.zeros((0, c), np.float32))
    probs = np.eye(k_classes, dtype=np.float32)
    return Responses([layer], NAMES, np.arange(k_classes), probs, np.zeros(0, np.int64), 1)


def test_active_and_inactive_units_follow_the_threshold() -> None:
    rows = [[0.9, 0.8, 0.1],    # both of the group, nothing else: a "face" unit
            [0.6, 0.6, 0.6],    # every class
            [0.7, 0.2, 0.0],    # one class only
            [0.5, 0.45, 0.0],   # one class at 0.5, both of the group at 0.4
            [0.0, 0.0, 0.3]]    # none at 0.5, the third class alone at 0.3
    rec = _synthetic(rows, [[3, 1, 0], [1, 1, 1], [2, 0, 0], [1, 1, 0], [0, 0, 0]])
    group = ["female", "male"]
    at_half = unit_groups(rec, "fc6", group, min_fraction=0.5)
    assert at_half["group"].tolist() == [0, 1] and at_half["group_only"].tolist() == [0]
    assert at_half["single"].tolist() == [2, 3] and at_half["none"].tolist() == [4] and at_half["all"].tolist() == [1]
    at_04 = unit_groups(rec, "fc6", group, min_fraction=0.4)
    assert at_04["group_only"].tolist() == [0, 3] and at_04["single"].tolist() == [2] and at_04["none"].tolist() == [4]
    assert active_for_classes(rec.layers[0], 0.3)[2].tolist() == [False, True, False, False, True]
    selectivity = class_selectivity(rec.layers[0])
    assert selectivity.tolist() == pytest.approx([2.5 / 3.5, 0.0, 1.0, 0.5 / 1.5, 0.0])
    (claim,) = measured_claims(rec, group, min_fraction=0.5, selective=0.5)
    assert (claim.group, claim.group_only, claim.single, claim.none, claim.selective) == (2, 1, 2, 1, 2)
    assert claim.single_by_class == (2, 0, 0) and claim.units == 5
    with pytest.raises(ValueError, match="'women'"):
        unit_groups(rec, "fc6", ["women"])


def test_save_and_load_round_trip_with_hostile_names(tmp_path: Path) -> None:
    model, (images, labels) = _model(), _data(10, duplicate=False)
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, keep=[2], batch_size=4)
    rec.meta["model"] = "Model <II> $a$"
    rec.save(tmp_path / "r.npz")
    back = Responses.load(tmp_path / "r.npz")
    assert back.class_names == NAMES and back.meta == rec.meta and back.k == rec.k
    assert [(la.name, la.path, la.kind, la.shape) for la in back.layers] == \
        [(la.name, la.path, la.kind, la.shape) for la in rec.layers]
    for a, b in zip(rec.layers, back.layers, strict=True):
        assert all(np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True)
                   for key in ("top_value", "top_image", "top_pos", "class_mean", "class_corr", "kept"))
    assert np.array_equal(back.probs, rec.probs) and back.keep.tolist() == [2]


def test_any_module_by_path_records_before_a_later_in_place_relu() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    images, labels = _data(6, duplicate=False)
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, keep=[1], batch_size=4)
    assert [la.name for la in rec.layers] == ["0", "3"]
    with torch.no_grad():
        conv = model[0](Normalizer(MEAN, STD, torch.device("cpu")).images(images[[1]]))
    assert (rec.layer("0").kept < 0).any() and np.allclose(rec.layer("0").kept, conv.numpy(), atol=1e-6)


def test_guided_backprop_and_deconvnet_match_hand_computation() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(inplace=True), nn.Linear(3, 2))
    model.train()
    x = torch.randn(1, 2, 2)
    w1, w2 = model[1].weight.detach(), model[3].weight.detach()
    hidden = (w1 @ x.flatten() + model[1].bias.detach()) > 0
    guided = guided_backprop(model, x, "3", channel=0)
    deconv = guided_backprop(model, x, "3", channel=0, mode="deconv")
    assert np.allclose(guided.reshape(-1), (w1.T @ (w2[0].clamp(min=0) * hidden)).numpy(), atol=1e-6)
    assert np.allclose(deconv.reshape(-1), (w1.T @ w2[0].clamp(min=0)).numpy(), atol=1e-6)
    assert model.training and model[2].inplace and all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_guided_backprop_stays_inside_the_receptive_field_and_top_patches_use_it() -> None:
    model, (images, labels) = _model(), _data(12, duplicate=False)
    x = Normalizer(MEAN, STD, torch.device("cpu")).images(images[:2])
    grads = guided_backprop(model, x, "conv2.relu", channel=1, position=[(3, 3), (0, 7)])
    field = receptive_fields(model, (1, 16, 16))["conv2.relu"]
    for row, pos in enumerate([(3, 3), (0, 7)]):
        top, left, bottom, right = receptive_box(field, pos, (16, 16))
        outside = np.abs(grads[row, 0]).copy()
        outside[top:bottom, left:right] = 0
        assert not outside.any()
    rec = record_responses(model, images, labels, MEAN, STD, class_names=NAMES, k=9, batch_size=6)
    layer = rec.layer("conv2")
    boxes = top_patch_boxes(field, layer, 16)
    assert boxes[1][0] == list(receptive_box(field, tuple(layer.top_pos[1, 0]), (16, 16)))
    # batched over units and ranks (batches of 2 here) = one image alone at its own recorded peak
    pictures = top_patch_gradients(model, layer, [(1, 0), (0, 0), (1, 1)], images, MEAN, STD, batch_size=2)
    alone = Normalizer(MEAN, STD, torch.device("cpu")).images(images[[layer.top_image[1, 0]]])[0]
    expected = gradient_image(guided_backprop(model, alone, "conv2.relu", 1, None))
    assert pictures.shape == (3, 16, 16, 1) and pictures.dtype == np.uint8
    assert np.abs(pictures[0].astype(int) - expected.astype(int)).max() <= 1
