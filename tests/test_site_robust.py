"""The site stage on the fake build: dates from SOURCE_DATE_EPOCH, ids kept inside the site.

Killed builds (mid-render among other stages) are tested on a real process in tests/test_site_hostile.py.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from datetime import datetime, timezone
from pathlib import Path

import mkdocs.utils
import pytest

from atlas.site.stage import build_site, default_source_date_epoch
from tests.fixtures.fake_maps import write_fake_build
from tests.fixtures.trees import tree


def _clock(monkeypatch, when: datetime) -> None:
    """Make MkDocs believe the build runs at ``when`` (only where SOURCE_DATE_EPOCH is not set)."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return when.astimezone(tz) if tz else when

    monkeypatch.setattr(mkdocs.utils, "datetime", Clock)


def _gzip_mtime(site: Path) -> int:
    return struct.unpack("<I", (site / "sitemap.xml.gz").read_bytes()[4:8])[0]


def test_clean_builds_on_different_days_are_byte_identical(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    trees = []
    days = {"a": datetime(2031, 1, 2, tzinfo=timezone.utc), "b": datetime(2032, 7, 9, tzinfo=timezone.utc)}
    for name, day in days.items():
        build = tmp_path / name
        write_fake_build(build)
        _clock(monkeypatch, day)
        build_site(build, build / "site")
        trees.append(tree(build / "site"))
        assert "SOURCE_DATE_EPOCH" not in os.environ  # the default does not leak out of the build
    assert sorted(trees[0]) == sorted(trees[1])
    assert [k for k in trees[0] if trees[0][k] != trees[1][k]] == []
    expected = default_source_date_epoch(tmp_path / "a")
    assert _gzip_mtime(tmp_path / "a" / "site") == expected == default_source_date_epoch(tmp_path / "b")
    assert gzip.decompress((tmp_path / "a" / "site" / "sitemap.xml.gz").read_bytes()) == trees[0]["sitemap.xml"]


def test_source_date_epoch_is_used_when_set(tmp_path, monkeypatch):
    build = tmp_path / "b"
    write_fake_build(build)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC
    build_site(build, build / "site")
    assert _gzip_mtime(build / "site") == 1699920000  # MkDocs keeps the day (midnight UTC)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(Exception, match="SOURCE_DATE_EPOCH"):
        build_site(build, build / "site")
    assert (build / "site" / "index.html").is_file()  # the failed build left the previous site in place


def test_ids_cannot_escape_the_output_directory(tmp_path):
    build = tmp_path / "deep" / "build"
    manifest = write_fake_build(build)
    evil = "../../../escaped"
    manifest["images"].append(dict(manifest["images"][0], id=evil, boxes=[{"label": "../x", "bbox": [1, 1, 2, 2]}]))
    manifest["models"][0]["maps"][evil] = manifest["models"][0]["maps"]["astronaut"]
    (build / "maps" / "manifest.json").write_text(json.dumps(manifest))
    before = sorted(p for p in tmp_path.rglob("*") if build not in p.parents and p != build)
    build_site(build, build / "site")
    after = sorted(p for p in tmp_path.rglob("*") if build not in p.parents and p != build)
    assert after == before
    site = (build / "site").resolve()
    for p in site.rglob("*"):
        assert site in p.resolve().parents
    assert not list(site.rglob("*escaped*")) or all("escaped-" in p.name for p in site.rglob("*escaped*"))


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_missing_test_tool_skips_locally_and_fails_on_ci(monkeypatch, ci):
    """Without Chromium, npm packages or Java the site checks skip on a developer machine; on CI (CI=true,
    where make test installs them) they fail, so a broken install cannot look like a green run."""
    from tests.fixtures import node_tools, site_fixtures

    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(node_tools, "_installed", lambda name: False)
    monkeypatch.setattr(node_tools.shutil, "which", lambda name: None)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    checks = [lambda: node_tools.node_package("axe-core"), node_tools.axe_source, node_tools.vnu_command,
              lambda: site_fixtures.missing_tool("Debian chromium is not installed")]
    for check in checks:
        with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as err:  # a skip must not escape
            check()
        assert err.type is expected and ("CI=true" in str(err.value)) == bool(ci), str(err.value)
