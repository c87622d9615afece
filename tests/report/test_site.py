"""Site pieces: figure/table numbering and cross-references, page roots, publishing."""

import hashlib
import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, DictLoader

from reportgen.config import Config
from reportgen.errors import SiteError
from reportgen.report.pages import Page
from reportgen.report.prose import as_text, join_and, layer_range, number, plural, times
from reportgen.report.publish import MARKER, check_output_dir, publish
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


@pytest.mark.parametrize(("n", "text"), [(0, "zero"), (1, "one"), (10, "ten"), (11, "11"), (1000, "1,000"),
                                         (10.0, "ten"), (2.5, "2.5")])
def test_numbers_read_as_a_person_writes_them(n: float, text: str) -> None:
    assert number(n) == text


def test_plurals_times_and_lists() -> None:
    assert plural(1, "image") == "one image" and plural(3, "class", "classes") == "three classes"
    assert plural(1000, "image", words=False) == "1,000 images" and plural(1, "thread", words=False) == "1 thread"
    assert [times(n) for n in (1, 2, 3)] == ["once", "twice", "three times"]
    assert join_and(["a"]) == "a" and join_and(["a", "b"]) == "a and b" and join_and("abc") == "a, b and c"
    assert layer_range(["conv1", "conv2"]) == "conv1 and conv2"
    assert layer_range(["conv3a", "conv3b", "conv4a"]) == "conv3a to conv4a"
def _stage(root: Path, files: dict[str, str]) -> Path:
    staging = root / f"staging-{len(list(root.glob('staging-*')))}"
    for rel, text in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text)
    return staging


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _beside(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_publishing_deletes_only_the_files_a_build_wrote_and_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "posts/p/old.svg": "drawing", "posts/p/index.html": "post"}), out)
    (out / "CNAME").write_text("example.org")
    (out / "notes").mkdir()
    (out / "notes" / "todo.txt").write_text("mine")
    publish(_stage(tmp_path, {"index.html": "v2", "posts/p/index.html": "post 2"}), out)
    assert (out / "index.html").read_text() == "v2" and not (out / "posts" / "p" / "old.svg").exists()
    assert (out / "CNAME").read_text() == "example.org" and (out / "notes" / "todo.txt").read_text() == "mine"
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == {"index.html": _sha("v2"), "posts/p/index.html": _sha("post 2")}
    assert _beside(out) == []


def test_a_generated_file_edited_since_is_never_deleted(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "extra.html": "generated"}), out)
    (out / "extra.html").write_text("edited by hand")
    publish(_stage(tmp_path, {"index.html": "v2"}), out)
    assert (out / "extra.html").read_text() == "edited by hand"


