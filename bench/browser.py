"""Image-page load time and layer-toggle latency of a built site, in headless Chromium (Playwright).

The site is served by Python's http.server on 127.0.0.1 (a thread of this process). Heatmaps are
``<canvas class="atlas-heat">`` tiles painted from one sprite sheet per (model, image, method); a
canvas has ``data-ready`` once its tile is painted. Timings:

* load: navigation start -> every heatmap canvas of the grid painted (``data-ready``), then two animation
  frames (and the ``load`` event); the first load is cold (empty browser cache), later loads are fresh
  pages in a new context.
* toggle: the layer slider is moved (an ``input`` event, as a user's drag) and the clock stops when every
  heatmap canvas of the grid shows the new layer (``data-layer``) and is painted, and two animation frames
  have passed (``painted_ms`` stops before the frames, so it excludes up to ~33 ms of frame wait).
  The sprites hold every layer, so no toggle downloads anything; "first visit" and "cached" (the same
  layers again) are both kept for comparison with the per-map PNGs of before, where the first visit of a
  layer fetched new files.
"""

from __future__ import annotations

import functools
import http.server
import statistics
import threading
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# resolves once every heat canvas of the grid is painted for `layer` (null: any layer), or after 30 s
_PAINTED = """
(layer) => new Promise((resolve) => {
  const t0 = performance.now();
  const done = () => {
    const tiles = [...document.querySelectorAll('[data-role=grid] canvas.atlas-heat')];
    return tiles.length > 0 &&
      tiles.every((c) => c.dataset.ready && (layer === null || c.dataset.layer === String(layer)));
  };
  const poll = () => (done() || performance.now() - t0 > 30000 ? resolve() : requestAnimationFrame(poll));
  poll();
})
"""

_WAIT_HEATMAPS = """
async () => {
  await (PAINTED)(null);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const tiles = [...document.querySelectorAll('[data-role=grid] canvas.atlas-heat')];
  const nav = performance.getEntriesByType('navigation')[0];
  const sprites = performance.getEntriesByType('resource').filter((e) => e.name.includes('/atlas-data/maps/'));
  return {ready_ms: performance.now(), load_event_ms: nav ? nav.loadEventEnd : null,
          dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null, heatmaps: tiles.length,
          map_requests: sprites.length, broken: tiles.filter((c) => !c.dataset.ready).length};
}
""".replace("PAINTED", _PAINTED)

_TOGGLE = """
async (layer) => {
  const slider = document.querySelector('form.atlas-controls input[name=layer]');
  const maps = () => performance.getEntriesByType('resource').filter((e) => e.name.includes('/atlas-data/')).length;
  const before = maps();
  const t0 = performance.now();
  slider.value = String(layer);
  slider.dispatchEvent(new Event('input', {bubbles: true}));
  await (PAINTED)(layer);
  const painted = performance.now() - t0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const tiles = [...document.querySelectorAll('[data-role=grid] canvas.atlas-heat')];
  return {ms: performance.now() - t0, painted_ms: painted, heatmaps: tiles.length,
          requests: maps() - before,  // atlas data files fetched by the toggle (not the favicon Chromium refetches)
          ok: tiles.every((c) => c.dataset.layer === String(layer))};
}
""".replace("PAINTED", _PAINTED)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # silence the access log
        pass


