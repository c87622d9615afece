"""Architecture registry: the write-up's Model I and Model II, plus any torchvision classifier.

Layers are named the way the write-up and our figures cite them: blocks `conv1`, `conv2`, ... then
`fc5`, `fc6`, `fc7`, each a small Sequential (`conv`/`linear`, `bn`, `relu`, `drop`, `pool`) so later
stages can hook a block's output or one of its parts by a stable, human name.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from reportgen.config import TORCHVISION_PREFIX
from reportgen.errors import ModelError

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
                 width: float = 1.0, dropout: float = 0.5, weights: Path | None = None) -> nn.Module:
    """Instantiate an architecture by name; unknown names are answered with the known ones."""
    if arch.startswith(TORCHVISION_PREFIX):
        model = _torchvision_model(arch[len(TORCHVISION_PREFIX):], in_channels, num_classes, weights)
        _check_input_size(model, arch, in_channels, image_size)
        return model
    if arch not in _REGISTRY:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(list_archs())}")
    if weights is not None:
        raise ModelError(f"'weights' applies to torchvision architectures only, not {arch!r}; "
                         "use 'checkpoint' to load a trained reportgen model")
    return _REGISTRY[arch](in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                           width=width, dropout=dropout)


def _check_input_size(model: nn.Module, arch: str, in_channels: int, image_size: int) -> None:
    """Fail early and plainly when an architecture's poolings shrink the input to nothing."""
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    except RuntimeError as e:
        raise ModelError(f"{arch} cannot take {in_channels}x{image_size}x{image_size} inputs "
                         f"({str(e).splitlines()[0]}); raise data.image_size") from None
    finally:
        model.train(training)


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


def _torchvision_model(name: str, in_channels: int, num_classes: int, weights: Path | None) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ModelError(f"unknown torchvision architecture {name!r}; known: {', '.join(sorted(known))}")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many unrelated types (pickle, zip, runtime) for a non-weights file
            raise ModelError(f"{weights}: cannot read weights ({e.__class__.__name__}); expected a "
                             "torch state_dict file") from None
        if not isinstance(state, dict):
            raise ModelError(f"{weights}: expected a torch state_dict (a dict of tensors)")
        own = model.state_dict()
        # ImageNet weights carry a 1000-way head; keep our freshly sized head when shapes differ
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fitting:
            raise ModelError(f"{weights}: no tensor matches torchvision {name!r}")
        model.load_state_dict(fitting, strict=False)
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
