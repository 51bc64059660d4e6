"""The interactive half of the Kubernetes backend: console, logs and stats through the game
Pod (the operator's `KubernetesRuntime`: the followed container log, stdin through the attach
API, metrics.k8s.io), and files through the GameServer's on-demand files Pod.

Files: the panel asks for the files Pod by setting the GameServer's
`stellarstack.io/files-requested-at` annotation (at most once a minute per server, which keeps
the Pod from going idle while the file manager is used), waits until the Pod is Ready, and
sends the node API's files request through the API server's service proxy with its own
Kubernetes credentials. The files Pod only accepts panel-signed server tokens, which go in the
`token` query parameter (the API server consumes the Authorization header): one server, the
scope the route needs, five minutes. See docs/operator.md, "Files".

`KubernetesBackend` (backends/kubernetes.py) composes this class for those methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stellarstack.api.constants import GROUP, VERSION
from stellarstack.api.runtime import ConsoleSession, ResourceStats, ServerKey
from stellarstack.api.runtime import ServerNotFoundError as RuntimeServerNotFoundError
from stellarstack.api.runtime import ServerNotRunningError as RuntimeServerNotRunningError
from stellarstack.api.tokens import ServerGrant, sign_server_token
from stellarstack.operator.runtime import KubernetesRuntime
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    ProxiedResponse,
    ResourceMissingError,
    ServerNotRunningError,
)
from stellarstack.panel.backends.docker_node_io import (
    PASSED_REQUEST_HEADERS,
    PASSED_RESPONSE_HEADERS,
)

FILES_REQUESTED = "stellarstack.io/files-requested-at"
"""The GameServer annotation the operator's files Pod follows (operator.filespod)."""
FILES_PORT_NAME = "http"
TOKEN_LIFETIME = timedelta(minutes=5)
# The operator removes the files Pod 15 minutes after the last request by default; asking
# again once a minute keeps it while the file manager is in use, without a write per call.
REQUEST_EVERY = 60.0
READY_TIMEOUT = 120.0
READY_RECHECK = 10.0
_ERROR_LIMIT = 64 * 1024


def files_scope(method: str, operation: str) -> str:
    """The server-token scope a files route needs (the node API's own mapping)."""
    if method.upper() in {"GET", "HEAD"}:
        return "files.read"
    if operation == "delete":
        return "files.delete"
    if operation in {"archive", "extract"}:
        return "files.archive"
    return "files.write"


@dataclass
class _FilesPod:
    requested_at: float = 0.0
    ready_at: float = 0.0


