"""Armagetron Advanced's UDP server-info query, for tests that check a real game answers."""

from __future__ import annotations

import socket
import time


def query(port: int, host: str = "127.0.0.1") -> bytes:
    """The game's UDP server-info query: two packets; the second reply carries the name."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(bytes.fromhex("0034000000000000"), (host, port))
        time.sleep(0.3)
        sock.sendto(bytes.fromhex("0035000000000000"), (host, port))
        replies = b""
        try:
            while True:
                replies += sock.recv(65535)
        except TimeoutError:
            return replies


def readable(replies: bytes) -> bytes:
    """The game sends strings as 16-bit words with the two characters swapped."""
    return bytes(b for i in range(0, len(replies) - 1, 2) for b in (replies[i + 1], replies[i]))
