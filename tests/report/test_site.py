"""Rendering: figure/table numbering and cross-references, page roots, escaping, refused links, atlas pages."""

import html
import re

import pytest
from jinja2 import ChoiceLoader, DictLoader

from reportgen.config import Config
from reportgen.errors import SiteError
from reportgen.report.pages import Page
from reportgen.report.prose import as_text
from reportgen.report.site import Numbering, _check_inert, _post_body, make_env


def test_figures_and_tables_are_numbered_separately_in_order_of_appearance() -> None:
    numbering = Numbering()
    early = numbering.ref("curves")  # a reference may come before its target
    assert numbering.add("Figure", "samples") == 1
    assert numbering.add("Table", "splits") == 1
    assert numbering.add("Figure", "curves") == 2
    html = numbering.resolve(f"<p>See {early} and {numbering.ref('splits')}.</p>")
    assert html == ('<p>See <a class="xref" href="#figure-curves">Figure 2</a> and '
                    '<a class="xref" href="#table-splits">Table 1</a>.</p>')


def test_a_reference_to_a_missing_id_names_it_and_the_known_ones() -> None:
    numbering = Numbering()
    numbering.add("Figure", "samples")
    token = numbering.ref("nowhere")
    with pytest.raises(SiteError, match="unknown figure or table 'nowhere'; known: samples"):
        numbering.resolve(token)


def test_an_id_used_twice_is_an_error() -> None:
    numbering = Numbering()
    numbering.add("Figure", "samples")
    with pytest.raises(SiteError, match="figure id 'samples' is used twice"):
        numbering.add("Figure", "samples")


def test_citations_number_in_order_of_first_citation() -> None:
    numbering = Numbering()
    assert "[1]" in numbering.cite("b") and "[2]" in numbering.cite("a") and "[1]" in numbering.cite("b")
    assert numbering.cited == ["b", "a"]


def test_held_blocks_survive_markdown_untouched() -> None:
    numbering = Numbering()
    token = numbering.hold("<figure>*not emphasis*</figure>")
    assert numbering.resolve(f"<p>{token.strip()}</p>") == "<figure>*not emphasis*</figure>"


@pytest.mark.parametrize(("path", "root"), [("index.html", ""), ("posts/slug/index.html", "../../"),
                                            ("posts/slug/atlas/model-i/conv1.html", "../../../../")])
def test_each_page_links_back_to_the_root_from_its_own_depth(path: str, root: str) -> None:
    assert Page(path, "post.html").root == root


HOSTILE = ["<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "**b** _i_ `c` $x^2$", "1. item",
           "# heading", "a\n\n<script>alert(1)</script>", "&amp; {: onclick=x} | t |"]
POST = """Text {{ name }} and **{{ name }}** and `{{ name }}` and {{ name | upper }}.

{{ name }}

{% call figure("f", "Caption of " ~ name ~ " and *emphasis*.") %}
<img src="x.png" alt="{{ name }}">
{% endcall %}
{% call table("t", name | upper ~ " caption") %}
<table><tr><th>{{ name }}</th><td>{{ [name, name] | join(", ") }}</td></tr></table>
{% endcall %}
"""


@pytest.mark.parametrize("name", HOSTILE)
def test_values_print_as_literal_text_in_markdown_html_captions_attributes_and_code(name: str) -> None:
    env = make_env(Config())
    env.loader = ChoiceLoader([DictLoader({"post.md.j2": POST}), env.loader])
    page = str(_post_body(env, as_text({"name": name})))
    # the template's structure and nothing more: no link, list, heading, script or extra emphasis
    tags = re.findall(r"<([a-z0-9]+)", page)
    assert sorted(set(tags)) == ["a", "code", "div", "em", "figcaption", "figure", "img", "p", "strong", "table",
                                 "td", "th", "tr"], page
    # the only links are the figure's and the table's labels, to themselves
    assert re.findall(r"<a [^>]*>", page) == ['<a class="label" href="#figure-f">', '<a class="label" href="#table-t">']
    assert [tags.count(t) for t in ("code", "em", "img", "strong")] == [1, 1, 1, 1], page
    assert '<img src="x.png" alt="' in page
    shown = " ".join(name.split())  # a newline would end the paragraph, so values print on one line
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert text.count(shown) == 8 and text.count(shown.upper()) == 2, text
    assert "<em>emphasis</em>" in page  # the template's own Markdown in a caption still renders


