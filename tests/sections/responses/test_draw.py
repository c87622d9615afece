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
