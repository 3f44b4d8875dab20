"""The library says so itself when ``load_model(..., weights="auto")`` falls back to random weights."""

from __future__ import annotations

import logging
import warnings

import pytest

from ssl_attention.errors import RandomWeightsWarning
from ssl_attention.models import ModelRequest, load_model, parse_model_request


def test_auto_weights_offline_warn_and_log_that_the_model_is_random(caplog):
    """Offline (HF_HUB_OFFLINE=1, tests/conftest.py), as in the README's library example."""
    with caplog.at_level(logging.WARNING), pytest.warns(RandomWeightsWarning) as caught:
        model = load_model(parse_model_request("dinov2"), weights="auto")
    assert model.weights == "random"
    (warning,) = [w for w in caught if issubclass(w.category, RandomWeightsWarning)]
    message = str(warning.message)
    assert message.startswith("model dinov2: pretrained weights of facebook/dinov2-with-registers-base unavailable")
    assert "RANDOM weights" in message and "\n" not in message
    assert warning.filename == __file__  # it points at the caller's line, not at the library
    records = [r for r in caplog.records if r.name == "ssl_attention.models.loader"]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, message)]


def test_no_warning_when_the_weights_are_had_or_random_ones_are_asked_for(tiny_checkpoints, caplog):
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error", RandomWeightsWarning)
        assert load_model(ModelRequest("d", str(tiny_checkpoints["dinov2"])), weights="auto").weights == "pretrained"
        assert load_model(ModelRequest("d", str(tiny_checkpoints["dinov2"])), weights="random").weights == "random"
    assert not [r for r in caplog.records if r.name.startswith("ssl_attention")]


def test_the_library_logger_prints_nothing_unless_the_application_configures_logging():
    """A NullHandler on the package logger: Python's last-resort handler does not print the record
    (the warning is what a plain script sees)."""
    handlers = logging.getLogger("ssl_attention").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