@pytest.mark.parametrize("snippet", ['<a href="javascript:alert(1)">', "<a HREF = ' JavaScript:x'>",
                                     '<img src="vbscript:x">'])
def test_a_page_linking_to_script_is_refused_whatever_produced_it(snippet: str) -> None:
    with pytest.raises(SiteError, match="index.html: the rendered page links to script"):
        _check_inert(f"<p>{snippet}</p>", "index.html")
    assert _check_inert('<a href="https://example.org/javascript:">', "index.html")


def test_atlas_gathers_each_units_cells_from_every_section_into_pages_of_a_layers_table() -> None:
    from reportgen.report.pages import (
        ATLAS_PAGE_UNITS,
        AtlasCell,
        AtlasNote,
        AtlasPanel,
        ModelRecord,
        Picture,
        Section,
        atlas_href,
    )
    from reportgen.report.site import atlas_pages

    record = ModelRecord("Model <I>", "model-i", None, "", None, None, None)  # artifacts are not read here
    tile = Picture("figures/sheet.png", "unit 3", 56, 56, tile=(28, 0, 28, 28), sheet=(280, 28))
    late = ATLAS_PAGE_UNITS + 5  # a unit on the layer's second page
    preferred = Section("preferred", {}, atlas=[
        AtlasPanel("model-i", "conv1", 3, (AtlasCell("Preferred input", pictures=(tile,)),
                                           AtlasCell("Reached", "4.2", value=4.2))),
        AtlasPanel("model-i", "conv1", 1, (AtlasCell("Reached", "0", value=0.0),), flags=("dead",)),
        AtlasPanel("model-i", "conv1", late, (AtlasCell("Reached", "1", value=1.0),)),
        AtlasPanel("model-i", "features.0", 0, (AtlasCell("Reached", "1", value=1.0),))],
        atlas_notes=[AtlasNote("model-i", "conv1", "Reached: what the ascent reached.")])
    patches = Section("responses", {}, atlas=[
        AtlasPanel("model-i", "conv1", 3, (AtlasCell("Classes", "7 \u00d79"),), flags=("silent",))])
    pages = atlas_pages([preferred, patches], [record])
    assert [p.path for p in pages] == ["atlas/model-i/conv1.html", f"atlas/model-i/conv1.units-{ATLAS_PAGE_UNITS}-"
                                       f"{2 * ATLAS_PAGE_UNITS - 1}.html", "atlas/model-i/features-0.html"]
    assert atlas_href("model-i", "conv1", late) == pages[1].path + f"#unit-{late}"  # links find a unit's page
    atlas = pages[0].context["atlas"]
    assert atlas["model"] == "Model <I>" and [r["unit"] for r in atlas["rows"]] == [1, 3]
    # one column per heading, in the order the sections give them; a unit without a cell gets a gap
    assert [c["name"] for c in atlas["columns"]] == ["Preferred input", "Reached", "Classes"]
    assert [c["sort"] for c in atlas["columns"]] == [False, True, False]
    assert atlas["rows"][0]["cells"][0] is None and atlas["rows"][1]["cells"][2].text == "7 \u00d79"
    assert [r["flags"] for r in atlas["rows"]] == [["dead"], ["silent"]] and atlas["flagged"] == 2
    assert atlas["notes"] == ["Reached: what the ascent reached."] and atlas["units"] == 3
    assert [r["current"] for r in atlas["ranges"]] == [True, False]
    assert pages[2].context["atlas"]["ranges"] == []  # one page: no page links
    assert atlas["nav"][1] == {"name": "features.0", "href": "../../atlas/model-i/features-0.html", "current": False}
    assert tile.view_box == "28 0 28 28"  # the browser scales the tile's view, exactly


