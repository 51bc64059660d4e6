"""Rules of the console WebSocket (pure): message parsing, rate limits, connection caps and
the close codes a client sees.

The console speaks JSON, one object per WebSocket text message; the TypedDicts below are the
messages (the console route builds them, and the OpenAPI document's schemas are generated from
them):

client -> panel  {"type": "command", "line": "say hi"}      needs console.write
                 {"type": "power", "action": "restart"}     needs control.<action>
panel -> client  {"type": "status", "state": "Running"}
                 {"type": "output", "line": "..."}
                 {"type": "stats", "cpuPercent": ..., ...}
                 {"type": "power", "action": "restart", "request": "..."}
                 {"type": "error", "code": "...", "message": "..."}

A message the caller may not send is answered with an error and the socket stays open (a
read-only viewer keeps watching); a message that breaks a limit (size, sustained flood) or a
caller who loses access closes the socket with one of the codes below.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Final, Literal, get_args

from pydantic import ConfigDict, Field, with_config

# pydantic reads TypedDicts (for the OpenAPI document) only from typing_extensions before 3.12.
from typing_extensions import TypedDict

from stellarstack.api.states import GameServerState

PowerAction = Literal["start", "stop", "restart", "kill"]
POWER_ACTIONS: Final[tuple[PowerAction, ...]] = get_args(PowerAction)

ErrorCode = Literal["invalid", "rate_limited", "forbidden", "not_running", "power_failed"]
"""Why a message was not carried out; the socket stays open after each of these."""
ERROR_CODE_MEANINGS: Final[Mapping[ErrorCode, str]] = {
    "invalid": "the message is not a command or power message (the text says what was expected)",
    "rate_limited": "too many messages: this one was dropped",
    "forbidden": "the caller lacks the permission node (or the API key its scope) for it",
    "not_running": "a command while the server has no running process",
    "power_failed": "the node or cluster refused the power action",
}


class CloseCode(IntEnum):
    """Why the panel closed a console socket (4xxx: application codes, RFC 6455 7.4.2);
    `CLOSE_CODE_MEANINGS` says when each is used."""

    POLICY = 1008
    TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    SUSPENDED = 4409
    BACKEND = 4502


CLOSE_CODE_MEANINGS: Final[Mapping[CloseCode, str]] = {
    CloseCode.POLICY: "sustained flooding after the rate-limit warnings",
    CloseCode.TOO_BIG: "a message above the size limit",
    CloseCode.TRY_AGAIN_LATER: "too many console connections (to this server, or of this user)",
    CloseCode.UNAUTHENTICATED: (
        "no valid credentials, or the session or API key ended, was revoked or expired, or the "
        "account was disabled"
    ),
    CloseCode.FORBIDDEN: (
        "the caller does not (or no longer) hold console.read on the server, the server does "
        "not exist or is gone, or a session cookie came from another Origin"
    ),
    CloseCode.SUSPENDED: "the server is suspended (admins excepted)",
    CloseCode.BACKEND: "the node or cluster running the server failed under the console",
}


# The messages on the wire. TypedDicts rather than models: they are plain dicts at run time
# (one per console line), and mypy checks that the route builds exactly these shapes.


@with_config(ConfigDict(json_schema_extra={"examples": [{"type": "command", "line": "say hi"}]}))
class CommandMessage(TypedDict):
    """A line typed into the server's console (needs `console.write`)."""

    type: Literal["command"]
    line: Annotated[str, Field(min_length=1, pattern=r"^[^\r\n]*$")]


@with_config(ConfigDict(json_schema_extra={"examples": [{"type": "power", "action": "restart"}]}))
class PowerMessage(TypedDict):
    """A power action (needs `control.<action>`)."""

    type: Literal["power"]
    action: PowerAction


@with_config(ConfigDict(json_schema_extra={"examples": [{"type": "status", "state": "Running"}]}))
class StatusMessage(TypedDict):
    """The server's state: sent first, then whenever it changes."""

    type: Literal["status"]
    state: Annotated[
        str,
        Field(
            description="A GameServer state: " + ", ".join(GameServerState),
            examples=[GameServerState.RUNNING.value],
        ),
    ]


@with_config(ConfigDict(json_schema_extra={"examples": [{"type": "output", "line": "[say] hi"}]}))
class OutputMessage(TypedDict):
    """One console line: the last lines on connect (the backlog), then live ones."""

    type: Literal["output"]
    line: str


@with_config(
    ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "stats",
                    "cpuPercent": None,
                    "memoryBytes": 52428800,
                    "memoryLimitBytes": 134217728,
                    "networkRxBytes": 1024,
                    "networkTxBytes": 2048,
                    "diskBytes": 4096,
                    "unavailable": {"cpu": "first sample; CPU use is known from the next one"},
                }
            ]
        }
    )
)
class StatsMessage(TypedDict):
    """A sample of resource use, sent every few seconds. A figure the runtime cannot measure
    is null and `unavailable` names it with the reason."""

    type: Literal["stats"]
    cpuPercent: float | None
    memoryBytes: int | None
    memoryLimitBytes: int | None
    networkRxBytes: int | None
    networkTxBytes: int | None
    diskBytes: int | None
    unavailable: dict[str, str]


