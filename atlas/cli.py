"""The ``atlas`` command line: init, build, serve, deploy, models."""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from atlas.core.layout import RESERVED_MODEL_NAMES
from atlas.core.wording import count, normal_path
from atlas.options import merged, resolve, with_schema
from ssl_attention.errors import AtlasError


def _no_flag_metavar(params: list) -> list:
    """``params`` with no value placeholder on the flags (recent Typer shows ``<bool>`` as the value of
    ``--help``, ``--strict``, ``--heads/--no-heads``...: a flag takes none)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    """The ``atlas`` group: its flags without a value placeholder in ``--help``."""

    def get_params(self, ctx):
        return _no_flag_metavar(super().get_params(ctx))


class _Command(TyperCommand):
    """An ``atlas`` command: its flags without a value placeholder in ``--help``."""

    def get_params(self, ctx):
        return _no_flag_metavar(super().get_params(ctx))


app = typer.Typer(
    cls=_Group,
    help="Attention Atlas: see where vision models look, per model, layer and attention head.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("attention-atlas")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"atlas (attention-atlas) {_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Attention Atlas: see where vision models look, per model, layer and attention head."""


def _fail(message: str) -> None:
    """Print one line to stderr and exit with code 2 (bad input or usage)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


_RESERVED = ", ".join(sorted(RESERVED_MODEL_NAMES))
_ANNOTATIONS = typer.Option("--annotations", metavar="FILE", dir_okay=False,
                            help="Boxes: COCO detection JSON or WikiChurches building_parts.json (optional).")

@with_schema
def build(ctx: typer.Context, **given: Any) -> None:
    """Compute every map (model x method x layer x head), cache it, and build the atlas site."""
    from atlas.build import BuildOptions, build_methods, run_build
    from atlas.project import find_project

    out = given["out"]
    try:
        project = find_project(given["config"])
        values = dict(given)
        if project is not None:
            on_command_line = {name for name in given if ctx.get_parameter_source(name).name != "DEFAULT"}
            values = merged(given, on_command_line, project.build)
            console.print(escape(f"Atlas project: {project.file}"), highlight=False)
        for name in ("images", "annotations", "prompts", "out", "site_dir"):  # printed without '..'
            values[name] = None if values[name] is None else normal_path(values[name])
        out = values["out"]
        sample = values["images"] is None and not values["model"] and not values["bases"]
        requests, unknown = _model_requests(values.pop("model"))
        if sample:  # the bundled sample with the default models: also its declared variant
            from atlas.core.variants import SAMPLE_VARIANT, sample_variant_request

            requests.append(sample_variant_request())
            values["bases"] = [f"{SAMPLE_VARIANT.variant}={SAMPLE_VARIANT.base}"]
        names = [r.name for r in requests]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            _fail(f"--model: the same name is given twice ({', '.join(twice)})")
        if values["ray"] is not None:
            from atlas.models.ray_cluster import check_address, require_ray

            check_address(values["ray"])
            require_ray()
        resolved = resolve(values)
        methods, per_head = build_methods(resolved.pop("method"), resolved.pop("heads"))
        options = BuildOptions.from_resolved(resolved, requests=requests, skipped_models=unknown, methods=methods,
                                             per_head=per_head, site_settings=project.site if project else None)
        report = run_build(options, console)
    except AtlasError as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. a read-only or full disk: the old site is kept
        _fail(_os_error_line(exc, f"--out {out}"))
    _summary(report)
    if given["strict"] and report.skipped:
        err_console.print(f"[bold red]error:[/] --strict: {count(len(report.skipped), 'item')} skipped",
                          highlight=False)
        raise typer.Exit(code=1)


app.command(cls=_Command)(build)
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _os_error_line(exc: OSError, fallback: str) -> str:
    """One line for a failed file operation: the file (else ``fallback``) and the problem, e.g.
    ``build/maps/x.npz: No space left on device``. A failed write of a copy names the copy, not its source;
    a ``shutil.Error`` (a list of failed copies) is said by its first failure."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        first = exc.args[0][0]
        if isinstance(first, tuple) and len(first) == 3:
            why = str(first[2]).split("] ", 1)[-1].split(": ", 1)[0]
            return f"{first[1]}: {why}"
    names = (exc.filename2, exc.filename) if exc.errno in _WRITE_ERRORS else (exc.filename, exc.filename2)
    where = next((str(f) for f in names if f), fallback)
    return f"{where}: {exc.strerror or exc}"


def _model_requests(texts: list[str] | None) -> tuple[list, list[str]]:
    """The parsed ``--model`` values and one line per value that names no model or a reserved name
    (skipped when others do).

    A bad value is an error when it is the only ``--model``, or when no value names a model.
    """
    from ssl_attention.models import DEFAULT_MODELS, parse_model_request

    requests, unknown = [], []
    for text in texts or list(DEFAULT_MODELS):
        try:
            request = parse_model_request(text)
        except AtlasError as exc:
            unknown.append(str(exc))
            continue
        if request.name in RESERVED_MODEL_NAMES:
            unknown.append(f"model name {request.name!r} is reserved for the site's own pages (reserved names: "
                           f"{_RESERVED}); choose another NAME")
        else:
            requests.append(request)
    if unknown and not requests:
        _fail("; ".join(unknown))
    return requests, unknown


