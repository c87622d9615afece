"""Architecture registry: the write-up's Model I and Model II, any torchvision classifier, and a
network class of the user's own ('file:<file.py>:<Class>', 'python:<module>:<Class>'), with the
weights files people save for them read safely (`read_state_dict`, `load_weights`).

Layers are named the way the write-up and our figures cite them: blocks `conv1`, `conv2`, ... then
`fc5`, `fc6`, `fc7`, each a small Sequential (`conv`/`linear`, `bn`, `relu`, `drop`, `pool`) so later
stages can hook a block's output or one of its parts by a stable, human name.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.config import TORCHSCRIPT, TORCHVISION_PREFIX, USER_CLASS
from reportgen.errors import ModelError, first_line
from reportgen.nets import torchscript

ArchFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, ArchFactory] = {}



def register_arch(name: str) -> Callable[[ArchFactory], ArchFactory]:
    """Decorator adding an architecture factory to the registry under `name`."""
    def add(factory: ArchFactory) -> ArchFactory:
        _REGISTRY[name] = factory
        return factory
    return add


def list_archs() -> list[str]:
    """Registered architecture names (torchvision ones are open-ended: 'torchvision:<name>')."""
    return sorted(_REGISTRY) + [TORCHVISION_PREFIX + "<name>"]


def create_model(arch: str, *, in_channels: int, image_size: int, num_classes: int,
                 width: float = 1.0, dropout: float = 0.5, weights: Path | None = None,
                 args: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate an architecture by name (a 'file:' class's path absolute); unknown names are
    answered with the known ones. `weights`: a state dict to start training from, whose tensors are
    taken where their names and shapes fit (a pretrained head of another size is left fresh)."""
    if arch.startswith(TORCHVISION_PREFIX):
        model = _torchvision_model(arch[len(TORCHVISION_PREFIX):], in_channels, num_classes)
    elif USER_CLASS.fullmatch(arch):
        model = _user_model(arch, args or {})
    elif arch.startswith(TORCHSCRIPT + ":"):  # 'torchscript:<absolute path of the archive>'
        model = torchscript.load(Path(arch[len(TORCHSCRIPT) + 1:]), (in_channels, image_size, image_size))
    elif arch in _REGISTRY:
        model = _REGISTRY[arch](in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                                width=width, dropout=dropout)
    else:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(list_archs())}")
    if arch not in _REGISTRY:  # ours are built to fit the data
        _check_shapes(model, arch, in_channels, image_size, num_classes)
    if weights is not None:
        _start_from(model, read_state_dict(weights), weights)
    return model


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file as people save them: `torch.save(model.state_dict(), path)`,
    from a DataParallel/DistributedDataParallel model (every key prefixed 'module.'), or a training
    checkpoint holding them under 'state_dict' or 'model'; or a safetensors file (the Hugging Face
    format timm and the Hub publish weights in). Read with weights_only=True, or by safetensors,
    which stores tensors and no code: nothing but tensors and plain containers is ever unpickled."""
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    if torchscript.is_archive(path):
        raise ModelError(f"{path}: a TorchScript archive (torch.jit.save), not a state dict: set arch = "
                         f"'{TORCHSCRIPT}' and train = false to report on it as it is")
    try:
        state = _read_safetensors(path) if _is_safetensors(path) else \
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many unrelated types (pickle, zip, runtime) for a non-weights file
        raise ModelError(f"{path}: cannot read weights ({e.__class__.__name__}); expected a state dict saved "
                         "with torch.save(model.state_dict(), path) or a .safetensors file") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelError(f"{path}: expected a state dict (names of tensors to tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with its JSON header's length (8 bytes, little-endian), then '{'."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path, device="cpu")


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """Load `state` into `model` exactly: every tensor the network has, none it lacks, each of its
    shape. What does not fit is one line naming the first mismatches (an output layer of another
    size is named with both sizes)."""
    target = _unwrapped(model)
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape, first {k}: {tuple(state[k].shape)} in the file, "
                         f"{tuple(own[k].shape)} in the network" + _head_hint(k, state[k], own[k]))
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} the network does not have "
                         f"({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})")
        raise ModelError(f"{path}: these weights do not fit {arch!r}: {'; '.join(parts)}")
    target.load_state_dict(state)


def _head_hint(key: str, theirs: torch.Tensor, ours: torch.Tensor) -> str:
    """For the output layer: the two output counts in words."""
    if theirs.dim() >= 1 and ours.dim() >= 1 and theirs.shape[1:] == ours.shape[1:]:
        return (f" (the weights have {theirs.shape[0]} outputs and the network {ours.shape[0]}, one per class "
                "name: name every output of the weights, in order, with models[].classes or classes_file)")
    return ""


def _start_from(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Starting weights for training: the tensors whose names and shapes fit."""
    target = _unwrapped(model)
    own = target.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ModelError(f"{path}: no tensor of these weights fits the network (names or shapes differ)")
    target.load_state_dict(fitting, strict=False)