def serve(site_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def image_pages(site_dir: Path) -> list[str]:
    """Site-relative URLs of the atlas image pages."""
    root = site_dir / "atlas" / "images"
    return sorted(f"atlas/images/{p.parent.name}/" for p in root.glob("*/index.html"))


def measure(site_dir: Path, loads: int = 5, toggles: int = 10) -> dict:
    """Load and toggle timings (milliseconds) of the site's image pages."""
    from playwright.sync_api import sync_playwright

    pages = image_pages(site_dir)
    if not pages:
        return {"error": f"no image pages under {site_dir}/atlas/images"}
    server, base = serve(site_dir)
    result: dict = {"pages": len(pages), "url_example": pages[0]}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            result["browser"] = browser.version
            loads_ms, load_events, heatmaps, map_requests = [], [], 0, 0
            for i in range(min(loads, len(pages))):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.goto(f"{base}/{pages[i]}", wait_until="load")
                info = page.evaluate(_WAIT_HEATMAPS)
                loads_ms.append(info["ready_ms"])
                load_events.append(info["load_event_ms"])
                heatmaps, map_requests = info["heatmaps"], info["map_requests"]
                if info["broken"]:
                    result.setdefault("broken_images", 0)
                    result["broken_images"] += info["broken"]
                context.close()
            result["load_ms"] = {"cold_first": loads_ms[0], "median": statistics.median(loads_ms),
                                 "max": max(loads_ms), "load_event_median": statistics.median(load_events),
                                 "heatmaps_on_page": heatmaps, "map_requests": map_requests, "samples": loads_ms}
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/{pages[0]}", wait_until="load")
            page.evaluate(_WAIT_HEATMAPS)
            layers = int(page.evaluate("() => Number(document.querySelector('input[name=layer]').max)")) + 1
            first, again, painted, requests, ok = [], [], [], 0, True
            for k in range(toggles):
                r = page.evaluate(_TOGGLE, k % layers)
                first.append(r["ms"])
                requests += r["requests"]
                ok = ok and r["ok"]
            for k in range(toggles):  # the same layers again
                r = page.evaluate(_TOGGLE, k % layers)
                again.append(r["ms"])
                painted.append(r["painted_ms"])
                requests += r["requests"]
                ok = ok and r["ok"]
            result["toggle_ms"] = {"first_visit_median": statistics.median(first), "first_visit_max": max(first),
                                   "cached_median": statistics.median(again), "cached_max": max(again),
                                   "cached_painted_median": statistics.median(painted),
                                   "heatmaps_updated": r["heatmaps"], "layers_changed": ok, "requests": requests,
                                   "samples_first": first, "samples_cached": again}
            context.close()
            browser.close()
    finally:
        server.shutdown()
    return result


# -- pages at scale: fake-map sites of N images ------------------------------------------------------------
# Page timings of the gallery, an image page, the head viewer and the model page of sites of 1,000 and 10,000
# images generated with fake maps through the export format (tests/fixtures/fake_maps.py, as the site tests
# do), and MkDocs' time against the number of atlas pages. "interactive": navigation start until the page's
# script has built what it shows (gallery: the first page of cards; head viewer: the sorted cards, with every
# heatmap in the viewport painted; image and model pages: every heatmap of the grid painted), then two frames.

_INTERACTIVE = """
async (kind) => {
  const t0 = performance.now();
  const ready = () => {
    const root = document.querySelector('.atlas-root[data-atlas-ready]');
    if (!root) return false;
    if (kind === 'gallery') return document.querySelectorAll('[data-role=cards] .atlas-card').length > 0;
    if (kind === 'head') {  // the sorted cards drawn, and every heatmap in the viewport painted
      const cards = [...document.querySelectorAll('.atlas-head-gallery canvas.atlas-heat')];
      return !!root.dataset.drawn && cards.filter((c) => c.getBoundingClientRect().top < innerHeight)
        .every((c) => c.dataset.ready);
    }
    const tiles = [...document.querySelectorAll('[data-role=grid] canvas.atlas-heat')];
    return tiles.length > 0 && tiles.every((c) => c.dataset.ready);
  };
  await new Promise((resolve) => {
    const poll = () => (ready() || performance.now() - t0 > 30000 ? resolve() : requestAnimationFrame(poll));
    poll();
  });
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const nav = performance.getEntriesByType('navigation')[0];
  return {interactive_ms: performance.now(), ok: ready(), dom_nodes: document.getElementsByTagName('*').length,
          html_bytes: nav ? nav.transferSize || nav.encodedBodySize : null};
}
"""

_FILTER = """
async () => {
  const select = document.querySelector('select[name=label]');
  const t0 = performance.now();
  select.value = select.options[1].value;
  select.dispatchEvent(new Event('change', {bubbles: true}));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {ms: performance.now() - t0, count: document.querySelector('.atlas-count').textContent};
}
"""


def measure_pages(site_dir: Path, loads: int = 3) -> dict:
    """Interactive times (ms; median of ``loads`` fresh pages, the first one cold) of the four page kinds."""
    from playwright.sync_api import sync_playwright

    images = image_pages(site_dir)
    pages = {"gallery": "atlas/", "image": images[len(images) // 2], "head": "atlas/heads/dinov2/#l02-h01",
             "model": "atlas/models/dinov2/"}
    server, base = serve(site_dir)
    out: dict = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for kind, url in pages.items():
                samples, info = [], {}
                for _ in range(loads):
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    page = context.new_page()
                    page.goto(f"{base}/{url}", wait_until="commit")
                    info = page.evaluate(_INTERACTIVE, kind)
                    samples.append(info["interactive_ms"])
                    if kind == "gallery":
                        out["gallery_filter_ms"] = page.evaluate(_FILTER)
                    context.close()
                out[kind] = {"url": url, "cold_ms": samples[0], "median_ms": statistics.median(samples),
                             "ok": info["ok"], "html_bytes": info["html_bytes"], "dom_nodes": info["dom_nodes"],
                             "samples": samples}
            browser.close()
    finally:
        server.shutdown()
    return out


def pages_at_scale(counts: list[int], work: Path, loads: int = 3) -> dict:
    """Fake-map sites of each image count (model dinov2: 3 layers x 4 heads, a 4 x 6 grid), their build and
    MkDocs times and page timings. The metrics stage runs too (the head viewer sorts by alignment)."""
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from atlas.metrics.stage import compute_metrics
    from atlas.site.stage import build_site
    from tests.fixtures.fake_maps import write_fake_build

    results: dict = {"machine_loadavg": [round(x, 2) for x in __import__("os").getloadavg()], "points": []}
    for n in counts:
        build = work / f"fake-{n}"
        t0 = time.perf_counter()
        if not (build / "maps" / "manifest.json").is_file():
            write_fake_build(build, images=n, models=("dinov2",))
        t1 = time.perf_counter()
        compute_metrics(build)
        t2 = time.perf_counter()
        report = build_site(build, build / "site")
        point = {"images": n, "fake_maps_s": t1 - t0, "metrics_s": t2 - t1, "site_s": report.seconds,
                 "render_s": report.render_seconds, "mkdocs_s": report.mkdocs_seconds, "atlas_pages": report.pages,
                 "html_files": sum(1 for _ in (build / "site").rglob("*.html"))}
        print(f"[pages] {n} images: site {report.seconds:.1f} s (MkDocs {report.mkdocs_seconds:.1f} s, "
              f"{report.pages} atlas pages)", flush=True)
        point["pages"] = measure_pages(build / "site", loads)
        print(f"[pages] {n} images: " + ", ".join(f"{k} {v['median_ms']:.0f} ms" for k, v in point["pages"].items()
                                                 if isinstance(v, dict) and "median_ms" in v), flush=True)
        results["points"].append(point)
    return results


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Page timings of fake-map sites of N images (headless Chromium).")
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000],
                        help="image counts (default 1000 10000)")
    parser.add_argument("--workdir", type=Path, default=Path("build/bench/pages"), help="where the fake builds go")
    parser.add_argument("--loads", type=int, default=3, help="fresh page loads per page kind (default 3)")
    parser.add_argument("--json", type=Path, default=Path("build/bench/pages.json"), help="results file")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    res = pages_at_scale(args.images, args.workdir.resolve(), args.loads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
