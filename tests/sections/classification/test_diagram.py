"""Tests for layer description and the Netscope-style SVG diagrams."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import OrderedDict

import pytest
import torchvision
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import LayerSpec, describe_layers
from reportgen.report.prose import compact_count
from reportgen.sections.classification.diagram import architecture_svg, collapse_repeats, group_blocks

SVG = "{http://www.w3.org/2000/svg}"


def _conv(cin: int, cout: int, *, bn: bool, drop: float, pool: bool) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(conv=nn.Conv2d(cin, cout, 3, padding=1, bias=not bn))
    if bn:
        parts["bn"] = nn.BatchNorm2d(cout)
    parts["relu"] = nn.ReLU()
    if drop:
        parts["drop"] = nn.Dropout(drop)
    if pool:
        parts["pool"] = nn.MaxPool2d(2, ceil_mode=True)
    return nn.Sequential(parts)


def _fc(fin: int, fout: int, *, bn: bool, last: bool = False) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(linear=nn.Linear(fin, fout, bias=last or not bn))
    if not last:
        if bn:
            parts["bn"] = nn.BatchNorm1d(fout)
        parts["relu"] = nn.ReLU()
        parts["drop"] = nn.Dropout(0.5)
    return nn.Sequential(parts)


def model_one() -> nn.Sequential:
    """Like the project's Model I on 28x28 gray images."""
    return nn.Sequential(OrderedDict(
        conv1=_conv(1, 8, bn=False, drop=0.1, pool=True), conv2=_conv(8, 16, bn=False, drop=0.1, pool=True),
        conv3=_conv(16, 32, bn=False, drop=0.1, pool=True), conv4=_conv(32, 64, bn=False, drop=0.1, pool=True),
        flatten=nn.Flatten(), fc5=_fc(64 * 2 * 2, 64, bn=False), fc6=_fc(64, 64, bn=False),
        fc7=_fc(64, 10, bn=False, last=True)))


def model_two() -> nn.Sequential:
    """Like the project's Model II on 32x32 colour images."""
    return nn.Sequential(OrderedDict(
        conv1=_conv(3, 8, bn=True, drop=0, pool=True), conv2=_conv(8, 16, bn=True, drop=0, pool=True),
        conv3a=_conv(16, 32, bn=True, drop=0.25, pool=False), conv3b=_conv(32, 32, bn=True, drop=0.25, pool=True),
        conv4a=_conv(32, 64, bn=True, drop=0.25, pool=False), conv4b=_conv(64, 64, bn=True, drop=0.25, pool=True),
        flatten=nn.Flatten(), fc5=_fc(64 * 2 * 2, 48, bn=True), fc6=_fc(48, 48, bn=True),
        fc7=_fc(48, 10, bn=True, last=True)))


