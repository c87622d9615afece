"""Networks trained elsewhere: state dicts as people save them, a class of one's own, torchvision
architectures loaded as they are through the config, and the errors when something does not fit."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from reportgen import pipeline
from reportgen.config import load_config
from reportgen.errors import LayerError, ModelError, SettingError
from reportgen.nets.architectures import create_model, load_weights, read_state_dict
from reportgen.nets.data import Dataset
from reportgen.nets.layers import receptive_fields, unit_layers
from tests.conftest import TINY

POST = Path("posts") / "visualizing-two-cnns"
# a network class the way users write theirs: a features stack and a classifier head
USER_NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, classes=10, width=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * width, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, x):
        return self.classifier(self.features(x))
'''


def _config(folder: Path, models: str, **replace: str) -> Path:
    text = TINY.split("[[models]]")[0]
    for old, new in replace.items():
        text = text.replace(old, new)
    (folder / "config.toml").write_text(text + models)
    return folder / "config.toml"


def test_state_dicts_as_people_save_them_are_unwrapped(tmp_path: Path) -> None:
    net = create_model("model1", in_channels=1, image_size=16, num_classes=10, width=0.125)
    state = net.state_dict()
    forms = {"plain": state, "data-parallel": {"module." + k: v for k, v in state.items()},
             "checkpoint": {"epoch": 3, "state_dict": state}, "model-key": {"model": state, "optimizer": {}}}
    for name, saved in forms.items():
        torch.save(saved, tmp_path / f"{name}.pth")
        loaded = read_state_dict(tmp_path / f"{name}.pth")
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state), name
    from safetensors.torch import save_file

    save_file({"module." + k: v.contiguous() for k, v in state.items()}, tmp_path / "hub.safetensors")
    loaded = read_state_dict(tmp_path / "hub.safetensors")
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    (tmp_path / "torn.safetensors").write_bytes((tmp_path / "hub.safetensors").read_bytes()[:200])
    with pytest.raises(ModelError, match="torn.safetensors: cannot read weights"):
        read_state_dict(tmp_path / "torn.safetensors")
    torch.save(nn.Linear(2, 2), tmp_path / "pickled-module.pth")  # a whole pickled object: never unpickled
    with pytest.raises(ModelError, match="pickled-module.pth: cannot read weights"):
        read_state_dict(tmp_path / "pickled-module.pth")
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export; users still have such files
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(ModelError, match="scripted.pt: a TorchScript archive .* set arch = 'torchscript'"):
        read_state_dict(tmp_path / "scripted.pt")
    (tmp_path / "junk.pth").write_bytes(b"not a tensor file")
    with pytest.raises(ModelError, match="junk.pth: cannot read weights"):
        read_state_dict(tmp_path / "junk.pth")


def test_weights_that_do_not_fit_name_what_differs(tmp_path: Path) -> None:
    theirs = torchvision.models.get_model("resnet18", weights=None, num_classes=1000)
    ours = create_model("torchvision:resnet18", in_channels=3, image_size=32, num_classes=3)
    with pytest.raises(ModelError, match=r"fc.weight: \(1000, 512\) in the file, \(3, 512\) in the network "
                                         r"\(the weights have 1000 outputs and the network 3"):
        load_weights(ours, theirs.state_dict(), tmp_path / "imagenet.pth", "torchvision:resnet18")
    partial = {k: v for k, v in theirs.state_dict().items() if not k.startswith("layer4")}
    with pytest.raises(ModelError, match=r"missing \(layer4.0.conv1.weight"):
        load_weights(ours, partial, tmp_path / "partial.pth", "torchvision:resnet18")


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", "efficientnet_b0"])
def test_real_architectures_load_exactly_and_expose_their_blocks(arch: str, tmp_path: Path) -> None:
    saved = torchvision.models.get_model(arch, weights=None, num_classes=3).eval()
    torch.save(saved.state_dict(), tmp_path / "w.pth")
    net = create_model(f"torchvision:{arch}", in_channels=3, image_size=32, num_classes=3)
    load_weights(net, read_state_dict(tmp_path / "w.pth"), tmp_path / "w.pth", arch)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net.eval()(x), saved(x))  # squeeze-excitation, hardswish, depthwise convs and all
    layers = unit_layers(net, (3, 32, 32))
    assert layers[0].name == "features.0" and layers[-1].name == "classifier" and layers[-1].units == 3
    fields = receptive_fields(net, (3, 32, 32))
    assert all(layer.path in fields for layer in layers if layer.kind == "conv")


def _user_weights(tmp_path: Path, classes: int, width: int) -> None:
    """models/net.py and the state dict (net.pth) a user's script saves for its Net(classes, width)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(USER_NET)
    namespace: dict = {}
    exec(compile(USER_NET, "net.py", "exec"), namespace)  # the user's script trains and saves it their way
    torch.manual_seed(0)
    torch.save(namespace["Net"](classes=classes, width=width).state_dict(), tmp_path / "net.pth")


