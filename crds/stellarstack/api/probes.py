"""Readiness probes: the one network check both runtimes run against a game's port.

This is I/O (plain asyncio sockets, nothing else) kept here rather than in either runtime so
that the operator and the node agent, which may not depend on each other, judge readiness the
same way. The decision of *when* to probe stays in `stellarstack.api.lifecycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


async def probe(host: str, port: int, kind: str, payload: bytes, path: str) -> bool:
    """One readiness probe with a short timeout: a connection (tcp), an answered datagram
    (udp) or a 2xx/3xx status line (http)."""
    loop = asyncio.get_running_loop()
    try:
        if kind == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, payload)
                await asyncio.wait_for(loop.sock_recv(sock, 65535), 1.0)
                return True
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        try:
            if kind == "tcp":
                return True
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 2.0)
            parts = status_line.split()
            return len(parts) >= 2 and parts[1][:1] in {b"2", b"3"}
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
