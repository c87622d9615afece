"""Netscope-style architecture diagrams: a vertical chain of layer boxes, rendered as plain SVG.

The layers come from `layers.describe_layers`, which records what a forward pass actually runs, so
the diagram works for any `nn.Module` without knowing its structure. `architecture_svg` draws one
box per block: a layer that computes something (conv, fc, ...) plus the elementwise ops that follow
it (BN, ReLU, dropout, pooling), which keeps a 9-block model and a 45-layer VGG equally readable;
consecutive sub-blocks that compute alike (a ResNet-50's bottlenecks) are drawn once in a frame
that says how many (`collapse_repeats`).

The SVG uses no ids, <style> or external fonts, so several diagrams can be inlined in one HTML
page without clashing, and a light card background keeps it legible on dark pages too.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass

from reportgen.nets.layers import LayerSpec
from reportgen.report.prose import compact_count


@dataclass(frozen=True)
class Block:
    """One diagram box: a leading layer and the elementwise ops fused into it."""

    label: str
    layers: tuple[LayerSpec, ...]

    @property
    def kind(self) -> str:
        """The leading layer's kind, which colours the box."""
        return self.layers[0].kind

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape after the block's last op."""
        return self.layers[-1].output_shape

    @property
    def params(self) -> int:
        """Parameters of all layers in the block."""
        return sum(layer.params for layer in self.layers)


_FUSED = frozenset({"bn", "relu", "dropout", "pool"})


def group_blocks(layers: list[LayerSpec]) -> list[Block]:
    """Fuse each run of BN/ReLU/dropout/pool layers into the box of the layer before it."""
    groups: list[list[LayerSpec]] = []
    for layer in layers:
        if layer.kind in _FUSED and groups and groups[-1][0].kind != "input":
            groups[-1].append(layer)
        else:
            groups.append([layer])
    # name a box by its top-level block ("conv1") when the box is exactly that block, else by its first layer
    tops = Counter(top for group in groups for top in {layer.name.split(".")[0] for layer in group})
    blocks = []
    for group in groups:
        top = group[0].name.split(".")[0]
        whole = tops[top] == 1 and all(layer.name.split(".")[0] == top for layer in group)
        blocks.append(Block(top if whole else group[0].name, tuple(group)))
    return blocks


def _unit_of(block: Block) -> str | None:
    """The repeated sub-block a box belongs to, by module path: 'layer3.2' of 'layer3.2.conv1',
    'features.2.0' of efficientnet's 'features.2.0.block.0.0' (the leading run of indices after the
    first), None for a box outside any indexed container."""
    parts = block.layers[0].name.split(".")
    first = next((i for i, part in enumerate(parts) if part.isdigit()), None)
    if first is None:
        return None
    end = first
    while end + 1 < len(parts) - 1 and parts[end + 1].isdigit():
        end += 1
    return ".".join(parts[:end + 1]) if end + 1 < len(parts) else None


def _signature(blocks: list[Block]) -> tuple:
    """What a sub-block computes, names aside: two alike ones draw the same boxes."""
    return tuple(tuple((la.type, la.detail, la.output_shape, la.params) for la in b.layers) for b in blocks)


def collapse_repeats(blocks: list[Block]) -> list[tuple[list[Block], list[str]]]:
    """The boxes to draw, as (boxes of one sub-block or one box, names of the sub-blocks it stands
    for): consecutive sub-blocks of one container that compute alike (resnet's layer3.1 to layer3.5
    of a ResNet-50) are drawn once, so a 50-layer network's diagram stays a readable length."""
    units: list[tuple[str | None, list[Block]]] = []
    for block in blocks:
        key = _unit_of(block)
        if units and key is not None and units[-1][0] == key:
            units[-1][1].append(block)
        else:
            units.append((key, [block]))
    drawn: list[tuple[list[Block], list[str]]] = []
    for key, members in units:
        previous = drawn[-1] if drawn else None
        if (key is not None and previous is not None and previous[1][0]
                and previous[1][-1].rsplit(".", 1)[0] == key.rsplit(".", 1)[0]
                and _signature(previous[0]) == _signature(members)):
            previous[1].append(key)
        else:
            drawn.append((members, [key] if key is not None else [""]))
    return drawn


# kind: (legend label, accent colour, box tint); tints are pale so dark text reads on every one
_STYLE = {
    "input": ("Input", "#475569", "#f1f5f9"),
    "conv": ("Conv", "#2563eb", "#eaf1fd"),
    "bn": ("BatchNorm", "#7c3aed", "#f3eefd"),
    "relu": ("ReLU", "#ea580c", "#fdf0e7"),
    "dropout": ("Dropout", "#0d9488", "#e6f5f3"),
    "pool": ("Pooling", "#16a34a", "#e8f6ec"),
    "flatten": ("Flatten", "#a16207", "#f8f1e3"),
    "fc": ("Fully connected", "#db2777", "#fceef5"),
    "other": ("Other", "#6b7280", "#f3f4f6"),
}
_SHORT = {"BatchNorm": "BN", "Linear": "FC", "Dropout": "Drop"}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_INK, _MUTED, _LINE = "#1e293b", "#64748b", "#94a3b8"
_WIDTH, _MARGIN, _BAR = 340, 14, 5
_INNER_LEFT, _INNER_RIGHT = _MARGIN + _BAR + 9, _WIDTH - _MARGIN - 10
_OP_SIZE, _OP_STEP, _GAP = 10.5, 15, 18


