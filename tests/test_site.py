"""Site pieces: figure/table numbering and cross-references, page roots, publishing."""

import pytest

from reportgen.site import Numbering, Page, SiteError, join_and, layer_range, number, plural, times


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
