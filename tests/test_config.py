"""Config loading: defaults, every problem reported at once, did-you-mean, path resolution."""

import re
import tomllib
from pathlib import Path

import pytest

from reportgen.config import Config, ConfigError, describe_options, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


MINIMAL = '[[models]]\nname = "A"\n'


def test_default_config_of_the_repository_loads() -> None:
    cfg = load_config(ROOT / "config.toml")
    assert [m.arch for m in cfg.models] == ["model1", "model2"]
    assert cfg.data.source == "mnist5k"
    # the write-up's relations: Model II has 10x the learning rate and half the weight decay
    assert cfg.models[1].lr == pytest.approx(10 * cfg.models[0].lr)
    assert cfg.models[1].weight_decay == pytest.approx(cfg.models[0].weight_decay / 2)


def test_the_writeup_scale_example_loads_with_the_writeups_settings() -> None:
    cfg = load_config(ROOT / "examples" / "writeup-scale.toml")
    assert (cfg.data.image_size, cfg.data.channels, cfg.data.min_width) == (96, 3, 20)
    assert [(m.arch, m.width, m.lr, m.step) for m in cfg.models] == [("model1", 1.0, 0.003, 25000),
                                                                     ("model2", 1.0, 0.03, 10000)]
    assert cfg.models[1].weight_decay == pytest.approx(cfg.models[0].weight_decay / 2)
    assert cfg.data.augment.classes == ("female", "male") and (cfg.clusters.model, cfg.clusters.layer) == (
        "Model II", "fc5")


def test_minimal_config_gets_defaults_and_resolves_paths_next_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.models[0].name == "A" and cfg.models[0].key == "a"
    assert cfg.data.split == (0.7, 0.1, 0.2)
    assert cfg.resolve(cfg.build.out) == (tmp_path / "site").resolve()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
