"""Only the build step that puts the top-level templates/, site_src/ and mkdocs.yml into the wheel.

Everything else is in pyproject.toml. The folders stay at the repository's top level (the docs build and
the tests use them there); ``atlas.core.resources`` finds the copies under ``atlas/_bundled/`` in a wheel.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("templates", "site_src", "mkdocs.yml")  # where atlas.core.resources looks for them


class BuildPyWithSiteSources(build_py):
    """``build_py`` that also copies the site sources into ``atlas/_bundled/`` (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the top-level folders themselves
        target = Path(self.build_lib) / "atlas" / "_bundled"
        for name in BUNDLED:
            source, dest = Path(name), target / name
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": BuildPyWithSiteSources})