def _unwrapped(model: nn.Module) -> nn.Module:
    """The network itself inside the gray-to-RGB wrapper torchvision models get for 1-channel input."""
    return model.net if isinstance(model, nn.Sequential) and isinstance(model[0], RepeatChannels) else model


def _user_model(arch: str, args: dict[str, Any]) -> nn.Module:
    """An instance of a user's class: this runs the user's own code (see SECURITY.md)."""
    match = USER_CLASS.fullmatch(arch)
    kind, where, name = match["kind"], match["where"], match["cls"]
    try:
        if kind == "file":
            path = Path(where)
            if not path.is_file():
                raise ModelError(f"{path}: file not found (from arch {arch!r})")
            # one module per version of the file, so an edited class is imported afresh
            source = path.read_bytes()
            module_name = "reportgen_user_" + hashlib.sha256(str(path).encode() + b"\0" + source).hexdigest()[:16]
            module = sys.modules.get(module_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]
                    raise
        else:
            module = importlib.import_module(where)
    except ModelError:
        raise
    except Exception as e:  # the user's code can raise anything while it is imported
        raise ModelError(f"{arch}: importing {where} failed: {e.__class__.__name__}: {e}") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ModelError(f"{arch}: {where} has no nn.Module class {name!r}")
    try:
        return cls(**args)
    except Exception as e:
        raise ModelError(f"{arch}: {name}(**args) failed: {e.__class__.__name__}: {e}") from None


def _check_shapes(model: nn.Module, arch: str, in_channels: int, image_size: int, num_classes: int) -> None:
    """Fail early and plainly when the input does not fit a network (its poolings shrink it to nothing,
    its stem expects other channels) or its outputs are not one per class of the data."""
    training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    except Exception as e:  # any layer may refuse the input, with any exception type
        raise ModelError(f"{arch} cannot take {in_channels}x{image_size}x{image_size} inputs ({first_line(e)}); check "
                         "data.image_size and data.channels") from None
    finally:
        model.train(training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"{arch}: gives outputs of shape {shape} for one image; a classifier reportgen "
                         "reports on gives one row of logits per image")
    if out.shape[1] != num_classes:
        raise ModelError(f"{arch}: has {out.shape[1]} outputs but there are {num_classes} class names (the data's "
                         "classes, or the model's classes / classes_file): name every output, in order, with "
                         "models[].classes or models[].classes_file")


def _scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def _conv_block(cin: int, cout: int, *, batch_norm: bool, dropout: float, pool: bool) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    # batch norm's shift plays the role of the bias, so the write-up learns weights only
    parts["conv"] = nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)
    if batch_norm:
        parts["bn"] = nn.BatchNorm2d(cout)
    parts["relu"] = nn.ReLU(inplace=False)
    if dropout > 0:
        parts["drop"] = nn.Dropout(dropout)
    if pool:
        # ceil_mode keeps odd sides (7 -> 4) so small inputs like 28x28 survive four poolings
        parts["pool"] = nn.MaxPool2d(2, ceil_mode=True)
    return nn.Sequential(parts)