[data]
sorce = "mnist5k"
image_size = "big"
channels = 2
split = [0.5, 0.5, 0.5]
[evaluate]
uncertain = "maybe"
[[models]]
name = "A"
lr = -1
epochs = 1.5
"""
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    problems = err.value.problems
    joined = "\n".join(problems)
    assert len(problems) == 7, joined
    assert "data.sorce: unknown key (did you mean 'source'?)" in joined
    assert "data.image_size: got 'big'; expected an integer" in joined
    assert "data.channels: got 2; expected 1 or 3" in joined
    assert "data.split" in joined and "summing to 1" in joined
    assert "evaluate.uncertain: got 'maybe'; expected one of 'none', 'threshold', 'group'" in joined
    assert "models[0].lr: got -1; expected a number > 0" in joined
    assert "models[0].epochs: got 1.5; expected an integer" in joined


def test_cross_key_problems(tmp_path: Path) -> None:
    text = '[data]\nsource = "folder"\n[evaluate]\nuncertain = "group"\n'
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    joined = "\n".join(err.value.problems)
    assert "models: at least one" in joined
    assert "data.path: required" in joined
    assert "evaluate.group" in joined


def test_duplicate_model_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="distinct"):
        load_config(write(tmp_path, MINIMAL + MINIMAL))


def test_unreadable_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[data\n"))


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), overrides={"data.image_size": 16})
    assert cfg.data.image_size == 16
    with pytest.raises(ConfigError, match="data.image_size"):
        load_config(write(tmp_path, MINIMAL), overrides={"data.image_size": 2})


def test_every_option_is_documented() -> None:
    rows = describe_options(Config)
    keys = [key for key, _, _ in rows]
    assert "data.augment.factor" in keys and "models[].lr" in keys
    assert all(doc for _, _, doc in rows)


def test_readme_documents_every_option() -> None:
    readme = (ROOT / "README.md").read_text()
    for key, default, doc in describe_options(Config):
        assert f"| `{key}` | `{default}` | {doc} |" in readme, f"README's config reference lacks {key}"


def test_readme_set_up_is_two_commands_and_the_first_installs_cpu_torch() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set up"):readme.index("## The command")]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    assert commands[0].startswith("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert "needs root" in setup and "skipped" in setup


def test_torch_has_a_lower_bound_and_no_cap() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith(("torch>", "torchvision>"))]
    assert pins == ["torch>=2.9", "torchvision>=0.24"]
    assert "our machines" not in (ROOT / "pyproject.toml").read_text()
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("key", ["lr", "gamma", "momentum", "weight_decay", "width", "dropout"])
def test_non_finite_numbers_are_refused_for_every_float_option(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f'[[models]]\nname = "A"\n{key} = {value}\n'))
    assert err.value.problems == [f"models[0].{key}: got {float(value)!r}; expected finite numbers (not inf or nan)"]


def test_non_finite_numbers_are_refused_in_every_section(tmp_path: Path) -> None:
    text = ('[data]\nsplit = [0.7, nan, 0.2]\n[data.augment]\njitter = nan\n[evaluate]\nthreshold = inf\n'
            'margin = nan\n' + MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    keys = sorted(p.split(":")[0] for p in err.value.problems)
    assert keys == ["data.augment.jitter", "data.split", "evaluate.margin", "evaluate.threshold"]
    assert all("finite" in p for p in err.value.problems)


@pytest.mark.parametrize("key", ["data.seed", "models[0].seed"])
@pytest.mark.parametrize("value", [-1, 2**32])
def test_seeds_outside_what_numpy_and_torch_take_are_config_errors(tmp_path: Path, key: str, value: int) -> None:
    section, _, name = key.rpartition(".")
    text = f"[data]\nseed = {value}\n{MINIMAL}" if section == "data" else f"{MINIMAL}seed = {value}\n"
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: got {value}; expected an integer from 0"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("model", "message"), [
    ('arch = "resnet9000"', "models[0].arch: got 'resnet9000'; expected one of 'model1', 'model2'"),
    ('arch = "modl1"', "models[0].arch: got 'modl1' (did you mean 'model1'?)"),
    ('arch = "torchvision:notanet"', "models[0].arch: got 'torchvision:notanet', an unknown torchvision"),
    ('arch = "torchvision:resnet1"', "(did you mean 'torchvision:resnet18'?)"),
    ('train = false', "models[0].train: false needs the trained network's state dict in models[0].weights"),
    ('arch = "file:net.txt:Net"', "models[0].arch: got 'file:net.txt:Net'; the file of a 'file:' class must be a .py"),
    ('arch = "python:pkg.mod"', "models[0].arch: got 'python:pkg.mod'; expected 'file:<path/to/file.py>:<Class>'"),
    ('args = { depth = 3 }', "models[0].args: constructor arguments apply to a 'file:' or 'python:' class only"),
    ('mean = [0.5]\nstd = [0.2]', "models[0].mean: the normalization of a network this build trains"),
    ('arch = "torchvision:alexnet"\nweights = "w.pth"\ncheckpoint = "c.pt"', "models[0].weights: a model loaded"),
    ('arch = "model2"\nbatch_size = 1', "models[0].batch_size: got 1; model2 uses batch normalization"),
    ('train = false\nweights = "w.pth"\nchannels = 3\nmean = [0.5]\nstd = [0.2]',
     "models[0].mean: got 1 values; the input has models[0].channels = 3, so give 3"),
    ('image_size = 4', "models[0].image_size: got 4; expected 0 or a number between 8 and 512"),
    ('resize = "squash"', "models[0].resize: got 'squash'; expected one of '', 'crop', 'stretch', 'pad'"),
])
def test_architecture_mistakes_are_config_errors_naming_the_key(tmp_path: Path, model: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"{MINIMAL}{model}\n"))
    assert len(err.value.problems) == 1 and message in err.value.problems[0], err.value.problems


def test_torchvision_architectures_and_batch_size_one_without_batch_norm_load(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, f'{MINIMAL}arch = "torchvision:resnet18"\nweights = "w.pth"\n'
                                      '[[models]]\nname = "B"\nbatch_size = 1\n'))
    assert cfg.models[0].arch == "torchvision:resnet18" and cfg.models[1].batch_size == 1


@pytest.mark.parametrize(("out", "cache"), [("site", "site"), ("site", "site/cache"),
                                            ("build/cache/site", "build/cache"), (".", "cache")])
def test_output_folder_and_cache_folder_must_be_apart(tmp_path: Path, out: str, cache: str) -> None:
    with pytest.raises(ConfigError, match="build.out: .* must be separate folders"):
        load_config(write(tmp_path, f'[build]\nout = "{out}"\ncache = "{cache}"\n{MINIMAL}'))


def test_every_seed_option_is_checked_as_a_seed() -> None:
    import dataclasses

    from reportgen import config

    def seeds(cls: type) -> list[dataclasses.Field]:
        found = []
        for f in dataclasses.fields(cls):
            inner = f.type if isinstance(f.type, type) else getattr(config, str(f.type).split("[")[-1].split(",")[0]
                                                                     .strip(" ]"), None)
            if isinstance(inner, type) and dataclasses.is_dataclass(inner):
                found += seeds(inner)
            elif f.name == "seed":
                found.append(f)
        return found

    found = seeds(Config)
    assert len(found) >= 3 and all(f.metadata["check"] is config._seed for f in found)
