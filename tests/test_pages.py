"""What readers' tools meet on every page of one built site: no raw Markdown in the text, and every
table header cell scoped to its row or column."""

from __future__ import annotations

import html as html_lib
import re

from tests.conftest import BuiltSite


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
