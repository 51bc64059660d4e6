"""Type a command into a game server's console through the StellarStack panel, and print what
the server writes back.

    export STELLARSTACK_API_KEY=ssk_...    # an API key with console:read and console:write
    python examples/console_client.py --panel http://localhost:8000 --server toy "status"

`--server` takes a server's id or its name (a name is looked up with `GET /api/servers`, which
needs the servers:read scope too). Without a command the script only watches. The key is read
from the environment, not the command line, so it does not show up in the process list.

This speaks the console WebSocket as the panel's OpenAPI document describes it (the "Console
WebSocket" section of /docs, and `x-websockets` in /openapi.json): the API key goes in the
`Authorization` header of the upgrade request, every message is one JSON object, and the panel
says why it closes a socket with a close code (4401: the key is not valid, 4403: no
console.read on that server, ...).

Exit status: 0 when done (with `--expect`: when a line containing that text arrived), 1 when
the expected text did not arrive in time, 2 when the panel refused the command, 3 when it
closed the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

SUBPROTOCOL = Subprotocol("stellarstack.console.v1")
SERVER_ID = re.compile(r"[0-9a-f]{32}")
# A command sent before the panel has attached to the server's process is answered with
# `not_running`; until the first output line arrives (or this long), wait before sending.
ATTACH_WAIT_SECONDS = 3.0
RETRY_SECONDS = 0.5


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", help="the console line to send (omit to watch)")
    parser.add_argument(
        "--panel",
        default=os.environ.get("STELLARSTACK_PANEL_URL", "http://localhost:8000"),
        help="the panel's address (default: $STELLARSTACK_PANEL_URL or http://localhost:8000)",
    )
    parser.add_argument("--server", required=True, help="the server's id or name")
    parser.add_argument(
        "--expect", help="stop (exit 0) once an output line contains this text; exit 1 if not"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to print output (default 10)"
    )
    return parser.parse_args(argv)


def find_server(panel: str, api_key: str, server: str) -> str:
    """The id of the server named `server`, or `server` itself when it is an id."""
    if SERVER_ID.fullmatch(server):
        return server
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=panel, headers=headers, timeout=30) as client:
        answer = client.get("/api/servers", params={"name": server, "per_page": 200})
    if answer.status_code != 200:
        error = answer.json().get("error", {}).get("message", answer.text)
        raise SystemExit(f"looking {server!r} up needs the servers:read scope: {error}")
    matches = [item for item in answer.json()["items"] if item["name"] == server]
    if len(matches) != 1:
        raise SystemExit(f"no single server is named {server!r} ({len(matches)} found)")
    server_id: str = matches[0]["id"]
    return server_id


def websocket_url(panel: str, server_id: str) -> str:
    scheme, rest = panel.rstrip("/").split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/servers/{server_id}/console"


async def next_message(ws: ClientConnection, deadline: float) -> dict[str, Any] | None:
    """The panel's next message, or None once `deadline` (monotonic) has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), left))
    except TimeoutError:
        return None
    return message


def show(message: dict[str, Any]) -> None:
    if message["type"] == "output":
        print(message["line"], flush=True)
    elif message["type"] == "status":
        print(f"[server is {message['state']}]", file=sys.stderr, flush=True)


async def run(arguments: argparse.Namespace, api_key: str, server_id: str) -> int:
    deadline = time.monotonic() + arguments.seconds
    async with connect(
        websocket_url(arguments.panel, server_id),
        additional_headers={"Authorization": f"Bearer {api_key}"},
        subprotocols=[SUBPROTOCOL],
    ) as ws:
        try:
            return await converse(ws, arguments, deadline)
        except ConnectionClosed as closed:
            frame = closed.rcvd
            code, reason = (frame.code, frame.reason) if frame else (None, "no close frame")
            print(f"the panel closed the console: {code} {reason}", file=sys.stderr)
            return 3


async def converse(ws: ClientConnection, arguments: argparse.Namespace, deadline: float) -> int:
    pending = arguments.command
    send_at = time.monotonic() + ATTACH_WAIT_SECONDS
    while True:
        if pending is not None and time.monotonic() >= send_at:
            await ws.send(json.dumps({"type": "command", "line": pending}))
            pending = None
        wait_until = min(deadline, send_at) if pending is not None else deadline
        message = await next_message(ws, wait_until)
        if message is None:
            if time.monotonic() < deadline:
                continue  # time to send the command
            if arguments.expect is not None:
                print(f"no line contained {arguments.expect!r} in time", file=sys.stderr)
                return 1
            return 0
        show(message)
        if message["type"] == "output":
            send_at = min(send_at, time.monotonic())  # attached: the command can go
            if arguments.expect is not None and arguments.expect in message["line"]:
                return 0
        elif message["type"] == "error":
            if message["code"] == "not_running" and arguments.command is not None:
                # Not attached yet (or the server is starting): send it again shortly.
                pending, send_at = arguments.command, time.monotonic() + RETRY_SECONDS
                continue
            print(f"refused: {message['code']}: {message['message']}", file=sys.stderr)
            return 2


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    api_key = os.environ.get("STELLARSTACK_API_KEY", "")
    if not api_key:
        print(
            "set STELLARSTACK_API_KEY to an API key (POST /api/account/api-keys)", file=sys.stderr
        )
        return 2
    server_id = find_server(arguments.panel, api_key, arguments.server)
    return asyncio.run(run(arguments, api_key, server_id))


if __name__ == "__main__":
    sys.exit(main())
