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
