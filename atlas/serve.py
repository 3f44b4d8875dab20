"""Serve a built site over HTTP for local browsing (a plain static server; Ctrl-C stops it).

What it answers (site_src/robust-builds.md, "What atlas serve serves"): only regular files inside the site
folder, after every symbolic link is resolved (a link that leaves the site, a FIFO or a device is 404); a
folder's ``index.html`` for the folder's URL, and 404 for a folder without one (no listings); 400 for a
path that no file can have (a NUL byte); one byte range (``Range: bytes=a-b``, ``bytes=a-``) as a 206, as GitHub
Pages does (the head viewer's PCA colours read one layer of ``features.bin`` so), any other Range ignored (the
whole file). A thread per request and a listen backlog of
``_SiteServer.request_queue_size`` keep hundreds of simultaneous requests from timing out.
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO, ClassVar
from urllib.parse import unquote, urlsplit

from ssl_attention.errors import AtlasError

MAX_PORT = 65535
_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{0,18})")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(start, end)`` of a Range header's one range ``bytes=a-b`` or ``bytes=a-`` in a file of
    ``size`` bytes (``end`` clamped to the file); None to send the whole file: no Range, several ranges, a
    suffix range or one that starts past the end (a server may ignore any Range)."""
    found = _RANGE.fullmatch((header or "").strip())
    if found is None:
        return None
    start = int(found[1])
    end = min(int(found[2]) if found[2] else size - 1, size - 1)
    return (start, end) if start <= end else None


def send_range(handler: BaseHTTPRequestHandler, opened: BinaryIO, content_type: str, span: tuple[int, int],
               size: int) -> BinaryIO:
    """Send the headers of a 206 for the inclusive bytes ``span`` of the open file of ``size`` bytes (closed
    here) through ``handler``; returns those bytes, for ``copyfile``."""
    start, end = span
    with opened:
        opened.seek(start)
        body = opened.read(end - start + 1)
    handler.send_response(HTTPStatus.PARTIAL_CONTENT)
    handler.send_header("Content-type", content_type)
    handler.send_header("Content-Range", f"bytes {start}-{end}/{size}")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    return io.BytesIO(body)


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",  # the page scripts are ES modules: browsers refuse them under another type
        ".svg": "image/svg+xml",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self) -> BinaryIO | None:
        """Open the site file the request names and send its headers; None after an error or redirect."""
        parts = urlsplit(self.path)
        if "\x00" in unquote(parts.path, errors="surrogatepass"):
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request path")
            return None
        local = Path(self.translate_path(self.path))
        if not parts.path.endswith("/") and _is_dir(local):  # as every static host: a folder's URL ends in /
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", parts.path + "/" + (f"?{parts.query}" if parts.query else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if parts.path.endswith("/"):
            local = local / "index.html"
        opened = self._open_site_file(local)
        if opened is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        status = os.fstat(opened.fileno())
        span = byte_range(self.headers.get("Range"), status.st_size)
        if span is not None:
            return send_range(self, opened, self.guess_type(str(local)), span, status.st_size)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-type", self.guess_type(str(local)))
        self.send_header("Content-Length", str(status.st_size))
        self.send_header("Last-Modified", self.date_time_string(status.st_mtime))
        self.end_headers()
        return opened

    def _open_site_file(self, local: Path) -> BinaryIO | None:
        """``local`` opened, if it is (after resolving every link) a regular file inside the site; else None."""
        real = Path(os.path.realpath(local))
        if not real.is_relative_to(self.server.root):
            return None
        try:
            if not stat.S_ISREG(real.stat().st_mode):  # a FIFO would block the open, a device has no end
                return None
            return real.open("rb")
        except (OSError, ValueError):
            return None

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        """No listings: a folder without ``index.html`` is 404 (``send_head`` never lists; this guards it)."""
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # e.g. a name too long for the file system
        return False


class _SiteServer(ThreadingHTTPServer):
    """A thread per request (daemon threads) and a real listen backlog (Python's default is 5)."""

    request_queue_size = 1024  # the kernel caps it at net.core.somaxconn
    daemon_threads = True

    def __init__(self, address: tuple[str, int], site_dir: Path) -> None:
        self.root = Path(os.path.realpath(site_dir))
        super().__init__(address, functools.partial(_QuietHandler, directory=str(self.root)))

    def handle_error(self, request, client_address) -> None:
        """One line, no traceback: a browser that closed its connection mid-response is no error at all."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            print(f"atlas serve: error answering {client_address[0]}: {error!r}", file=sys.stderr)


def open_server(site_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``site_dir`` bound to ``host:port`` (port 0: any free port); ``AtlasError`` (one line) when
    there is no site, the port is out of range or cannot be bound."""
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise AtlasError(f"{site_dir}: no built site here (index.html missing); run `atlas build` first")
    if not 0 <= port <= MAX_PORT:
        raise AtlasError(f"--port {port}: not a port number (0 to {MAX_PORT})")
    try:
        return _SiteServer((host, port), site_dir)
    except (OSError, OverflowError, ValueError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise AtlasError(f"cannot listen on {host}:{port}: {reason}") from None


def server_url(server: ThreadingHTTPServer) -> str:
    """The address ``server`` answers at, e.g. ``http://127.0.0.1:8000/`` (the bound port, also for port 0)."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def run_server(server: ThreadingHTTPServer) -> None:
    """Answer requests until interrupted (Ctrl-C), then close the server."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

