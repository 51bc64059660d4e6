"""The interactive half of the Docker node backend: console, logs, stats, files and backup
archives, through the node API of one nodeproxy (authenticated with the node token).

`DockerNodeBackend` (backends/docker_node.py) composes this class for those methods; the
resource half (apply, get, list, delete, power) lives there. Nothing here buffers a file or an
archive: bodies stream in both directions.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from stellarstack.api.runtime import ResourceStats
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    ProxiedResponse,
    ResourceMissingError,
    ServerNotRunningError,
)

# What a files answer may carry back to the caller; hop-by-hop and server headers stay here.
PASSED_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "content-disposition",
    "x-checksum-sha256",
    "last-modified",
    "etag",
)
PASSED_REQUEST_HEADERS = ("content-type", "content-length", "range", "if-range")
_ERROR_BODY_LIMIT = 64 * 1024


def _segment(value: str) -> str:
    return quote(value, safe="")


class NodeConsole:
    """A console session over the node's WebSocket: output from the socket, input through
    the node's command endpoint (so a refused command is an exception, not a late message)."""

    def __init__(self, io: DockerNodeIO, socket: ClientConnection, namespace: str, name: str):
        self._io = io
        self._socket = socket
        self._namespace = namespace
        self._name = name

    async def lines(self) -> AsyncIterator[str]:
        try:
            async for raw in self._socket:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("type") == "line":
                    yield str(message.get("data", ""))
        except ConnectionClosed:
            return

    async def send(self, line: str) -> None:
        await self._io.send_command(self._namespace, self._name, line)


class DockerNodeIO:
    """Console, logs, stats, files and archives of the servers on one node."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        http: httpx.AsyncClient | None = None,
        verify: Any = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._verify = verify
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            # No read timeout on the whole body: downloads of big worlds take long; each chunk
            # still has to arrive within a minute.
            timeout=httpx.Timeout(30, read=60),
            verify=verify,
        )

    def _server(self, namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{_segment(namespace)}/gameservers/{_segment(name)}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"node {self.base_url}: {exc}") from exc
        if response.status_code >= 500:
            raise BackendUnavailableError(
                f"node {self.base_url} answered {response.status_code}: {response.text[:200]}"
            )
        if response.status_code == 401:
            raise BackendUnavailableError(f"node {self.base_url} refused the node token")
        return response

    # --- console, logs, stats -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def console(
        self, namespace: str, name: str, *, backlog: int
    ) -> AsyncIterator[NodeConsole]:
        """The node sends its own backlog (the last 100 lines) first; `backlog` is the
        panel's wish and the node's fixed window covers it."""
        del backlog
        url = self.base_url.replace("http", "ws", 1) + self._server(namespace, name) + "/console"
        try:
            socket = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                ssl=_ssl_for(url, self._verify),
                open_timeout=15,
                max_size=1024 * 1024,
            )
        except InvalidStatus as exc:
            if exc.response.status_code == 403:
                raise ResourceMissingError(f"GameServer {namespace}/{name} not found") from exc
            raise BackendUnavailableError(f"node console refused: {exc}") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise BackendUnavailableError(f"node {self.base_url}: {exc}") from exc
        try:
            yield NodeConsole(self, socket, namespace, name)
        finally:
            await socket.close()

    async def send_command(self, namespace: str, name: str, line: str) -> None:
        response = await self._call(
            "POST", self._server(namespace, name) + "/command", json={"line": line}
        )
        if response.status_code == 404:
            raise ResourceMissingError(f"GameServer {namespace}/{name} not found")
        if response.status_code == 409:
            raise ServerNotRunningError(_detail(response))
        if response.status_code >= 400:
            raise BackendError(_detail(response))

    async def logs(self, namespace: str, name: str, *, tail: int) -> list[str]:
        response = await self._call(
            "GET",
            self._server(namespace, name) + "/logs",
            params={"tail": max(1, min(tail, 10000))},
        )
        if response.status_code == 404:
            raise ResourceMissingError(f"GameServer {namespace}/{name} not found")
        lines: list[str] = response.json()["lines"]
        return lines

    async def stats(self, namespace: str, name: str) -> ResourceStats:
        response = await self._call("GET", self._server(namespace, name) + "/stats")
        if response.status_code == 404:
            raise ResourceMissingError(f"GameServer {namespace}/{name} not found")
        if response.status_code == 409:
            raise ServerNotRunningError(_detail(response))
        body = response.json()
        return ResourceStats(
            cpu_percent=body.get("cpuPercent"),
            memory_bytes=body.get("memoryBytes"),
            memory_limit_bytes=body.get("memoryLimitBytes"),
            network_rx_bytes=body.get("networkRxBytes"),
            network_tx_bytes=body.get("networkTxBytes"),
            disk_bytes=body.get("diskBytes"),
            unavailable=dict(body.get("unavailable") or {}),
        )

    # --- files and archives ---------------------------------------------------------------

    async def _stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: AsyncIterator[bytes] | bytes | None = None,
    ) -> ProxiedResponse:
        request = self._http.build_request(
            method,
            path,
            params=params,
            headers={
                k: v for k, v in (headers or {}).items() if k.lower() in PASSED_REQUEST_HEADERS
            },
            content=body,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"node {self.base_url}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            text = (await _bounded(response)).decode(errors="replace")
            raise BackendUnavailableError(
                f"node {self.base_url} answered {response.status_code}: {text[:200]}"
            )
        return ProxiedResponse(
            status_code=response.status_code,
            headers={
                key: value
                for key, value in response.headers.items()
                if key.lower() in PASSED_RESPONSE_HEADERS
            },
            body=response.aiter_raw(),
            close=response.aclose,
        )

    async def files(
        self,
        namespace: str,
        name: str,
        *,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | bytes | None,
    ) -> ProxiedResponse:
        return await self._stream(
            method,
            f"{self._server(namespace, name)}/files/{path.lstrip('/')}",
            params=params,
            headers=headers,
            body=body,
        )

    async def backup_archive(self, namespace: str, name: str) -> ProxiedResponse:
        answer = await self._stream(
            "GET", f"/api/v1/namespaces/{_segment(namespace)}/backups/{_segment(name)}/archive"
        )
        if answer.status_code < 400:
            return answer
        text = await _drain(answer)
        if answer.status_code in {404, 410}:
            raise ResourceMissingError(f"Backup {name}: {text}")
        raise BackendError(f"Backup {name}: {text}")

    async def aclose(self) -> None:
        if self._owns_http and not self._http.is_closed:
            await self._http.aclose()


def _ssl_for(url: str, verify: Any) -> ssl.SSLContext | None:
    """The TLS settings of a console socket, matching the HTTP client's `verify`."""
    if not url.startswith("wss"):
        return None
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else response.text[:500]


async def _bounded(response: httpx.Response) -> bytes:
    data = b""
    try:
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) > _ERROR_BODY_LIMIT:
                break
    finally:
        await response.aclose()
    return data[:_ERROR_BODY_LIMIT]


async def _drain(answer: ProxiedResponse) -> str:
    """A short error body's `detail` (or its text), releasing the connection."""
    data = b""
    try:
        async for chunk in answer.body:
            data += chunk
            if len(data) > _ERROR_BODY_LIMIT:
                break
    finally:
        if answer.close is not None:
            await answer.close()
    try:
        detail = json.loads(data).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else data.decode(errors="replace")[:500]