def user_class_config(tmp_path: Path) -> Path:
    """A config that reports on a class of one's own (models/net.py) loaded from the state dict a
    user's script saved (net.pth): nothing of it is trained by the build."""
    _user_weights(tmp_path, classes=10, width=6)
    config = _config(tmp_path, '''
[[models]]
name = "Their <net>"
arch = "file:models/net.py:Net"
args = { classes = 10, width = 6 }
train = false
weights = "net.pth"
mean = [0.13]
std = [0.3]
''')
    return config


def test_a_class_of_ones_own_from_a_file_is_loaded_and_reported_without_training(tmp_path: Path) -> None:
    config = user_class_config(tmp_path)
    result = pipeline.build(load_config(config))
    labels = [a.manifest.get("label") for a in result.stages if not a.cached]
    assert "load Their <net>" in labels and not any(label.startswith("train") for label in labels)
    html = (tmp_path / "site" / POST / "index.html").read_text()
    assert "this build loaded it from the state dict <code>net.pth</code> and trained nothing" in html
    assert "trained elsewhere and loaded as it is, so this post has no learning curves" in html
    assert "Their &lt;net&gt;" in html and "<net>" not in html
    for section in ("preferred-inputs", "activation-responses", "clusterings"):
        assert re.search(rf'<h2 id="[^"]*{section.split("-")[0]}', html, re.I), section
    # editing the class file re-runs the load stage and what reads it; the weights are read again
    (tmp_path / "models" / "net.py").write_text(USER_NET + "\n# tuned\n")
    again = pipeline.build(load_config(config))
    assert "load Their <net>" in [a.manifest.get("label") for a in again.stages if not a.cached]


def test_a_torchvision_state_dict_from_data_parallel_loads_through_the_config(tmp_path: Path) -> None:
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, tmp_path / "resnet18.pth")
    config = _config(tmp_path, '''
[[models]]
name = "ResNet"
arch = "torchvision:resnet18"
weights = "resnet18.pth"
train = false
''', **{"[data]\n": "[data]\nchannels = 3\n", "image_size = 16": "image_size = 32"})
    # section 2 on a ResNet's thousand units is the slow part; the test of a class of one's own runs it
    result = pipeline.build(load_config(config, overrides={"preferred.enabled": False}))
    assert any(a.stage == "load" for a in result.stages)
    html = (tmp_path / "site" / POST / "index.html").read_text()
    assert "resnet18.pth" in html and "layer1" in html  # no layer setting: the feature maps of a block


def test_mismatches_are_one_line_before_any_model_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "TRAIN", pipeline.Stage("train", lambda *a, **k: pytest.fail("trained")))
    big = torchvision.models.get_model("resnet18", weights=None, num_classes=1000)
    torch.save(big.state_dict(), tmp_path / "imagenet.pth")
    models = '''
[[models]]
name = "A"
arch = "model1"
width = 0.125
[[models]]
name = "B"
arch = "torchvision:resnet18"
weights = "imagenet.pth"
train = false
'''
    config = _config(tmp_path, models, **{"[data]\n": "[data]\nchannels = 3\n", "image_size = 16": "image_size = 32"})
    with pytest.raises(ModelError, match=r"models\[1\] \(B\): .*imagenet.pth: these weights do not fit .*1000 "
                                         r"outputs and the network 10"):
        pipeline.build(load_config(config))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text("class Other: pass\n")
    config.write_text(config.read_text().replace('arch = "torchvision:resnet18"', 'arch = "file:models/net.py:Net"'))
    with pytest.raises(ModelError, match=r"models/net.py has no nn.Module class 'Net'"):
        pipeline.build(load_config(config))
    (tmp_path / "models" / "net.py").write_text("def broken(:\n")
    with pytest.raises(ModelError, match=r"importing .*net.py failed: SyntaxError"):
        pipeline.build(load_config(config))


