"""`atlas serve` and `atlas deploy` as a user runs them: the installed console script, real processes."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.site_fixtures import built_site, fake_build  # noqa: F401 (fixtures)

ATLAS = str(Path(sys.executable).with_name("atlas"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 30.0) -> tuple[bytes, str]:
    """GET ``url``, retrying while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_serves_the_built_site_and_stops_on_ctrl_c(built_site):  # noqa: F811
    site = built_site.site_dir
    raw = next((site / "atlas-data").rglob("*.png"))
    port = _free_port()
    proc = subprocess.Popen([ATLAS, "serve", "--site-dir", str(site), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body, _ = _get(f"http://127.0.0.1:{port}/")
        assert body == (site / "index.html").read_bytes()
        data, kind = _get(f"http://127.0.0.1:{port}/{raw.relative_to(site).as_posix()}")
        assert data == raw.read_bytes() and kind == "image/png"
        for script in ("atlas/main.mjs", "atlas/image/state.mjs"):  # ES modules: browsers insist on a JS type
            _, kind = _get(f"http://127.0.0.1:{port}/atlas-assets/{script}")
            assert kind.startswith("text/javascript"), (script, kind)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err


def test_serve_types_es_modules_as_javascript_without_a_system_mime_entry(monkeypatch):
    """Python 3.11's own MIME table has no .mjs (only some /etc/mime.types do): atlas serve maps it itself,
    or browsers would refuse the page scripts (module scripts need a JavaScript MIME type)."""
    import mimetypes

    from atlas.serve import _QuietHandler

    monkeypatch.setattr(mimetypes, "guess_type", lambda *args, **kwargs: (None, None))  # a bare system
    handler = _QuietHandler.__new__(_QuietHandler)
    assert handler.guess_type("atlas-assets/atlas/main.mjs") == "text/javascript"
    assert handler.guess_type("atlas-assets/atlas.css") == "application/octet-stream"  # the patch took effect


def test_serve_errors_are_one_line(built_site, tmp_path):  # noqa: F811
    missing = subprocess.run([ATLAS, "serve", "--site-dir", str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no built site here" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([ATLAS, "serve", "--site-dir", str(built_site.site_dir), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert busy.stderr.strip().count("\n") == 0 and "Traceback" not in busy.stderr
    assert "Serving" not in busy.stdout  # said only once the port is bound


def test_serve_refuses_a_port_out_of_range_in_one_line(built_site):  # noqa: F811
    for port in ("99999", "65536", "-1"):
        result = subprocess.run([ATLAS, "serve", "--site-dir", str(built_site.site_dir), "--port", port],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (port, result.stderr)
        assert f"--port {port}: not a port number (0 to 65535)" in result.stderr
        assert result.stderr.strip().count("\n") == 0 and "Serving" not in result.stdout


@dataclass
class _Served:
    """A running ``atlas serve``: its port; once stopped, its exit code and stderr."""

    port: int
    returncode: int | None = None
    stderr: str = ""


@contextmanager
def _serving(site: Path) -> Iterator[_Served]:
    """``atlas serve --port 0`` on ``site`` (the port read from its "Serving" line); Ctrl-C stops it after."""
    proc = subprocess.Popen([ATLAS, "serve", "--site-dir", str(site), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = _Served(0)
    try:
        line = proc.stdout.readline()
        match = re.search(r"at http://127\.0\.0\.1:(\d+)/ ", line)
        assert match, line
        served.port = int(match.group(1))
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        _, served.stderr = proc.communicate(timeout=30)
        served.returncode = proc.returncode


def _request(port: int, path: str) -> tuple[int, str, bytes]:
    """Status, Location header and body of ``GET path`` (redirects not followed)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()
    finally:
        connection.close()


def test_serve_answers_only_regular_files_inside_the_site(tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<html>home</html>")
    (site / "sub" / "index.html").write_text("<html>sub</html>")
    (site / "notes").mkdir()  # a folder without index.html: never listed
    (site / "notes" / "a.txt").write_text("a")
    (site / "alias.html").symlink_to("index.html")  # a link that stays inside the site is fine
    (tmp_path / "secret.txt").write_text("secret")
    (site / "secret.txt").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "index.html").write_text("<html>elsewhere</html>")
    (site / "elsewhere").symlink_to(tmp_path / "elsewhere")
    (site / "root").symlink_to("/")
    os.mkfifo(site / "pipe.html")  # opening it would wait for a writer forever
    with _serving(site) as served:
        port = served.port
        assert _request(port, "/") == (200, "", b"<html>home</html>")
        assert _request(port, "/sub/") == (200, "", b"<html>sub</html>")
        assert _request(port, "/sub?x=1")[:2] == (301, "/sub/?x=1")
        assert _request(port, "/alias.html") == (200, "", b"<html>home</html>")
        assert _request(port, "/notes/a.txt")[0] == 200
        for path in ("/notes/", "/secret.txt", "/elsewhere/", "/elsewhere/index.html", "/root/etc/passwd",
                     "/root/etc/", "/pipe.html", "/../secret.txt", "/%2e%2e/secret.txt", "/missing.html"):
            status, _, body = _request(port, path)
            assert status == 404, (path, status)
            assert b"secret" not in body and b"elsewhere" not in body and b"root:" not in body, path
        for path in ("/index.html%00", "/%00", "/sub/%00/index.html"):
            assert _request(port, path)[0] == 400, path
        assert _request(port, "/")[0] == 200  # still answering
    assert served.returncode == 0
    assert served.stderr == ""  # no traceback, no error line


def test_serve_answers_200_simultaneous_requests(tmp_path):
    """A threaded server with a real listen backlog: Python's default backlog of 5 let a burst of
    connections time out (tens of 200 at 30 s)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>home</html>")
    count = 200
    barrier = threading.Barrier(count)
    answers: list[str] = []

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            answers.append(data.split(b"\r\n", 1)[0].decode() + ("" if data.endswith(b"home</html>") else " cut"))
        except OSError as exc:
            answers.append(repr(exc))

    with _serving(site) as served:
        port = served.port
        threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert Counter(answers) == {"HTTP/1.0 200 OK": count}


def test_deploy_command_pushes_the_site_to_a_bare_remote(built_site, tmp_path):  # noqa: F811
    remote = tmp_path / "pages.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    result = subprocess.run([ATLAS, "deploy", "--site-dir", str(built_site.site_dir), "--remote", str(remote)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", "gh-pages"], cwd=remote,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    site_files = sorted(p.relative_to(built_site.site_dir).as_posix()
                        for p in built_site.site_dir.rglob("*") if p.is_file())
    assert sorted(files) == sorted([*site_files, ".nojekyll"])
    head = subprocess.run(["git", "rev-parse", "gh-pages"], cwd=remote, capture_output=True, text=True).stdout
    assert head[:12] in result.stdout
    bad = subprocess.run([ATLAS, "deploy", "--site-dir", str(built_site.site_dir), "--remote",
                          str(tmp_path / "no-such.git")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "git ls-remote failed" in bad.stderr
    assert "does not appear to be a git repository" in bad.stderr


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_deploy_command_replaces_a_code_branch_only_with_force(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>atlas</html>")
    remote = tmp_path / "code.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", cwd=work)
    (work / "main.py").write_text("print('my code')\n")
    _git("add", "main.py", cwd=work)
    _git("-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "my code", cwd=work)
    _git("push", "-q", str(remote), "HEAD:refs/heads/main", cwd=work)
    code = _git("rev-parse", "HEAD", cwd=work)
    command = [ATLAS, "deploy", "--site-dir", str(site), "--remote", str(remote), "--branch", "main"]

    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
    assert "refusing to replace branch 'main'" in refused.stderr and "--force" in refused.stderr
    assert _git("rev-parse", "main", cwd=remote) == code

    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert _git("show", "main:index.html", cwd=remote) == "<html>atlas</html>"

    marker = tmp_path / "pwned"
    option = subprocess.run([ATLAS, "deploy", "--site-dir", str(site), f"--remote=--upload-pack=touch {marker}"],
                            capture_output=True, text=True, timeout=120)
    assert option.returncode == 2 and option.stderr.strip().count("\n") == 0
    assert "must not begin with '-'" in option.stderr and not marker.exists()

    help_text = subprocess.run([ATLAS, "deploy", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--force" in help_text and "atlas deploy" in help_text


def test_serve_answers_one_byte_range_with_206_and_ignores_others(tmp_path):
    """The head viewer's PCA colours read one layer of features.bin with ``Range: bytes=a-b`` (as GitHub Pages
    answers it); a Range it does not serve (several, a suffix, past the end) gets the whole file."""
    from atlas.serve import byte_range

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>home</html>")
    data = bytes(range(256)) * 4
    (site / "features.bin").write_bytes(data)
    with _serving(site) as served:
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            for header, status, body, content_range in (
                    ("bytes=20-91", 206, data[20:92], "bytes 20-91/1024"),
                    ("bytes=1000-2000", 206, data[1000:], "bytes 1000-1023/1024"),
                    ("bytes=1020-", 206, data[1020:], "bytes 1020-1023/1024"),
                    ("bytes=2000-3000", 200, data, None), ("bytes=-10", 200, data, None),
                    ("bytes=0-1,5-6", 200, data, None), ("items=0-1", 200, data, None)):
                connection.request("GET", "/features.bin", headers={"Range": header})
                response = connection.getresponse()
                assert (response.status, response.read(), response.getheader("Content-Range")) == (
                    status, body, content_range), header
        finally:
            connection.close()
    assert served.returncode == 0 and served.stderr == ""
    assert byte_range(None, 10) is None and byte_range("bytes=5-2", 10) is None
    assert byte_range("bytes=3-4", 10) == (3, 4)