def _style(kind: str) -> tuple[str, str, str]:
    # LayerSpecs may come from elsewhere with kinds we do not know; draw those as "other"
    return _STYLE.get(kind, _STYLE["other"])


def _esc(text: str) -> str:
    # drop control characters: they are not allowed anywhere in an XML document
    return html.escape(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text), quote=True)


def _text_width(text: str, size: float, bold: bool = False) -> float:
    """Rough rendered width; no font metrics exist at build time, so err on the wide side."""
    return len(text) * size * (0.66 if bold else 0.6)


def _clip(text: str, width: float, size: float, bold: bool = False) -> str:
    if _text_width(text, size, bold) <= width:
        return text
    keep = max(int(width / _text_width("x", size, bold)) - 1, 1)
    return text[:keep] + "…"


def _wrap_words(text: str, width: float, size: float, bold: bool = False) -> list[str]:
    """Greedy word wrap by estimated width; a word too long for a line of its own is clipped."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(f"{lines[-1]} {word}", size, bold) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(_clip(word, width, size, bold))
    return lines or [""]


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _op_label(layer: LayerSpec) -> str:
    """'Conv 3×3 /1, 32' from type and detail: dimension suffixes dropped, common names shortened."""
    base = re.sub(r"[123]d$", "", layer.type)
    detail = re.sub(r"(?<=\d)x(?=\d)", "×", layer.detail).replace(" /", "/")
    return f"{_SHORT.get(base, base)} {detail}".strip()


def _wrap_ops(layers: tuple[LayerSpec, ...], width: float) -> list[list[tuple[str, str]]]:
    """(kind, label) runs per line, breaking only between ops."""
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0.0
    for layer in layers:
        label = _clip(_op_label(layer), width - 14, _OP_SIZE)
        need = _text_width(label, _OP_SIZE) + 14  # bullet and spacing
        if lines[-1] and used + need > width:
            lines.append([])
            used = 0.0
        lines[-1].append((layer.kind, label))
        used += need
    return lines


def _num(v: float) -> str:
    return f"{v:g}"


def _box(block: Block, top: float) -> tuple[list[str], float]:
    """SVG elements for one block and its height."""
    _, accent, tint = _style(block.kind)
    # input and flatten boxes are named by their colour and shape; listing them as ops only repeats that
    shown = tuple(layer for layer in block.layers if layer.kind not in ("input", "flatten"))
    ops = _wrap_ops(shown, _INNER_RIGHT - _INNER_LEFT) if shown else []
    height = 27 + _OP_STEP * len(ops)
    x, w, r = _MARGIN, _WIDTH - 2 * _MARGIN, 5
    shape = _shape(block.output_shape)
    params = f"{compact_count(block.params)} params" if block.params > 0 else ""
    room = _INNER_RIGHT - _INNER_LEFT - _text_width(shape, 12) - _text_width(params, 10) - 20
    # hover text lists every fused layer in full, since the box itself is abbreviated
    tip = "\n".join(f"{layer.name}: {' '.join(filter(None, (layer.type, layer.detail)))} → {_shape(layer.output_shape)}"
                    + (f" ({layer.params:,} params)" if layer.params else "") for layer in block.layers)
    parts = [
        f'<g class="rg-block"><title>{_esc(tip)}</title>',
        f'<rect x="{x}" y="{_num(top)}" width="{w}" height="{_num(height)}" rx="{r}" fill="{tint}" '
        f'stroke="{accent}" stroke-opacity="0.45"/>',
        # accent bar with the box's own rounded left corners
        f'<path d="M{x + r},{_num(top)} V{_num(top + height)} A{r},{r} 0 0 1 {x},{_num(top + height - r)} '
        f'V{_num(top + r)} A{r},{r} 0 0 1 {x + r},{_num(top)} Z" fill="{accent}"/>',
        f'<text x="{_INNER_LEFT}" y="{_num(top + 18)}" font-size="12.5" font-weight="600" fill="{_INK}">'
        f'{_esc(_clip(block.label, room, 12.5, bold=True))}'
        + (f'<tspan dx="7" font-size="10" font-weight="400" fill="{_MUTED}">{params}</tspan>' if params else "")
        + "</text>",
        f'<text x="{_INNER_RIGHT}" y="{_num(top + 18)}" font-size="12" text-anchor="end" fill="{_INK}">'
        f'{_esc(shape)}</text>',
    ]
    for i, line in enumerate(ops):
        runs = "".join(
            f'<tspan dx="{0 if j == 0 else 8}" fill="{_style(kind)[1]}">●</tspan>'
            f'<tspan dx="3">{_esc(text)}</tspan>' for j, (kind, text) in enumerate(line))
        parts.append(f'<text x="{_INNER_LEFT}" y="{_num(top + 18 + _OP_STEP * (i + 1))}" '
                     f'font-size="{_OP_SIZE}" fill="#334155">{runs}</text>')
    parts.append("</g>")
    return parts, height


def _legend(kinds: list[str], top: float) -> tuple[list[str], float]:
    """Coloured bullets naming the kinds present, wrapped to the card width; returns elements and height."""
    lines: list[list[str]] = [[]]
    used = 0.0
    for kind in kinds:
        label, accent, _ = _STYLE[kind]
        need = _text_width(label, 10.5) + 22
        if lines[-1] and used + need > _WIDTH - 2 * _MARGIN:
            lines.append([])
            used = 0.0
        dx = 0 if not lines[-1] else 10
        lines[-1].append(f'<tspan dx="{dx}" fill="{accent}">●</tspan><tspan dx="3">{label}</tspan>')
        used += need
    parts = [f'<text x="{_MARGIN}" y="{_num(top + 10 + 15 * i)}" font-size="10.5" fill="{_MUTED}">'
             f'{"".join(line)}</text>' for i, line in enumerate(lines)]
    return parts, 15 * len(lines)


def architecture_svg(layers: list[LayerSpec], title: str, total_params: int | None = None) -> str:
    """A standalone SVG document drawing `layers` as a vertical chain of boxes, one per block."""
    blocks = group_blocks(layers)
    total = sum(layer.params for layer in layers) if total_params is None else total_params
    present = {kind if kind in _STYLE else "other" for kind in (layer.kind for layer in layers)}
    kinds = [kind for kind in _STYLE if kind in present and kind != "input"]
    title_lines = _wrap_words(title, _WIDTH - 2 * _MARGIN, 15, bold=True)
    body = [f'<text x="{_MARGIN}" y="{30 + 19 * i}" font-size="15" font-weight="700" fill="{_INK}">{_esc(line)}</text>'
            for i, line in enumerate(title_lines)]
    legend_top = 42 + 19 * (len(title_lines) - 1)
    legend, legend_height = _legend(kinds, legend_top)
    body += legend
    y = legend_top + legend_height + 12
    center = _WIDTH / 2
    first = True
    for members, names in collapse_repeats(blocks):
        top = y
        for block in members:
            if not first:
                # connector: a short line ending in an arrowhead that touches the next box
                body.append(f'<path d="M{_num(center)},{_num(y - _GAP + 1)} V{_num(y - 5)}" stroke="{_LINE}" '
                            f'stroke-width="1.5"/>')
                body.append(f'<path d="M{_num(center - 4)},{_num(y - 6)} H{_num(center + 4)} L{_num(center)},'
                            f'{_num(y)} Z" fill="{_LINE}"/>')
            first = False
            box, height = _box(block, y)
            body += box
            y += height + _GAP
        if len(names) > 1:
            # one drawing stands for several alike sub-blocks: a dashed frame says how many
            label = f"×{len(names)}: {names[0]} to {names[-1]}"
            body.append(f'<g class="rg-repeat"><title>{_esc(", ".join(names))} compute alike; one is drawn</title>'
                        f'<rect x="{_MARGIN - 6}" y="{_num(top - 6)}" width="{_WIDTH - 2 * _MARGIN + 12}" '
                        f'height="{_num(y - _GAP - top + 12)}" rx="8" fill="none" stroke="{_MUTED}" '
                        f'stroke-dasharray="4 3"/>'
                        f'<text x="{_WIDTH - _MARGIN}" y="{_num(y - _GAP + 16)}" font-size="10.5" '
                        f'text-anchor="end" fill="{_MUTED}">{_esc(label)}</text></g>')
            y += 10
    body.append(f'<path d="M{_MARGIN},{_num(y + 2)} H{_WIDTH - _MARGIN}" stroke="#e2e8f0"/>')
    body.append(f'<text x="{_num(center)}" y="{_num(y + 22)}" font-size="12.5" font-weight="600" '
                f'text-anchor="middle" fill="{_INK}">{compact_count(total)} parameters</text>')
    height = y + 38
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_num(height)}" '
        f'viewBox="0 0 {_WIDTH} {_num(height)}" role="img" font-family="{_FONT}">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="0.5" y="0.5" width="{_WIDTH - 1}" height="{_num(height - 1)}" rx="12" fill="#ffffff" '
        f'stroke="#d6dde6"/>',
        *body,
        "</svg>",
        "",
    ])
