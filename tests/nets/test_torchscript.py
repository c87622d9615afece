"""TorchScript archives made Python modules: real torchvision architectures, scripted and traced,
compute what the archive computes, fire hooks on their blocks, pass gradients to the input, and a
whole site builds from one through the config."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from reportgen import pipeline
from reportgen.config import ConfigError, load_config
from reportgen.errors import ModelError
from reportgen.nets import torchscript
from reportgen.nets.architectures import read_state_dict
from reportgen.nets.layers import receptive_fields, unit_layers
from tests.nets.test_imported import POST, USER_NET, _config


def _save(module: nn.Module, path: Path, example: torch.Tensor | None = None) -> Path:
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export; users still have such files
        warnings.simplefilter("ignore")
        archive = torch.jit.trace(module, example) if example is not None else torch.jit.script(module)
        torch.jit.save(archive, path)
    return path


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_scripted_torchvision_networks_run_as_python_modules(arch: str, tmp_path: Path) -> None:
    original = torchvision.models.get_model(arch, weights=None, num_classes=3).eval()
    net = torchscript.load(_save(original, tmp_path / f"{arch}.ts"), (3, 32, 32))
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    assert torch.equal(net(x), original(x))
    # the blocks the sections record are those of the network built in Python, with the same shapes
    # and receptive fields, because torch.nn modules come back as themselves
    layers = unit_layers(net, (3, 32, 32))
    assert [(la.name, la.shape) for la in layers] == [(la.name, la.shape) for la in unit_layers(original, (3, 32, 32))]
    fields = receptive_fields(net, (3, 32, 32))
    assert fields == receptive_fields(original, (3, 32, 32))
    # a hook on a block fires, and the gradient of its output reaches the input
    seen = []
    block = net.get_submodule(layers[1].path)
    handle = block.register_forward_hook(lambda module, inputs, output: seen.append(output))
    net(x)
    handle.remove()
    seen[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_traced_archive_and_a_function_call_run_too(tmp_path: Path) -> None:
    original = torchvision.models.get_model("resnet18", weights=None, num_classes=3).eval()
    example = torch.randn(1, 3, 32, 32)
    net = torchscript.load(_save(original, tmp_path / "traced.ts", example), (3, 32, 32))
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(net(x), original(x), atol=1e-5)
    assert {la.name for la in unit_layers(net, (3, 32, 32))} >= {"layer1", "layer4", "fc"}


class _Softplus(nn.Module):
    """Calls a scripted free function: the interpreter runs the archive's own graph of it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x).mean((2, 3))[:, :2]


def test_free_functions_come_from_the_archive_and_mismatches_are_one_line(tmp_path: Path) -> None:
    net = torchscript.load(_save(_Softplus(), tmp_path / "f.ts"), (3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(net(x), _Softplus()(x))
    with pytest.raises(ModelError, match=r"conv.ts: the network cannot take 3x2x2 inputs"):
        torchscript.load(_save(nn.Conv2d(3, 2, 5), tmp_path / "conv.ts"), (3, 2, 2))
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "state.pth")
    with pytest.raises(ModelError, match=r"state.pth: not a TorchScript archive"):
        torchscript.load(tmp_path / "state.pth", (3, 8, 8))
    with pytest.raises(ModelError, match=r"f.ts: a TorchScript archive .* set arch = 'torchscript'"):
        read_state_dict(tmp_path / "f.ts")


def test_the_config_asks_for_an_archive_to_be_loaded_not_trained(tmp_path: Path) -> None:
    config = _config(tmp_path, '[[models]]\nname = "S"\narch = "torchscript"\nweights = "net.ts"\n')
    with pytest.raises(ConfigError, match=r"models\[0\].arch: 'torchscript' .* set models\[0\].train = false"):
        load_config(config)


def test_a_site_builds_from_a_torchscript_file_without_training(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # scripting needs the class's source in a file, as a user's own module is
    (tmp_path / "usernet.py").write_text(USER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usernet", None)
    import usernet

    torch.manual_seed(0)
    _save(usernet.Net(classes=10, width=6).eval(), tmp_path / "net.ts")
    monkeypatch.setattr(pipeline, "TRAIN", pipeline.Stage("train", lambda *a, **k: pytest.fail("trained")))
    config = _config(tmp_path, '''
[[models]]
name = "Scripted"
arch = "torchscript"
train = false
weights = "net.ts"
mean = [0.13]
std = [0.3]
''')
    result = pipeline.build(load_config(config))
    assert "load Scripted" in [a.manifest.get("label") for a in result.stages if not a.cached]
    html = (tmp_path / "site" / POST / "index.html").read_text()
    assert "this build loaded it from the TorchScript archive <code>net.ts</code> and trained nothing" in html
    for section in ("preferred", "activation", "clustering"):
        assert re.search(rf'<h2 id="[^"]*{section}', html, re.I), section
    # the feature maps of section 3 come from a block of the archive, found through its hooks
    assert "features." in html
