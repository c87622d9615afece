"""What later stages need to know about a network's layers, for any `nn.Module`.

- `describe_layers`: every executed leaf module with its kind and output shape (the diagram's input).
- `unit_layers`: the layers whose "units" (conv channels, FC neurons) the post visualizes, by the
  names the write-up uses (`conv1` ... `fc7`) for our architectures and by module path for others.
- receptive fields of every unit layer, from the architecture.

The hooks themselves (`capture`, `forward_to`, `eval_mode`) live in `optvis.hooks`, which needs
nothing of reportgen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reportgen.errors import LayerError
from reportgen.optvis.hooks import eval_mode, first_tensor, forward_to


@dataclass(frozen=True)
class LayerSpec:
    """One executed leaf module: what it is and what it produced."""

    name: str
    kind: str
    type: str
    detail: str
    output_shape: tuple[int, ...]
    params: int


_KINDS: tuple[tuple[str, tuple[type[nn.Module], ...]], ...] = (
    ("conv", (nn.Conv1d, nn.Conv2d, nn.Conv3d)),
    ("bn", (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)),
    ("relu", (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU)),
    ("dropout", (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)),
    ("pool", (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
              nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
              nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)),
    ("flatten", (nn.Flatten,)),
    ("fc", (nn.Linear,)),
)


def _kind(module: nn.Module) -> str:
    return next((kind for kind, classes in _KINDS if isinstance(module, classes)), "other")


def _size(value: Any, dims: int) -> str:
    """'3x3' from 3 or (3, 3); torch stores kernel sizes either way."""
    values = value if isinstance(value, (tuple, list)) else (value,) * dims
    return "x".join(str(v) for v in values)


def _stride(value: Any) -> str:
    values = value if isinstance(value, (tuple, list)) else (value,)
    return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)


def _detail(module: nn.Module, kind: str, output_shape: tuple[int, ...]) -> str:
    dims = max(len(output_shape) - 1, 1)
    if kind == "conv":
        return f"{_size(module.kernel_size, dims)} /{_stride(module.stride)}, {module.out_channels}"
    if kind == "pool" and hasattr(module, "output_size"):
        return f"out {_size(module.output_size, dims)}"
    if kind == "pool":
        return f"{_size(module.kernel_size, dims)} /{_stride(module.stride)}"
    if kind == "dropout":
        return f"p={module.p:g}"
    if kind == "fc":
        return str(module.out_features)
    return ""


def describe_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[LayerSpec]:
    """Leaf modules in execution order with output shapes, found by one forward pass on zeros."""
    leaves = [(name or type(m).__name__, m) for name, m in model.named_modules() if next(m.children(), None) is None]
    layers = [LayerSpec("input", "input", "Input", "", tuple(input_shape), 0)]
    counted: set[nn.Module] = set()

    def recorder(name: str) -> Any:
        def record(module: nn.Module, _inputs: Any, output: Any) -> None:
            tensor = first_tensor(output)
            shape = tuple(tensor.shape[1:]) if tensor is not None else ()
            kind = _kind(module)
            # a module called twice (resnet's shared ReLU) gets an entry per call but its weights once
            params = 0 if module in counted else sum(
                p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            counted.add(module)
            layers.append(LayerSpec(name, kind, type(module).__name__, _detail(module, kind, shape), shape, params))
        return record

    _hooked_eval_forward(model, _zeros(model, input_shape), [(m, recorder(name)) for name, m in leaves])
    return layers


def _hooked_eval_forward(model: nn.Module, x: torch.Tensor, hooks: list[tuple[nn.Module, Any]]) -> None:
    """One no-grad forward pass in eval mode with `hooks` attached; hooks are removed and every
    module's own train/eval mode restored afterwards (callers may keep parts frozen while training)."""
    handles = [m.register_forward_hook(hook) for m, hook in hooks]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()




@dataclass(frozen=True)
class UnitLayer:
    """A layer whose output channels (conv) or features (fc) are the units the post shows."""

    name: str                   # what the post calls it: "conv3", or a module path for other models
    path: str                   # the module whose output holds the units, e.g. "conv3.relu"
    kind: str                   # "conv" or "fc"
    shape: tuple[int, ...]      # output shape without the batch axis: (C, H, W) or (F,)

    @property
    def units(self) -> int:
        return self.shape[0]