class KubernetesIO:
    """Console, logs, stats and files of the GameServers of one Kubernetes API client."""

    def __init__(
        self,
        api_client: Any,
        *,
        signing_key: Ed25519PrivateKey | None,
        files_audience: str = "kubernetes",
        subject: str = "panel",
    ) -> None:
        self._api_client = api_client
        self._runtime = KubernetesRuntime(api_client)
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._signing_key = signing_key
        self._audience = files_audience
        self._subject = subject
        self._pods: dict[ServerKey, _FilesPod] = {}
        self._tls: ssl.SSLContext | None = None

    # --- console, logs, stats -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def console(
        self, namespace: str, name: str, *, backlog: int
    ) -> AsyncIterator[ConsoleSession]:
        try:
            async with self._runtime.attach(ServerKey(namespace, name), backlog=backlog) as session:
                yield _Console(session)
        except (RuntimeServerNotRunningError, RuntimeServerNotFoundError) as exc:
            raise ServerNotRunningError(str(exc)) from exc
        except ApiException as exc:
            raise BackendUnavailableError(f"the API server answered {exc.status}") from exc

    async def logs(self, namespace: str, name: str, *, tail: int) -> list[str]:
        try:
            return await self._runtime.logs(ServerKey(namespace, name), tail=tail)
        except (RuntimeServerNotRunningError, RuntimeServerNotFoundError):
            return []
        except ApiException as exc:
            raise BackendUnavailableError(f"the API server answered {exc.status}") from exc

    async def stats(self, namespace: str, name: str) -> ResourceStats:
        try:
            return await self._runtime.stats(ServerKey(namespace, name))
        except (RuntimeServerNotRunningError, RuntimeServerNotFoundError) as exc:
            raise ServerNotRunningError(str(exc)) from exc
        except ApiException as exc:
            raise BackendUnavailableError(f"the API server answered {exc.status}") from exc

    # --- files ----------------------------------------------------------------------------

    def _token(self, namespace: str, name: str, scope: str) -> str:
        if self._signing_key is None:
            raise BackendError("the panel has no signing key for the files service")
        now = datetime.now(UTC)
        grant = ServerGrant(
            subject=self._subject,
            namespace=namespace,
            name=name,
            scopes=frozenset({scope}),
            audience=self._audience,
            expires_at=now + TOKEN_LIFETIME,
        )
        return sign_server_token(self._signing_key, grant, now=now)

    async def _request_files_pod(self, key: ServerKey) -> None:
        """Ask for the files Pod (bump the annotation) and wait until it is Ready."""
        pod = self._pods.setdefault(key, _FilesPod())
        now = time.monotonic()
        if now - pod.requested_at >= REQUEST_EVERY:
            stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            patch = {"metadata": {"annotations": {FILES_REQUESTED: stamp}}}
            try:
                await asyncio.to_thread(
                    self._custom.patch_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    key.namespace,
                    "gameservers",
                    key.name,
                    patch,
                )
            except ApiException as exc:
                if exc.status == 404:
                    raise ResourceMissingError(f"GameServer {key.name} not found") from exc
                raise BackendUnavailableError(f"the API server answered {exc.status}") from exc
            pod.requested_at = now
        if now - pod.ready_at < READY_RECHECK:
            return
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._files_pod_ready, key):
                pod.ready_at = time.monotonic()
                return
            await asyncio.sleep(1.0)
        raise BackendUnavailableError(
            f"the files Pod of {key.name} did not become ready within {int(READY_TIMEOUT)} s "
            "(is the operator's files service configured?)"
        )

    def _files_pod_ready(self, key: ServerKey) -> bool:
        try:
            pod = self._core.read_namespaced_pod(f"{key.name}-files", key.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        conditions = pod.status.conditions or [] if pod.status else []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    def _client(self) -> httpx.AsyncClient:
        """A client for one files call: the backend is shared between event loops, and an
        HTTP client belongs to the loop it was made on."""
        configuration = self._api_client.configuration
        if self._tls is None:
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            self._tls = context
        return httpx.AsyncClient(
            base_url=configuration.host, verify=self._tls, timeout=httpx.Timeout(30, read=60)
        )

    def _auth_headers(self) -> dict[str, str]:
        # Asked per request: in a Pod the service-account token rotates (the refresh hook).
        bearer = self._api_client.configuration.get_api_key_with_prefix("authorization")
        return {"Authorization": bearer} if bearer else {}

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
        key = ServerKey(namespace, name)
        operation = path.strip("/")
        await self._request_files_pod(key)
        ns, gs = quote(namespace, safe=""), quote(name, safe="")
        url = (
            f"/api/v1/namespaces/{ns}/services/{gs}-files:{FILES_PORT_NAME}/proxy"
            f"/api/v1/namespaces/{ns}/gameservers/{gs}/files/{operation}"
        )
        query = {**params, "token": self._token(namespace, name, files_scope(method, operation))}
        forwarded = {k: v for k, v in headers.items() if k.lower() in PASSED_REQUEST_HEADERS}
        http = self._client()
        request = http.build_request(
            method,
            url,
            params=query,
            headers={**forwarded, **self._auth_headers()},
            content=body,
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            await http.aclose()
            raise BackendUnavailableError(f"the API server: {exc}") from exc
        except BaseException:
            await http.aclose()
            raise

        async def release() -> None:
            await response.aclose()
            await http.aclose()

        if response.status_code >= 500:
            text = (await _bounded(response)).decode(errors="replace")
            await http.aclose()
            # The Pod went away between the check and the call: ask again next time.
            self._pods.pop(key, None)
            raise BackendUnavailableError(
                f"the files service answered {response.status_code}: {text[:200]}"
            )
        return ProxiedResponse(
            status_code=response.status_code,
            headers={
                k: v for k, v in response.headers.items() if k.lower() in PASSED_RESPONSE_HEADERS
            },
            body=response.aiter_raw(),
            close=release,
        )

    async def backup_archive(self, namespace: str, name: str) -> ProxiedResponse:
        raise BackendError(
            "downloading backup archives from Kubernetes is not supported yet; the archive "
            "is in the backup's storage target"
        )

    async def aclose(self) -> None:
        """Nothing to release: each files call closes its own connection."""


class _Console:
    """The runtime's console session with its errors in the backend vocabulary."""

    def __init__(self, session: ConsoleSession) -> None:
        self._session = session

    def lines(self) -> AsyncIterator[str]:
        return self._session.lines()

    async def send(self, line: str) -> None:
        try:
            await self._session.send(line)
        except (RuntimeServerNotRunningError, RuntimeServerNotFoundError) as exc:
            raise ServerNotRunningError(str(exc)) from exc


async def _bounded(response: httpx.Response) -> bytes:
    data = b""
    try:
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) > _ERROR_LIMIT:
                break
    finally:
        await response.aclose()
    return data[:_ERROR_LIMIT]
