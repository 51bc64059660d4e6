"""Streaming calls of the Kubernetes API (attach, exec, port-forward) on a client of their own.

The client library's `kubernetes.stream.stream()` (and `portforward()`) works by replacing
`call_api` on the `ApiClient` of the API method it is given for as long as the call runs, and
putting the old one back afterwards. On a client that other threads use at the same time, each
of their requests made meanwhile goes out as a websocket handshake and fails ("Handshake status
200 OK"), and two overlapping streams can put back each other's replacement, leaving the client
on the websocket path for good. So a streaming call never runs on a client that ordinary
requests use: each one gets a fresh `ApiClient` on the same configuration (server, credentials,
CA), used by that call only and closed after it. Making one costs a few objects and no
connection (the websocket is its own), which is nothing next to the handshake itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from kubernetes.stream import stream


@contextmanager
def streaming_core_api(api_client: Any) -> Iterator[Any]:
    """A CoreV1Api on a new ApiClient with `api_client`'s configuration and headers, for one
    streaming call; the shared `api_client` itself is never touched."""
    # Typed as Any: the client's partial stubs leave its methods untyped.
    dedicated: Any = client.ApiClient(api_client.configuration, cookie=api_client.cookie)
    dedicated.default_headers.update(api_client.default_headers)
    try:
        yield client.CoreV1Api(dedicated)
    finally:
        dedicated.close()


def write_stdin(
    api_client: Any,
    namespace: str,
    pod: str,
    container: str,
    text: str,
    *,
    settle_seconds: float = 0.0,
) -> None:
    """Write `text` to a container's stdin through the attach API (blocking). With
    `settle_seconds`, the session is kept open that long after writing, so the write has left
    before the socket closes."""
    with streaming_core_api(api_client) as core:
        session = stream(
            core.connect_get_namespaced_pod_attach,
            pod,
            namespace,
            container=container,
            stdin=True,
            stdout=False,
            stderr=False,
            tty=False,
            _preload_content=False,
        )
        try:
            session.write_stdin(text)
            if settle_seconds > 0:
                session.update(timeout=settle_seconds)
        finally:
            session.close()
