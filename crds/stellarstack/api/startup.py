"""Startup command rendering: `{{VARIABLE}}` templates to an argv, values never parsed by a shell.

Two shapes of template exist in the wild:

* plain commands (`java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}`) are split into words
  the way a POSIX shell would split the *template*, then each placeholder is replaced inside its
  word. A value with spaces, quotes or `$(...)` stays one literal argument.
* commands that need a shell (`&&`, pipes, `$( ... )`, `${VAR}`) run as `/bin/sh -c SCRIPT`,
  where every placeholder becomes a quoted reference to an environment variable (`"${NAME}"`).
  The shell expands the reference to the value as data; the value is never part of the script's
  text, so it cannot inject commands. Pterodactyl substitutes values into the script text
  instead, which is how a variable value could run code there.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Set by the runtime for every server; blueprints and eggs may use them in templates.
BUILTIN_VARIABLES: Final = {
    "SERVER_IP": "Address the game should bind to (all interfaces inside the container).",
    "SERVER_PORT": "The primary port's number.",
    "SERVER_MEMORY": "Memory limit in MiB.",
    "SERVER_UUID": "The GameServer's unique id.",
    "SERVER_NAME_ID": "The GameServer's name (metadata.name).",
    "TZ": "Time zone of the node.",
}

# Characters that make a template need a shell: operators, expansions, redirections, globs.
# Such a template keeps its shell meaning (it runs under /bin/sh -c); values stay out of it.
_SHELL_SYNTAX = re.compile(r"[|&;<>()`*?~]|\$[({\w@#?$!*-]|\n")

SHELL: Final = ("/bin/sh", "-c")


class StartupError(ValueError):
    """A template that cannot be rendered, with the reason."""


@dataclass(frozen=True)
class RenderedStartup:
    """The rendered command: an argv, and whether it runs through `/bin/sh -c`."""

    argv: tuple[str, ...]
    uses_shell: bool


def needs_shell(template: str) -> bool:
    """Whether the template uses shell syntax (operators or expansions) outside placeholders."""
    return _SHELL_SYNTAX.search(PLACEHOLDER.sub("", template)) is not None


def render_startup(template: str, values: Mapping[str, str]) -> RenderedStartup:
    """Render a startup template; `values` must hold every placeholder's value.

    In shell mode the values are *not* used: the runtime passes them as environment variables.
    They are still required here so that a missing value is an error in both modes.
    """
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise StartupError("no value for placeholder(s): " + ", ".join(missing))
    if needs_shell(template):
        return RenderedStartup(argv=(*SHELL, shell_script(template)), uses_shell=True)
    try:
        words = shlex.split(template, posix=True)
    except ValueError as exc:
        raise StartupError(f"cannot split the command into words: {exc}") from exc
    if not words:
        raise StartupError("the command is empty")
    argv = tuple(PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in words)
    return RenderedStartup(argv=argv, uses_shell=False)


def shell_script(template: str) -> str:
    """The template with each placeholder turned into an expansion that the shell treats as data.

    The expansion is quoted to suit where the placeholder stands: `"${NAME}"` outside quotes,
    `${NAME}` inside double quotes, and `'"${NAME}"'` (close, expand, reopen) inside single quotes.
    """
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(template):
        match = PLACEHOLDER.match(template, index)
        if match is not None:
            name = match.group(1)
            if quote is None:
                out.append(f'"${{{name}}}"')
            elif quote == '"':
                out.append(f"${{{name}}}")
            else:
                out.append(f"'\"${{{name}}}\"'")
            index = match.end()
            continue
        char = template[index]
        if char == "\\" and quote != "'" and index + 1 < len(template):
            out.append(template[index : index + 2])
            index += 2
            continue
        if char in "'\"":
            if quote is None:
                quote = char
            elif quote == char:
                quote = None
        out.append(char)
        index += 1
    return "".join(out)


def display_command(rendered: RenderedStartup) -> str:
    """The command as a human would type it, for logs and the panel."""
    if rendered.uses_shell:
        return rendered.argv[-1]
    return shlex.join(rendered.argv)
