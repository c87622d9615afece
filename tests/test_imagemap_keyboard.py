"""The image map page from the keyboard and on a phone, in headless Chromium, opened from disk and offline:
the cross starts on an image, Enter opens its neighbours and moves the focus to them, a neighbour's button
opens that neighbour's, Escape goes back to the map, and a phone can always scroll the page past the map."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_browser import _offline_page, _require_browser, browser, site  # noqa: F401

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MAP = "posts/visualizing-two-cnns/clusters-map.html"
CANVAS = "canvas.imagemap-canvas"

# What has the focus: "canvas", "title" (the neighbours' heading), "query" or "neighbour" (a button in
# their list, with its image index), "body", or the tag name of anything else.
_FOCUS = """() => {
  const a = document.activeElement, panel = document.querySelector(".imagemap-neighbours");
  const button = a && a.closest(".imagemap-neighbour-list button");
  return {
    what: a === document.querySelector("canvas.imagemap-canvas") ? "canvas"
        : a && a.classList.contains("imagemap-neighbours-title") ? "title"
        : button ? (button.closest("li").classList.contains("query") ? "query" : "neighbour")
        : a === document.body ? "body" : (a ? a.tagName.toLowerCase() : "none"),
    inPanel: !!(a && panel.contains(a)),
    image: button ? Number(button.dataset.image) : null,
  };
}"""

# The neighbours panel as the reader sees it: shown or not, its summary, the image each button shows.
_PANEL = """() => {
  const panel = document.querySelector(".imagemap-neighbours");
  return { hidden: panel.hidden, live: panel.getAttribute("aria-live"),
           summary: document.querySelector(".imagemap-neighbours-summary").textContent,
           query: Number(document.querySelector(".imagemap-neighbour-list li.query button").dataset.image),
           images: Array.from(document.querySelectorAll(".imagemap-neighbour-list button"),
                              b => Number(b.dataset.image)) };
}"""


def _open_map(chromium: Browser, built: Path, **options: Any) -> tuple[Any, Page, list[str], list[str]]:
    """The map page of the site `built` from disk in a fresh context that may fetch only files of that site:
    the context, the page (its first frame drawn), requests it tried outside the site, and its console
    errors, warnings and script errors."""
    root = built.as_uri() + "/"
    context, page, outside, problems = _offline_page(chromium, root, **options)
    page.goto(root + MAP)
    page.wait_for_function(f"document.querySelector('{CANVAS}').width > 1")
    page.wait_for_timeout(300)  # the sprite sheet loads and the first frame draws
    return context, page, outside, problems


def _tab_until(page: Page, what: str, presses: int = 30) -> dict[str, Any]:
    """Press Tab until the focus is on `what` (see _FOCUS), as a keyboard user would; fail if it never is."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        focus = page.evaluate(_FOCUS)
        if focus["what"] == what:
            return focus
    pytest.fail(f"Tab never reached the {what}; the focus is on {page.evaluate(_FOCUS)}")


def test_the_keyboard_opens_neighbours_walks_them_and_returns_to_the_map(browser: Browser, site: Path) -> None:  # noqa: F811
    """Tab to the map and press Enter at once: the cross starts on an image, so its neighbours open and the
    focus moves to their heading (whose description is the summary; no live region says it again). Tab
    reaches a neighbour's button, Enter on it opens that neighbour's neighbours with the focus back on the
    heading, and Escape returns the focus to the map, where the arrow keys report what is under the cross."""
    context, page, outside, problems = _open_map(browser, site, viewport={"width": 900, "height": 800})
    try:
        data = page.evaluate("JSON.parse(document.getElementById('imagemap-data').textContent)")
        assert data["neighbours"]["k"] > 0
        _tab_until(page, "canvas")
        status = page.locator(".imagemap-status")
        assert status.text_content().startswith("Under the cross: class: "), status.text_content()

        page.keyboard.press("Enter")  # (a) on load, the cross is on an image
        panel = page.evaluate(_PANEL)
        assert not panel["hidden"], "Enter on the freshly loaded map opened nothing: the cross is on empty space"
        query = panel["query"]
        k = data["neighbours"]["k"]
        assert panel["images"] == [query] + data["neighbours"]["index"][query * k:(query + 1) * k]
        assert f"class: {data['classes'][data['label'][query]]}" in panel["summary"]
        assert "share its class" in panel["summary"]

        focus = page.evaluate(_FOCUS)  # (b) the focus is in the panel, on its heading, not on <body>
        assert focus["what"] == "title" and focus["inPanel"], focus
        title = page.locator(".imagemap-neighbours-title")
        assert title.get_attribute("tabindex") == "-1"
        described = title.get_attribute("aria-describedby")
        assert described and page.locator(f"#{described}").text_content() == panel["summary"]
        # said once: the panel is no live region, and the status line did not repeat the summary
        assert panel["live"] is None and panel["summary"] not in status.text_content()

        neighbour = _tab_until(page, "neighbour", presses=3)  # (c) past the query's button to a neighbour's
        assert neighbour["inPanel"] and neighbour["image"] == panel["images"][1]
        page.keyboard.press("Enter")
        after = page.evaluate(_PANEL)
        assert after["query"] == neighbour["image"] != query, (query, after)
        assert after["images"][1:] == data["neighbours"]["index"][after["query"] * k:(after["query"] + 1) * k]
        assert page.evaluate(_FOCUS)["what"] == "title"  # the rebuilt list did not drop the focus to <body>

        page.keyboard.press("Escape")  # (d) back to the map
        assert page.evaluate(_FOCUS)["what"] == "canvas"
        # the map was centred on the neighbour opened last: the cross is on it (or on one drawn over it)
        assert status.text_content().startswith("Under the cross: class: "), status.text_content()
        page.keyboard.press("Enter")
        assert page.evaluate(_FOCUS)["what"] == "title"
        page.keyboard.press("Escape")

        # the arrow keys pan, and the status line names the image under the cross (or says there is none)
        said = set()
        for key in ["ArrowRight"] * 3 + ["ArrowDown"] * 3 + ["ArrowLeft"] * 3:
            page.keyboard.press(key)
            said.add(status.text_content())
            assert status.text_content().startswith(("Under the cross: class: ", "No image under the cross")), \
                status.text_content()
        assert len(said) > 1 and any(" predicted: " in s for s in said), said
        page.keyboard.press("Escape")  # Escape on the map closes the neighbours
        assert page.evaluate(_PANEL)["hidden"] and page.evaluate(_FOCUS)["what"] == "canvas"
    finally:
        context.close()
    assert not outside, outside
    assert not problems, problems  # (e)


