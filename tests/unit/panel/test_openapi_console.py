"""The console WebSocket in the OpenAPI document: its message schemas agree with the parser the
socket uses, and its description, close codes and limits come from the code and settings."""

from __future__ import annotations

import copy
import json
from typing import Any, get_args

import pytest
from openapi_schema_validator import OAS31Validator

from stellarstack.panel.api.openapi import (
    CLIENT_UNION,
    CONSOLE_PATH,
    SERVER_UNION,
    describe_console,
    message_schemas,
)
from stellarstack.panel.consolepolicy import (
    CLOSE_CODE_MEANINGS,
    ERROR_CODE_MEANINGS,
    CloseCode,
    ErrorCode,
    Invalid,
    parse_client_message,
)
from stellarstack.panel.settings import PanelSettings

SCHEMAS = message_schemas()


def accepts(name: str, message: Any) -> bool:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}}
    return OAS31Validator(schema).is_valid(message)


def test_every_close_code_and_error_code_has_a_meaning() -> None:
    assert set(CLOSE_CODE_MEANINGS) == set(CloseCode)
    assert set(ERROR_CODE_MEANINGS) == set(get_args(ErrorCode))


@pytest.mark.parametrize(
    "message",
    [
        {"type": "command", "line": "say hi"},
        {"type": "command", "line": "say hi", "id": 7},
        {"type": "command", "line": ""},
        {"type": "command", "line": "a\nb"},
        {"type": "command", "line": "a\rb"},
        {"type": "command", "line": 5},
        {"type": "command"},
        *({"type": "power", "action": action} for action in ("start", "stop", "restart", "kill")),
        {"type": "power", "action": "explode"},
        {"type": "power"},
        {"type": "shell", "line": "ls"},
        {"line": "say hi"},
        ["command", "say hi"],
        "say hi",
        7,
    ],
)
def test_the_documented_client_messages_are_what_the_parser_accepts(message: Any) -> None:
    understood = not isinstance(parse_client_message(json.dumps(message)), Invalid)
    assert accepts(CLIENT_UNION, message) == understood


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_message_example_fits_its_schema_and_the_union(name: str) -> None:
    for example in SCHEMAS[name].get("examples", []):
        assert accepts(name, example)
        union = CLIENT_UNION if name in ("ConsoleCommand", "ConsolePower") else SERVER_UNION
        assert accepts(union, example)
        if union == CLIENT_UNION:
            assert not isinstance(parse_client_message(json.dumps(example)), Invalid)


def test_the_server_union_refuses_what_the_panel_never_sends() -> None:
    assert not accepts(SERVER_UNION, {"type": "output"})
    assert not accepts(SERVER_UNION, {"type": "error", "code": "oops", "message": "x"})
    assert not accepts(SERVER_UNION, {"type": "command", "line": "say hi"})


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "v1", "description": "The API."},
    "paths": {
        "/a": {"get": {"tags": ["servers"]}, "post": {"tags": ["servers"]}},
        "/b": {"get": {"tags": ["console"]}},
        "/c": {"get": {"tags": ["files", "servers"]}},
    },
    "components": {"schemas": {"ErrorResponse": {"type": "object"}}},
}


def test_describe_console_adds_the_socket_and_keeps_the_rest() -> None:
    original = copy.deepcopy(DOCUMENT)
    settings = PanelSettings(
        environment="development",
        public_url="https://panel.example.net",
        console_message_bytes=1234,
        console_messages_per_second=3,
    )
    described = describe_console(DOCUMENT, settings)

    assert original == DOCUMENT, "the document given is not changed"
    assert described["paths"] == DOCUMENT["paths"]
    assert [tag["name"] for tag in described["tags"]] == ["servers", "console", "files"]
    assert CONSOLE_PATH in described["tags"][1]["description"]
    schemas = described["components"]["schemas"]
    assert {"ErrorResponse", CLIENT_UNION, SERVER_UNION, "ConsoleStats"} <= set(schemas)

    socket = described["x-websockets"][CONSOLE_PATH]
    assert socket["subprotocol"] == "stellarstack.console.v1"
    assert socket["closeCodes"] == {
        str(int(code)): meaning for code, meaning in CLOSE_CODE_MEANINGS.items()
    }
    assert socket["limits"]["messageBytes"] == 1234
    assert socket["limits"]["burst"] == 6
    assert socket["messages"]["client"] == {"$ref": f"#/components/schemas/{CLIENT_UNION}"}

    description = described["info"]["description"]
    assert description.startswith("The API.\n\n## Console WebSocket")
    assert "Origin: https://panel.example.net" in description
    assert "at most 1234 bytes" in description
    for code in CloseCode:
        assert f"| {int(code)} |" in description
    for error in ERROR_CODE_MEANINGS:
        assert f"`{error}`" in description
    # Markdown tables break on a newline inside a cell.
    rows = [line for line in description.splitlines() if line.startswith("| ")]
    assert all(line.endswith(" |") for line in rows), rows
