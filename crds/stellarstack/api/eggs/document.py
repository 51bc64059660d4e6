"""Turning untrusted egg text into plain Python data, with bounds checked before the work is done.

An egg comes from strangers on the internet. Three limits keep a hostile one cheap to refuse:
its size (checked before decoding), its nesting depth (checked before or while parsing, so no
parser recursion is ever deep) and, for YAML, anchors and aliases (refused outright, which makes
"billion laughs" expansion impossible) plus a bound on the number of nodes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, Event, ScalarEvent
from yaml.nodes import Node

from stellarstack.api.eggs.errors import EggError

MAX_DOCUMENT_BYTES: Final = 2 * 1024 * 1024
MAX_DEPTH: Final = 32
MAX_YAML_NODES: Final = 200_000

# A JSON string literal; the two alternatives cannot both match a character, so this is linear.
_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET: Final = re.compile(r"[\[\]{}]")


def decode_document(document: str | bytes) -> str:
    """The egg as text, refusing oversized documents before any decoding or parsing."""
    if isinstance(document, bytes) or len(document) > MAX_DOCUMENT_BYTES:
        size = len(document)
    else:
        size = len(document.encode("utf-8", errors="surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise EggError(
            f"document: {size} bytes is larger than the limit of {MAX_DOCUMENT_BYTES} bytes (2 MiB)"
        )
    if isinstance(document, bytes):
        try:
            return document.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EggError(f"document: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return document.removeprefix("\ufeff")


def load_document(document: str | bytes) -> Any:
    """Parse a JSON or YAML egg into plain data (dicts, lists, scalars)."""
    text = decode_document(document)
    stripped = text.lstrip()
    if not stripped:
        raise EggError("document: empty")
    if stripped[0] in "{[":
        try:
            return load_json(text, "document")
        except EggError as json_error:
            # A flow-style YAML document also starts with a bracket; JSON's reason is the more
            # useful one when both fail, and depth errors are final either way.
            if "nested deeper" in str(json_error):
                raise
            try:
                return load_yaml(text)
            except EggError:
                raise json_error from None
    return load_yaml(text)


def check_json_depth(text: str, field: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, counting brackets outside string literals."""
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise EggError(f"{field}: nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def load_json(text: str, field: str) -> Any:
    """Parse JSON text that is part of an egg (the document, or a JSON string field inside it)."""
    check_json_depth(text, field)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EggError(
            f"{field}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:  # pragma: no cover - the depth check runs first
        raise EggError(f"{field}: nested too deeply") from exc


class _BoundedSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors, aliases, deep nesting and huge node counts."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: Event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, AliasEvent):
            raise EggError(
                f"document: YAML aliases (*{event.anchor}) are not accepted (line {line})"
            )
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise EggError(
                f"document: YAML anchors (&{event.anchor}) are not accepted (line {line})"
            )
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise EggError(f"document: more than {MAX_YAML_NODES} YAML nodes")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise EggError(f"document: nested deeper than {MAX_DEPTH} levels (line {line})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """Parse a YAML egg with the bounded safe loader (never yaml.load with a full loader)."""
    loader: _BoundedSafeLoader | None = None
    try:
        # The reader checks the characters as soon as the loader is made, so it is inside too.
        loader = _BoundedSafeLoader(text)
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise EggError(f"document: not valid YAML ({reason})") from exc
    finally:
        if loader is not None:
            loader.dispose()
