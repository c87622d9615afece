"""Section 3's path check (paths.py): a preferred input processed unlike its unit's top images is
flagged; one processed like them is not; and the check runs on the built site's own networks."""

from __future__ import annotations

import json
import re

import numpy as np

from reportgen.sections.responses import paths
from tests.conftest import BuiltSite


def _patterns(rng: np.random.Generator, units: int, k: int, channels: int, spread: float
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two layers of top-image patterns scattered around a per-unit prototype, and the prototypes."""
    protos = [rng.normal(size=(units, channels)) for _ in range(2)]
    tops = [p[:, None, :] + spread * rng.normal(size=(units, k, channels)) for p in protos]
    return protos, tops


def test_a_preferred_input_like_its_top_images_passes_and_noise_is_flagged() -> None:
    rng = np.random.default_rng(0)
    protos, tops = _patterns(rng, units=6, k=9, channels=40, spread=0.5)
    valid = np.ones((6, 9), bool)
    like = paths.path_scores([p + 0.1 * rng.normal(size=p.shape) for p in protos], tops, valid)
    assert like.checked.all() and not like.flagged.any()
    assert (like.score > like.reference).all()
    noise = paths.path_scores([rng.normal(size=p.shape) for p in protos], tops, valid)
    assert noise.checked.all() and noise.flagged.all()
    # a unit with one top image has no yardstick: not checked, never flagged
    few = valid.copy()
    few[0, 1:] = False
    partial = paths.path_scores([rng.normal(size=p.shape) for p in protos], tops, few)
    assert not partial.checked[0] and not partial.flagged[0] and partial.checked[1:].all()


def test_signatures_average_a_conv_layers_channels_over_space() -> None:
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x = torch.randn(7, 1, 4, 4)
    conv, fc = paths.signatures(net, x, ["1", "3"], batch_size=3)
    with torch.no_grad():
        expected = torch.relu(net[0](x)).mean((2, 3)).double().numpy()
        logits = net(x).double().numpy()
    assert conv.shape == (7, 3) and fc.shape == (7, 5)
    np.testing.assert_allclose(conv, expected, rtol=1e-5)
    np.testing.assert_allclose(fc, logits, rtol=1e-5)


def test_the_built_check_passes_natural_images_and_flags_noise(tiny_site: BuiltSite, tmp_path) -> None:
    """The stage the build ran, run again on Model II with each unit's preferred input replaced (all
    units counted as not flat): by its own best test image, the units that see the whole image pass;
    by uniform noise, almost every unit is flagged. So the check can fail, and can pass."""
    import dataclasses
    import shutil

    from reportgen.nets.data import Dataset
    from reportgen.sections.responses.compute import ResponseFrames, load_summary

    preferred = next(a for a in tiny_site.stages("preferred") if "Model II" in a.manifest["label"])
    responses = next(a for a in tiny_site.stages("responses") if "Model II" in a.manifest["label"])
    model = tiny_site.stages("train")[1]
    data = tiny_site.stages("data")[0]
    images, _ = Dataset.from_artifact(data).part("test")
    frames, names = ResponseFrames.load(responses), [la["name"] for la in load_summary(responses)["layers"]]
    summary = json.loads(preferred.file("preferred.json").read_text())
    rng = np.random.default_rng(0)

    def run(replace: str) -> dict:
        folder = tmp_path / replace
        shutil.copytree(preferred.path, folder / "preferred")
        with np.load(preferred.file("preferred.npz")) as arrays:
            changed = dict(arrays)
        for i, layer in enumerate(summary["layers"]):
            shape = changed[f"images_{i}"].shape
            if replace == "noise":
                changed[f"images_{i}"] = rng.integers(0, 256, shape, dtype=np.uint8)
            else:
                best = frames.layers[names.index(layer["name"])].top[changed[f"unit_{i}"], 0]
                changed[f"images_{i}"] = np.repeat(images[best][:, None], shape[1], axis=1)
            changed[f"flat_{i}"] = np.zeros_like(changed[f"flat_{i}"])
        np.savez(folder / "preferred" / "preferred.npz", **changed)
        (folder / "out").mkdir()
        paths.path_stage(folder / "out", {"device": "cpu", "threads": 1}, data, model, responses,
                         dataclasses.replace(preferred, path=folder / "preferred"))
        return json.loads((folder / "out" / "paths.json").read_text())

    def share(result: dict, whole_only: bool = False) -> float:
        entries = [e for e in result["layers"] if not (whole_only and e["receptive_field"])]
        checked = sum(sum(e["checked"]) for e in entries)
        assert checked >= 10
        return sum(sum(e["flagged"]) for e in entries) / checked

    assert share(run("natural"), whole_only=True) < 0.1
    assert share(run("noise")) > 0.9


def test_every_flag_of_the_build_is_in_the_atlas(tiny_site: BuiltSite) -> None:
    checked = next(a for a in tiny_site.stages("path-check") if "Model II" in a.manifest["label"])
    atlas = tiny_site.site / "posts" / "visualizing-two-cnns" / "atlas" / "model-ii"
    for entry in json.loads(checked.file("paths.json").read_text())["layers"]:
        page = (atlas / f"{entry['name']}.html").read_text()
        rows = re.findall(r'<tr id="unit-(\d+)"[^>]*>(.*?)</tr>', page, re.S)
        odd = {int(u) for u, row in rows if re.match(r"<th[^>]*><a [^>]*>\d+</a>[^<]*odd path", row)}
        assert odd == {u for u, f in zip(entry["units"], entry["flagged"], strict=True) if f}, entry["name"]
        if any(entry["checked"]):
            assert "Path like its top images" in page
