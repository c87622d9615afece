"""Every page of one built site through html-validate (node_modules/.bin/html-validate, installed by
`npm ci` from package-lock.json), with the repository's .htmlvalidate.json: html-validate's
recommended rules, unchanged (atlas tiles are SVG views of their sprite sheets, so no page needs an inline style).

Like the browser test's Chromium, node_modules is optional on a laptop (the test skips) and required
in CI (the test fails when the CI variable is set)."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reportgen.report.site import TITLE_CHARS, short_title
from tests.conftest import BuiltSite

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
CONFIG = ROOT / ".htmlvalidate.json"


def node_module(relative: str) -> Path:
    """A file of node_modules (`npm ci` installs it): skip without it locally, but fail in CI."""
    path = NODE_MODULES / relative
    missing = [] if shutil.which("node") else ["Node.js (20.18 or newer)"]
    if not path.is_file():
        missing.append(f"node_modules/{relative} (run `npm ci` at the repository root)")
    if not missing:
        return path
    reason = f"this test needs {' and '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is an error, not a skip")
    pytest.skip(reason)


def test_every_page_of_the_site_passes_html_validate(tiny_site: BuiltSite, tmp_path: Path) -> None:
    validator = node_module(".bin/html-validate")
    pages = sorted(tiny_site.site.rglob("*.html"))
    assert len(pages) >= 5  # the home page, the post, its atlas, unit graph and image map pages
    # one run for every page: node takes a second or two to start. The config is named, since
    # html-validate would otherwise look for one beside each page, in the build's temporary folder;
    # the report goes to a file, since node cuts a long report short on a pipe when it exits
    report = tmp_path / "html-validate.json"
    run = subprocess.run([str(validator), "--config", str(CONFIG), "--formatter", f"json={report}",
                          *map(str, pages)], capture_output=True, text=True, timeout=300, check=False)
    try:
        results = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        pytest.fail(f"html-validate wrote no report (exit {run.returncode}): {run.stdout[-2000:]}{run.stderr[-2000:]}")
    found = [(Path(r["filePath"]).relative_to(tiny_site.site), m) for r in results for m in r["messages"]
             if m["severity"] == 2]
    errors = [f"{page}:{m['line']}:{m['column']} {m['ruleId']}: {m['message']}" for page, m in found]
    print("\n".join(errors))  # every error, in the captured output pytest shows for a failed test
    counts = collections.Counter(m["ruleId"] for _, m in found).most_common()
    assert not errors and run.returncode == 0, \
        f"{len(errors)} html-validate errors {counts}, the first:\n" + "\n".join(errors[:30]) + run.stderr[-2000:]


def test_long_titles_end_with_an_ellipsis_where_search_results_cut_them() -> None:
    site_title = "What two convolutional networks learned about handwritten digits"
    atlas = short_title(f"Model &lt;II&gt; · conv3b · unit atlas · {site_title}")
    # at most 70 characters as the page writes them, entities and all; cut between words
    assert atlas == "Model &lt;II&gt; · conv3b · unit atlas · What two convolutional…"
    assert len(atlas) <= TITLE_CHARS
    assert short_title(site_title) == site_title  # a title that fits stays whole
    assert short_title("Tiny &lt;test&gt; build") == "Tiny &lt;test&gt; build"
    assert short_title("x" * 100) == "x" * (TITLE_CHARS - 1) + "…"  # one word longer than a title
