"""URL pulls against real HTTP servers on loopback: what is allowed, what SSRF is refused."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stellarstack.api.netpolicy import AddressPolicy, DestinationRefusedError
from stellarstack.nodeproxy.fetch import PullError, pull
from stellarstack.nodeproxy.files import FileError, SafeRoot

PAYLOAD = os.urandom(64 * 1024)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /file, /big (no length), and redirects named by the path."""

    redirect_to = ""
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/file":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the client must count
            for _ in range(64):
                self.wfile.write(b"x" * 65536)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def serve() -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """An "allowed" server (an exception in the policy) and a "secret" internal one."""
    allowed, allowed_port = serve()
    secret, secret_port = serve()
    Handler.hits = []
    yield allowed_port, secret_port
    for server in (allowed, secret):
        server.shutdown()
        server.server_close()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[SafeRoot]:
    data = tmp_path / "data"
    data.mkdir()
    with SafeRoot(data) as opened:
        yield opened


def policy(port: int) -> AddressPolicy:
    return AddressPolicy(frozenset({("127.0.0.1", port)}))


async def test_an_allowed_destination_downloads(servers: tuple[int, int], root: SafeRoot) -> None:
    allowed, _ = servers
    root.mkdir("mods")
    info = await pull(
        f"http://127.0.0.1:{allowed}/file",
        root,
        "mods/a.jar",
        policy=policy(allowed),
        max_bytes=10**6,
    )
    assert info.size == len(PAYLOAD)
    assert root.read_bytes("mods/a.jar") == PAYLOAD


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{secret}/file",
        "http://localhost:{secret}/file",
        "http://2130706433:{secret}/file",
        "http://0x7f.1:{secret}/file",
        "http://[::ffff:127.0.0.1]:{secret}/file",
        "http://[::1]:{secret}/file",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{secret}/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{secret}/",
    ],
)
async def test_internal_destinations_are_refused(
    servers: tuple[int, int], root: SafeRoot, target: str
) -> None:
    allowed, secret = servers
    with pytest.raises(DestinationRefusedError):
        await pull(target.format(secret=secret), root, "x", policy=policy(allowed), max_bytes=10**6)
    assert Handler.hits == []  # nothing was even contacted
    assert root.list_dir("") == []


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:{secret}/file", "http://169.254.169.254/latest/meta-data/"]
)
async def test_redirects_to_internal_destinations_are_refused(
    servers: tuple[int, int], root: SafeRoot, target: str
) -> None:
    allowed, secret = servers
    Handler.redirect_to = target.format(secret=secret)
    with pytest.raises(DestinationRefusedError):
        await pull(
            f"http://127.0.0.1:{allowed}/redirect",
            root,
            "x",
            policy=policy(allowed),
            max_bytes=10**6,
        )
    assert Handler.hits == ["/redirect"]  # the allowed server only; the target never
    assert root.list_dir("") == []


async def test_a_resolver_answer_with_one_internal_address_is_refused(root: SafeRoot) -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(DestinationRefusedError, match="private"):
        await pull(
            "http://files.example.test/a",
            root,
            "a",
            policy=AddressPolicy(),
            max_bytes=10,
            resolver=rebinding,
        )


async def test_size_limits_without_a_length_leave_nothing(
    servers: tuple[int, int], root: SafeRoot
) -> None:
    allowed, _ = servers
    with pytest.raises(FileError, match="larger than"):
        await pull(
            f"http://127.0.0.1:{allowed}/big",
            root,
            "big",
            policy=policy(allowed),
            max_bytes=1024 * 1024,
        )
    with pytest.raises(FileError, match="larger than"):
        await pull(
            f"http://127.0.0.1:{allowed}/file", root, "f", policy=policy(allowed), max_bytes=1000
        )
    assert root.list_dir("") == []


async def test_redirect_loops_and_errors(servers: tuple[int, int], root: SafeRoot) -> None:
    allowed, _ = servers
    with pytest.raises(PullError, match="redirects"):
        await pull(
            f"http://127.0.0.1:{allowed}/loop", root, "x", policy=policy(allowed), max_bytes=10
        )
    with pytest.raises(PullError, match="404"):
        await pull(
            f"http://127.0.0.1:{allowed}/missing", root, "x", policy=policy(allowed), max_bytes=10
        )
