"""Egg placeholders to StellarStack's `{{NAME}}` vocabulary, and back.

Pterodactyl and Pelican use two vocabularies. Startup commands use `{{VARIABLE}}` plus
`{{SERVER_MEMORY}}`, `{{SERVER_IP}}` and `{{SERVER_PORT}}`; whatever the panel does not know is
turned into `${VARIABLE}` by the images' entrypoint and expanded by a shell. Config-file values use
dotted paths into the server's settings: `{{server.build.default.port}}` (Pterodactyl) or
`{{server.allocations.default.port}}` (Pelican), `{{server.build.env.X}}`,
`{{server.environment.X}}` or `{{env.X}}` for variables, and `{{config.X}}` for settings of the
node daemon itself. StellarStack has one vocabulary: `{{NAME}}`, where NAME is a variable or one
of the built-in names (`SERVER_PORT`, `SERVER_IP`, `SERVER_MEMORY`, `SERVER_UUID`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Final

from stellarstack.api.common import ENV_NAME
from stellarstack.api.eggs.errors import EggError
from stellarstack.api.startup import BUILTIN_VARIABLES, PLACEHOLDER

# `{{ key }}` where key may be dotted (`server.build.env.X`) or dashed.
EGG_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")

# Server settings Pterodactyl and Pelican resolve, by the built-in name that holds the same value.
SERVER_PATHS: Final = {
    "server.build.default.port": "SERVER_PORT",
    "server.allocations.default.port": "SERVER_PORT",
    "server.build.default.ip": "SERVER_IP",
    "server.allocations.default.ip": "SERVER_IP",
    "server.build.memory": "SERVER_MEMORY",
    "server.build.memory_limit": "SERVER_MEMORY",
    "server.uuid": "SERVER_UUID",
}
# Environment variables the node daemon sets, by the built-in name that holds the same value.
DAEMON_ENV: Final = {
    "SERVER_PORT": "SERVER_PORT",
    "SERVER_IP": "SERVER_IP",
    "SERVER_MEMORY": "SERVER_MEMORY",
    "P_SERVER_UUID": "SERVER_UUID",
    "TZ": "TZ",
}
ENV_PREFIXES: Final = ("server.build.env.", "server.environment.", "env.")


def _replace(text: str, pattern: re.Pattern[str], replace: Callable[[str], str]) -> str:
    return pattern.sub(lambda match: replace(match.group(1)), text)


def import_config_value(text: str, variables: Collection[str], field: str) -> str:
    """A config-file value with egg placeholders rewritten into `{{NAME}}` form.

    A variable the egg does not declare resolves to an empty value in Pterodactyl, so it becomes
    the empty string here too. `{{config.X}}` (a node daemon setting) is kept as it is.
    """

    def replace(key: str) -> str:
        if key in SERVER_PATHS:
            return "{{" + SERVER_PATHS[key] + "}}"
        for prefix in ENV_PREFIXES:
            if key.startswith(prefix):
                name = key.removeprefix(prefix)
                if name in variables:
                    return "{{" + name + "}}"
                if name in DAEMON_ENV:
                    return "{{" + DAEMON_ENV[name] + "}}"
                return ""
        if key.startswith("config."):
            return "{{" + key + "}}"
        if ENV_NAME.match(key) and (key in variables or key in BUILTIN_VARIABLES):
            # Not egg syntax (the panel leaves it as text), but the intent is unmistakable.
            return "{{" + key + "}}"
        raise EggError(f"{field}: placeholder {{{{{key}}}}} has no StellarStack equivalent")

    return _replace(text, EGG_PLACEHOLDER, replace)


def import_startup(text: str, variables: Collection[str], field: str) -> str:
    """A startup command with egg placeholders rewritten into `{{NAME}}` / `${NAME}` form."""

    def replace(key: str) -> str:
        if key in variables or key in BUILTIN_VARIABLES:
            return "{{" + key + "}}"
        if key in SERVER_PATHS:
            return "{{" + SERVER_PATHS[key] + "}}"
        if key in DAEMON_ENV:
            return "{{" + DAEMON_ENV[key] + "}}"
        for prefix in ENV_PREFIXES:
            # Config-file spelling in a startup command: the intent is the variable.
            if key.startswith(prefix):
                key = key.removeprefix(prefix)
                if key in variables or key in BUILTIN_VARIABLES:
                    return "{{" + key + "}}"
                if key in DAEMON_ENV:
                    return "{{" + DAEMON_ENV[key] + "}}"
                break
        if ENV_NAME.match(key):
            # The images' entrypoint turns an unknown `{{X}}` into `${X}` for the shell.
            return "${" + key + "}"
        raise EggError(f"{field}: placeholder {{{{{key}}}}} has no StellarStack equivalent")

    return _replace(text, EGG_PLACEHOLDER, replace)


def export_config_value(text: str, pelican: bool) -> str:
    """A config-file value with `{{NAME}}` rewritten into the egg's dotted paths."""
    allocation = "server.allocations.default" if pelican else "server.build.default"
    environment = "server.environment." if pelican else "server.build.env."
    builtins = {
        "SERVER_PORT": f"{allocation}.port",
        "SERVER_IP": f"{allocation}.ip",
        "SERVER_MEMORY": "server.build.memory",
        "SERVER_UUID": "server.uuid",
    }

    def replace(name: str) -> str:
        return "{{" + builtins.get(name, environment + name) + "}}"

    return _replace(text, PLACEHOLDER, replace)


def export_startup(text: str) -> str:
    """A startup command in egg form: the same `{{NAME}}`s, except the daemon's own UUID name."""
    return _replace(
        text,
        PLACEHOLDER,
        lambda name: "{{P_SERVER_UUID}}" if name == "SERVER_UUID" else "{{" + name + "}}",
    )
