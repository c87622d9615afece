"""Text as the site prints it: outside strings escaped for HTML and Markdown alike, and numbers and
lists written as a person writes them ("two images", "a, b and c")."""

from __future__ import annotations

import copy
import dataclasses
import html
import re
from typing import Any

from markupsafe import Markup, escape


class Text(str):
    """A string from outside the templates (the config, folder names, checkpoints): always printed as
    literal text. Jinja escapes it through `__html__` wherever it lands (printed, concatenated with
    `~` into a caption, joined), and the usual string methods keep the mark."""

    def __html__(self) -> Markup:
        return Markup(escape_text(self))

    def __add__(self, other: str) -> Text:
        return Text(str.__add__(self, other))

    def __radd__(self, other: str) -> Text:
        return Text(str.__add__(other, self))

    def __getitem__(self, key: Any) -> Text:
        return Text(str.__getitem__(self, key))

    def __mod__(self, args: Any) -> Text:
        return Text(str.__mod__(self, args))


for _name in ("capitalize", "casefold", "center", "format", "ljust", "lower", "lstrip", "replace", "rjust", "rstrip",
              "strip", "swapcase", "title", "upper", "zfill"):
    setattr(Text, _name, (lambda method: lambda self, *a, **k: Text(method(self, *a, **k)))(getattr(str, _name)))


# Characters Markdown acts on anywhere in a line, and at the start of one (headings, lists, quotes,
# rules, definitions, tables); numeric entities display the same in Markdown text, raw HTML blocks
# and attributes alike, so one escaping fits every place a value is printed.
_MARKDOWN_INLINE = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_[]{}|~"})


_MARKDOWN_START = re.compile(r"^(\s*)([#+\-=:])|^(\s*\d+)([.)])(?=\s|$)")


def escape_text(value: object) -> str:
    """`value` as HTML that shows it literally, inert to both HTML and Markdown."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))  # a newline could end the paragraph it sits in
    text = html.escape(text, quote=True).translate(_MARKDOWN_INLINE)
    return _MARKDOWN_START.sub(lambda m: (m.group(1) or m.group(3) or "") + f"&#{ord(m.group(2) or m.group(4))};", text)


def as_text(value: Any) -> Any:
    """The template context with every string in it marked as text, however deep: in tables, lists
    and the fields of records (config sections, atlas panels), which keep their type and methods."""
    if isinstance(value, str):
        return value if isinstance(value, Markup) else Text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        marked = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(marked, f.name, as_text(getattr(value, f.name)))  # frozen ones too
        return marked
    if isinstance(value, dict):
        return {as_text(k): as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if type(value) is tuple:
        return tuple(as_text(v) for v in value)
    return value


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number(n: float) -> str:
    """A count as prose writes it: words up to ten, digits with thousands separators above;
    a ratio that is not whole keeps up to two significant decimals (2.5, not 2.50)."""
    if float(n).is_integer():
        whole = int(n)
        return _WORDS[whole] if 0 <= whole < len(_WORDS) else f"{whole:,}"
    return f"{n:.3g}"


def plural(n: int, singular: str, plural_form: str | None = None, words: bool = True) -> str:
    """"one image", "two images", "1,000 images": a count and its noun, agreeing in number."""
    noun = singular if n == 1 else (plural_form or singular + "s")
    return f"{number(n) if words else f'{n:,}'} {noun}"


def times(n: int) -> str:
    """"once", "twice", "three times", "12 times"."""
    return {1: "once", 2: "twice"}.get(n, f"{number(n)} times")


def join_and(items: Any, conjunction: str = "and") -> str:
    """"a", "a and b", "a, b and c". Items a template already escaped (Markup: what its `~` operator makes)
    stay as they are and the result is Markup, so nothing is escaped twice; plain strings are escaped then."""
    items = list(items)
    if any(isinstance(item, Markup) for item in items):
        parts = [escape(item) for item in items]
        if len(parts) <= 2:
            return Markup(f" {conjunction} ").join(parts)
        return Markup(", ").join(parts[:-1]) + Markup(f" {conjunction} ") + parts[-1]
    items = [str(item) for item in items]
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def layer_range(names: list[str]) -> str:
    """Consecutive layers by name: "conv1", "conv1 and conv2", "conv3a to conv4b"."""
    return join_and(names) if len(names) <= 2 else f"{names[0]} to {names[-1]}"


def compact_count(n: int) -> str:
    """Compact count with three significant digits: 80, 45.6 k, 1.23 M."""
    if n < 1000:
        return str(n)
    for scale, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        # round first so that 999,999 reads 1.00 M rather than 1000 k
        value = float(f"{n / scale:.3g}")
        if value < 1000 or unit == "G":
            break
    return f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f} {unit}"
