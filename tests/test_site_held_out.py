"""The leaderboard's held-out estimate (``--select-on``, issue 25 item 3) in headless Chromium: the in-sample and
held-out figures side by side, each equal to summary.json's, with the number of selection and held-out images;
and a site built without the option shows no such section.

Runs under the page fixture's checks: no console error, no failed request, no request off 127.0.0.1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas.metrics.stage import compute_metrics
from atlas.site.stage import build_site
from tests.fixtures.fake_maps import write_fake_build
from tests.fixtures.node_tools import axe_source
from tests.fixtures.site_fixtures import checked_page
from tests.fixtures.site_server import serve_site
from tests.test_site_hostile import AXE_RUN, SETTLED

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def held_site(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A fake build of 24 images with ``--select-on 0.5``, its site served: (url, build folder)."""
    build = tmp_path_factory.mktemp("held-site")
    write_fake_build(build, images=24, models=("dinov2", "siglip"))
    compute_metrics(build, select_on=0.5)
    with serve_site(build_site(build, build / "site").site_dir) as url:
        yield url, build


def _fmt(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def test_leaderboard_shows_in_sample_and_held_out_figures_of_summary_json(browser, held_site):
    url, build = held_site
    published = json.loads((build / "site" / "atlas-data" / "metrics" / "summary.json").read_text(encoding="utf-8"))
    held = published["held_out"]
    with checked_page(browser) as page:
        page.goto(url + "atlas/leaderboard/")
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-role=n-selection]").inner_text() == str(held["n_selection"])
        assert page.locator("[data-role=n-held-out]").inner_text() == str(held["n_held_out"])
        assert page.locator("[data-role=held-out-pointer] a[href='#held-out']").is_visible()
        rows = page.locator("table.atlas-held-out tbody tr")
        entries = [("layer", e) for e in held["leaderboard"]] + [("head", e) for e in held["best_heads"]]
        assert rows.count() == len(entries) >= 6
        for i, (kind, entry) in enumerate(entries):
            row = rows.nth(i)
            assert (row.get_attribute("data-method"), row.get_attribute("data-kind")) == (entry["method"], kind)
            assert entry["model"] in row.locator("th").inner_text()
            for part, key in (("in-sample", "in_sample"), ("held-out", "held_out")):
                want = entry[key]
                cell = row.locator(f"td[data-figure={part}]")
                assert cell.is_visible()
                got = {k: float(cell.get_attribute(f"data-{k}")) for k in ("mean", "lo", "hi")}
                assert got == {k: want[k] for k in ("mean", "lo", "hi")}, (entry, part)
                assert int(cell.get_attribute("data-n")) == want["n"]
                text = cell.inner_text()
                assert text.startswith(_fmt(want["mean"])) and f"[{_fmt(want['lo'])}, {_fmt(want['hi'])}]" in text
                assert f"n={want['n']}" in text
                choice = row.locator(f"td[data-choice={part}]").inner_text()
                head = "" if want["head"] == "fused" else f" h{int(want['head']):02d}"
                assert choice == f"layer {want['layer']}{head}"
        # side by side: on one line of the table, the in-sample figure left of the held-out one
        first = rows.first
        left, right = (first.locator(f"td[data-figure={p}]").bounding_box() for p in ("in-sample", "held-out"))
        assert abs(left["y"] - right["y"]) < 2 and left["x"] < right["x"]
        # the in-sample figure of a best-layer row is the leaderboard's own row
        entry = held["leaderboard"][0]
        board = page.locator(f"table.atlas-leaderboard tr[data-method={entry['method']}] td.atlas-primary").first
        assert board.locator(".atlas-mean").inner_text() == _fmt(entry["in_sample"]["mean"])
        page.evaluate(SETTLED)
        page.evaluate(axe_source())
        assert page.evaluate(AXE_RUN) == []
        page.set_viewport_size(PHONE)
        page.evaluate(SETTLED)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_site_without_select_on_has_no_held_out_section(page, site_url):
    page.goto(site_url + "atlas/leaderboard/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#held-out, table.atlas-held-out, [data-role=held-out-pointer]").count() == 0
