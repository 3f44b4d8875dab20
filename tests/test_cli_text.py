"""What the CLI prints, as a user reads it: plurals, paths, ``--help``, the render line, ``atlas serve``."""

from __future__ import annotations

import shutil
import warnings

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from atlas import cli
from atlas.cli import app
from atlas.dataset.stage import sample_paths
from ssl_attention.errors import RandomWeightsWarning

runner = CliRunner()


@pytest.fixture
def wide(monkeypatch):
    """The CLI's console 1,000 columns wide, so that no line of the build output is wrapped."""
    monkeypatch.setattr(cli.console, "_width", 1000)


def _flat(text: str) -> str:
    """``--help`` output as one line: borders and line breaks folded into single spaces."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", [None, "build", "init", "models", "serve", "deploy"])
def test_help_shows_no_value_placeholder_on_flags_and_every_help_text_whole(command):
    args = [command, "--help"] if command else ["--help"]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output  # --help, --strict, --heads/--no-heads... take no value
    group = get_command(app)
    params = group.commands[command].params if command else group.params
    flat = _flat(result.output)
    for param in params:  # rich markup must not eat a [word] of a help text (e.g. attention-atlas[ray])
        if param.help:
            assert " ".join(param.help.replace("\\[", "[").split()) in flat, param.name
    if command == "build":
        assert "pip install 'attention-atlas[ray]'" in flat


def _build(args: list[str]):
    result = runner.invoke(app, ["build", "--weights", "pretrained", "--image-size", "16", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_build_output_counts_in_the_singular_and_says_when_sprites_were_encoded(tiny_checkpoints, tmp_path, wide):
    args = ["--model", f"v={tiny_checkpoints['vit']}", "--out", str(tmp_path / "out")]
    first = _build(args)
    assert "12 images, 1 model, device" in first  # not "1 models"
    assert "3 layers x 4 heads, grid 4x4, 1 prefix token)" in first  # not "1 prefix tokens"
    assert "(12 images x 1 model)" in first and "Built 12 images in" in first
    # the models stage encoded every sprite sheet while it wrote the maps: said so, not "already encoded"
    assert "render" in first and "for 12 model x image pairs: 12 encoded with their maps in this build;" in first
    again = _build(args)
    assert "for 12 model x image pairs: 12 up to date from an earlier build;" in again
    next((tmp_path / "out" / "render-stamps").glob("v/*.json")).unlink()  # one pair for the site stage to encode
    third = _build(args)
    assert "for 12 model x image pairs: 1 encoded now, 11 up to date from an earlier build;" in third


def test_paths_from_a_project_file_are_printed_without_dot_dot(tiny_checkpoints, tmp_path, wide):
    photos = tmp_path / "photos"
    photos.mkdir()
    images, _ = sample_paths()
    shutil.copy(next(images.glob("chelsea.*")), photos)
    (photos / "broken.jpg").write_bytes(b"not an image")
    project = tmp_path / "work" / "myatlas"
    project.mkdir(parents=True)
    (project / "atlas.toml").write_text(f'images = "../../photos"\nmodels = ["v={tiny_checkpoints["vit"]}"]\n'
                                        'weights = "pretrained"\n')
    config = tmp_path / "work" / ".." / "work" / "myatlas" / "atlas.toml"
    result = runner.invoke(app, ["build", "--config", str(config), "--image-size", "16", "--no-site"])
    assert result.exit_code == 0, result.output
    assert f"Atlas project: {project / 'atlas.toml'}\n" in result.output
    assert f"skipped: {photos / 'broken.jpg'}: cannot decode image" in result.output
    assert "/../" not in result.output


def test_a_fallback_to_random_weights_is_said_once_in_the_build_words(tmp_path, wide):
    """The library warns (RandomWeightsWarning); the build says it in its own line and hides the warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["build", "--model", "dinov2", "--weights", "auto", "--image-size", "28",
                                     "--out", str(tmp_path / "out"), "--no-site"])
    assert result.exit_code == 0, result.output
    assert "WARNING dinov2: pretrained weights unavailable, using RANDOM weights" in result.output
    assert not [w for w in caught if issubclass(w.category, RandomWeightsWarning)]


def test_serve_says_serving_only_once_it_listens(tmp_path):
    import socket

    (tmp_path / "index.html").write_text("<html></html>")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--site-dir", str(tmp_path / "x" / ".."), "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Serving" not in result.output
