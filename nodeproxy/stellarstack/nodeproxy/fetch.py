"""Pull a file from a URL into a server's directory, without server-side request forgery.

Every hop (the URL and each redirect) is parsed, its host resolved once, every resolved
address checked against `AddressPolicy`, and the connection made to exactly the address that
was checked, with the original host name in the Host header and TLS SNI. A DNS answer that
changes between the check and the connection therefore changes nothing. Redirects are followed
by hand (at most `MAX_REDIRECTS`), each re-checked. The body streams into `SafeRoot` within the
server's quota and `max_bytes`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urljoin

import httpx

from stellarstack.api.netpolicy import (
    AddressPolicy,
    DestinationRefusedError,
    check_resolved,
    literal_address,
    parse_destination,
)
from stellarstack.nodeproxy.files import FileError, FileErrorCode, FileInfo, SafeRoot

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}

Resolver = Callable[[str, int], Awaitable[list[str]]]


class PullError(ValueError):
    """The remote side failed (status, size, timeout); the message says how."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (IPv4 and IPv6)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefusedError(f"{host} does not resolve: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pull(
    url: str,
    root: SafeRoot,
    path: str,
    *,
    policy: AddressPolicy,
    max_bytes: int,
    read_timeout: float = 60.0,
    resolver: Resolver = resolve,
) -> FileInfo:
    """Download `url` into `path` under `root`; raises DestinationRefusedError, PullError or
    FileError (quota, path) and leaves nothing behind on failure."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        destination = parse_destination(current)
        literal = literal_address(destination.host)
        addresses = (
            [str(literal)]
            if literal is not None
            else await resolver(destination.host, destination.port)
        )
        address = check_resolved(addresses, destination.port, policy)
        shown = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        default_port = 443 if destination.scheme == "https" else 80
        host_header = (
            destination.host
            if destination.port == default_port
            else (f"{destination.host}:{destination.port}")
        )
        extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
        async with (
            httpx.AsyncClient(
                follow_redirects=False, timeout=read_timeout, trust_env=False
            ) as client,
            client.stream(
                "GET",
                f"{destination.scheme}://{shown}:{destination.port}{destination.path_and_query}",
                headers={"Host": host_header, "User-Agent": "stellarstack-nodeproxy"},
                extensions=extensions,
            ) as response,
        ):
            if response.status_code in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise PullError(f"redirect {response.status_code} without a Location")
                current = urljoin(current, location)
                continue
            if response.status_code != 200:
                raise PullError(f"the server answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise FileError(
                    FileErrorCode.TOO_LARGE, path, f"the file is larger than {max_bytes} bytes"
                )
            try:
                return await root.write_async(
                    path, _bounded(response.aiter_bytes(), max_bytes, path)
                )
            except httpx.HTTPError as exc:
                raise PullError(f"the download failed: {exc}") from exc
    raise PullError(f"more than {MAX_REDIRECTS} redirects")


async def _bounded(chunks: AsyncIterator[bytes], limit: int, path: str) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            # A server that lied about (or omitted) its length is cut off here.
            raise FileError(FileErrorCode.TOO_LARGE, path, f"the file is larger than {limit} bytes")
        yield chunk
