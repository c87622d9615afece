"""The command line: one-line errors without tracebacks, exit codes, the closing summary."""

import subprocess
import sys
from pathlib import Path

from reportgen.cli import main


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], cwd=cwd, capture_output=True, text=True)


def test_version_and_help(tmp_path: Path) -> None:
    assert run("--version", cwd=tmp_path).stdout.startswith("reportgen ")
    assert "--config" in run("build", "--help", cwd=tmp_path).stdout


def test_bad_config_lists_problems_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[data]\nimage_sise = 28\n[[models]]\nname = "A"\nlr = "fast"\n')
    proc = run("build", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "data.image_sise: unknown key (did you mean 'image_size'?)" in proc.stderr
    assert "models[0].lr: got 'fast'; expected a number" in proc.stderr


def test_missing_config_and_missing_data_folder(tmp_path: Path, capsys) -> None:
    assert main(["build", "--config", str(tmp_path / "none.toml")]) == 2
    assert "none.toml" in capsys.readouterr().err
    (tmp_path / "config.toml").write_text('[data]\nsource = "folder"\npath = "photos"\n[[models]]\nname = "A"\n')
    assert main(["build", "--config", str(tmp_path / "config.toml")]) == 1
    err = capsys.readouterr().err
    assert "photos" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_build_prints_a_summary(tiny_copy: Path, capsys) -> None:
    assert main(["build", "--config", str(tiny_copy), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "train Model I" in err and "evaluate Model II" in err and "Site written to" in err
    # nothing changed: a second build decides from the cache's record alone, in a process that never imports torch
    check = ("import sys; from reportgen.cli import main; code = main(['build', '--config', sys.argv[1], '-q']); "
             "print(code, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", check, str(tiny_copy)], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["0", "False"]
    assert "Nothing changed since the last build" in proc.stderr and "cached" in proc.stderr
    # --force rebuilds every stage whatever the cache holds (sections 2-4 off, to keep it short: the
    # data and both models are in the cache as they were)
    text = tiny_copy.read_text()
    for table in ("[preferred]\n", "[responses]\n"):
        text = text.replace(table, f"{table}enabled = false\n")
    tiny_copy.write_text(text + "\n[clusters]\nenabled = false\n")
    assert main(["build", "--config", str(tiny_copy), "--quiet", "--force"]) == 0
    forced = capsys.readouterr().err
    assert "Site written to" in forced and ", 0 from cache)" in forced


def test_help_says_what_each_path_is_relative_to(tmp_path: Path) -> None:
    text = " ".join(run("build", "--help", cwd=tmp_path).stdout.split())
    assert "--out OUT output folder, relative to the current directory" in text
    assert "build.out, which is relative to the config file" in text


def test_counts_in_messages_agree_with_their_nouns(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.toml").write_text('[data]\nimage_sise = 28\n[[models]]\nname = "A"\n')
    assert main(["build", "--config", str(tmp_path / "config.toml")]) == 2
    assert "1 problem in the config:" in capsys.readouterr().err
    from reportgen.builds import BuildResult
    from reportgen.cache import Artifact
    from reportgen.cli import summary

    site = Artifact("site", "", tmp_path, {"label": "site"}, False, 0.1)
    data = Artifact("data", "k", tmp_path, {"label": "data"}, True, 0.0)
    assert "(1 stage built, 1 from cache)" in summary(BuildResult(tmp_path, [data, site]))
def test_architecture_and_non_finite_mistakes_exit_2_before_any_data_is_read(tmp_path: Path, capsys) -> None:
    # the data folder does not exist: reaching the data stage would exit 1 instead
    (tmp_path / "config.toml").write_text('[data]\nsource = "folder"\npath = "photos"\nseed = -1\n'
                                          '[[models]]\nname = "A"\narch = "resnet9000"\nlr = inf\n'
                                          '[[models]]\nname = "B"\ntrain = false\n')
    assert main(["build", "--config", str(tmp_path / "config.toml")]) == 2
    err = capsys.readouterr().err
    for key in ("models[0].arch", "models[0].lr", "data.seed", "models[1].train"):
        assert f"  {key}: " in err, err
    assert "Traceback" not in err and "photos" not in err


def test_every_problem_found_before_training_is_reported_at_once(tmp_path: Path, capsys) -> None:
    import torch
    import torchvision

    from tests.conftest import TINY

    # weights of another output count in one entry, and a class of section 3 the data lacks: both said
    torch.save(torchvision.models.resnet18(weights=None, num_classes=7).state_dict(), tmp_path / "r18.pth")
    text = TINY.replace('classes = ["0", "1"]', 'classes = ["0", "ten"]').split("[[models]]")[0]
    text = text.replace("image_size = 16", "image_size = 32\nchannels = 3")
    (tmp_path / "config.toml").write_text(text + '[[models]]\nname = "R"\narch = "torchvision:resnet18"\n'
                                                 'weights = "r18.pth"\ntrain = false\n')
    assert main(["build", "--config", str(tmp_path / "config.toml"), "--quiet"]) == 1  # a weights file: exit 1
    err = capsys.readouterr().err
    assert "reportgen: error: 2 problems found before training anything:" in err and "Traceback" not in err
    assert "r18.pth: these weights do not fit 'torchvision:resnet18'" in err
    assert "responses.classes: 'ten' is not a class of the data" in err


def test_a_wrong_path_fails_before_torch_is_imported_and_leaves_nothing_behind(tmp_path: Path) -> None:
    check = ("import sys; from reportgen.cli import main; code = main(['build', '-q']); "
             "print(code, 'torch' in sys.modules)")
    for config in ('[data]\nsource = "folder"\npath = "photos"\n[[models]]\nname = "A"\n',
                   '[[models]]\nname = "A"\ncheckpoint = "gone.pt"\n',
                   '[[models]]\nname = "A"\narch = "file:nets.py:Net"\nweights = "w.safetensors"\n'):
        (tmp_path / "config.toml").write_text(config)
        proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, check=True)
        assert proc.stdout.split() == ["1", "False"], proc.stderr
        assert "file not found" in proc.stderr or "is not a folder" in proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no cache, no site
