"""Atlas projects: ``atlas init``, ``atlas.toml`` (every error one line), and ``atlas build`` of a project."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core.layout import slug
from atlas.core.page_safety import markdown_text
from atlas.project import KEYS, load_project

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "ssl_attention" / "sample_data"


def _images(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True)
    for path in sorted((SAMPLE / "images").iterdir())[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def _init(tmp: Path, *extra: str) -> Path:
    _images(tmp / "imgs")
    result = runner.invoke(app, ["init", str(tmp / "proj"), "--images", str(tmp / "imgs"), *extra])
    assert result.exit_code == 0, result.output
    return tmp / "proj"


# -- atlas init ---------------------------------------------------------------------------------------------

def test_init_writes_a_project_that_loads(tmp_path):
    proj = _init(tmp_path, "--model", "dinov2", "--site-name", "WikiChurches atlas")
    text = (proj / "atlas.toml").read_text()
    for key in KEYS:  # every key documented, set or commented out
        assert re.search(rf"^(# )?{key.name} = ", text, re.M), key.name
    project = load_project(proj / "atlas.toml")
    assert project.site.site_name == "WikiChurches atlas" and project.site.tool_docs is True
    assert project.build["images"].resolve() == (tmp_path / "imgs").resolve()
    assert project.build["model"] == ["dinov2"] and project.build["out"] == proj / "build"
    assert (proj / "pages" / "index.md").is_file() and "WikiChurches atlas" in (proj / "README.md").read_text()


def test_generated_workflow_parses_and_names_its_steps(tmp_path):
    proj = _init(tmp_path)
    workflow = yaml.safe_load((proj / ".github" / "workflows" / "atlas.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and "workflow_dispatch" in triggers
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert all(step.get("name") for step in steps)
    runs = " ".join(step.get("run", "") for step in steps)
    assert "pip install" in runs and "attention-atlas==0.1.0" in runs and "atlas build" in runs
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(u.startswith("actions/deploy-pages") for u in uses)


def test_init_refuses_to_overwrite_and_needs_the_images(tmp_path):
    proj = _init(tmp_path)
    again = runner.invoke(app, ["init", str(proj), "--images", str(tmp_path / "imgs")])
    assert again.exit_code == 2 and "atlas.toml: already exists" in again.stderr
    missing = runner.invoke(app, ["init", str(tmp_path / "other"), "--images", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "nope: --images: folder not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def _one_line(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_init_refuses_a_path_that_is_not_utf8_and_leaves_nothing(tmp_path):
    """A non-UTF-8 --images path cannot go into atlas.toml (UTF-8): one line, and no file is left that would
    block the next `atlas init` (issue 28, item 13)."""
    images = tmp_path / os.fsdecode(b"caf\xe9")  # a file name in Latin-1, as an old camera card has them
    os.mkdir(os.fsencode(images))
    _images(tmp_path / "imgs", count=1)
    proj = tmp_path / "proj"
    _one_line(runner.invoke(app, ["init", str(proj), "--images", str(images)]),
              f"--images {tmp_path}/caf\\xe9: not valid UTF-8 (../caf\\xe9); atlas.toml is UTF-8 text: rename it")
    assert not proj.exists()
    again = runner.invoke(app, ["init", str(proj), "--images", str(tmp_path / "imgs")])
    assert again.exit_code == 0, again.output
    assert load_project(proj / "atlas.toml").build["images"].resolve() == (tmp_path / "imgs").resolve()


def test_init_into_an_existing_file_is_one_line(tmp_path):
    _images(tmp_path / "imgs", count=1)
    (tmp_path / "notes.txt").write_text("mine\n")
    _one_line(runner.invoke(app, ["init", str(tmp_path / "notes.txt"), "--images", str(tmp_path / "imgs")]),
              f"{tmp_path / 'notes.txt'}: not a folder (a file of that name exists); choose another DIR")
    _one_line(runner.invoke(app, ["init", str(tmp_path / "notes.txt" / "proj"), "--images", str(tmp_path / "imgs")]),
              "Not a directory")
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_failed_init_leaves_no_file_that_blocks_the_next(tmp_path):
    """A write that fails part-way (here `.github` is a file, so the workflow cannot be written) removes the
    files already written: fixing the cause and running `atlas init` again works."""
    _images(tmp_path / "imgs", count=1)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".github").write_text("not a folder\n")
    result = runner.invoke(app, ["init", str(proj), "--images", str(tmp_path / "imgs")])
    _one_line(result, str(proj / ".github"))
    assert sorted(p.name for p in proj.iterdir()) == [".github"]  # no atlas.toml, no temp file
    (proj / ".github").unlink()
    assert runner.invoke(app, ["init", str(proj), "--images", str(tmp_path / "imgs")]).exit_code == 0


@pytest.mark.parametrize(("args", "expected"), [
    (["--site-name", "a\x7fb"], "--site-name: holds a control character ('\\x7f'); it must be one line of text"),
    (["--site-name", "two\nlines"], "--site-name: holds a control character ('\\n')"),
    (["--site-name", "caf" + os.fsdecode(b"\xe9")], "--site-name: not valid UTF-8 (caf\\xe9)"),
])
def test_init_refuses_a_site_name_the_tool_would_reject(tmp_path, args, expected):
    """A site name with a control character made an atlas.toml that `atlas build` then refused as invalid
    TOML: refused at init, before anything is written."""
    _images(tmp_path / "imgs", count=1)
    _one_line(runner.invoke(app, ["init", str(tmp_path / "proj"), "--images", str(tmp_path / "imgs"), *args]),
              expected)
    assert not (tmp_path / "proj").exists()


def test_init_writes_odd_paths_and_names_that_load_back(tmp_path):
    """A folder name with DEL is escaped in atlas.toml (TOML forbids it raw); HTML in the site name is text in
    the generated Markdown pages."""
    images = _images(tmp_path / "im\x7fg", count=1)
    proj = tmp_path / "proj"
    result = runner.invoke(app, ["init", str(proj), "--images", str(images), "--site-name", "<b>R&D</b> atlas"])
    assert result.exit_code == 0, result.output
    project = load_project(proj / "atlas.toml")
    assert project.build["images"].resolve() == images.resolve() and project.site.site_name == "<b>R&D</b> atlas"
    assert (proj / "pages" / "index.md").read_text().startswith(f"# {markdown_text('<b>R&D</b> atlas')}\n")


def test_the_docs_reference_every_key():
    page = (ROOT / "site_src" / "your-own-atlas.md").read_text()
    for key in KEYS:
        assert f"`{key.name}`" in page, key.name


# -- config errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('images = "imgs"\ncolour = "red"', "unknown key 'colour' (known keys: site_name,"),
        ('images = "imgs"\nbatch_size = "8"', 'batch_size: expected a positive integer, got string "8"'),
        ('images = "imgs"\nbatch_size = 0', "batch_size: expected a positive integer, got integer 0"),
        ('images = "nope"', "images: folder not found: "),
        ("images = 3", "images: expected a folder path (a string), got integer 3"),
        ('site_name = "x"', "images: missing (the folder of images, relative to this file)"),
        ('images = "imgs"\nannotations = "boxes.json"', "annotations: file not found: "),
        ('images = "imgs"\nmodels = "dinov2"', 'models: expected a list of strings, got string "dinov2"'),
        ('images = "imgs"\nmethods = ["cls", "attn"]', "methods: expected methods among cls, mean"),
        ('images = "imgs"\nweights = "best"', 'weights: expected one of pretrained, random, auto, got string "best"'),
        ('images = "imgs"\ncolormap = 1', "colormap: expected one of viridis"),
        ('images = "imgs"\nimage_size = "big"', 'image_size: expected a positive integer or a string "HxW"'),
        ('images = "imgs"\ntool_docs = "yes"', 'tool_docs: expected true or false, got string "yes"'),
        ('images = "imgs"\nsite_url = ["a"]', 'site_url: expected a string, got list ["a"]'),
        ('images = "imgs"\n[site]\nname = "x"', "unknown key 'site'"),
        ('images = "imgs"\npages = "imgs/.."', "pages: atlas/ is the atlas' own; rename it in "),
        ('images = "imgs', "not valid TOML (Illegal character '\\n' (at line 1, column 15))"),
        # the settings every page shows (issue 28): one line of text; the address a URL with nothing to escape
        ('images = "imgs"\nsite_name = "a\\u0007b"', "site_name: holds a control character ('\\x07'); it must be "
         "one line of text"),
        ('images = "imgs"\ndescription = "one\\ntwo"', "description: holds a control character ('\\n')"),
        ('images = "imgs"\nsite_name = "a\\u2028b"', "site_name: holds a line separator ('\\u2028')"),
        ('images = "imgs"\nsite_url = "https://x.org/\\u0085"', "site_url: holds a control character ('\\x85')"),
        ("images = \"imgs\"\nsite_url = 'https://x.org/\"><svg/onload=alert(1)>/'",
         "site_url: holds '\"', which the site's links cannot carry as it is; write it percent-encoded (%22)"),
        ('images = "imgs"\nsite_url = "https://x.org/R&D/"', "site_url: holds '&', which the site's links cannot"),
        ('images = "imgs"\nsite_url = "https://x.org/a b/"', "site_url: holds ' ', which"),
        ('images = "imgs"\nsite_url = "javascript:alert(1)"', "site_url: expected an http:// or https:// address"),
        ('images = "imgs"\nsite_url = "example.org/atlas/"', "site_url: expected an http:// or https:// address"),
        # whole numbers: ASCII digits within the flags' bounds (issue 28, item 12)
        ('images = "imgs"\nquery_layers = "²"', "query_layers: '²' is not none, last, all or a comma list"),
        ('images = "imgs"\nquery_layers = "0,2000"', "query_layers: layer '2000' is above the maximum of 1,000"),
        ('images = "imgs"\nimage_size = "²x²"', 'image_size: expected a positive integer or a string "HxW"'),
        ('images = "imgs"\nimage_size = "٣x٣"', 'image_size: expected a positive integer or a string "HxW"'),
        ('images = "imgs"\nbatch_size = 99999', "batch_size: expected a whole number from 1 to 1,024, got integer"),
        ('images = "imgs"\nbatch_size = ' + "9" * 5000, "not valid TOML (a number of thousands of digits)"),
        ('images = "imgs"\nsite_images = 10000000000', "site_images: expected a whole number from 1 to "),
        ('images = "imgs"\ntarget_class = 10000000', "target_class: expected a whole number from 0 to 1,000,000"),
        ('images = "imgs"\nray_cpus = 5000', "ray_cpus: expected a whole number from 1 to 4,096"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(tmp_path, body, expected):
    _images(tmp_path / "imgs", count=1)
    (tmp_path / "atlas").mkdir()  # a pages folder may not have one
    config = tmp_path / "atlas.toml"
    config.write_text(body + "\n")
    result = runner.invoke(app, ["build", "--config", str(config), "--model", "dinov2", "--no-site"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config}: ") and expected in lines[0], lines[0]


def test_missing_config_file_is_one_line(tmp_path):
    result = runner.invoke(app, ["build", "--config", str(tmp_path / "atlas.toml"), "--no-site"])
    assert result.exit_code == 2 and f"{tmp_path / 'atlas.toml'}: config file not found" in result.stderr


# -- atlas build of a project -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def project_build(tiny_checkpoints, tmp_path_factory):
    """A project with its own pages, site_url and boxes, built inside its folder with the model as a flag."""
    tmp = tmp_path_factory.mktemp("project")
    proj = _init(tmp, "--annotations", str(SAMPLE / "annotations.json"), "--site-name", "Churches & co")
    with (proj / "atlas.toml").open("a") as fh:
        fh.write('site_url = "https://example.org/churches/"\nmethods = ["cls", "rollout"]\n')
    text = (proj / "atlas.toml").read_text().replace('weights = "auto"', 'weights = "random"')
    (proj / "atlas.toml").write_text(text)
    (proj / "pages" / "about.md").write_text("# About the dataset\n\nPhotos of churches, cited as Zebrastripe.\n")
    (proj / "pages" / "citation.md").write_text("# How to cite\n\nPlease cite us.\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(proj)
        result = runner.invoke(app, ["build", "--model", f"tiny={tiny_checkpoints['dinov2']}",
                                     "--weights", "pretrained"])
    assert result.exit_code == 0, result.output
    return proj


def test_project_builds_into_its_build_folder_with_its_name(project_build):
    site = project_build / "build" / "site"
    index = (site / "index.html").read_text()
    assert "<title>Churches &amp; co</title>" in index
    assert '<link rel="canonical" href="https://example.org/churches/">' in index
    assert (site / "atlas" / "leaderboard" / "index.html").is_file()
    assert not (project_build.parent / "build").exists()


def test_flags_win_over_the_file_and_the_file_over_defaults(project_build):
    manifest = json.loads((project_build / "build" / "maps" / "manifest.json").read_text())
    (model,) = manifest["models"]
    assert model["weights"] == "pretrained"  # --weights pretrained beats weights = "random"
    assert model["methods"] == ["cls", "rollout"]  # methods from the file
    assert any(image["boxes"] for image in manifest["images"])  # annotations from the file


def test_sitemap_lists_the_site_url(project_build):
    sitemap = (project_build / "build" / "site" / "sitemap.xml").read_text()
    locations = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert "https://example.org/churches/" in locations
    assert "https://example.org/churches/about/" in locations
    assert "https://example.org/churches/attention-atlas/methods/" in locations
    # the image pages, written outside MkDocs from its page shell, are listed; the shell is not
    manifest = json.loads((project_build / "build" / "maps" / "manifest.json").read_text())
    images = [f"https://example.org/churches/atlas/images/{slug(i['id'])}/" for i in manifest["images"]]
    assert images and set(images) <= set(locations) and not any("_shell_" in u for u in locations)
    packed = gzip.decompress((project_build / "build" / "site" / "sitemap.xml.gz").read_bytes()).decode()
    assert packed == sitemap
    page = (project_build / "build" / "site" / "atlas" / "images" / slug(manifest["images"][0]["id"]) / "index.html")
    assert f'<link rel="canonical" href="{images[0]}">' in page.read_text()


def test_user_pages_lead_the_nav_and_the_search(project_build):
    site = project_build / "build" / "site"
    index = (site / "index.html").read_text()
    nav = re.findall(r'<a href="([^"]*)" class="md-nav__link', index)
    assert nav.index("about/") < nav.index("atlas/") < nav.index("attention-atlas/methods/")
    assert "About Attention Atlas" in index and "Performance" in index
    search = json.loads((site / "search" / "search_index.json").read_text())
    about = [doc for doc in search["docs"] if doc["location"].startswith("about/")]
    assert about and "Zebrastripe" in " ".join(doc["text"] for doc in about)
    assert any(doc["location"].startswith("citation/") for doc in search["docs"])


def test_tool_docs_can_be_left_out(tiny_checkpoints, tmp_path):
    proj = _init(tmp_path)
    text = (proj / "atlas.toml").read_text().replace("tool_docs = true", "tool_docs = false")
    (proj / "atlas.toml").write_text(text.replace('pages = "pages"\n', ""))  # the generated home page
    result = runner.invoke(app, ["build", "--config", str(proj / "atlas.toml"),
                                 "--model", f"tiny={tiny_checkpoints['dinov2']}", "--method", "cls"])
    assert result.exit_code == 0, result.output
    site = proj / "build" / "site"
    index = (site / "index.html").read_text()
    assert "About Attention Atlas" not in index and "Performance" not in index and "Gallery" in index
    assert not (site / "attention-atlas").exists() and not (site / "methods").exists()
    leaderboard = (site / "atlas" / "leaderboard" / "index.html").read_text()
    assert "metrics.md" not in leaderboard and 'href="../../attention-atlas' not in leaderboard


def test_prompts_and_target_class_keys(tmp_path):
    """``prompts`` is a file relative to atlas.toml; ``target_class`` takes class 0 but no negative index."""
    from atlas.project import load_project
    from ssl_attention.errors import AtlasError

    (tmp_path / "images").mkdir()
    (tmp_path / "prompts.txt").write_text("a photo of a tower.\n", encoding="utf-8")
    config = tmp_path / "atlas.toml"
    config.write_text('images = "images"\nprompts = "prompts.txt"\ntarget_class = 0\n', encoding="utf-8")
    build = load_project(config).build
    assert build["prompts"] == tmp_path / "prompts.txt" and build["target_class"] == 0
    config.write_text('images = "images"\ntarget_class = -1\n', encoding="utf-8")
    with pytest.raises(AtlasError, match="target_class: expected a non-negative integer"):
        load_project(config)
    config.write_text('images = "images"\nprompts = "missing.txt"\n', encoding="utf-8")
    with pytest.raises(AtlasError, match="prompts"):
        load_project(config)
