"""Section 3's drawing: which units the activated-units figure colours."""

import numpy as np

from reportgen.sections.responses.draw import ATLAS_SIDE, _block, active_mask


def test_active_mask_follows_the_threshold() -> None:
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert active_mask(values, 0.0).tolist() == [False, False, True, True, True]
    assert active_mask(values, 0.5).tolist() == [False, False, False, False, True]
    assert active_mask(values, 0.2).tolist() == [False, False, True, True, True]
    assert not active_mask(np.array([-2.0, 0.0]), 0.0).any()  # a silent layer: nothing active


def test_crops_larger_than_an_atlas_tile_are_averaged_down_not_aliased() -> None:
    # a one-pixel checkerboard: nearest-neighbour shrinking would keep only black or only white
    board = ((np.indices((224, 224)).sum(0) % 2) * 255).astype(np.uint8)
    crop = np.repeat(board[:, :, None], 3, axis=2)
    tile = _block([crop], [None], ATLAS_SIDE)
    assert tile.shape == (2 * ATLAS_SIDE + 1, ATLAS_SIDE, 3)
    assert 100 < tile[:ATLAS_SIDE].mean() < 155


def _randomized(guided: tuple[float, float], gradient: tuple[float, float]) -> dict:
    """randomization.json with one step: each method's rank-correlation interval after it."""
    return {"steps": ["fc7"], "methods": {
        name: {"rank": [sum(ci) / 2], "rank_low": [ci[0]], "rank_high": [ci[1]]}
        for name, ci in (("guided", guided), ("gradient", gradient))}}


def test_the_randomization_test_decides_the_atlas_pictures_unless_the_config_does() -> None:
    from reportgen.sections.responses.draw import atlas_method

    fails = _randomized(guided=(0.9, 0.95), gradient=(0.2, 0.4))      # guided backprop ignores the weights
    passes = _randomized(guided=(0.3, 0.5), gradient=(0.2, 0.4))      # intervals overlap: not clearly worse
    assert atlas_method("auto", fails) == {"method": "gradient", "setting": "auto", "guided_fails": True}
    assert atlas_method("auto", passes)["method"] == "guided"
    assert atlas_method("guided", fails)["method"] == "guided"        # the config has the last word
    assert atlas_method("gradient", passes)["method"] == "gradient"
    assert atlas_method("auto", {"steps": [], "methods": {}})["method"] == "guided"  # no test images: no verdict


def test_the_built_atlas_shows_the_method_its_randomization_test_chose(tiny_site) -> None:
    import json

    from reportgen.sections.responses.randomization import guided_fails

    for checked, drawn in zip(tiny_site.stages("randomization"), tiny_site.stages("response-figures"), strict=True):
        key = drawn.manifest["label"].removeprefix("response figures ").lower().replace(" ", "-")
        saliency = json.loads(drawn.file("layout.json").read_text())["saliency"]
        fails = guided_fails(json.loads(checked.file("randomization.json").read_text()))
        assert saliency == {"method": "gradient" if fails else "guided", "setting": "auto", "guided_fails": fails}
        page = tiny_site.site / "posts" / "visualizing-two-cnns" / "atlas" / key / "fc6.html"
        assert f"Top 9 test images, {'gradient' if fails else 'guided backprop'}" in page.read_text()
