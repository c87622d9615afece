"""Numbers, plurals and lists as a person writes them."""


import pytest

from reportgen.report.prose import join_and, layer_range, number, plural, times


@pytest.mark.parametrize(("n", "text"), [(0, "zero"), (1, "one"), (10, "ten"), (11, "11"), (1000, "1,000"),
                                         (10.0, "ten"), (2.5, "2.5")])
def test_numbers_read_as_a_person_writes_them(n: float, text: str) -> None:
    assert number(n) == text


def test_plurals_times_and_lists() -> None:
    assert plural(1, "image") == "one image" and plural(3, "class", "classes") == "three classes"
    assert plural(1000, "image", words=False) == "1,000 images" and plural(1, "thread", words=False) == "1 thread"
    assert [times(n) for n in (1, 2, 3)] == ["once", "twice", "three times"]
    assert join_and(["a"]) == "a" and join_and(["a", "b"]) == "a and b" and join_and("abc") == "a, b and c"
    # what a template's `~` already escaped is not escaped again; plain strings beside it are escaped once
    from markupsafe import Markup
    joined = join_and([Markup("Model I&#39;s fc6"), "<b>", Markup("c")], "or")
    assert isinstance(joined, Markup) and joined == "Model I&#39;s fc6, &lt;b&gt; or c"
    assert layer_range(["conv1", "conv2"]) == "conv1 and conv2"
    assert layer_range(["conv3a", "conv3b", "conv4a"]) == "conv3a to conv4a"
