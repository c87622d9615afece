"""Image map drawing (palette, sprite sheets, figures) and the zoomable viewer in headless Chromium."""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from PIL import Image

from reportgen.report.site import SITE_NAME
from reportgen.report.templates import TEMPLATES
from reportgen.sections.clusters import compute, draw
from tests.conftest import CHROMIUM

# class names are user strings: markup, math dollars, quotes and ampersands must reach the reader literally
HOSTILE = ["<b>bold</b> $x^2$", 'a & "b"', "plain"]


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 1), dtype=np.uint8)


def test_palette_keeps_twenty_classes_apart() -> None:
    colors = np.array(draw.palette(20), dtype=float)
    assert len(set(map(tuple, colors))) == 20
    lab = draw._lab(colors)
    gaps = np.linalg.norm(lab[:, None] - lab[None], axis=-1)[np.triu_indices(20, 1)]
    assert gaps.min() > 15  # CIELAB distance; ~2.3 is a just-noticeable difference
    assert draw.hex_colors(3) == ["#1f77b4", "#ff7f0e", "#2ca02c"]


def test_thumbnails_have_class_coloured_borders() -> None:
    labels = np.array([0, 1, 2])
    thumbs = draw.thumbnails(_images(3), labels, 20, num_classes=3, border=2)
    assert thumbs.shape == (3, 20, 20, 3) and thumbs.dtype == np.uint8
    for thumb, color in zip(thumbs, draw.palette(3), strict=True):
        assert (thumb[0] == color).all() and (thumb[:, -1] == color).all() and (thumb[1, 5] == color).all()
    gray = thumbs[0, 2:-2, 2:-2]
    assert (gray[..., 0] == gray[..., 1]).all()  # one channel spread over RGB


def test_sprite_sheets_geometry(tmp_path: Path) -> None:
    thumbs = draw.thumbnails(_images(23), np.arange(23) % 3, 8)
    sheets = draw.write_sprites(thumbs, tmp_path, max_side=32)  # 4 x 4 thumbnails a sheet at most
    assert sheets.cols == 4 and sheets.per_sheet == 16 and sheets.count == 23
    assert sheets.files == ("sprites-0.png", "sprites-1.png")
    first, second = (np.asarray(Image.open(tmp_path / f)) for f in sheets.files)
    assert first.shape == (32, 32, 3) and second.shape == (16, 32, 3)  # 7 thumbnails left: two rows
    for i in range(23):
        sheet, x, y = sheets.position(i)
        pixels = (first, second)[sheet][y:y + 8, x:x + 8]
        np.testing.assert_array_equal(pixels, thumbs[i])
    assert sheets.to_json("maps/")["files"] == ["maps/sprites-0.png", "maps/sprites-1.png"]


def test_maps_and_neighbour_figure() -> None:
    n = 30
    images, labels = _images(n), np.arange(n) % 3
    xy = np.random.default_rng(2).normal(size=(n, 2))
    rows, cols = compute.grid_shape(n)
    cells = compute.grid_assign(xy, rows, cols)
    placed = draw.draw_placed_map(images, labels, xy, side=200)
    assert placed.size == (200, 200)
    grid = draw.draw_grid_map(images, labels, cells, rows, cols, max_side=120)
    assert grid.size == (cols * 20, rows * 20)  # 120 // 6 columns = 20 px cells
    # the thumbnail of image 0 sits in its cell
    r, c = divmod(int(cells[0]), cols)
    cell = np.asarray(grid)[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20]
    np.testing.assert_array_equal(cell, draw.thumbnails(images[:1], labels[:1], 20, 3)[0])

    queries = np.array([0, 4])
    idx, dist = compute.nearest(images.reshape(n, -1).astype(np.float32), queries, 3)
    figure = draw.draw_neighbours(images, labels, HOSTILE, queries, idx, dist, predictions=labels, thumb=32)
    assert figure.height == 2 * (32 + 2 * int(9 * 1.3) + 12)  # two lines of 9 px text under each thumbnail
    assert figure.width > 4 * 32


