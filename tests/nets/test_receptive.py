"""Receptive fields from the architecture: hand-computed stacks, branches, ceil-mode pools and vgg16's 212 px."""

import torch
import torchvision
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import ReceptiveField, receptive_box, receptive_fields


def test_strided_then_dilated_convolutions_match_hand_computation() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(2, 2, 3, dilation=2))
    fields = receptive_fields(model, (1, 20, 20))
    # conv 5/2 pad 2: 5 px, every 2 px, unit 0 centred on pixel 0; dilated 3x3 spans 5 units = 4 jumps of 2
    assert fields["0"] == fields["1"] == ReceptiveField((5, 5), (2.0, 2.0), (0.0, 0.0))
    assert fields["2"] == ReceptiveField((13, 13), (2.0, 2.0), (4.0, 4.0))
    assert receptive_box(fields["2"], (0, 0), (20, 20)) == (0, 0, 11, 11)  # pixels -2..10, clipped at 0
    assert receptive_box(fields["2"], (1, 2), (20, 20)) == (0, 2, 13, 15)


def test_ceil_mode_pool_and_non_square_kernels() -> None:
    pool = nn.Sequential(nn.MaxPool2d(3, stride=2, ceil_mode=True))
    field = receptive_fields(pool, (1, 8, 8))["0"]
    assert field == ReceptiveField((3, 3), (2.0, 2.0), (1.0, 1.0))
    assert pool(torch.zeros(1, 1, 8, 8)).shape[-1] == 4  # ceil mode adds a 4th unit, which hangs off the edge
    assert receptive_box(field, (3, 3), (8, 8)) == (6, 6, 8, 8)
    conv = nn.Sequential(nn.Conv2d(1, 1, (3, 5), stride=(1, 2)))
    assert receptive_fields(conv, (1, 9, 9))["0"] == ReceptiveField((3, 5), (1.0, 2.0), (1.0, 2.0))


def test_our_model_chain_and_fully_connected_layers_see_the_whole_map() -> None:
    model = create_model("model2", in_channels=1, image_size=16, num_classes=10, width=0.125)
    fields = receptive_fields(model, (1, 16, 16))
    assert fields["conv1.relu"] == ReceptiveField((3, 3), (1.0, 1.0), (0.0, 0.0))
    assert fields["conv1.pool"] == ReceptiveField((4, 4), (2.0, 2.0), (0.5, 0.5))
    assert fields["conv2.relu"] == ReceptiveField((8, 8), (2.0, 2.0), (0.5, 0.5))
    assert fields["conv2.pool"] == ReceptiveField((10, 10), (4.0, 4.0), (1.5, 1.5))
    # conv4b.pool leaves a 1x1 map at 16 px, so flattening adds nothing; every fc unit sees the whole image
    assert fields["fc5.relu"] == fields["fc7.linear"] == fields["conv4b.pool"]
    assert receptive_box(fields["fc7.linear"], (0, 0), (16, 16)) == (0, 0, 16, 16)


def test_branches_are_followed_by_tensor_not_by_execution_order() -> None:
    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wide = nn.Conv2d(1, 1, 7, padding=3)
            self.narrow = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.wide(x) + self.narrow(x)  # narrow runs after wide but reads the input

    fields = receptive_fields(TwoBranches(), (1, 12, 12))
    assert fields["wide"].size == (7, 7) and fields["narrow"].size == (3, 3)


def test_torchvision_vgg16_features_see_212_pixels() -> None:
    with torch.device("meta"):  # shapes only: no 138 M weights to initialize
        vgg = torchvision.models.vgg16()
        resnet = torchvision.models.resnet18()
    fields = receptive_fields(vgg, (3, 224, 224))
    assert fields["features.30"].size == (212, 212) and fields["features.30"].jump == (32.0, 32.0)
    assert fields["features.29"].size == (196, 196)  # conv5_3 after its ReLU
    # torch.flatten is functional: the first classifier layer still sees the whole 7x7 map
    assert fields["classifier.0"].size == (212 + 6 * 32,) * 2
    assert receptive_fields(resnet, (3, 224, 224))["layer4.1.conv2"].size == (435, 435)
