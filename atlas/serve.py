"""Serve a built site over HTTP for local browsing (a plain static server; Ctrl-C stops it)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from ssl_attention.errors import AtlasError


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",  # the page scripts are ES modules: browsers refuse them under another type
        ".svg": "image/svg+xml",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(site_dir: Path, host: str = "127.0.0.1", port: int = 8000,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``site_dir`` at ``http://host:port/`` until interrupted (Ctrl-C); ``on_ready(url)`` once it
    listens (so nothing says "Serving" before a busy port's error)."""
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise AtlasError(f"{site_dir}: no built site here (index.html missing); run `atlas build` first")
    try:
        server = ThreadingHTTPServer((host, port), functools.partial(_QuietHandler, directory=str(site_dir)))
    except OSError as exc:
        raise AtlasError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{server.server_address[1]}/")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
