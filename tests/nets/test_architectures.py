"""Every registered architecture builds and runs forward; the registry answers unknown names."""

import pytest
import torch

from reportgen.nets.architectures import ModelError, create_model, list_archs, parameter_count, regularizers

OWN = [a for a in list_archs() if not a.startswith("torchvision:")]


@pytest.mark.parametrize("arch", OWN + ["torchvision:alexnet", "torchvision:resnet18"])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_pass_for_every_architecture(arch: str, channels: int) -> None:
    size = 64 if arch.startswith("torchvision:") else 28
    model = create_model(arch, in_channels=channels, image_size=size, num_classes=5, width=0.25).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, channels, size, size))
    assert out.shape == (2, 5)


def test_full_size_models_match_the_write_up() -> None:
    sizes = {a: parameter_count(create_model(a, in_channels=3, image_size=96, num_classes=3)) for a in OWN}
    assert 10e6 < sizes["model1"] < 12e6
    assert 10e6 < sizes["model2"] < 12.5e6


def test_layer_names_follow_the_write_up() -> None:
    m1 = create_model("model1", in_channels=1, image_size=28, num_classes=10)
    m2 = create_model("model2", in_channels=1, image_size=28, num_classes=10)
    blocks = lambda m: [n for n, _ in m.named_children() if n != "flatten"]  # noqa: E731
    assert blocks(m1) == ["conv1", "conv2", "conv3", "conv4", "fc5", "fc6", "fc7"]
    assert blocks(m2) == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6", "fc7"]
    assert regularizers(m1) == "dropout"
    assert regularizers(m2) == "batch norm + dropout"
    # Model II: no biases before batch norm, no dropout after the first two ReLUs
    assert m2.conv1.conv.bias is None and not hasattr(m2.conv1, "drop") and not hasattr(m2.conv2, "drop")
    assert hasattr(m2.conv3a, "drop") and hasattr(m1.conv1, "drop")


def test_width_scales_the_model() -> None:
    small = create_model("model1", in_channels=1, image_size=28, num_classes=10, width=0.25)
    big = create_model("model1", in_channels=1, image_size=28, num_classes=10, width=1.0)
    assert parameter_count(small) * 8 < parameter_count(big)


def test_unknown_architecture_lists_known_ones() -> None:
    with pytest.raises(ModelError, match="known: model1, model2"):
        create_model("model3", in_channels=1, image_size=28, num_classes=2)
    with pytest.raises(ModelError, match="unknown torchvision architecture 'alexnett'.*alexnet"):
        create_model("torchvision:alexnett", in_channels=3, image_size=64, num_classes=2)


def test_torchvision_weights_from_a_local_file(tmp_path) -> None:
    source = create_model("torchvision:resnet18", in_channels=3, image_size=64, num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r18.pt")
    model = create_model("torchvision:resnet18", in_channels=3, image_size=64, num_classes=4,
                         weights=tmp_path / "r18.pt")
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 4  # the 1000-way head does not fit and is left fresh
    (tmp_path / "junk.pt").write_text("not weights")
    with pytest.raises(ModelError, match="junk.pt: cannot read weights"):
        create_model("torchvision:resnet18", in_channels=3, image_size=64, num_classes=4,
                     weights=tmp_path / "junk.pt")


def test_too_small_input_for_a_torchvision_model_is_a_plain_error() -> None:
    with pytest.raises(ModelError, match="torchvision:alexnet cannot take 1x32x32 inputs.*data.image_size"):
        create_model("torchvision:alexnet", in_channels=1, image_size=32, num_classes=2)


def test_the_config_knows_every_registered_architecture_and_which_use_batch_norm() -> None:
    from reportgen import config

    assert set(config.BUILTIN_ARCHS) == set(OWN)
    for arch in OWN:
        uses = regularizers(create_model(arch, in_channels=1, image_size=16, num_classes=2, width=0.1))
        assert ("batch norm" in uses) == (arch in config.BATCH_NORM_ARCHS), arch
