"""`reportgen serve`: the site on http://127.0.0.1, rebuilt when what a writer edits changes.

Writing the narrative should be edit-and-look, as with `mkdocs serve` or `hugo server`: the command
builds once, serves the output folder over HTTP on the loopback interface only, and polls the config,
the template overrides and the model files the config names. When one changes it rebuilds; the
cache decides which stages run, so an edit of a template or of the site's title re-renders the pages
in seconds while trained models stay cached. A failed rebuild keeps serving the previous site and
says why; the reader reloads the page to see a new build (no script is injected into the pages).
"""

from __future__ import annotations

import functools
import gzip
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from reportgen.config import Config, ConfigError, load_config
from reportgen.errors import SiteError

log = logging.getLogger("reportgen")
POLL_SECONDS = 1.0
COMPRESSED = (".html", ".css", ".js", ".svg", ".json", ".txt")


class _Handler(SimpleHTTPRequestHandler):
    """Files of the output folder; request lines go to the debug log, not over the build's progress."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        log.debug("serve: " + format, *args)

    def end_headers(self) -> None:
        # a rebuilt page must show on reload, not a cached copy of the last one
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        """Text files gzip-compressed when the browser accepts it, as GitHub Pages and every static
        host serve them: a page then loads as fast here as where it is published."""
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                super().do_GET()  # http.server redirects to the folder's address with a slash
                return
            path = path / "index.html"
        if path.suffix not in COMPRESSED or "gzip" not in self.headers.get("Accept-Encoding", "") \
                or not path.is_file():
            super().do_GET()  # everything else as http.server serves it
            return
        body = gzip.compress(path.read_bytes(), compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def watched_files(config: Path, cfg: Config | None) -> Iterator[Path]:
    """What a writer edits between builds: the config, every file under the template overrides, and
    the model files (checkpoints, weights, class lists, architecture modules) the config names."""
    yield config
    if cfg is None:
        return
    if cfg.site.templates:
        folder = cfg.resolve(cfg.site.templates)
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*") if p.is_file())
    for m in cfg.models:
        for path in (m.checkpoint, m.weights, m.classes_file):
            if path:
                yield cfg.resolve(path)
        if (module := m.class_file(cfg.root)) is not None:
            yield module


def state(files: Iterator[Path]) -> tuple[tuple[str, int, int], ...]:
    """Each file's modification time and size (-1, -1 when it is missing): a change in any is an edit."""
    found = []
    for path in files:
        try:
            st = path.stat()
            found.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            found.append((str(path), -1, -1))
    return tuple(found)


class Server:
    """The HTTP server of one output folder, in a background thread."""

    def __init__(self, out: Path, host: str, port: int) -> None:
        self.out = out
        handler = functools.partial(_Handler, directory=str(out))
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise SiteError(f"cannot serve on {host}:{port}: {e.strerror or e}; pass another --port") from None
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="reportgen-serve", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(config: Path, out_arg: Path | None, build: Callable[[Config, Path], bool], host: str, port: int,
          stop: threading.Event | None = None, ready: Callable[[Server], None] | None = None) -> int:
    """Build, serve, and rebuild on every edit until `stop` is set or Ctrl-C. `build(cfg, out)` runs one
    build and reports its errors itself (True when it succeeded); `ready` receives the running server
    (the tests read its URL). Returns the exit code."""
    stop = stop or threading.Event()
    cfg = load_config(config)  # a broken config at start is the caller's one-line error
    out = out_arg.resolve() if out_arg else cfg.resolve(cfg.build.out)
    # the files as the build reads them, taken before it starts: an edit made while it runs (which it
    # may or may not have seen) differs from this and triggers the next build
    seen = state(watched_files(config, cfg))
    server = Server(out, host, port)  # bound before the build: a busy port fails now, not after it
    if not build(cfg, out) and not (out / "index.html").is_file():
        server.httpd.server_close()
        return 1  # nothing to serve
    server.start()
    print(f"Serving {out} at {server.url} (Ctrl-C to stop); rebuilding when the config, a template "
          "override or a model file changes.", flush=True)
    if ready:
        ready(server)
    try:
        while not stop.wait(POLL_SECONDS):
            now = state(watched_files(config, cfg))
            if now == seen:
                continue
            seen = now
            log.info("serve: a watched file changed; rebuilding")
            try:
                cfg = load_config(config)
            except ConfigError as e:
                print(f"reportgen: error: {e.path}: the config has {len(e.problems)} problem"
                      f"{'s' if len(e.problems) != 1 else ''}; still serving the last build:", file=sys.stderr)
                for problem in e.problems:
                    print(f"  {problem}", file=sys.stderr)
                continue
            new_out = out_arg.resolve() if out_arg else cfg.resolve(cfg.build.out)
            seen = state(watched_files(config, cfg))  # before the build (the new config may name other files)
            ok = build(cfg, new_out)
            if new_out != out and ok:  # build.out moved: serve the new folder
                server.stop()
                out, server = new_out, Server(new_out, host, port).start()
            print(f"{'Rebuilt' if ok else 'The rebuild failed; still serving the last build'}: {server.url}",
                  flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
