"""Section 3's drawing: which units the activated-units figure colours."""

import numpy as np

from reportgen.sections.responses.draw import active_mask


def test_active_mask_follows_the_threshold() -> None:
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert active_mask(values, 0.0).tolist() == [False, False, True, True, True]
    assert active_mask(values, 0.5).tolist() == [False, False, False, False, True]
    assert active_mask(values, 0.2).tolist() == [False, False, True, True, True]
    assert not active_mask(np.array([-2.0, 0.0]), 0.0).any()  # a silent layer: nothing active
