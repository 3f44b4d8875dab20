"""Shared fixtures: tiny checkpoints of every supported architecture, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

from tests import tiny_models

# Fuzz tests explore new random inputs on every local run; in CI (CI=true) they replay a fixed sequence,
# so a landing never depends on luck. A bug found locally gets a fixed test of its own.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

# Shared site fixtures: one browser for the whole session (Playwright's sync API allows one at a time).
pytest_plugins = ["tests.fixtures.site_fixtures"]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Folder of each tiny model, keyed as in tiny_models.HF_BUILDERS / TIMM_BUILDERS."""
    root = tmp_path_factory.mktemp("tiny")
    builders = {**tiny_models.HF_BUILDERS, **tiny_models.TIMM_BUILDERS}
    return {name: build(root / name) for name, build in builders.items()}
