"""Section 2's drawing: graph edges from weights, the graph layout, movie frames and sheet tiles."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reportgen.sections.preferred import draw


def test_strongest_edges_keep_the_k_largest_positive_weights_per_unit() -> None:
    matrix = np.array([[0.5, -2.0, 0.1, 0.3], [-1.0, -1.0, -1.0, 0.2]])
    edges = draw.strongest_edges({"edges_0": matrix}, 1, 2)
    # kept: 0.5, 0.3 (unit 0) and 0.2 (unit 1); colours span the weakest to the strongest kept edge
    assert edges == [(1, 0, 0, 1.0), (1, 0, 3, pytest.approx(1 / 3)), (1, 1, 3, 0.0)]


def test_layout_keeps_thumbnails_apart_and_layers_in_order() -> None:
    flags = [np.zeros(n, bool) for n in (40, 70, 5)]
    graph = draw.layout(np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"], [40, 70, 5], flags)
    nodes = graph["nodes"]
    assert len(nodes) == 3 + 40 + 70 + 5
    boxes = {(n.x, n.y) for n in nodes}
    assert len(boxes) == len(nodes)  # no two thumbnails on one spot
    assert all(n.x >= 0 and n.x + draw.THUMB <= graph["width"] for n in nodes)
    tops = [min(n.y for n in nodes if n.layer == k) for k in range(4)]
    assert tops == sorted(tops) and [b["name"] for b in graph["layers"]] == ["input", "a", "b", "c"]


def test_frames_have_the_movie_size_inside_and_outside_the_picture() -> None:

    picture = Image.new("RGB", (300, 900), (255, 0, 0))
    inside = draw._frame(picture, 150, 450, 0.25)
    assert inside.shape == (*draw.FRAME[::-1], 3) and (inside == (255, 0, 0)).all()
    overview = draw._frame(picture, 150, 450, 3.0)   # the picture is narrower than the view
    assert overview.shape == inside.shape
    assert tuple(overview[0, 0]) == draw.BACKGROUND and tuple(overview[216, 384]) == (255, 0, 0)


def test_receptive_field_crop_and_sheet_tiles() -> None:
    images = np.arange(2 * 3 * 8 * 8, dtype=np.uint8).reshape(2, 3, 8, 8, 1)
    crops = draw.layer_tiles(images, [2, 3, 5, 6])
    assert crops.shape == (2, 3, 3, 3, 1) and crops[1, 2, 0, 0, 0] == images[1, 2, 2, 3, 0]
    assert draw.layer_tiles(images, None) is images


def test_the_movies_layer_names_keep_their_size_at_every_zoom() -> None:
    """The names are written on each frame, not shrunk with a deep graph: the same text height (in
    frame pixels) in the overview of a tall graph and zoomed in on one layer."""
    picture = Image.new("RGB", (400, 4000), draw.BACKGROUND)
    labels = [("conv1", 100.0), ("fc7", 3900.0)]

    def text_rows(frame: np.ndarray) -> int:
        ink = (np.abs(frame.astype(int) - np.array(draw.BACKGROUND)).sum(-1) > 60).any(1)
        return int(ink.sum())

    overview = draw._frame(picture, 200, 2000, 4000 / draw.FRAME[1], labels)   # the whole height in one frame
    zoomed = draw._frame(picture, 200, 100, 0.5, labels)                       # conv1 alone, 2x
    # two names in the overview, one when zoomed; each a line of FRAME_LABEL_PX type, not 1/10 of it
    assert text_rows(overview) >= 2 * draw.FRAME_LABEL_PX // 2 and text_rows(zoomed) >= draw.FRAME_LABEL_PX // 2
    assert text_rows(overview) == pytest.approx(2 * text_rows(zoomed), abs=4)
    assert text_rows(draw._frame(picture, 200, 2000, 4000 / draw.FRAME[1])) == 0  # no labels given, none drawn