def _block_path(name: str, block: nn.Module) -> tuple[str, str] | None:
    """(path, kind) of one of our named blocks: its rectified output, or the raw output of the last layer."""
    children = dict(block.named_children())
    if "conv" in children:
        kind = "conv"
    elif "linear" in children:
        kind = "fc"
    else:
        return None
    # the unit is what the next layer sees before pooling: after ReLU, or the class score of the output layer
    part = "relu" if "relu" in children else ("conv" if kind == "conv" else "linear")
    return f"{name}.{part}", kind


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.ELU, nn.Tanh, nn.Sigmoid)
OPEN_CONTAINER = 4  # a Sequential of at least this many weighted blocks (torchvision's `features`) is opened


def _candidate_paths(model: nn.Module) -> list[tuple[str, str, str]]:
    """(name, path, kind) of every unit layer, before shapes are known ('' kind: from the shape)."""
    blocks = [(name, _block_path(name, child)) for name, child in model.named_children()
              if isinstance(child, nn.Sequential)]
    ours = [(name, found[0], found[1]) for name, found in blocks if found]
    if ours:
        return ours
    return [(name, path, "") for name, path in top_blocks(model)]


def _weighted(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) and not isinstance(module, _NORMS)


def top_blocks(model: nn.Module) -> list[tuple[str, str]]:
    """(name, module path) of the blocks of any other network, in definition order: the children of
    its root that hold weights (normalization layers aside), with a Sequential of many such blocks
    (torchvision's `features`) opened one level. Where a weighted child of an opened container is
    followed by an activation module, the unit is the activation's output, which the next block sees
    (an in-place ReLU would otherwise rewrite what was recorded)."""
    root, prefix = model, ""
    children = dict(model.named_children())
    if isinstance(model, nn.Sequential) and list(children) == ["to_rgb", "net"]:  # gray input for an RGB stem
        root, prefix = children["net"], "net."
    found = []
    for name, child in root.named_children():
        if not _weighted(child):
            continue
        inner = list(child.named_children()) if isinstance(child, nn.Sequential) else []
        if sum(_weighted(c) for _, c in inner) < OPEN_CONTAINER:
            found.append((prefix + name, prefix + name))
            continue
        for i, (sub, block) in enumerate(inner):
            if _weighted(block):
                after = inner[i + 1] if i + 1 < len(inner) else None
                out = after[0] if after is not None and isinstance(after[1], _ACTIVATIONS) else sub
                found.append((f"{prefix}{name}.{sub}", f"{prefix}{name}.{out}"))
    return found


def unit_layers(model: nn.Module, input_shape: tuple[int, int, int], paths: Sequence[str] = ()) -> list[UnitLayer]:
    """The layers whose units the post visualizes, in execution order, with output shapes: the
    modules at `paths` when given (a model's `layers` setting), else our blocks by the write-up's
    names, another network's top-level blocks (`top_blocks`) by module path. A block whose output is
    a transformer's tokens (T, C) is an error (what its units would be is not settled); other automatically
    chosen blocks whose output is neither a feature map (C, H, W) nor a vector (F,) are left out, and a
    chosen one is an error."""
    if paths:
        modules = dict(model.named_modules())
        for path in paths:
            if path not in modules or not path:
                top = [name for name, _ in model.named_children()]
                raise LayerError(f"{path!r} is not a module of the network; its top-level modules: {', '.join(top)}")
        candidates = [(path, path, "") for path in dict.fromkeys(paths)]
    else:
        candidates = _candidate_paths(model)
    outputs = forward_to(model, _zeros(model, input_shape), [path for _, path, _ in candidates], grad=False)
    order = list(outputs)  # forward_to returns outputs in the order they were produced
    missing = [path for _, path, _ in candidates if path not in outputs]
    if missing:
        raise LayerError(f"{missing[0]!r} does not run when the network classifies an image")
    ranked = sorted(candidates, key=lambda c: order.index(c[1]))
    layers = []
    for name, path, kind in ranked:
        shape = tuple(outputs[path].shape[1:])
        kind = kind or {3: "conv", 1: "fc"}.get(len(shape), "")
        if kind:
            layers.append(UnitLayer(name, path, kind, shape))
        elif len(shape) == 2:  # (tokens, channels): a transformer's blocks
            raise LayerError(f"{path!r} gives a sequence of {shape[0]} tokens of {shape[1]} channels per image, "
                             "as a transformer's blocks do; reportgen's sections show units of feature maps "
                             "(channels, height, width) and feature vectors, so it does not report on transformer "
                             "blocks: name convolutional or fully connected modules in models[].layers")
        elif paths:
            raise LayerError(f"{path!r} gives outputs of shape {shape} per image; a unit layer gives feature maps "
                             "(channels, height, width) or a vector of features")
    if not layers:
        raise LayerError(f"{type(model).__name__}: no block gives a feature map or a vector of units "
                         f"(blocks: {', '.join(p for _, p, _ in ranked) or 'none'})")
    return layers


