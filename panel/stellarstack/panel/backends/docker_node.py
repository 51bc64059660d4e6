"""`ServerBackend` for a Docker node: nodeproxy's node API over HTTP(S), authenticated with the
node token. The node stores the resources and reconciles them into containers; this class only
moves documents and maps the node's answers to `BackendError`s."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from stellarstack.api.runtime import ConsoleSession, ResourceStats
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    Kind,
    PowerAction,
    ProxiedResponse,
    ResourceInvalidError,
    ResourceMissingError,
)
from stellarstack.panel.backends.docker_node_io import DockerNodeIO

PLURALS = {
    Kind.GAMESERVER: "gameservers",
    Kind.BACKUP: "backups",
    Kind.SCHEDULE: "schedules",
}
DEFAULT_NAMESPACE = "default"
"""Where the panel keeps a node's resources (a node has no namespaces of its own to list)."""


class DockerNodeBackend:
    """One nodeproxy. `verify` is passed to the HTTP client (a CA bundle path, an SSL context,
    or False for a development node with a self-signed certificate)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify: ssl.SSLContext | str | bool = True,
        timeout: float = 15.0,
        namespace: str = DEFAULT_NAMESPACE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )
        self._io = DockerNodeIO(base_url=self.url, token=token, http=self._client, verify=verify)

    def _path(self, kind: Kind, namespace: str, name: str | None = None) -> str:
        if kind is Kind.BLUEPRINT:
            base = "/api/v1/blueprints"
        else:
            base = f"/api/v1/namespaces/{namespace or self.namespace}/{PLURALS[kind]}"
        return base if name is None else f"{base}/{name}"

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"node {self.url} is unreachable: {exc!r}") from exc
        if response.status_code >= 500:
            raise BackendUnavailableError(
                f"node {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        if response.status_code in {401, 403}:
            # A wrong node token is a configuration problem the panel cannot retry away.
            raise BackendError(f"node {self.url} refused the node token ({response.status_code})")
        if response.status_code == 422:
            raise ResourceInvalidError(_problems(response))
        return response

    # --- resources ---------------------------------------------------------------------

    async def apply(self, kind: Kind, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
        name = str(document.get("metadata", {}).get("name", ""))
        if not name:
            raise ResourceInvalidError(["metadata.name: a name is required"])
        response = await self._request("PUT", self._path(kind, namespace, name), json=document)
        _expect(response, 200, f"{kind} {name}")
        stored: dict[str, Any] = response.json()
        return stored

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", self._path(kind, namespace, name))
        if response.status_code == 404:
            return None
        _expect(response, 200, f"{kind} {name}")
        found: dict[str, Any] = response.json()
        return found

    async def list_resources(
        self, kind: Kind, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        response = await self._request("GET", self._path(kind, namespace or self.namespace))
        _expect(response, 200, f"{kind} list")
        found: list[dict[str, Any]] = response.json()
        return found

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        response = await self._request("DELETE", self._path(kind, namespace, name))
        if response.status_code == 404:
            return
        _expect(response, 202 if kind is not Kind.BLUEPRINT else 204, f"{kind} {name}")

    async def power(self, namespace: str, name: str, action: PowerAction) -> str | None:
        path = f"{self._path(Kind.GAMESERVER, namespace, name)}/power"
        response = await self._request("POST", path, json={"action": action})
        if response.status_code == 404:
            raise ResourceMissingError(f"GameServer {name} does not exist on node {self.url}")
        _expect(response, 202, f"power {action} on {name}")
        request: str | None = response.json().get("request")
        return request

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- interactive ---------------------------------------------------------------------
    # Console, logs, stats, files and backup archives: the node's per-server endpoints,
    # implemented in docker_node_io (`DockerNodeIO`) over this backend's HTTP client.

    def console(
        self, namespace: str, name: str, *, backlog: int
    ) -> AbstractAsyncContextManager[ConsoleSession]:
        return self._io.console(namespace, name, backlog=backlog)

    async def logs(self, namespace: str, name: str, *, tail: int) -> list[str]:
        return await self._io.logs(namespace, name, tail=tail)

    async def stats(self, namespace: str, name: str) -> ResourceStats:
        return await self._io.stats(namespace, name)

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
        return await self._io.files(
            namespace, name, method=method, path=path, params=params, headers=headers, body=body
        )

    async def backup_archive(self, namespace: str, name: str) -> ProxiedResponse:
        return await self._io.backup_archive(namespace, name)


def _problems(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [f"(document): {response.text[:300]}"]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return [str(error) for error in errors]
    return [f"(document): {body}"]


def _expect(response: httpx.Response, wanted: int, what: str) -> None:
    if response.status_code == 404:
        raise ResourceMissingError(f"{what}: not found ({response.text[:200]})")
    if response.status_code == 409:
        raise BackendError(f"{what}: {_detail(response)}")
    if response.status_code != wanted:
        raise BackendError(f"{what}: unexpected answer {response.status_code} {_detail(response)}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]