@with_config(
    ConfigDict(
        json_schema_extra={
            "examples": [{"type": "power", "action": "restart", "request": "r-1a2b3c"}]
        }
    )
)
class PowerAcceptedMessage(TypedDict):
    """A power action was accepted; `request` is the id the server's status echoes for
    restart and kill (null for start and stop)."""

    type: Literal["power"]
    action: PowerAction
    request: str | None


@with_config(
    ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "error",
                    "code": "forbidden",
                    "message": "you lack the 'console.write' permission",
                }
            ]
        }
    )
)
class ErrorMessage(TypedDict):
    """A message that was not carried out; the socket stays open."""

    type: Literal["error"]
    code: ErrorCode
    message: str


ClientToPanel = CommandMessage | PowerMessage
PanelToClient = StatusMessage | OutputMessage | StatsMessage | PowerAcceptedMessage | ErrorMessage


@dataclass(frozen=True)
class Command:
    line: str


@dataclass(frozen=True)
class Power:
    action: PowerAction

    @property
    def node(self) -> str:
        return f"control.{self.action}"


@dataclass(frozen=True)
class Invalid:
    """A message that is not understood; `message` says what was expected."""

    message: str


ClientMessage = Command | Power | Invalid


def parse_client_message(text: str) -> ClientMessage:
    """What a client's text message asks for."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return Invalid("messages are JSON objects")
    if not isinstance(parsed, dict):
        return Invalid("messages are JSON objects")
    kind = parsed.get("type")
    if kind == "command":
        line = parsed.get("line")
        if not isinstance(line, str) or not line:
            return Invalid("line: a non-empty string is required")
        if "\n" in line or "\r" in line:
            return Invalid("line: must be a single line")
        return Command(line)
    if kind == "power":
        action = parsed.get("action")
        if action == "start" or action == "stop" or action == "restart" or action == "kill":
            return Power(action)
        return Invalid(f"action: one of {', '.join(POWER_ACTIONS)}")
    return Invalid('type: "command" or "power"')


@dataclass
class TokenBucket:
    """`rate` messages per second on average, bursts up to `burst`; time is passed in."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def allow(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class FloodGuard:
    """Drops messages over the rate; closes once `close_after` messages were dropped in a row
    of refills (a client that keeps sending past the warnings is not a typist)."""

    bucket: TokenBucket
    close_after: int
    dropped: int = 0

    def check(self, now: float) -> Literal["ok", "drop", "close"]:
        if self.bucket.allow(now):
            self.dropped = 0
            return "ok"
        self.dropped += 1
        return "close" if self.dropped >= self.close_after else "drop"


@dataclass
class ConnectionCaps:
    """Open console sockets per server and per user, within one panel process."""

    per_server: int
    per_user: int
    servers: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def acquire(self, server_id: str, user_id: str) -> str | None:
        """Count a new socket; None when allowed, else the reason it is refused."""
        if self.servers.get(server_id, 0) >= self.per_server:
            return f"too many console connections to this server (at most {self.per_server})"
        if self.users.get(user_id, 0) >= self.per_user:
            return f"too many console connections of this user (at most {self.per_user})"
        self.servers[server_id] = self.servers.get(server_id, 0) + 1
        self.users[user_id] = self.users.get(user_id, 0) + 1
        return None

    def release(self, server_id: str, user_id: str) -> None:
        for counts, key in ((self.servers, server_id), (self.users, user_id)):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)


def api_key_from_subprotocols(offered: list[str], prefix: str) -> str | None:
    """The API key a client put in `Sec-WebSocket-Protocol` as `<prefix><key>` (browsers
    cannot set an Authorization header on a WebSocket; a query string would end up in logs)."""
    for entry in offered:
        if entry.startswith(prefix) and len(entry) > len(prefix):
            return entry[len(prefix) :]
    return None


def same_origin(origin: str | None, public_url: str) -> bool:
    """Whether a browser's Origin header names the panel itself (scheme, host and port)."""
    if not origin:
        return False
    return _origin_of(origin) == _origin_of(public_url)


def _origin_of(url: str) -> tuple[str, str, int]:
    scheme, _, rest = url.strip().partition("://")
    scheme = scheme.lower()
    host_port = rest.split("/", 1)[0].lower()
    host, colon, port = host_port.rpartition(":")
    if not colon or "]" in port:
        host, port = host_port, ""
    default = 443 if scheme in {"https", "wss"} else 80
    return scheme, host, int(port) if port.isdigit() else default


class ReplayFilter:
    """Drops the backlog a console replays when it attaches again (after a stop, a restart,
    or a dropped stream): the client already has those lines.

    Lines of a new session are held while they continue what was already sent; once they
    reach its last line the rest are new, and as soon as they diverge the held lines are new
    after all and are let through.
    """

    def __init__(self, keep: int) -> None:
        self._recent: deque[str] = deque(maxlen=keep)
        self._held: list[str] = []
        self._matching = False

    def new_session(self) -> None:
        self._held = []
        self._matching = bool(self._recent)

    def feed(self, line: str) -> list[str]:
        """The lines to send for `line` (none while it may still be a replay)."""
        if not self._matching:
            self._recent.append(line)
            return [line]
        held = [*self._held, line]
        recent = list(self._recent)
        size = len(held)
        starts = [j for j in range(len(recent) - size + 1) if recent[j : j + size] == held]
        if any(j + size == len(recent) for j in starts):
            self._matching, self._held = False, []
            return []
        if starts:
            self._held = held
            return []
        self._matching, self._held = False, []
        self._recent.extend(held)
        return held