def default_feature_layer(layers: list[UnitLayer]) -> UnitLayer:
    """The layer whose maps the feature-map figure shows when none is set: the second convolutional
    one (the write-up's conv2), else the first."""
    conv = [layer for layer in layers if layer.kind == "conv"]
    if not conv:
        raise LayerError("the network has no convolutional layer to show feature maps of")
    return conv[1] if len(conv) > 1 else conv[0]


def default_descriptor_layer(layers: list[UnitLayer]) -> UnitLayer:
    """The layer whose outputs describe images for the map when none is set: the first hidden fully
    connected layer (the write-up mapped Model II's fc5), else the last layer before the output."""
    hidden = layers[:-1] or layers
    return next((layer for layer in hidden if layer.kind == "fc"), hidden[-1])


def find_layer(layers: list[UnitLayer], name: str) -> UnitLayer:
    """The unit layer called `name` (or with that module path); LayerError naming the known ones."""
    for layer in layers:
        if name in (layer.name, layer.path):
            return layer
    raise LayerError(f"unknown layer {name!r}; known: {', '.join(layer.name for layer in layers)}")


def _zeros(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    reference = next(model.parameters(), None)
    floating = reference is not None and reference.is_floating_point()
    return torch.zeros(1, *input_shape, device=reference.device if reference is not None else None,
                       dtype=reference.dtype if floating else None)


@dataclass(frozen=True)
class ReceptiveField:
    """Where the units of one layer look in the input image, per axis (rows, columns).

    `size`: input pixels one unit sees; `jump`: input pixels between neighbouring units (the
    cumulative stride); `start`: input coordinate of the centre of unit (0, 0), with pixel i centred
    at i, so it can be fractional or negative (padding). Unit i is centred at start + i * jump.
    """

    size: tuple[int, int]
    jump: tuple[float, float]
    start: tuple[float, float]


def _pair(value: Any) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return (int(values[0]), int(values[-1]))


def _window(module: nn.Module, in_hw: tuple[int, int], out_hw: tuple[int, int]
            ) -> tuple[tuple[int, int], tuple[float, float], tuple[float, float]] | None:
    """(effective kernel, stride, padding) per axis of a module that slides a window, None for pointwise ones."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride, padding = _pair(module.kernel_size), _pair(module.stride), module.padding
        dilation = _pair(getattr(module, "dilation", 1))
        if isinstance(padding, str):  # 'same' pads (k - 1) / 2 per side; 'valid' pads nothing
            padding = tuple((d * (k - 1)) / 2 for k, d in zip(kernel, dilation, strict=True)) if padding == "same" \
                else (0, 0)
        padding = tuple(float(p) for p in (padding if isinstance(padding, (tuple, list)) else (padding, padding)))
        effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
        # ceil_mode only appends units at the end; it changes neither size, jump nor start
        return effective, stride, padding  # type: ignore[return-value]
    if in_hw == out_hw:
        return None  # ReLU, batch norm, dropout, identity-sized adaptive pooling ...
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        # window i spans [floor(i * n / m), ceil((i + 1) * n / m)): report the widest window and the mean step
        kernel = tuple(max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m)) for n, m in zip(in_hw, out_hw,
                                                                                                  strict=True))
        stride = tuple(n / m for n, m in zip(in_hw, out_hw, strict=True))
        return kernel, stride, (0.0, 0.0)  # type: ignore[return-value]
    # any other module that changes the spatial size: assume each output sees its whole input (an upper bound)
    return in_hw, (1.0, 1.0), (0.0, 0.0)


def _spatial(tensor: torch.Tensor | None) -> tuple[int, int] | None:
    return (int(tensor.shape[-2]), int(tensor.shape[-1])) if tensor is not None and tensor.dim() == 4 else None


def receptive_fields(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, ReceptiveField]:
    """Receptive field of every executed module's output, keyed by module path (and "input").

    Computed from the architecture by one forward pass on zeros: each module's field follows from
    the field of the tensor it received (traced by identity, so branches are followed; a tensor made
    by a functional op, such as a residual sum or torch.flatten, inherits the latest field) and its
    kernel, stride, padding and dilation. A module that turns a (C, H, W) map into a vector (Flatten,
    or a Linear layer fed one) sees the whole map, as does every layer after it.
    """
    fields: dict[str, ReceptiveField] = {"input": ReceptiveField((1, 1), (1.0, 1.0), (0.0, 0.0))}
    # traced tensor id -> (its field, its (H, W) or None for vectors); tensors are kept alive so ids stay unique
    by_tensor: dict[int, tuple[ReceptiveField, tuple[int, int] | None]] = {}
    alive: list[torch.Tensor] = []
    latest: list[tuple[ReceptiveField, tuple[int, int] | None]] = [(fields["input"], tuple(input_shape[-2:]))]
    leaves = [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None and name]

    def remember(tensor: torch.Tensor, field: ReceptiveField) -> None:
        by_tensor[id(tensor)] = latest[0] = (field, _spatial(tensor))
        alive.append(tensor)

    def tracer(name: str) -> Any:
        def trace(module: nn.Module, inputs: Any, output: Any) -> None:
            source, result = first_tensor(inputs), first_tensor(output)
            field, source_hw = by_tensor.get(id(source), latest[0]) if source is not None else latest[0]
            out_hw = _spatial(result)
            if source_hw is not None and out_hw is not None:
                window = _window(module, source_hw, out_hw)
            elif source_hw is not None:  # a map became a vector here or in a functional op before: one window
                window = (source_hw, (1.0, 1.0), (0.0, 0.0))
            else:
                window = None
            if window is not None:
                kernel, stride, padding = window
                field = ReceptiveField(
                    size=tuple(int(s + (k - 1) * j) for s, k, j in zip(field.size, kernel, field.jump, strict=True)),
                    jump=tuple(float(j * s) for j, s in zip(field.jump, stride, strict=True)),
                    start=tuple(float(st + ((k - 1) / 2 - p) * j)
                                for st, k, p, j in zip(field.start, kernel, padding, field.jump, strict=True)),
                )  # type: ignore[arg-type]
            fields.setdefault(name, field)
            if result is not None:
                remember(result, field)
        return trace

    def block(name: str) -> Any:
        def trace(_module: nn.Module, _inputs: Any, output: Any) -> None:
            # a block (resnet's layer1, a features.3 stage) sees what its output tensor saw; an output
            # made by a functional op inside it (a residual sum) takes the latest field
            result = first_tensor(output)
            fields.setdefault(name, by_tensor.get(id(result), latest[0])[0] if result is not None else latest[0][0])
        return trace

    blocks = [(name, m) for name, m in model.named_modules() if next(m.children(), None) is not None and name]
    x = _zeros(model, input_shape)
    remember(x, fields["input"])
    _hooked_eval_forward(model, x, [(m, tracer(name)) for name, m in leaves] + [(m, block(name)) for name, m in blocks])
    return fields


def receptive_box(field: ReceptiveField, position: tuple[int, int], image_hw: tuple[int, int]
                  ) -> tuple[int, int, int, int]:
    """Input pixels (top, left, bottom, right; bottom/right exclusive) seen by the unit at output
    `position` (row, column), clipped to an image of `image_hw` pixels."""
    box = []
    for axis in range(2):
        first = field.start[axis] + position[axis] * field.jump[axis] - (field.size[axis] - 1) / 2
        low = int(round(first))
        box.append((max(low, 0), min(low + field.size[axis], image_hw[axis])))
    (top, bottom), (left, right) = box
    return top, left, bottom, right
