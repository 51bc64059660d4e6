"""The default port an imported egg declares.

Eggs have no port field: Pterodactyl and Pelican hand the server its allocation's number through
`{{SERVER_PORT}}` in the startup command or `{{server.build.default.port}}` (Pelican:
`{{server.allocations.default.port}}`) in a config file, and the game listens on whatever that
says. So an egg that uses the number gets one primary port, carried by `SERVER_PORT`; one that
never mentions it gets none. Everything is read from fields that export writes back unchanged,
so egg -> Blueprint -> egg -> Blueprint declares the same port.

* protocol: the words around each use of the port (a config key such as `UDP_PORT`, a line such
  as `endpoint_add_udp "0.0.0.0:{{...}}"`, a flag such as `-udpport`) name `tcp`, `udp` or both.
  When none does, an install script that fetches SteamCMD means a Steam game server: TCP and
  UDP (game traffic is UDP; Source RCON and a few Steam games use TCP on the same number).
  Otherwise TCP.
* number: a config key that receives the port, written with a number in the install script
  (`server-port=25565`, `port: 7777`); otherwise `FALLBACK_PORT`. Inside the container the
  number only has to match `SERVER_PORT`, which it does by construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from stellarstack.api.blueprint import (
    PRIMARY_PORT_VARIABLE,
    BlueprintPort,
    ConfigFile,
    InstallStep,
    StartupCommand,
)
from stellarstack.api.gameserver import Protocol

PORT_NAME: Final = "game"
FALLBACK_PORT: Final = 25565
"""The number an egg's port gets when the egg never writes one down: the first allocation of
most Pterodactyl installations."""

_PLACEHOLDER: Final = "{{" + PRIMARY_PORT_VARIABLE + "}}"
# `tcp`/`udp` as a word of its own or glued to "port": `UDP_PORT`, `endpoint_add_udp`,
# `-udpport` and `tcpPort` count. Only text around a use of the port is read.
_TRANSPORT_WORD: Final = re.compile(r"(?<![A-Za-z])(tcp|udp)(?=[^A-Za-z]|port|$)", re.IGNORECASE)
# The text before a placeholder in a startup command that still describes it: the flag or
# assignment it belongs to (`--udp-port={{SERVER_PORT}}`, `+port {{SERVER_PORT}}`).
_STARTUP_CONTEXT: Final = re.compile(r"(\S*\s*)" + re.escape(_PLACEHOLDER))
# A key segment: the last dotted or bracketed part of a config key, without decoration.
_KEY_SEGMENTS: Final = re.compile(r"[.\[\]]")
_KEY_DECORATION: Final = " \t#/=:;\"'"
_STEAMCMD: Final = re.compile(r"steamcmd", re.IGNORECASE)


def egg_ports(
    startup_commands: Iterable[StartupCommand],
    config_files: Iterable[ConfigFile],
    install: InstallStep | None,
) -> list[BlueprintPort]:
    """The ports an egg declares by using `SERVER_PORT` (already in StellarStack's form)."""
    contexts: list[str] = []
    keys: list[str] = []
    for command in startup_commands:
        contexts.extend(match.group(0) for match in _STARTUP_CONTEXT.finditer(command.command))
    for config in config_files:
        for edit in config.edits:
            texts = [edit.value or "", *(r.value for r in edit.replacements)]
            if any(_PLACEHOLDER in text for text in texts):
                keys.append(edit.key)
                contexts.append(edit.key)
                contexts.extend(text for text in texts if _PLACEHOLDER in text)
    if not contexts:
        return []
    script = install.script if install is not None else ""
    return [
        BlueprintPort(
            name=PORT_NAME,
            port=_number(keys, script),
            protocol=_protocol(contexts, steam=_STEAMCMD.search(script) is not None),
            primary=True,
            variable=PRIMARY_PORT_VARIABLE,
        )
    ]


def _protocol(contexts: Iterable[str], *, steam: bool) -> Protocol:
    named = {
        match.group(1).upper() for text in contexts for match in _TRANSPORT_WORD.finditer(text)
    }
    if named == {"TCP", "UDP"} or (not named and steam):
        return Protocol.TCPUDP
    if named == {"UDP"}:
        return Protocol.UDP
    return Protocol.TCP


def _number(keys: Iterable[str], script: str) -> int:
    for key in keys:
        parts = [part.strip(_KEY_DECORATION) for part in _KEY_SEGMENTS.split(key)]
        names = [part for part in parts if part and not part.isdigit()]
        if not names or not script:
            continue
        written = re.search(
            r"(?<![\w.-])" + re.escape(names[-1]) + r"[\"']?\s*(?:=|:|\s)\s*[\"']?(\d{1,5})(?!\d)",
            script,
        )
        if written is not None and 1 <= int(written.group(1)) <= 65535:
            return int(written.group(1))
    return FALLBACK_PORT