def test_a_hostile_marker_cannot_delete_anything_outside_the_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1"}), out)
    victims = {name: tmp_path / name for name in ("victim.txt", "linked.txt")}
    for path in victims.values():
        path.write_text("precious")
    (out / "link.txt").symlink_to(victims["linked.txt"])
    (out / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    listed = {"../victim.txt": _sha("precious"), str(victims["victim.txt"]): _sha("precious"),
              "posts/../../victim.txt": _sha("precious"), "link.txt": _sha("precious"),
              "linked-dir/victim.txt": _sha("precious"), "index.html": _sha("v1")}
    (out / MARKER).write_text(json.dumps({"files": listed}))
    publish(_stage(tmp_path, {"index.html": "v2"}), out)
    assert all(path.read_text() == "precious" for path in victims.values())
    assert (out / "link.txt").is_symlink() and (out / "linked-dir").is_symlink()  # the user's links survive
    assert (out / "index.html").read_text() == "v2"


@pytest.mark.parametrize("marker", ["{not json", "{}", '{"files": {"index.html": 3}}', '{"files": "index.html"}',
                                    "[1, 2]", b"\xff\xfe".decode("latin-1"), None])
def test_a_damaged_marker_makes_ownership_unknown_and_touches_nothing(tmp_path: Path, marker: str | None) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("someone's")
    if marker is None:
        (out / MARKER).mkdir()
    else:
        (out / MARKER).write_text(marker, encoding="latin-1")
    for attempt in (lambda: check_output_dir(out), lambda: publish(_stage(tmp_path, {"index.html": "new"}), out)):
        with pytest.raises(SiteError, match=f"{MARKER}: damaged site marker .*which files reportgen wrote there is "
                                            "unknown"):
            attempt()
    assert (out / "index.html").read_text() == "someone's"


def test_a_marker_without_hashes_proves_nothing_so_nothing_is_deleted(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.html").write_text("old")
    (out / MARKER).write_text(json.dumps({"files": ["stale.html"]}))
    check_output_dir(out)
    publish(_stage(tmp_path, {"index.html": "new"}), out)
    assert (out / "stale.html").read_text() == "old" and (out / "index.html").read_text() == "new"


@pytest.mark.parametrize("fail", ["switch", "carry"])
def test_a_failed_publish_leaves_the_previous_site_whole_and_names_the_destination(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "posts/p/index.html": "post 1"}), out)
    (out / "CNAME").write_text("example.org")
    before = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        if fail == "switch" and "staging" in str(src):
            raise PermissionError(13, "Permission denied", str(src))
        real_rename(src, dst)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(os, "rename", rename)
    if fail == "carry":
        monkeypatch.setattr(os, "link", refuse)
        monkeypatch.setattr(shutil, "copy2", refuse)
    with pytest.raises(SiteError) as err:
        publish(_stage(tmp_path, {"index.html": "v2", "posts/p/index.html": "post 2"}), out)
    assert str(err.value).startswith(f"{out}: cannot publish the site (Permission denied")
    assert "staging" not in str(err.value)
    assert {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()} == before


def test_a_site_moved_aside_by_a_killed_build_is_put_back(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1"}), out)
    os.rename(out, tmp_path / ".site.old-99999999")  # a build killed between its two renames
    (tmp_path / ".site.staging-99999999").mkdir()
    check_output_dir(out)
    assert (out / "index.html").read_text() == "v1" and _beside(out) == []


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
    assert sorted(set(tags)) == ["code", "div", "em", "figcaption", "figure", "img", "p", "span", "strong", "table",
                                 "td", "th", "tr"], page
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


def test_atlas_gathers_each_units_panels_from_every_section_into_a_page_per_layer() -> None:
    from reportgen.report.pages import AtlasPanel, ModelRecord, Picture, Section
    from reportgen.report.site import atlas_pages

    record = ModelRecord("Model <I>", "model-i", None, False, None, None)  # artifacts are not read here
    tile = Picture("figures/sheet.png", "unit 3", 56, 56, tile=(28, 0, 28, 28), sheet=(280, 28))
    preferred = Section("preferred", {}, atlas=[AtlasPanel("model-i", "conv1", 3, "Preferred input", (tile,)),
                                                AtlasPanel("model-i", "conv1", 1, "Preferred input", flag="dead"),
                                                AtlasPanel("model-i", "features.0", 0, "Preferred input")])
    patches = Section("responses", {}, atlas=[AtlasPanel("model-i", "conv1", 3, "Top patches", facts=("9 images",))])
    pages = atlas_pages([preferred, patches], [record])
    assert [p.path for p in pages] == ["atlas/model-i/conv1.html", "atlas/model-i/features-0.html"]
    atlas = pages[0].context["atlas"]
    assert atlas["model"] == "Model <I>" and [e["unit"] for e in atlas["entries"]] == [1, 3]
    assert [p.heading for p in atlas["entries"][1]["panels"]] == ["Preferred input", "Top patches"]
    assert atlas["nav"][1] == {"name": "features.0", "href": "../../atlas/model-i/features-0.html", "current": False}
    # the tile is scaled 2x: the sheet and the offset with it
    assert tile.style() == "width:56px;height:56px;background-size:560px 56px;background-position:-56px 0px"
