"""The panel's OpenAPI document: what FastAPI generates from the routes, plus the console
WebSocket, which FastAPI does not list (OpenAPI has no WebSocket operations).

The console is described three ways, all built from the code that serves it
(`stellarstack.panel.consolepolicy`, `stellarstack.panel.api.serverio`) and from the running
panel's settings, so the document cannot drift from the socket:

- a section of `info.description`, which Swagger UI and ReDoc show as text;
- the `x-websockets` extension, for programs: path, subprotocols, authentication, messages
  (schema references) and close codes;
- the message schemas in `components.schemas` (`ConsoleClientMessage`, `ConsoleServerMessage`
  and one schema per message type).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from fastapi import FastAPI
from pydantic import TypeAdapter

from stellarstack.panel import permissions
from stellarstack.panel.api.deps import API_KEY_PREFIX, SESSION_COOKIE
from stellarstack.panel.api.serverio import BEARER_SUBPROTOCOL, SUBPROTOCOL
from stellarstack.panel.consolepolicy import (
    CLOSE_CODE_MEANINGS,
    ERROR_CODE_MEANINGS,
    CommandMessage,
    ErrorMessage,
    OutputMessage,
    PowerAcceptedMessage,
    PowerMessage,
    StatsMessage,
    StatusMessage,
)
from stellarstack.panel.settings import PanelSettings

CONSOLE_PATH: Final = "/api/servers/{server_id}/console"
CONSOLE_TAG: Final = "console"
REF: Final = "#/components/schemas/{model}"

CLIENT_MESSAGES: Final[Mapping[str, Any]] = {
    "ConsoleCommand": CommandMessage,
    "ConsolePower": PowerMessage,
}
SERVER_MESSAGES: Final[Mapping[str, Any]] = {
    "ConsoleStatus": StatusMessage,
    "ConsoleOutput": OutputMessage,
    "ConsoleStats": StatsMessage,
    "ConsolePowerAccepted": PowerAcceptedMessage,
    "ConsoleError": ErrorMessage,
}
CLIENT_UNION: Final = "ConsoleClientMessage"
SERVER_UNION: Final = "ConsoleServerMessage"


def message_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every console message, and of the two unions (one per direction),
    keyed by their names in `components.schemas`."""
    schemas: dict[str, dict[str, Any]] = {}
    for group in (CLIENT_MESSAGES, SERVER_MESSAGES):
        for name, message in group.items():
            schema = TypeAdapter(message).json_schema(ref_template=REF)
            schema["title"] = name
            schemas[name] = schema
    schemas[CLIENT_UNION] = _union(
        CLIENT_UNION, CLIENT_MESSAGES, schemas, "What a client sends, one per text message."
    )
    schemas[SERVER_UNION] = _union(
        SERVER_UNION, SERVER_MESSAGES, schemas, "What the panel sends, one per text message."
    )
    return schemas


def _union(
    name: str, group: Mapping[str, Any], schemas: Mapping[str, Any], description: str
) -> dict[str, Any]:
    """One of the `group`'s messages, told apart by their `type`."""
    return {
        "title": name,
        "description": description,
        "oneOf": [{"$ref": REF.format(model=member)} for member in group],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                schemas[member]["properties"]["type"]["const"]: REF.format(model=member)
                for member in group
            },
        },
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _example(schema: Mapping[str, Any]) -> str:
    """A message's first example as one line of JSON, `type` first (as clients write it)."""
    example = dict(schema["examples"][0])
    ordered = {"type": example.pop("type"), **example}
    return json.dumps(ordered)


