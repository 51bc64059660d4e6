"""The readiness probes against real sockets on loopback."""

from __future__ import annotations

import asyncio
import socket

from stellarstack.api.probes import probe


async def test_tcp_udp_and_http_probes() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.0 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    udp_port = udp.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def echo_once() -> None:
        data, address = await loop.sock_recvfrom(udp, 1024)
        await loop.sock_sendto(udp, data, address)

    async with server:
        assert await probe("127.0.0.1", port, "tcp", b"", "/")
        assert await probe("127.0.0.1", port, "http", b"", "/health")
        echo = asyncio.create_task(echo_once())
        assert await probe("127.0.0.1", udp_port, "udp", b"\x00\x34", "/")
        await echo
    # Nothing listens any more: every kind reports "not ready", never raises.
    assert not await probe("127.0.0.1", port, "tcp", b"", "/")
    assert not await probe("127.0.0.1", port, "http", b"", "/")
    udp.close()
    assert not await probe("127.0.0.1", udp_port, "udp", b"x", "/")
