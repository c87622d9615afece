"""What readers' tools meet on every page of one built site: no raw Markdown in the text, every
table header cell scoped to its row or column, images sized and lazy below the first, movies that
wait for the reader."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

from tests.conftest import BuiltSite

POST = "posts/visualizing-two-cnns/index.html"


def _pages(tiny_site: BuiltSite) -> list[tuple[str, str]]:
    return [(str(page), page.read_text()) for page in sorted(tiny_site.site.rglob("*.html"))]


def test_verdicts_are_bold_text_not_raw_markdown(tiny_site: BuiltSite) -> None:
    """Markdown the templates meant (a verdict's bold) must have become markup, never asterisks or
    their escapes, in any page's visible text."""
    verdicts = 0
    for page, source in _pages(tiny_site):
        body = re.sub(r"<(script|style)\b.*?</\1>", "", source, flags=re.S)
        text = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
        at = text.find("**")
        assert at < 0 and "&#42;&#42;" not in source, (page, text[max(0, at - 120):at + 40])
        verdicts += len(re.findall(r"<strong>(held|did not hold|was not confirmed|was reversed)</strong>", source))
    assert verdicts >= 3


def test_every_table_header_cell_has_a_scope(tiny_site: BuiltSite) -> None:
    for page, source in _pages(tiny_site):
        unscoped = [cell for cell in re.findall(r"<th\b[^>]*>", source) if "scope=" not in cell]
        assert not unscoped, (page, unscoped[:3])
        assert not re.search(r"<th\b[^>]*>\s*</th>", source), page  # an empty header cell heads nothing


def test_images_are_sized_and_those_below_the_first_wait_for_the_reader(tiny_site: BuiltSite) -> None:
    from PIL import Image

    checked = 0
    for page, source in _pages(tiny_site):
        tags = re.findall(r"<img\b[^>]*>", source)
        for i, tag in enumerate(tags):
            assert re.search(r'\swidth="\d+"', tag) and re.search(r'\sheight="\d+"', tag), (page, tag)
            assert ('loading="lazy"' in tag) == (i > 0), (page, tag)
            src = re.search(r'\ssrc="([^"]+)"', tag)[1]
            if src.endswith(".png"):  # the size written is the file's own
                with Image.open(Path(page).parent / html_lib.unescape(src)) as image:
                    assert (f'width="{image.width}"' in tag or "tile" in tag), (page, tag, image.size)
                checked += 1
    assert checked >= 5
    # the movies wait for the reader too: they have posters, so nothing is fetched before play
    post = next(source for page, source in _pages(tiny_site) if page.endswith("visualizing-two-cnns/index.html"))
    assert post.count("<video") >= 2 and post.count('preload="none"') == post.count("<video")


def test_pages_declare_html5_fit_their_titles_and_scroll_tables_by_keyboard(tiny_site: BuiltSite) -> None:
    """What html-validate and axe-core check (tests/test_validate.py, the browser test), without Node:
    the DOCTYPE, a title search results show whole, and tables that scroll sideways reachable by keyboard."""
    from reportgen.report.site import TITLE_CHARS

    wrappers = 0
    for page, source in _pages(tiny_site):
        assert source.startswith("<!DOCTYPE html>\n"), page
        title = re.search(r"<title>([^<]*)</title>", source)[1]
        assert title and len(title) <= TITLE_CHARS, (page, title)
        for tag in re.findall(r'<div class="scroll"[^>]*>', source):
            assert 'tabindex="0"' in tag and re.search(r'\saria-label="(Table \d+|Units of [^"]+)"', tag), (page, tag)
            wrappers += 1
    assert wrappers >= 3


def test_headings_figures_and_tables_link_to_themselves(tiny_site: BuiltSite) -> None:
    html = (tiny_site.site / POST).read_text()
    headings = re.findall(r'<h([2-4]) id="([^"]+)">(.*?)</h\1>', html, re.S)
    assert len(headings) >= 10
    for _, ident, inner in headings:
        assert inner.endswith(f'<a class="permalink" href="#{ident}" aria-label="Link to the section '
                              f'{inner[:inner.index(" <a")].strip()}">#</a>'), inner
    for kind in ("figure", "table"):
        idents = re.findall(rf'<figure id="{kind}-([^"]+)"', html)
        assert idents and all(f'<a class="label" href="#{kind}-{i}">' in html for i in idents)

