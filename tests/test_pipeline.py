"""Whole builds on the tiny config: the site, caching, incremental rebuilds and output safety."""

import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from reportgen import cache, pipeline
from reportgen.builds import BuildResult
from reportgen.config import ConfigError, load_config
from reportgen.errors import Problems, SettingError, SiteError
from reportgen.nets.architectures import ModelError
from reportgen.nets.data import DataError
from reportgen.report.publish import MARKER
from reportgen.sections.classification.compute import EvaluateError
from tests.conftest import BuiltSite


def edit(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make the cache see `module`'s source as edited (a comment added), as if the file had changed."""
    real = cache.module_source
    monkeypatch.setattr(cache, "module_source", lambda name: real(name) + (b"# an edit" if name == module else b""))


def built(result: BuildResult) -> list[str]:
    """Labels of the stages a build ran rather than took from the cache, from its own stage records."""
    return [a.manifest.get("label", a.stage) for a in result.stages if not a.cached]


def post_html(site: Path) -> str:
    return (site / "posts" / "visualizing-two-cnns" / "index.html").read_text()


def test_end_to_end_build_writes_section_one(tiny_site: BuiltSite) -> None:
    """The session's build from scratch (tests/conftest.py), read as a user reads it."""
    result, site = tiny_site.result, tiny_site.site
    assert result.out == tiny_site.config.parent / "site"
    assert "train Model I" in built(result) and "train Model II" in built(result)
    html = post_html(site)
    # numbered figures and tables, with every cross-reference resolved
    for label in ("Figure 1.", "Figure 2.", "Figure 3.", "Table 1.", "Table 2.", "Table 3.", "Table 4."):
        kind = label.split()[0].lower()  # each label is its figure's permalink
        assert re.search(rf'<a class="label" href="#{kind}-[^"]+">{label}</a>', html), label
    assert "RGREF" not in html and "RGBLOCK" not in html
    for target in re.findall(r'class="xref" href="#([^"]+)"', html):
        assert f'id="{target}"' in html
    # user strings are escaped
    assert "Tiny &lt;test&gt; build" in html and "<test>" not in html
    # relative links only, every image present
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and not [u for u in links if u.startswith(("/", "http:", "https:"))]
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (site / "posts" / "visualizing-two-cnns" / src).is_file(), src
    assert (site / ".nojekyll").is_file() and (site / "index.html").is_file() and (site / MARKER).is_file()
    # the split table counts every image once: 30 per class
    assert html.count("<td>21</td><td>3</td><td>6</td>") == 10
    # the confusion caption matches the saved predictions
    evaluation = next(a for a in result.stages if a.stage == "evaluate")
    saved = np.load(evaluation.file("predictions.npz"))
    confident = saved["probs"].max(1) >= 0.5
    correct = int(((saved["probs"].argmax(1) == saved["labels"]) & confident).sum())
    assert f"({correct}, " in html


def test_second_build_trains_nothing_and_title_change_only_rerenders(tiny_site: BuiltSite, tiny_copy: Path) -> None:
    first = tiny_site.result  # the session's build from scratch: every stage, in build order
    assert built(first) == ["data", "train Model I", "evaluate Model I", "describe Model I", "train Model II",
                            "evaluate Model II", "describe Model II", "figures", "preferred inputs Model I",
                            "preferred figures Model I", "preferred inputs Model II", "preferred figures Model II",
                            "class units", "class units figures",
                            "responses Model I", "randomization Model I", "response figures Model I",
                            "randomization figure Model I", "responses Model II", "randomization Model II",
                            "response figures Model II", "randomization figure Model II",
                            "activated inputs Model I", "path check Model I", "path figure Model I",
                            "activated inputs Model II", "path check Model II", "path figure Model II",
                            "clusters", "clusters figures", "site"]
    tiny_config = tiny_copy  # a copy of that build's folder, which the rest builds into again
    pipeline.build(load_config(tiny_config))  # its own first build: every stage from the copied cache
    unchanged = pipeline.build(load_config(tiny_config))
    # nothing changed: decided from the record in the site marker, nothing runs and nothing is re-rendered
    assert unchanged.up_to_date and built(unchanged) == [] and len(unchanged.stages) == len(first.stages) - 1
    retitled = pipeline.build(load_config(tiny_config, overrides={"site.title": "New title"}))
    assert built(retitled) == ["site"]
    assert "New title" in post_html(tiny_config.parent / "site")
    stricter = pipeline.build(load_config(tiny_config, overrides={"evaluate.threshold": 0.9}))
    assert built(stricter) == ["evaluate Model I", "evaluate Model II", "site"]  # no retraining, no redrawing
    faster = pipeline.build(load_config(tiny_config, overrides={"evaluate.batch_size": 7}))
    assert built(faster) == ["site"]  # a batch size changes speed, not results
    # training results depend on the thread count, so it is part of the training key (and of t-SNE's)
    # (sections 2 and 3 off for this one build, to keep it short)
    threads = pipeline.build(load_config(tiny_config, overrides={"build.workers": 1, "preferred.enabled": False,
                                                                 "responses.enabled": False}))
    assert "train Model I" in built(threads) and "clusters" in built(threads)
    reseeded = pipeline.build(load_config(tiny_config, overrides={"clusters.seed": 1}))
    assert built(reseeded) == ["clusters", "clusters figures", "site"]
    off = pipeline.build(load_config(tiny_config, overrides={"clusters.enabled": False}))
    assert built(off) == ["site"] and "clusters" not in [a.stage for a in off.stages]
    assert "Clusterings" not in post_html(tiny_config.parent / "site")
    assert not (tiny_config.parent / "site" / "posts" / "visualizing-two-cnns" / "clusters-map.html").exists()


def test_renaming_a_model_only_redraws_and_rerenders(tiny_copy: Path) -> None:
    pipeline.build(load_config(tiny_copy))
    tiny_copy.write_text(tiny_copy.read_text().replace('name = "Model II"', 'name = "The deep one"'))
    result = pipeline.build(load_config(tiny_copy))
    # section 2's pictures are filed under the model's key, so they are redrawn, not recomputed;
    # section 3's drawings name the model; neither runs a forward pass
    assert built(result) == ["figures", "preferred figures The deep one", "class units figures",
                             "response figures The deep one", "randomization figure The deep one",
                             "activated inputs The deep one", "path figure The deep one", "site"]
    assert "The deep one" in post_html(tiny_copy.parent / "site")


def test_editing_drawing_code_redraws_without_running_a_model(tiny_copy: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline.build(load_config(tiny_copy))
    edit(monkeypatch, "reportgen.sections.classification.draw")
    assert built(pipeline.build(load_config(tiny_copy))) == ["figures", "site"]


def test_editing_the_config_module_reruns_no_stage(tiny_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stage imports config.py for its option classes, but its key holds the values it reads:
    a new option or a reworded message there must not retrain every model."""
    pipeline.build(load_config(tiny_copy))
    edit(monkeypatch, "reportgen.config")
    assert built(pipeline.build(load_config(tiny_copy))) == ["site"]


def test_editing_normalization_reruns_everything_that_imports_it(tiny_copy: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint.py is imported by training and evaluation without being named anywhere: the key
    follows the import, so an edit to Normalizer cannot keep serving stale checkpoints and predictions."""
    pipeline.build(load_config(tiny_copy))
    edit(monkeypatch, "reportgen.nets.checkpoint")
    rebuilt = built(pipeline.build(load_config(tiny_copy)))
    assert rebuilt[:6] == ["train Model I", "evaluate Model I", "describe Model I",
                           "train Model II", "evaluate Model II", "describe Model II"]
    assert "data" not in rebuilt and rebuilt[-1] == "site"
    # every section reads the models, so all of it runs again
    assert {"figures", "preferred inputs Model I", "responses Model II", "clusters", "clusters figures"} <= set(rebuilt)


def test_changing_one_model_retrains_only_that_model_and_prune_removes_the_old_one(tiny_copy: Path) -> None:
    pipeline.build(load_config(tiny_copy))
    tiny_copy.write_text(tiny_copy.read_text().replace("lr = 0.1\n", "lr = 0.05\n"))
    result = pipeline.build(load_config(tiny_copy), prune=True)
    assert built(result) == ["train Model II", "evaluate Model II", "describe Model II", "figures",
                             "preferred inputs Model II", "preferred figures Model II", "class units",
                             "class units figures", "responses Model II", "randomization Model II",
                             "response figures Model II", "randomization figure Model II", "activated inputs Model II",
                             "path check Model II", "path figure Model II", "clusters", "clusters figures", "site"]
    removed, freed = result.pruned
    # prune removes what the config no longer reaches: the old Model II's checkpoint, evaluation,
    # description, section 2's preferred inputs and section 3's responses with their drawings, its
    # randomization test and path check, the figures that drew it, section 2's class units and the
    # activated inputs, and section 4's numbers and pictures, which read every model
    assert removed == 17 and freed > 0
    assert pipeline.build(load_config(tiny_copy)).up_to_date


def test_checkpoint_entry_is_loaded_not_trained(tiny_copy: Path) -> None:
    first = pipeline.build(load_config(tiny_copy))
    checkpoint = next(a for a in first.stages if a.stage == "train").file("checkpoint.pt")
    text = tiny_copy.read_text().replace('arch = "model1"', f'arch = "model1"\ncheckpoint = "{checkpoint}"')
    tiny_copy.write_text(text)
    result = pipeline.build(load_config(tiny_copy))
    labels = [a.manifest.get("label", a.stage) for a in result.stages]
    assert "train Model I" not in labels and "train Model II" in labels and "evaluate Model I" in built(result)
    assert "checkpoint.pt" in post_html(tiny_copy.parent / "site")


def test_failed_build_leaves_previous_site_and_user_files(tiny_copy: Path) -> None:
    pipeline.build(load_config(tiny_copy))
    site = tiny_copy.parent / "site"
    (site / "CNAME").write_text("example.org")
    before = post_html(site)
    broken = tiny_copy.parent / "my-templates"
    broken.mkdir()
    (broken / "post.md.j2").write_text('See {{ ref("nowhere") }}.')
    # named with the template file and line that wrote the reference, as every other template error is
    with pytest.raises(SiteError, match=r"my-templates/post.md.j2, line 1: reference to unknown figure or table "
                                        r"'nowhere'"):
        pipeline.build(load_config(tiny_copy, overrides={"site.templates": "my-templates"}))
    assert post_html(site) == before
    pipeline.build(load_config(tiny_copy))
    assert (site / "CNAME").read_text() == "example.org"
    written = json.loads((site / MARKER).read_text())["files"]
    assert "CNAME" not in written and "index.html" in written
    assert not list(tiny_copy.parent.glob(".site.staging-*"))


def test_refuses_a_folder_it_did_not_write(tiny_config: Path) -> None:
    foreign = tiny_config.parent / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SiteError, match="not empty and was not written by reportgen"):
        pipeline.build(load_config(tiny_config), out=foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert not (tiny_config.parent / "cache").exists()  # refused before any stage ran


def test_folder_source_with_the_group_uncertainty_rule_and_no_validation_split(tmp_path: Path) -> None:
    """The write-up's setting: RGB chips from a folder, 'uncertain gender' within a male/female group;
    the split leaves no validation set, and the post says so."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["female", "male", "non-face"]):
        (tmp_path / "chips" / name).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 256, (30, 24, 3), dtype=np.uint8)
            pixels[..., c] = 255  # a learnable colour cue per class
            Image.fromarray(pixels).save(tmp_path / "chips" / name / f"{i}.png")
    (tmp_path / "chips" / "male" / "notes.txt").write_text("not an image")
    config = tmp_path / "config.toml"
    config.write_text("""
[data]
source = "folder"
path = "chips"
image_size = 16
channels = 3
split = [0.8, 0.0, 0.2]
[evaluate]
uncertain = "group"
group = ["male", "female"]
margin = 0.2
[[models]]
name = "Model I"
arch = "model1"
width = 0.125
epochs = 2
batch_size = 16
""")
    pipeline.build(load_config(config))
    html = post_html(tmp_path / "site")
    assert "one of male, female" in html and "differ by less than 0.2" in html
    assert "1 file (unreadable)" in html
    assert "had no validation set" in html and "nan%" not in html
    for name in ("female", "male", "non-face"):
        assert f"<tr><th scope=\"row\">{name}</th>" in html


@pytest.mark.parametrize("case", ["class-without-test-images", "constant-images"])
def test_degenerate_data_still_gives_a_site_that_says_what_is_missing(tmp_path: Path, case: str) -> None:
    from PIL import Image

    from tests.conftest import TINY

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(["a", "b", "c"]):
            if case == "class-without-test-images" and split == "test" and name == "c":
                continue
            (tmp_path / "images" / split / name).mkdir(parents=True)
            for i in range(10):
                noisy = np.clip(40 * c + rng.normal(100, 30, (20, 20)), 0, 255)
                pixels = np.zeros((20, 20)) if case == "constant-images" else noisy
                Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "images" / split / name / f"{i}.png")
    text = TINY.replace('source = "mnist5k"', 'source = "folder"\npath = "images"')
    text = text.replace('classes = ["0", "1"]', 'classes = ["a", "b"]').replace('third = "2"', 'third = "c"')
    (tmp_path / "config.toml").write_text(text)
    pipeline.build(load_config(tmp_path / "config.toml", overrides={"preferred.enabled": False}))
    html = post_html(tmp_path / "site")
    assert "nan" not in re.sub(r"<[^>]+>", "", html).lower().split()
    if case == "class-without-test-images":
        assert "The c class has no test image, so no accuracy is measured for it" in html
    else:
        assert "so there is nothing for a map to\narrange" in html or "nothing for a map to arrange" in html


def test_a_broken_user_template_is_a_one_line_error(tiny_copy: Path) -> None:
    mine = tiny_copy.parent / "mine"
    (mine / "static").mkdir(parents=True)
    (mine / "static" / "extra.css").write_text("body { color: red; }")
    (mine / "post.md.j2").write_text("Fine line.\n{{ data.nonexistent.deeper }}\n")
    with pytest.raises(SiteError, match="nonexistent"):
        pipeline.build(load_config(tiny_copy, overrides={"site.templates": "mine"}))
    (mine / "post.md.j2").write_text("Accuracy {{ models[0].totals.pct_correct | pct }}%.\n{% if %}\n")
    with pytest.raises(SiteError, match=r"post.md.j2, line 2: "):
        pipeline.build(load_config(tiny_copy, overrides={"site.templates": "mine"}))
    # Python errors inside template expressions name the file and line too
    for line, error in [("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
                        ("{{ models[0].params + 'x' }}", "TypeError: unsupported operand"),
                        ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__'")]:
        (mine / "post.md.j2").write_text(f"Fine line.\n{line}\n")
        with pytest.raises(SiteError, match=rf"post.md.j2, line 2: .*{re.escape(error)}"):
            pipeline.build(load_config(tiny_copy, overrides={"site.templates": "mine"}))
    (mine / "post.md.j2").write_text("Accuracy {{ models[0].totals.pct_correct | pct }}%.\n")
    pipeline.build(load_config(tiny_copy, overrides={"site.templates": "mine"}))
    site = tiny_copy.parent / "site"
    assert (site / "static" / "extra.css").is_file() and (site / "static" / "style.css").is_file()
    assert re.search(r"Accuracy \d+\.\d\d%", post_html(site))


def test_the_post_names_each_set_and_reads_as_written_by_a_person(tiny_copy: Path) -> None:
    pipeline.build(load_config(tiny_copy))
    site = tiny_copy.parent / "site"
    pages = {"post": post_html(site), "index": (site / "index.html").read_text()}
    for name, page in pages.items():
        text = re.sub(r"<[^>]+>", " ", page)
        assert "held-out" not in text and "(s)" not in text and "mnist5k" not in text, name
        assert not re.search(r"\b1 (more )?times\b|\b\d+\.0 times\b", text), name
    post = pages["post"]
    assert "validation accuracy after epoch" in post and "of the 60 test images correctly" in post
    assert "used twice per epoch: once as it is and once more with random shifts of up to one pixel" in post
    assert "McNemar" in post and ("which is significant" in post or "not significant" in post)
    assert "None of these layers has a bias" in post and "The output layer, fc7," in post
    assert re.search(r"<title>reportgen notebook</title>", pages["index"])
def test_a_diverging_model_is_named_with_its_learning_rate(tiny_config: Path) -> None:
    tiny_config.write_text(tiny_config.read_text().replace("lr = 0.02\n", "lr = 1e12\n"))
    with pytest.raises(ModelError, match=r"models\[0\] \(Model I\): training diverged: .* lr = 1e\+12"):
        pipeline.build(load_config(tiny_config))
    assert not (tiny_config.parent / "site").exists()


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("data decoded before a check that needs no data")
    monkeypatch.setattr(pipeline, "DATA", pipeline.Stage("data", refuse))


@pytest.mark.parametrize(("model", "message"), [
    ('checkpoint = "missing.pt"', r"models\[0\].checkpoint: .*missing.pt: checkpoint file not found"),
    ('checkpoint = "config.toml"', r"models\[0\].checkpoint: .*config.toml: not a readable checkpoint"),
    ('arch = "torchvision:alexnet"\nweights = "none.pth"', r"models\[0\].weights: file not found: .*none.pth"),
])
def test_model_files_are_checked_before_any_image_is_decoded(tiny_config: Path, monkeypatch: pytest.MonkeyPatch,
                                                             model: str, message: str) -> None:
    _no_decoding(monkeypatch)
    tiny_config.write_text(tiny_config.read_text().replace('arch = "model1"', f'arch = "model1"\n{model}', 1)
                           .replace('arch = "model1"\narch', "arch"))
    with pytest.raises(ModelError, match=message):
        pipeline.build(load_config(tiny_config))


def test_an_output_folder_inside_the_cache_is_refused_before_decoding(tiny_config: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _no_decoding(monkeypatch)
    with pytest.raises(SiteError, match="must be separate folders"):
        pipeline.build(load_config(tiny_config), out=tiny_config.parent / "cache")
    assert not (tiny_config.parent / "cache").exists()


def test_class_settings_and_checkpoints_are_checked_before_any_model_trains(tiny_config: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("trained before checking")
    monkeypatch.setattr(pipeline, "TRAIN", pipeline.Stage("train", refuse))
    with pytest.raises(DataError, match="data.augment.classes: unknown class 'eleven'"):
        pipeline.build(load_config(tiny_config, overrides={"data.augment.classes": ["eleven"]}))
    with pytest.raises(EvaluateError, match="evaluate.group"):
        pipeline.build(load_config(tiny_config, overrides={"evaluate.uncertain": "group",
                                                           "evaluate.group": ["1", "one"]}))
    with pytest.raises(SettingError, match=r"clusters.layer: 'fc9' is not a layer of Model II; known: conv1, .*fc5"):
        pipeline.build(load_config(tiny_config, overrides={"clusters.layer": "fc9"}))
    with pytest.raises(SettingError, match="clusters.queries: position 60 is outside the 60 mapped images"):
        pipeline.build(load_config(tiny_config, overrides={"clusters.queries": [0, 60]}))
    # section 3's classes and feature-map layer, each under its own key
    for key, value, message in [
        ("responses.classes", ["0", "ten"], "responses.classes: 'ten' is not a class of the data; known: '0'"),
        ("responses.third", "ten", "responses.third: 'ten' is not a class of the data"),
        ("responses.group", ["1", "x", "y"], "responses.group: 'x', 'y' are not classes of the data"),
        ("responses.feature_layer", "conv9",
         "responses.feature_layer: 'conv9' is not a layer of Model I; known: conv1"),
        ("responses.feature_layer", "fc5", "responses.feature_layer: 'fc5' of Model I is not a convolutional layer"),
    ]:
        with pytest.raises((SettingError, Problems), match=re.escape(message)):  # Problems: wrong for both models
            pipeline.build(load_config(tiny_config, overrides={key: value}))


def test_settings_that_contradict_each_other_are_refused_at_load(tiny_config: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tiny_config, overrides={"responses.third": "1"})  # TINY's classes are "0" and "1"
    assert any(p.startswith("responses.third: got '1', which is one of responses.classes ['0', '1']")
               for p in err.value.problems)


def test_a_build_failing_while_publishing_leaves_the_whole_previous_site(tiny_copy: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline.build(load_config(tiny_copy))
    site = tiny_copy.parent / "site"
    (site / "CNAME").write_text("example.org")
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        if ".staging-" in str(src):  # the new tree cannot take the old one's place
            raise PermissionError(13, "Permission denied", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(SiteError, match=rf"^{re.escape(str(site))}: cannot publish the site \(Permission denied"):
        pipeline.build(load_config(tiny_copy, overrides={"site.title": "New title"}))
    assert "New title" not in post_html(site) and "New title" not in (site / "index.html").read_text()
    assert (site / "CNAME").read_text() == "example.org"
    assert sorted(p.name for p in tiny_copy.parent.iterdir() if p.name.startswith(".site")) == []
    monkeypatch.undo()
    pipeline.build(load_config(tiny_copy, overrides={"site.title": "New title"}))
    assert "New title" in post_html(site) and "New title" in (site / "index.html").read_text()
    assert (site / "CNAME").read_text() == "example.org"


HOSTILE = ["<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "$x^2$ **b**_c_ | a"]


def test_hostile_names_print_as_literal_text_everywhere(tmp_path: Path) -> None:
    """Model names, class (folder) names and the title can hold HTML, Markdown links and mathtext."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(HOSTILE):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            pixels[..., c] = 255
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    models = [HOSTILE[0], "[m](javascript:alert(1)) $\\frac{x}{$ ![i](x.png)"]
    config = tmp_path / "config.toml"
    config.write_text(f"""
[site]
title = "<script>alert(1)</script> [t](javascript:alert(1))"
author = "<b onmouseover=alert(1)>me</b>"
[data]
source = "folder"
path = "photos"
image_size = 16
channels = 3
[data.augment]
factor = 2
shift = 1
classes = [{json.dumps(HOSTILE[1])}]
""" + "".join(f"""
[[models]]
name = {json.dumps(name)}
width = 0.125
epochs = 1
batch_size = 16
""" for name in models))
    result = pipeline.build(load_config(config))
    site = tmp_path / "site"
    pages = {"post": post_html(site), "index": (site / "index.html").read_text()}
    viewer = (site / "posts" / "visualizing-two-cnns" / "clusters-map.html").read_text()
    assert "<script>alert" not in viewer and "<img src=x" not in viewer and "<b " not in viewer
    assert not re.search(r"(href|src)=\"javascript", viewer)
    for page, html_ in pages.items():
        assert "<img src=x" not in html_ and "<script>" not in html_ and "<b " not in html_, page
        assert not re.search(r"(href|src)=\"(javascript|x\.png)", html_), page
        text = html.unescape(re.sub(r"<[^>]+>", " ", html_))
        assert "<script>alert(1)</script> [t](javascript:alert(1))" in text, page
        for name in models:
            assert name in text, (page, name)
    text = html.unescape(re.sub(r"<[^>]+>", " ", pages["post"]))
    for name in HOSTILE:
        assert name in text, name  # class names: split table, confusion tables, augmentation sentence
    # escaped once, never twice (a sentence that joins names the template already escaped)
    assert not re.search(r"&amp;(#\d+|[a-z]+);", pages["post"]), re.search(r".{80}&amp;(#\d+|[a-z]+);", pages["post"])
    figures = site / "posts" / "visualizing-two-cnns" / "figures"
    assert (figures / "samples.png").is_file() and len(list(figures.glob("curves-*.png"))) == len(models)
    for svg in figures.glob("*.svg"):
        assert "<img" not in svg.read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in (figures / "architecture-img-src-x-onerror-alert-1.svg").read_text()
    drawn = next(a for a in result.stages if a.stage == "figures").manifest["files"]
    assert sorted(f for f in drawn if f.endswith(".svg")) == ["architecture-img-src-x-onerror-alert-1.svg",
                                                               "architecture-m-javascript-alert-1-frac-x-i-x-png.svg"]



def test_a_config_inside_its_image_folder_does_not_read_its_own_site_back(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["red", "green"]):
        (tmp_path / name).mkdir()
        for i in range(12):
            pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            pixels[..., c] = 255
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    config = tmp_path / "config.toml"
    config.write_text('[build]\nout = "site"\ncache = "cache"\n[data]\nsource = "folder"\npath = "."\n'
                      'image_size = 16\nchannels = 3\n[[models]]\nname = "A"\nwidth = 0.125\nepochs = 1\n')
    pipeline.build(load_config(config))
    html = post_html(tmp_path / "site")
    assert '<tr><th scope="row">red</th>' in html and ">site</th>" not in html
    assert pipeline.build(load_config(config)).up_to_date
    assert built(pipeline.build(load_config(config), out=tmp_path / "elsewhere")) == ["site"]