def console_websocket(settings: PanelSettings) -> dict[str, Any]:
    """The `x-websockets` entry of the console: everything a program needs to speak to it."""
    return {
        "summary": "A server's live console: output, status and stats out; commands and power in",
        "tags": [CONSOLE_TAG],
        "parameters": [
            {"name": "server_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "subprotocol": SUBPROTOCOL,
        "authentication": [
            {
                "kind": "api-key-header",
                "description": f"`Authorization: Bearer {API_KEY_PREFIX}<id>.<secret>` on the "
                "upgrade request",
            },
            {
                "kind": "api-key-subprotocol",
                "description": f"the subprotocols `{SUBPROTOCOL}` and "
                f"`{BEARER_SUBPROTOCOL}<API key>` (browsers cannot set headers on a WebSocket); "
                f"the panel answers `{SUBPROTOCOL}`",
            },
            {
                "kind": "session-cookie",
                "description": f"the `{SESSION_COOKIE}` cookie, only with `Origin: "
                f"{settings.public_url}` (the panel's own pages)",
            },
        ],
        "permissions": {
            "connect": "console.read",
            "command": "console.write",
            "power": "control.<action>",
        },
        "messages": {
            "client": {"$ref": REF.format(model=CLIENT_UNION)},
            "server": {"$ref": REF.format(model=SERVER_UNION)},
        },
        "errorCodes": dict(ERROR_CODE_MEANINGS),
        "closeCodes": {str(int(code)): meaning for code, meaning in CLOSE_CODE_MEANINGS.items()},
        "limits": {
            "messageBytes": settings.console_message_bytes,
            "messagesPerSecond": settings.console_messages_per_second,
            "burst": settings.console_messages_per_second * 2,
            "floodCloseAfter": settings.console_flood_close_after,
            "connectionsPerServer": settings.console_connections_per_server,
            "connectionsPerUser": settings.console_connections_per_user,
            "recheckSeconds": settings.console_recheck_seconds,
        },
    }


def console_description(settings: PanelSettings, schemas: Mapping[str, Any]) -> str:
    """The console section of the document's description (Markdown)."""
    scope = permissions.scope_for("console.read")
    rows = [
        f"| {direction} | `{_example(schemas[name])}` | {_one_line(schemas[name]['description'])} |"
        for direction, group in (
            ("client → panel", CLIENT_MESSAGES),
            ("panel → client", SERVER_MESSAGES),
        )
        for name in group
    ]
    errors = [f"- `{code}`: {meaning}" for code, meaning in ERROR_CODE_MEANINGS.items()]
    closes = [f"| {int(code)} | {meaning} |" for code, meaning in CLOSE_CODE_MEANINGS.items()]
    rate = settings.console_messages_per_second
    lines = [
        "## Console WebSocket",
        "",
        f"`{CONSOLE_PATH}` (`ws://` or `wss://`): a server's console, live. It is not among "
        "the operations below (OpenAPI has no WebSocket operations); programs find it in this "
        f"document's `x-websockets` extension, its messages under Schemas (`{CLIENT_UNION}`, "
        f"`{SERVER_UNION}`).",
        "",
        "**Authentication**, checked before anything is sent and again every "
        f"{settings.console_recheck_seconds:g} s and on every message:",
        "",
        f"- scripts: an API key in `Authorization: Bearer {API_KEY_PREFIX}...` on the upgrade "
        "request;",
        f"- scripts in a browser (no headers on a WebSocket): the subprotocols `{SUBPROTOCOL}` "
        f"and `{BEARER_SUBPROTOCOL}<API key>`; the panel answers `{SUBPROTOCOL}`;",
        f"- the panel's own pages: the session cookie, only from `Origin: {settings.public_url}`.",
        "",
        "An API key in the query string is not accepted (query strings end up in logs).",
        "",
        f"**Permissions**: connecting needs `console.read` (API key scope `{scope}`); a command "
        "needs `console.write`, a power action `control.<action>`. A message the caller may "
        "not send is answered with an `error` and the socket stays open.",
        "",
        "**Messages**: one JSON object per text message.",
        "",
        "| direction | example | when |",
        "|---|---|---|",
        *rows,
        "",
        "Codes of `error` messages:",
        "",
        *errors,
        "",
        f"**Limits**: messages of at most {settings.console_message_bytes} bytes; "
        f"{rate:g} messages per second (bursts of {rate * 2:g}), after which messages are "
        f"dropped with `rate_limited`, and after {settings.console_flood_close_after} drops "
        f"in a row the socket closes; {settings.console_connections_per_server} sockets per "
        f"server and {settings.console_connections_per_user} per user.",
        "",
        "**Close codes**:",
        "",
        "| code | when |",
        "|---|---|",
        *closes,
    ]
    return "\n".join(lines)


def describe_console(
    document: dict[str, Any], settings: PanelSettings, schemas: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`document` with the console WebSocket described (a new dict; `document` is kept)."""
    schemas = message_schemas() if schemas is None else schemas
    components = dict(document.get("components", {}))
    components["schemas"] = {**components.get("schemas", {}), **schemas}
    info = dict(document["info"])
    info["description"] = (
        info.get("description", "") + "\n\n" + console_description(settings, schemas)
    ).strip()
    return {
        **document,
        "info": info,
        "tags": _tags(document),
        "components": components,
        "x-websockets": {CONSOLE_PATH: console_websocket(settings)},
    }


def _tags(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every tag in the order the operations first use it (as the pages list them anyway),
    the console's with a pointer to its WebSocket."""
    names: list[str] = []
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for tag in operation.get("tags", []):
                if tag not in names:
                    names.append(tag)
    console = (
        f"The console log over HTTP. The live console is the WebSocket `{CONSOLE_PATH}`: see "
        "*Console WebSocket* in the description at the top."
    )
    return [
        {"name": name, "description": console} if name == CONSOLE_TAG else {"name": name}
        for name in names
    ]


def install_openapi(app: FastAPI, settings: PanelSettings) -> None:
    """Make `app.openapi()` return the document with the console described (built once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = describe_console(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