def _summary(report) -> None:
    table = Table(title=f"Built {count(report.images, 'image')} in {report.seconds:.1f} s", title_justify="left")
    for column in ("model", "weights", "methods", "computed", "reused"):
        table.add_column(column)
    for result in report.models:
        entry = result.entry
        weights = "[bold red]RANDOM[/]" if entry.random else entry.weights
        table.add_row(escape(entry.name), weights, ", ".join(entry.methods), str(result.computed), str(result.reused))
    console.print(table)
    if report.skipped:
        console.print(f"[yellow]{count(len(report.skipped), 'item')} skipped[/] (listed above)")
    if report.random_models:
        console.print(f"[bold red]RANDOM weights:[/] {escape(', '.join(report.random_models))} - "
                      "their maps show no learned attention.", highlight=False)
    if report.site_dir is not None:
        console.print(escape(f"Site: {report.site_dir}  (atlas serve --site-dir {report.site_dir})"), highlight=False)


@app.command(cls=_Command)
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The project folder (created if missing).")],
    images: Annotated[Path, typer.Option("--images", metavar="DIR", file_okay=False,
                                         help="Folder of the atlas' images (recorded relative to DIR).")],
    annotations: Annotated[Path | None, _ANNOTATIONS] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="NAME[=CHECKPOINT]",
        help="Models of the atlas; repeat for several. Default: all seven known models.")] = None,
    site_name: Annotated[str | None, typer.Option("--site-name", metavar="TEXT",
                                                  help="The site's title. Default: DIR's name.")] = None,
) -> None:
    """Start an atlas project in DIR: atlas.toml, a GitHub Actions workflow, a README and a home page.

    atlas.toml records how the atlas is built (every key commented); run `atlas build` in DIR to build it
    into DIR/build. The workflow rebuilds it and publishes it on GitHub Pages on every push.
    """
    from atlas.project import init_project

    directory = normal_path(directory)
    try:
        written = init_project(directory, images=images, annotations=annotations, models=model,
                               site_name=site_name, version=_version())
    except AtlasError as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. a read-only folder, or a file where DIR's parent should be
        _fail(_os_error_line(exc, str(directory)))
    for path in written:
        console.print(escape(f"wrote {path}"), highlight=False)
    console.print(escape(f"Next: cd {directory} && atlas build"), highlight=False)


@app.command(cls=_Command)
def models() -> None:
    """List the known model names, their default checkpoints and methods."""
    from ssl_attention.models import DEFAULT_MODELS
    from ssl_attention.models.specs import default_methods

    table = Table(title="Known models (use NAME, or NAME=CHECKPOINT for any other checkpoint)")
    for column in ("name", "default checkpoint", "methods"):
        table.add_column(column)
    for name, checkpoint in DEFAULT_MODELS.items():
        table.add_row(name, checkpoint, ", ".join(default_methods(name)))
    console.print(table)


@app.command(cls=_Command)
def serve(
    site_dir: Annotated[Path, typer.Option("--site-dir", help="The built site.")] = Path("build/site"),
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="0 to 65535; 0: any free port.")] = 8000,
) -> None:
    """Serve the built site locally (Ctrl-C stops).

    Only regular files inside the site are served (a link out of it is 404), a folder
    without index.html is 404 (no listings), and requests are answered in parallel.
    """
    from atlas.serve import open_server, run_server, server_url

    site_dir = normal_path(site_dir)
    if not (site_dir / "index.html").is_file():
        _fail(f"{site_dir}: no built site here (run `atlas build` first)")
    try:
        server = open_server(site_dir, host=host, port=port)
    except AtlasError as exc:
        _fail(str(exc))
    console.print(escape(f"Serving {site_dir} at {server_url(server)} (Ctrl-C stops)"), highlight=False,
                  soft_wrap=True)
    run_server(server)


@app.command(cls=_Command)
def deploy(
    remote: Annotated[str, typer.Option("--remote", help="Git remote URL or path to push to.")],
    site_dir: Annotated[Path, typer.Option("--site-dir", help="The built site.")] = Path("build/site"),
    branch: Annotated[str, typer.Option("--branch", help="Branch GitHub Pages serves.")] = "gh-pages",
    message: Annotated[str | None, typer.Option("--message", help="Commit message.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the branch even if its last commit was not "
                                        "made by `atlas deploy` (e.g. a branch holding code).")] = False,
) -> None:
    """Publish the built site as one commit on a gh-pages branch of a git remote.

    The branch is replaced: only an absent branch or one made by
    `atlas deploy` is accepted without --force. Git runs in a private
    temporary repository; your repository, index and hooks stay untouched.
    """
    from atlas.deploy import deploy as deploy_site

    site_dir = normal_path(site_dir)
    if not (site_dir / "index.html").is_file():
        _fail(f"{site_dir}: no built site here (run `atlas build` first)")
    try:
        sha = deploy_site(site_dir, remote, branch=branch, message=message, force=force)
    except AtlasError as exc:
        _fail(str(exc))
    console.print(escape(f"Pushed {site_dir} to {remote} {branch} ({sha[:12]})"), highlight=False)


def _click_exceptions():
    """The click exception module Typer uses (recent Typer vendors its own copy of click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> int:
    """The ``atlas`` console script: like ``app``, but usage errors are one line on stderr, exit code 2."""
    exceptions = _click_exceptions()
    try:
        result = app(args=argv, prog_name="atlas", standalone_mode=False)
    except exceptions.NoArgsIsHelpError as exc:
        console.print(exc.ctx.get_help())
        return 0
    except exceptions.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message() + hint)}", highlight=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except exceptions.ClickException as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