def _fc_block(fin: int, fout: int, *, batch_norm: bool, dropout: float, last: bool) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts["linear"] = nn.Linear(fin, fout, bias=last or not batch_norm)
    if not last:
        if batch_norm:
            parts["bn"] = nn.BatchNorm1d(fout)
        parts["relu"] = nn.ReLU(inplace=False)
        if dropout > 0:
            parts["drop"] = nn.Dropout(dropout)
    return nn.Sequential(parts)


def _pooled_side(side: int, pools: int) -> int:
    for _ in range(pools):
        side = math.ceil(side / 2)
    return side


def _vgg_like(convs: list[tuple[str, int, bool]], fcs: list[tuple[str, int]], *, in_channels: int,
              image_size: int, num_classes: int, width: float, dropout: float,
              batch_norm: bool, conv_dropout: Callable[[int], float]) -> nn.Sequential:
    """3x3 conv blocks, then fully connected blocks; `convs` rows are (name, channels, pool after)."""
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    cin, pools = in_channels, 0
    for i, (name, channels, pool) in enumerate(convs):
        cout = _scaled(channels, width)
        blocks[name] = _conv_block(cin, cout, batch_norm=batch_norm, dropout=conv_dropout(i), pool=pool)
        cin, pools = cout, pools + pool
    blocks["flatten"] = nn.Flatten()
    fin = cin * _pooled_side(image_size, pools) ** 2
    for name, features in fcs:
        fout = _scaled(features, width)
        blocks[name] = _fc_block(fin, fout, batch_norm=batch_norm, dropout=dropout, last=False)
        fin = fout
    blocks["fc7"] = _fc_block(fin, num_classes, batch_norm=batch_norm, dropout=0, last=True)
    net = nn.Sequential(blocks)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            # He initialization keeps activations from shrinking through plain ReLU stacks, so
            # Model I (no batch norm) starts learning in the first epoch instead of the third
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


@register_arch("model1")
def model1(*, in_channels: int, image_size: int, num_classes: int, width: float, dropout: float) -> nn.Module:
    """Model I: 4 conv + 3 FC layers, ReLU then dropout after each computational layer.

    At width 1.0 and 96x96x3 inputs it has about 11 M parameters, most in fc5 as in the write-up's
    O(10.6M); conv dropout is lighter than FC dropout because conv features are spatially correlated.
    """
    convs = [("conv1", 64, True), ("conv2", 128, True), ("conv3", 256, True), ("conv4", 512, True)]
    return _vgg_like(convs, [("fc5", 512), ("fc6", 512)], in_channels=in_channels, image_size=image_size,
                     num_classes=num_classes, width=width, dropout=dropout, batch_norm=False,
                     conv_dropout=lambda i: dropout / 2)


@register_arch("model2")
def model2(*, in_channels: int, image_size: int, num_classes: int, width: float, dropout: float) -> nn.Module:
    """Model II: 6 conv + 3 FC layers with batch norm and ReLU after each, no biases, and no
    dropout after the first two ReLUs (batch norm regularizes there). About 12 M parameters at
    width 1.0 and 96x96x3, the write-up's O(11.6M)."""
    convs = [("conv1", 64, True), ("conv2", 128, True), ("conv3a", 256, False),
             ("conv3b", 256, True), ("conv4a", 512, False), ("conv4b", 512, True)]
    return _vgg_like(convs, [("fc5", 384), ("fc6", 384)], in_channels=in_channels, image_size=image_size,
                     num_classes=num_classes, width=width, dropout=dropout, batch_norm=True,
                     conv_dropout=lambda i: 0.0 if i < 2 else dropout / 2)


def _torchvision_model(name: str, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ModelError(f"unknown torchvision architecture {name!r}; known: {', '.join(sorted(known))}")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if in_channels == 3:
        return model
    # torchvision stems expect RGB; repeat gray input rather than editing each stem
    return nn.Sequential(OrderedDict(to_rgb=RepeatChannels(3), net=model))


class RepeatChannels(nn.Module):
    """Repeat a 1-channel input to `channels` channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, self.channels, -1, -1)


def regularizers(model: nn.Module) -> str:
    """'batch norm', 'dropout', both or 'none', as the hyperparameter table states it."""
    kinds = []
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        kinds.append("batch norm")
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        kinds.append("dropout")
    return " + ".join(kinds) or "none"


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
