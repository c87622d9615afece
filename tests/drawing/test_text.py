"""Text in pictures: names drawn literally, on one line, cut to fit."""

from reportgen.drawing.text import fit, printable, text_sprite


def test_hostile_names_are_drawn_literally_on_one_line() -> None:

    assert printable("a\nb\t$x$\u202e") == "a\\nb\\t$x$\\u202e"
    long = fit("$\\frac{1}{2}$ " * 20, 80)
    assert long.startswith("$\\frac{1}{2}$") and long.endswith("…")
    sprite = text_sprite("$\\frac{1}{2}$ <script>", 80, 13)
    assert sprite.shape == (13, 80, 3) and (sprite != sprite[0, 0]).any()