def _total(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_plain_sequential_shapes_kinds_details_and_params() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=1, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    layers = describe_layers(model, (3, 8, 8))
    assert [(s.name, s.kind, s.type, s.detail, s.output_shape) for s in layers] == [
        ("input", "input", "Input", "", (3, 8, 8)),
        ("0", "conv", "Conv2d", "3x3 /1, 4", (4, 8, 8)),
        ("1", "relu", "ReLU", "", (4, 8, 8)),
        ("2", "pool", "MaxPool2d", "2x2 /2", (4, 4, 4)),
        ("3", "dropout", "Dropout", "p=0.25", (4, 4, 4)),
        ("4", "flatten", "Flatten", "", (64,)),
        ("5", "fc", "Linear", "10", (10,)),
    ]
    assert [s.params for s in layers] == [0, 3 * 4 * 9 + 4, 0, 0, 0, 0, 64 * 10 + 10]
    assert sum(s.params for s in layers) == _total(model)


def test_nested_blocks_use_dotted_names_and_group_into_one_box_each() -> None:
    model = model_two()
    layers = describe_layers(model, (3, 32, 32))
    assert layers[1].name == "conv1.conv" and layers[1].params == 3 * 8 * 9  # bias=False
    assert [s.kind for s in layers if s.name.startswith("conv3a.")] == ["conv", "bn", "relu", "dropout"]
    assert sum(s.params for s in layers) == _total(model)
    blocks = group_blocks(layers)
    assert [b.label for b in blocks] == ["input", "conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b",
                                         "flatten", "fc5", "fc6", "fc7"]
    assert blocks[1].output_shape == (8, 16, 16) and blocks[-1].output_shape == (10,)
    assert sum(b.params for b in blocks) == _total(model)


def test_training_mode_of_every_module_is_restored() -> None:
    model = model_two().train()
    model.conv2.bn.eval()  # a frozen part must stay frozen
    describe_layers(model, (3, 32, 32))
    assert model.training and model.conv1.bn.training and not model.conv2.bn.training
    model.eval()
    describe_layers(model, (3, 32, 32))
    assert not any(m.training for m in model.modules())


def test_torchvision_alexnet_at_64px() -> None:
    model = torchvision.models.alexnet(weights=None)
    layers = describe_layers(model, (3, 64, 64))
    assert layers[1].name == "features.0" and layers[1].detail == "11x11 /4, 64"
    assert any(s.type == "AdaptiveAvgPool2d" and s.detail == "out 6x6" and s.output_shape == (256, 6, 6)
               for s in layers)
    assert layers[-1].kind == "fc" and layers[-1].output_shape == (1000,)
    assert sum(s.params for s in layers) == _total(model)


def test_torchvision_resnet18_counts_shared_modules_once() -> None:
    model = torchvision.models.resnet18(weights=None)
    layers = describe_layers(model, (3, 64, 64))
    leaves = [m for m in model.modules() if not list(m.children())]
    assert len(layers) - 1 > len(leaves)  # each block's ReLU runs twice
    assert sum(s.params for s in layers) == _total(model)
    assert layers[-1].name == "fc" and layers[-1].output_shape == (1000,)
    assert group_blocks(layers)[1].label == "conv1"  # stem conv, bn, relu and maxpool in one box


def _blocks(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f"{SVG}g[@class='rg-block']")


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def test_svg_has_a_box_per_block_title_and_parameter_count() -> None:
    model = model_two()
    svg = architecture_svg(describe_layers(model, (3, 32, 32)), "Model II", _total(model))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    boxes = _blocks(svg)
    assert len(boxes) == 11
    texts = [_text(t) for t in root.iter(f"{SVG}text")]
    assert "Model II" in texts
    assert f"{compact_count(_total(model))} parameters" in texts
    conv3b = _text(boxes[4])
    assert "conv3b" in conv3b and "Conv 3×3/1, 32" in conv3b and "MaxPool 2×2/2" in conv3b and "32×4×4" in conv3b


def test_model_one_svg_fuses_dropout_and_pool_into_conv_boxes() -> None:
    model = model_one()
    svg = architecture_svg(describe_layers(model, (1, 28, 28)), "Model I")
    boxes = [_text(b) for b in _blocks(svg)]
    assert len(boxes) == 9
    assert "Drop p=0.1" in boxes[1] and "MaxPool 2×2/2" in boxes[1] and "8×14×14" in boxes[1]
    assert f"{compact_count(_total(model))} parameters" in svg  # defaults to the layers' sum


def test_vgg19_stays_compact() -> None:
    layers = describe_layers(torchvision.models.vgg19(weights=None), (3, 32, 32))
    blocks = group_blocks(layers)
    assert len(layers) > 45 and len(blocks) == 1 + 16 + 3  # input, one box per conv and per linear
    assert len(_blocks(architecture_svg(layers, "vgg19"))) == len(blocks)


def test_user_text_is_escaped() -> None:
    layers = [LayerSpec("input", "input", "Input", "", (3, 8, 8), 0),
              LayerSpec("a<b>&\"c'", "weird", "My<Op>", "x & y", (4,), 7)]
    svg = architecture_svg(layers, '<b>&"')
    assert "<b>" not in svg and "&lt;b&gt;&amp;&quot;" in svg
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == '<b>&"'
    assert any(_text(t) == '<b>&"' for t in root.iter(f"{SVG}text"))
    assert 'a<b>&"c\'' in _text(_blocks(svg)[1])


def test_output_is_deterministic() -> None:
    first = architecture_svg(describe_layers(model_two(), (3, 32, 32)), "Model II", 123)
    second = architecture_svg(describe_layers(model_two(), (3, 32, 32)), "Model II", 123)
    assert first == second


@pytest.mark.parametrize(("n", "text"), [(0, "0"), (999, "999"), (1000, "1.00 k"), (45_600, "45.6 k"),
                                         (999_999, "1.00 M"), (1_234_567, "1.23 M"), (143_667_240, "144 M")])
def test_compact_count(n: int, text: str) -> None:
    assert compact_count(n) == text


def test_input_follows_the_model_dtype() -> None:
    layers = describe_layers(model_one().double(), (1, 28, 28))
    assert layers[-1].output_shape == (10,)


def test_alike_sub_blocks_of_a_deep_network_are_drawn_once_in_a_frame_that_counts_them() -> None:
    model = torchvision.models.get_model("resnet50", weights=None, num_classes=5).eval()
    layers = describe_layers(model, (3, 64, 64))
    drawn = collapse_repeats(group_blocks(layers))
    runs = [names for _, names in drawn if len(names) > 1]
    # the first bottleneck of each stage downsamples, so it is drawn; the rest of the stage are alike,
    # but for layer4.2, whose last box also holds the global pooling after it
    assert runs == [["layer1.1", "layer1.2"], ["layer2.1", "layer2.2", "layer2.3"],
                    [f"layer3.{i}" for i in range(1, 6)]]
    assert sum(len(boxes) for boxes, _ in drawn) < 0.65 * len(group_blocks(layers))
    svg = architecture_svg(layers, "ResNet-50")
    assert svg.count('class="rg-repeat"') == 3 and "×5: layer3.1 to layer3.5" in svg
    ET.fromstring(svg)  # still well-formed
    # our own models have no repeated sub-blocks: their diagrams are as before
    assert all(len(names) == 1 for _, names in collapse_repeats(group_blocks(
        describe_layers(create_model("model2", in_channels=1, image_size=28, num_classes=10, width=0.25),
                        (1, 28, 28)))))
