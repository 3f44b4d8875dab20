"""The one schema of build options (atlas/options.py) feeds --help, atlas.toml, atlas init and the CLI reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from atlas.options import BUILD_OPTIONS, reference_table
from atlas.project import KEYS

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "fixtures" / "toy_option.py"


def _toy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="250", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(TOY), *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=env, timeout=120)


def test_the_cli_reference_table_is_the_schema():
    assert reference_table() in (ROOT / "site_src" / "cli.md").read_text(encoding="utf-8")


def test_every_build_key_of_atlas_toml_is_an_option_of_the_schema():
    build_keys = {key.name: key.param for key in KEYS if key.param}
    assert build_keys == {o.key: o.name for o in BUILD_OPTIONS if o.key}


def test_a_toy_option_shows_up_in_help_atlas_toml_init_and_the_build(tmp_path):
    """One Option entry and one BuildOptions field (tests/fixtures/toy_option.py) are all a new option needs."""
    images = tmp_path / "imgs"
    images.mkdir()
    helped = _toy("build", "--help")
    assert helped.returncode == 0 and "--toy-level" in helped.stdout and "A toy level between 1 and 10" in helped.stdout

    given = _toy("build", "--toy-level", "7", "--images", str(images))
    assert given.returncode == 2 and "the build would run with toy_level=7" in given.stderr
    default = _toy("build", "--images", str(images))
    assert "toy_level=3" in default.stderr
    refused = _toy("build", "--toy-level", "11", "--images", str(images))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--toy-level: 11 is not between" in refused.stderr

    init = _toy("init", str(tmp_path / "proj"), "--images", str(images))
    assert init.returncode == 0, init.stderr
    toml = (tmp_path / "proj" / "atlas.toml").read_text(encoding="utf-8")
    assert "# A toy level between 1 and 10 (the structure test's option).\n# toy_level = 5\n" in toml

    (tmp_path / "proj" / "atlas.toml").write_text(toml.replace("# toy_level = 5", "toy_level = 6"), encoding="utf-8")
    from_file = _toy("build", cwd=tmp_path / "proj")
    assert "toy_level=6" in from_file.stderr
    flag_wins = _toy("build", "--toy-level", "9", cwd=tmp_path / "proj")
    assert "toy_level=9" in flag_wins.stderr

    (tmp_path / "proj" / "atlas.toml").write_text(toml.replace("# toy_level = 5", 'toy_level = "x"'), encoding="utf-8")
    bad = _toy("build", cwd=tmp_path / "proj")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert 'atlas.toml: toy_level: expected a positive integer, got string "x"' in bad.stderr