def test_a_layer_the_network_lacks_is_named_with_the_ones_it_has(tmp_path: Path) -> None:
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=10).state_dict(),
               tmp_path / "r.pth")
    config = _config(tmp_path, '''
[[models]]
name = "R"
arch = "torchvision:resnet18"
weights = "r.pth"
train = false
[clusters]
layer = "layer9"
''', **{"[data]\n": "[data]\nchannels = 3\n", "image_size = 16": "image_size = 32"})
    with pytest.raises(SettingError, match=r"clusters.layer: 'layer9' is not a layer of R; known: conv1, layer1"):
        pipeline.build(load_config(config))


def _folder_of(tmp_path: Path, classes: list[str], per_class: int = 12) -> None:
    """A folder of 16x16 gray images, one subfolder per class, each class its own stripe pattern."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(per_class):
            pattern = np.zeros((20, 20)) + 40 * c + (np.arange(20)[:, None] % (c + 2) == 0) * 120
            noisy = np.clip(pattern + rng.normal(0, 20, (20, 20)), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(tmp_path / "images" / name / f"{i}.png")


def test_a_model_of_1000_outputs_reports_on_a_folder_of_three_of_its_classes(tmp_path: Path) -> None:
    classes = ["tench", "goldfish", "tabby"]
    _folder_of(tmp_path, classes)
    names = [f"class {i}" for i in range(1000)]
    names[0], names[1], names[281] = "tench", "goldfish", "tabby"
    (tmp_path / "imagenet-classes.txt").write_text("\n".join(names) + "\n")
    _user_weights(tmp_path, classes=1000, width=4)
    models = '''
[[models]]
name = "Big"
arch = "file:models/net.py:Net"
args = { classes = 1000, width = 4 }
train = false
weights = "net.pth"
classes_file = "imagenet-classes.txt"
'''
    config = _config(tmp_path, models, **{'source = "mnist5k"': 'source = "folder"\npath = "images"\nmin_width = 16',
                                          'classes = ["0", "1"]': 'classes = ["tench", "goldfish"]',
                                          'third = "2"': 'third = "tabby"'})
    pipeline.build(load_config(config))
    cache = tmp_path / "cache"
    (confusion,) = [json.loads(p.read_text()) for p in cache.glob("evaluate/*/confusion.json")]
    assert confusion["other"] and len(confusion["counts"]) == 3 and len(confusion["counts"][0]) == 4
    with np.load(next(cache.glob("evaluate/*/predictions.npz"))) as z:
        probs, labels = z["probs"], z["labels"]
    assert probs.shape == (len(labels), 4)
    # the 'other' column is the network's top-1 among the 997 other outputs: each row's argmax is its top-1
    assert sum(map(sum, confusion["counts"])) + sum(confusion["uncertain"]) == len(labels)
    html = (tmp_path / "site" / POST / "index.html").read_text()
    assert "<th scope=\"col\">other</th>" in html and "counts in the <em>other</em> column" in html
    # section 2 shows the three classes' output units, not a thousand
    (summary,) = [json.loads(p.read_text()) for p in cache.glob("preferred/*/preferred.json")]
    assert summary["layers"][-1]["units"] == 1000 and summary["layers"][-1]["shown"] == 3
    # a class folder that names no output, and an output count the names do not match, are one line each
    (tmp_path / "imagenet-classes.txt").write_text("\n".join(n if n != "tabby" else "tiger cat" for n in names))
    with pytest.raises(ModelError, match=r"models\[0\] \(Big\): the data's class 'tabby' is not among the "
                                         r"network's 1000 output names"):
        pipeline.build(load_config(config))
    (tmp_path / "imagenet-classes.txt").write_text("\n".join(names[:999]) + "\n")
    with pytest.raises(ModelError, match=r"has 1000 outputs but there are 999 class names"):
        pipeline.build(load_config(config))
    (tmp_path / "imagenet-classes.txt").unlink()
    with pytest.raises(ModelError, match=r"models\[0\].classes_file: file not found: .*imagenet-classes.txt"):
        pipeline.build(load_config(config))


def test_unit_layers_chosen_by_module_path_are_the_ones_every_section_shows(tmp_path: Path) -> None:
    config = user_class_config(tmp_path)
    chosen = 'layers = ["features.8", "features.3", "classifier.3"]'
    config.write_text(config.read_text().replace('weights = "net.pth"', 'weights = "net.pth"\n' + chosen))
    pipeline.build(load_config(config))
    cache = tmp_path / "cache"
    (summary,) = [json.loads(p.read_text()) for p in cache.glob("preferred/*/preferred.json")]
    # in the order the network runs them, whatever the order in the config
    assert [layer["path"] for layer in summary["layers"]] == ["features.3", "features.8", "classifier.3"]
    atlas = sorted(p.name for p in (tmp_path / "site" / POST / "atlas" / "their-net").glob("*.html"))
    assert atlas == ["classifier-3.html", "features-3.html", "features-8.html"]
    # other layers re-run the sections, never the load stage
    config.write_text(config.read_text().replace(chosen, 'layers = ["features.3", "classifier.3"]'))
    again = [a.stage for a in pipeline.build(load_config(config)).stages if not a.cached]
    assert "preferred" in again and "load" not in again
    config.write_text(re.sub(r"layers = \[.*\]", 'layers = ["layer9"]', config.read_text()))
    with pytest.raises(SettingError, match=r"models\[0\].layers: 'layer9' is not a module of the network; its "
                                           r"top-level modules: features, classifier"):
        pipeline.build(load_config(config))


def test_a_vision_transformer_is_refused_in_one_line_naming_its_token_blocks() -> None:
    vit = torchvision.models.get_model("vit_b_16", weights=None, num_classes=3)
    with pytest.raises(LayerError, match=r"'encoder' gives a sequence of 197 tokens of 768 channels per image, as "
                                         r"a transformer's blocks do"):
        unit_layers(vit, (3, 224, 224))
    assert [la.name for la in unit_layers(vit, (3, 224, 224), ["conv_proj", "heads"])] == ["conv_proj", "heads"]


def test_each_model_may_take_the_images_at_its_own_size_and_resizing(tmp_path: Path) -> None:
    config = user_class_config(tmp_path)
    text = config.read_text()
    own = text[text.index("[[models]]"):].replace('name = "Their <net>"', 'name = "Larger"')
    config.write_text(text + "\n" + own + 'image_size = 24\nresize = "pad"\ncrop = 0.875\n')
    result = pipeline.build(load_config(config))
    decoded = {a.manifest["label"]: a for a in result.stages if a.stage == "data"}
    assert sorted(decoded) == ["data", "data Larger"]
    larger, shared = (Dataset.from_artifact(decoded[label]) for label in ("data Larger", "data"))
    assert larger.images.shape[1:] == (24, 24, 1) and shared.images.shape[1:] == (16, 16, 1)
    assert np.array_equal(larger.labels, shared.labels)
    # every section ran each model on its own view: section 2's inputs and section 3's movies at its size
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("preferred/*/preferred.json")]
    assert sorted(s["input_shape"][1] for s in summaries) == [16, 24]
    html = (tmp_path / "site" / POST / "index.html").read_text()
    assert ("It takes its own input, so this build decoded the images once more for it: each image has its "
            "central 87.5% of each side kept and is rescaled to fit in 24×24 pixels") in html
    assert html.count("decoded the images once more") == 1  # the first model takes the data as it is
