"""Lighthouse scores of one page of every kind of a built site, served as `reportgen serve` serves it
(127.0.0.1, text gzip-compressed, as GitHub Pages compresses it), plus each page's largest contentful
paint and bytes. Issue 15's goals: performance >= 90, accessibility, best practices and SEO 100.

    reportgen build && python benchmarks/pages.py [--site site]

Needs Node.js, `npm ci` (node_modules/.bin/lighthouse) and Chromium at /usr/bin/chromium. Lighthouse
simulates a mid-range phone on a slow 4G connection, so its performance score is noisy by a few
points between runs; run it on a quiet machine before quoting one.

Measured on the default site (2026-12-01, shared 2-core machine at load ~2, Lighthouse 13.5.0;
perf/a11y/best practices/SEO, LCP, transferred): home 100/100/100/100 0.8 s 4 kB; post 97/100/100/100
2.4 s 239 kB; atlas (model-ii conv4a, units 128-255) 95/100/100/100 2.6 s 305 kB; unit graph 99/100/100/100
1.3 s 368 kB; image map 100/100/100/100 1.2 s 473 kB. Before this round the atlas page scored 75 (LCP
8.6 s, 1.5 MB of PNG sprite sheets), and served without compression by `python -m http.server` the
post scored 82 and the unit graph 85 (its 486 kB of HTML is 44 kB gzipped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reportgen.serve import Server

ROOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")


def pages(site: Path) -> dict[str, str]:
    """One page of each kind, relative to the site: the home page, the post, its largest atlas page,
    a unit graph and the image map."""
    post = next(p.parent for p in sorted(site.glob("posts/*/index.html")))
    atlas = max((post / "atlas").rglob("*.html"), key=lambda p: p.stat().st_size)
    found = {"home": "index.html", "post": post / "index.html", "atlas": atlas,
             "unit graph": next(iter(sorted((post / "graph").glob("*.html"))), None),
             "image map": next(iter(sorted(post.glob("*-map.html"))), None)}
    return {kind: str(Path(p).relative_to(site) if Path(p).is_absolute() else p) for kind, p in found.items() if p}


def audit(url: str, folder: Path) -> dict:
    report = folder / "report.json"
    subprocess.run([str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={report}",
                    f"--only-categories={','.join(CATEGORIES)}",
                    "--chrome-flags=--headless=new --no-sandbox --disable-gpu"],
                   env={**os.environ, "CHROME_PATH": CHROMIUM}, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    args = parser.parse_args()
    if not LIGHTHOUSE.is_file():
        print("benchmarks/pages.py needs node_modules/.bin/lighthouse: run `npm ci` at the repository root",
              file=sys.stderr)
        return 2
    server = Server(args.site.resolve(), "127.0.0.1", 0).start()
    try:
        print(f"{'page':<11} {'perf':>4} {'a11y':>4} {'best':>4} {'seo':>4} {'LCP s':>6} {'kB':>6}  failing audits")
        with tempfile.TemporaryDirectory() as tmp:
            for kind, path in pages(args.site).items():
                report = audit(server.url + path, Path(tmp))
                scores = [round(report["categories"][c]["score"] * 100) for c in CATEGORIES]
                audits = report["audits"]
                lcp = audits["largest-contentful-paint"]["numericValue"] / 1000
                weight = audits["total-byte-weight"]["numericValue"] / 1000
                failing = [a["id"] for a in audits.values() if a.get("score") is not None and a["score"] < 0.9
                           and a.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")]
                print(f"{kind:<11} {scores[0]:>4} {scores[1]:>4} {scores[2]:>4} {scores[3]:>4} {lcp:>6.1f} "
                      f"{weight:>6.0f}  {', '.join(failing) or '-'}   ({path})")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