def test_a_click_on_the_map_still_opens_neighbours_and_keeps_the_focus_there(browser: Browser, site: Path) -> None:  # noqa: F811
    """The mouse: a click on an image opens its neighbours and the status line (a live region) says the
    summary once; the focus stays on the map; Reset view puts the cross back on an image."""
    context, page, outside, problems = _open_map(browser, site, viewport={"width": 900, "height": 800})
    try:
        data = page.evaluate("JSON.parse(document.getElementById('imagemap-data').textContent)")
        box = page.locator(CANVAS).bounding_box()
        t = data["sprites"]["thumb"]
        w, h = data["cols"] * t, data["rows"] * t
        scale = min(box["width"] / w, box["height"] / h) * 0.96
        ox, oy = (box["width"] - w * scale) / 2, (box["height"] - h * scale) / 2
        i = data["count"] - 1  # drawn last, so nothing covers its centre
        page.mouse.click(box["x"] + ox + (data["x"][i] * (w - t) + t / 2) * scale,
                         box["y"] + oy + (data["y"][i] * (h - t) + t / 2) * scale)
        panel = page.evaluate(_PANEL)
        assert not panel["hidden"] and panel["query"] == i
        assert page.locator(".imagemap-status").text_content() == panel["summary"]
        assert page.evaluate(_FOCUS)["what"] == "canvas"
        page.get_by_role("button", name="Reset view").click()
        page.locator(CANVAS).focus()
        page.keyboard.press("Enter")
        assert page.evaluate(_FOCUS)["what"] == "title"
    finally:
        context.close()
    assert not outside and not problems, (outside, problems)


# The canvas on the screen: its computed touch-action, its height, the viewport's height and the page's.
_GEOMETRY = """() => {
  const c = document.querySelector("canvas.imagemap-canvas"), r = c.getBoundingClientRect();
  return { touchAction: getComputedStyle(c).touchAction, height: r.height, top: r.top + window.scrollY,
           viewport: window.innerHeight, page: document.documentElement.scrollHeight };
}"""


def _swipe_down(session: Any, page: Page, y: float, x: float = 195, distance: int = 100) -> None:
    """One finger from (x, y) 100 px down the screen, as touch events from the screen (Chromium's
    synthesized scroll gestures do not scroll a headless page)."""
    session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        session.send("Input.dispatchTouchEvent",
                     {"type": "touchMove", "touchPoints": [{"x": x, "y": y + distance * step / 10}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(200)


def test_a_phone_can_always_scroll_the_page_past_the_map(browser: Browser, site: Path) -> None:  # noqa: F811
    """(f) At 390 px wide, on a touch screen: either the canvas lets vertical swipes scroll the page
    (touch-action pan-y), or it leaves at least 40 % of the screen outside it wherever the page is
    scrolled; and a real one-finger swipe on the page beside the map scrolls it."""
    context, page, outside, problems = _open_map(browser, site, viewport={"width": 390, "height": 844},
                                                 has_touch=True, is_mobile=True, device_scale_factor=2)
    try:
        g = page.evaluate(_GEOMETRY)
        scrolls = g["touchAction"] in ("auto", "manipulation") or "pan-y" in g["touchAction"]
        assert scrolls or g["height"] <= 0.6 * g["viewport"] + 1, g
        # the worst place: the map as high on the screen as the page can scroll it
        start = min(g["top"], g["page"] - g["viewport"])
        assert start > 0, g
        page.evaluate(f"window.scrollTo(0, {start})")
        page.wait_for_timeout(100)
        before = page.evaluate("window.scrollY")
        top = g["top"] - before
        below = top + g["height"]
        # a finger on the page outside the canvas: below it if there is room there, else above it
        y = (below + g["viewport"]) / 2 if g["viewport"] - below >= 80 else top / 2
        assert 0 < y < g["viewport"] and not top <= y <= below, (y, g)
        session = context.new_cdp_session(page)
        _swipe_down(session, page, y)  # the finger moves down: the page scrolls back up towards its top
        assert page.evaluate("window.scrollY") < before - 20, (before, page.evaluate("window.scrollY"), g)
        if not scrolls:  # and the canvas keeps a swipe on it for the map: it pans the map, not the page
            page.evaluate(f"window.scrollTo(0, {start})")
            page.wait_for_timeout(100)
            _swipe_down(session, page, top + g["height"] / 2 - 50)
            assert page.evaluate("window.scrollY") == before
    finally:
        context.close()
    assert not outside and not problems, (outside, problems)