def _page_data(n: int, sprites_dir: Path) -> dict[str, Any]:
    """Images on a 6 x 5 map whose placed positions do not overlap, so each point hovers to itself."""
    labels = np.arange(n) % 3
    predictions = labels.copy()
    predictions[1] = 2
    rows, cols = 5, 6
    xy = np.stack([np.arange(n) % cols, np.arange(n) // cols], 1).astype(float)
    cells = compute.grid_assign(xy, rows, cols)
    thumbs = draw.thumbnails(_images(n), labels, 16, num_classes=3)
    sheets = draw.write_sprites(thumbs, sprites_dir)
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    idx, dist = compute.nearest(x, np.arange(n), 4)
    confidence = np.linspace(0.5, 0.99, n)
    return draw.page_context(HOSTILE, labels, predictions, confidence, xy, cells, (rows, cols), sheets,
                                 idx, dist, asset_prefix="maps/")


def _render(tmp_path: Path, data: dict[str, Any]) -> Path:
    """The viewer page as the site would write it: the page, static/ beside it, sprites in maps/."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"], default=True))
    footer = {"versions": {"reportgen": "0", "python": "3", "torch": "2", "numpy": "2"},
              "config_hash": "abc", "seeds": {"data": 1}}
    html = env.get_template("imagemap.html").render(root="", site={"title": "Tiny"}, site_name=SITE_NAME, footer=footer,
                                                    title="Image map of <test> images", imagemap=data)
    shutil.copytree(TEMPLATES / "static", tmp_path / "static")
    page = tmp_path / "index.html"
    page.write_text(html, encoding="utf-8")
    return page


def test_page_escapes_user_strings(tmp_path: Path) -> None:
    html = _render(tmp_path, _page_data(30, tmp_path / "maps")).read_text()
    assert "<b>bold</b>" not in html and "Image map of &lt;test&gt; images" in html
    assert 'src="static/imagemap.js"' in html and 'href="static/imagemap.css"' in html


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Any:
    missing = [what for what, ok in (("/usr/bin/chromium", CHROMIUM.is_file()),
                                     ("playwright", importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the viewer test needs {' and '.join(missing)}; CI is set, so this is an error")
        pytest.skip(f"the viewer test needs {' and '.join(missing)}")
    return request.getfixturevalue("chromium")  # the session's Chromium (conftest)


def test_viewer_hover_click_keyboard_offline(browser: Any, tmp_path: Path) -> None:
    data = _page_data(30, tmp_path / "maps")
    page_file = _render(tmp_path, data)
    context = browser.new_context(viewport={"width": 900, "height": 800})
    context.set_default_timeout(10_000)
    requests: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        # only files beside the page may load; anything else would be a request leaving the machine
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(page_file.as_uri())
        page.wait_for_function("Array.from(document.images).length === 0 && document.querySelector('canvas').width > 1")
        page.wait_for_timeout(200)  # sprite sheets load and the first frame draws
        box = page.locator("canvas.imagemap-canvas").bounding_box()
        # the viewer fits the 6 x 5 world (16 px cells) into the canvas at 96 %, centred
        scale = min(box["width"] / 96, box["height"] / 80) * 0.96
        ox, oy = (box["width"] - 96 * scale) / 2, (box["height"] - 80 * scale) / 2

        def centre(i: int) -> tuple[float, float]:
            px, py = data["x"][i] * (96 - 16), data["y"][i] * (80 - 16)
            return box["x"] + ox + (px + 8) * scale, box["y"] + oy + (py + 8) * scale

        tooltip = page.locator(".imagemap-tooltip")
        page.mouse.move(*centre(0))
        tooltip.wait_for(state="visible")
        assert tooltip.text_content() == f"class: {HOSTILE[0]}\npredicted: {HOSTILE[0]} 50.0%"
        assert tooltip.locator("b").count() == 0  # shown as text, not parsed
        page.mouse.move(*centre(1))
        assert "class: " + HOSTILE[1] in tooltip.text_content() and "(wrong)" in tooltip.text_content()

        page.mouse.click(*centre(1))
        items = page.locator(".imagemap-neighbour-list li")
        assert items.count() == 1 + data["neighbours"]["k"]
        first = data["neighbours"]["index"][4]  # image 1's nearest neighbour
        assert items.nth(1).locator("div").first.text_content() == HOSTILE[data["label"][first]]

        # keyboard: Tab to the canvas (focus ring), zoom, pan, Enter on the image under the cross
        page.locator("body").click(position={"x": 2, "y": 2})
        canvas = page.locator("canvas.imagemap-canvas")
        for _ in itertools.repeat(None, 8):
            page.keyboard.press("Tab")
            if canvas.evaluate("c => document.activeElement === c"):
                break
        assert canvas.evaluate("c => document.activeElement === c && c.matches(':focus-visible')")
        assert canvas.evaluate("c => getComputedStyle(c).outlineStyle") == "solid"
        page.keyboard.press("Escape")
        page.keyboard.press("+")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
        assert page.locator(".imagemap-neighbours").is_visible()
        assert "class: " in page.locator(".imagemap-status").text_content() or \
            "share its class" in page.locator(".imagemap-status").text_content()

        page.get_by_label("grid").check()
        page.wait_for_timeout(500)  # the layout animation takes 400 ms
        assert page.locator(".imagemap-legend li").all_text_contents() == HOSTILE
    finally:
        context.close()
    assert not errors, errors
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert any(url.endswith("maps/sprites-0.png") for url in requests)
    assert any(url.endswith("static/imagemap.js") for url in requests)
