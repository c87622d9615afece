"""`reportgen serve`: the site over HTTP on the loopback interface, rebuilt after an edit of the config
or of a template override, and still served when a rebuild fails."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from reportgen import serve as serve_module
from reportgen.cli import _serve_build, main
from reportgen.serve import Server, serve

POST = "posts/visualizing-two-cnns/index.html"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher looks every 0.2 s here (once a second for a writer): the tests wait for rebuilds."""
    monkeypatch.setattr(serve_module, "POLL_SECONDS", 0.2)


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _until(condition: Callable[[], bool], seconds: float = 120) -> None:
    """Wait for a rebuild: poll `condition` until it holds or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the served site never changed"
        time.sleep(0.2)


def test_serve_rebuilds_after_an_edit_and_keeps_the_last_site_when_a_rebuild_fails(tiny_copy: Path, capsys) -> None:
    stop, servers = threading.Event(), []
    thread = threading.Thread(target=serve, args=(tiny_copy, None, _serve_build, "127.0.0.1", 0, stop, servers.append),
                              daemon=True)
    thread.start()
    try:
        _until(lambda: bool(servers))
        url = servers[0].url
        assert url.startswith("http://127.0.0.1:")  # the loopback interface only, by default
        assert "Tiny &lt;test&gt; build" in _fetch(url + POST)
        # an edit of the config: the pages re-render from the cache
        config = tiny_copy.read_text()
        tiny_copy.write_text(config.replace('title = "Tiny <test> build"', 'title = "Edited <title>"'))
        _until(lambda: "Edited &lt;title&gt;" in _fetch(url + POST))
        # a template override appears: the config names its folder, then the folder's file changes
        mine = tiny_copy.parent / "mine"
        (mine / "static").mkdir(parents=True)
        (mine / "static" / "extra.css").write_text("body { color: red; }")
        tiny_copy.write_text(tiny_copy.read_text().replace("[site]\n", '[site]\ntemplates = "mine"\n'))
        _until(lambda: _status(url + "static/extra.css") == 200)
        (mine / "static" / "extra.css").write_text("body { color: blue; }")
        _until(lambda: "blue" in _fetch(url + "static/extra.css"))
        # a broken config: one message, and the last site is still served
        tiny_copy.write_text(tiny_copy.read_text().replace("[site]\n", "[site]\ntitel = 1\n"))
        _until(lambda: "still serving the last build" in capsys.readouterr().err, 30)
        assert "Edited &lt;title&gt;" in _fetch(url + POST)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_port_in_use_is_a_one_line_error(tiny_copy: Path, capsys) -> None:
    site = tiny_copy.parent / "site"
    busy = Server(site, "127.0.0.1", 0).start()
    try:
        port = busy.httpd.server_address[1]
        assert main(["serve", "--config", str(tiny_copy), "--port", str(port), "-q"]) == 1
    finally:
        busy.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"reportgen: error: cannot serve on 127.0.0.1:{port}: Address already in use; pass another --port"
    assert not any("Traceback" in line for line in err)
    assert not any("Site written" in line for line in err)  # known before the build, so no build ran


def test_text_is_served_gzip_compressed_as_static_hosts_serve_it(tiny_site) -> None:
    import gzip

    server = Server(tiny_site.site, "127.0.0.1", 0).start()
    try:
        request = urllib.request.Request(server.url + POST, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Content-Type"].startswith("text/html")
            assert gzip.decompress(response.read()) == (tiny_site.site / POST).read_bytes()
        # a folder's address without its slash is redirected, as by any static host
        folder = urllib.request.urlopen(server.url + POST.removesuffix("/index.html"), timeout=10)
        assert folder.url.endswith("/visualizing-two-cnns/") and "Tiny &lt;test&gt; build" in folder.read().decode()
        # images are sent as they are
        sheet = next((tiny_site.site / "posts").rglob("*.webp"))
        with urllib.request.urlopen(urllib.request.Request(
                server.url + str(sheet.relative_to(tiny_site.site)), headers={"Accept-Encoding": "gzip"})) as r:
            assert "Content-Encoding" not in r.headers and r.read() == sheet.read_bytes()
    finally:
        server.stop()


def test_an_edit_made_while_a_rebuild_runs_is_built_too(tmp_path: Path) -> None:
    """The watcher's snapshot is taken before each build: a file saved while a build runs (which that
    build may have read before the save) starts another build, rather than being taken as built."""
    config = tmp_path / "config.toml"
    models = '[[models]]\nname = "A"\n'
    config.write_text('[site]\ntitle = "One"\n' + models)
    calls: list[str] = []
    stop = threading.Event()

    def build(cfg, out: Path) -> bool:
        out.mkdir(exist_ok=True)
        (out / "index.html").write_text(cfg.site.title)
        calls.append(cfg.site.title)
        if len(calls) == 2:  # the second build: the writer saves again while it runs
            config.write_text('[site]\ntitle = "Three"\n' + models)
        if len(calls) == 3:
            stop.set()
        return True

    thread = threading.Thread(target=serve, args=(config, tmp_path / "site", build, "127.0.0.1", 0, stop), daemon=True)
    thread.start()
    _until(lambda: len(calls) == 1, 30)
    config.write_text('[site]\ntitle = "Two"\n' + models)
    thread.join(30)
    assert calls == ["One", "Two", "Three"]
