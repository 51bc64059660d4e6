"""The panel against its own OpenAPI document: schemathesis generates requests for every
operation (valid and invalid input) and checks that none answers with a server error, and that
every answer's status and body are the ones the document declares. Every example in the
document is valid for its schema, and every request-body example is a request the panel
accepts (Swagger UI pre-fills "Try it out" with them).

Runs on SQLite only: the property being tested is the API's contract, not the database (every
other panel test runs on both)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from schemathesis.specs.openapi import checks as openapi_checks

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Node, Server, TargetKind, User
from support.panel import ADMIN_EMAIL, PASSWORD, Clock, Panel, panel_settings
from support.runtime_harness import free_port

# Backends answer 502/503 when a node or cluster cannot be reached; that is a documented answer,
# not a crash. Everything else at 5xx is a defect.
DOCUMENTED_SERVER_ERRORS = {502, 503}


@pytest.fixture
def openapi_panel(tmp_path: Path) -> Iterator[Panel]:
    context = build_context(panel_settings(tmp_path, f"sqlite:///{tmp_path}/panel.db"))
    clock = Clock()
    context.clock = clock
    running = Panel(context=context, app=create_app(context), clock=clock)
    yield running
    running.close()


@pytest.fixture
def api_schema(openapi_panel: Panel) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", openapi_panel.app)


@pytest.fixture
def admin_key(openapi_panel: Panel) -> str:
    admin = openapi_panel.setup_admin(password=PASSWORD)
    return admin.create_api_key(["*"], name="schemathesis")


def _check(case: Any, admin_key: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {admin_key}"})
    if response.status_code in DOCUMENTED_SERVER_ERRORS:
        assert response.json()["error"]["code"], response.text
        return
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            openapi_checks.status_code_conformance,
            openapi_checks.response_schema_conformance,
        ],
    )


def test_every_operation_keeps_its_contract(api_schema: Any, admin_key: str) -> None:
    # Driven by hand rather than through schemathesis' pytest plugin: one test, every operation,
    # each with a bounded number of generated cases.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50, "the document lists fewer operations than the panel has"
    for operation in operations:
        strategy = operation.as_strategy()

        @given(case=strategy)
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            _check(case, admin_key)

        run()


# --- Examples -------------------------------------------------------------------------------

# JSON Schema keywords whose values are schemas: maps of them, lists of them, single ones.
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_SINGLES = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)


@dataclass(frozen=True)
class Example:
    where: str
    """Where the example sits in the document, e.g. `components.schemas.X.examples[0]`."""
    value: Any
    schema: dict[str, Any]
    """The schema it must satisfy."""


def schema_examples(schema: Any, where: str) -> Iterator[Example]:
    """Every `example` and `examples` entry in `schema` and the schemas nested in it."""
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        yield Example(f"{where}.example", schema["example"], schema)
    for index, value in enumerate(schema.get("examples", [])):
        yield Example(f"{where}.examples[{index}]", value, schema)
    for keyword in SCHEMA_MAPS:
        for name, nested in schema.get(keyword, {}).items():
            yield from schema_examples(nested, f"{where}.{keyword}.{name}")
    for keyword in SCHEMA_LISTS:
        for index, nested in enumerate(schema.get(keyword, [])):
            yield from schema_examples(nested, f"{where}.{keyword}[{index}]")
    for keyword in SCHEMA_SINGLES:
        yield from schema_examples(schema.get(keyword), f"{where}.{keyword}")


def holder_examples(holder: dict[str, Any], where: str) -> Iterator[Example]:
    """The examples of a media type or a parameter (its own, then its schema's)."""
    schema = holder.get("schema", {})
    if "example" in holder:
        yield Example(f"{where}.example", holder["example"], schema)
    for name, example in holder.get("examples", {}).items():
        if "value" in example:
            yield Example(f"{where}.examples.{name}", example["value"], schema)
    yield from schema_examples(schema, f"{where}.schema")


def document_examples(document: dict[str, Any]) -> list[Example]:
    """Every example in an OpenAPI 3.1 document: in the component schemas, and in each
    operation's parameters, request bodies and responses."""
    found: list[Example] = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        found.extend(schema_examples(schema, f"components.schemas.{name}"))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            here = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                found.extend(holder_examples(parameter, f"{here} parameter {parameter['name']}"))
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                found.extend(holder_examples(media, f"{here} requestBody {media_type}"))
            for status, response in operation.get("responses", {}).items():
                for media_type, media in response.get("content", {}).items():
                    found.extend(holder_examples(media, f"{here} response {status} {media_type}"))
    return found


def invalid_examples(document: dict[str, Any]) -> list[str]:
    """Each example that its schema refuses, with where it is and why."""
    problems: list[str] = []
    for example in document_examples(document):
        # The components beside the schema let its `#/components/schemas/...` references
        # resolve (JSON Schema ignores a keyword it does not know).
        schema = {**example.schema, "components": document["components"]}
        validator = OAS31Validator(schema, format_checker=oas31_format_checker)
        for error in validator.iter_errors(example.value):
            inside = "".join(f"[{part!r}]" for part in error.absolute_path)
            problems.append(f"{example.where}{inside}: {error.message}")
    return problems


@pytest.fixture
def document(openapi_panel: Panel) -> dict[str, Any]:
    response = openapi_panel.client().get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_example_in_the_document_is_valid(document: dict[str, Any]) -> None:
    wheres = {example.where for example in document_examples(document)}
    assert len(wheres) > 40, "the walk found fewer examples than the document has"
    # Examples from each place they come from: pydantic fields, json_schema_extra of a model,
    # Body(examples=...), Query(examples=...), the console messages.
    assert {
        "components.schemas.ApiKeyCreate.properties.name.examples[0]",
        "components.schemas.ApiKeyCreate.examples[0]",
        "components.schemas.BackupCreate.examples[0]",
        "POST /api/servers/{server_id}/schedules requestBody application/json.schema.examples[0]",
        "GET /api/admin/activity parameter event.schema.examples[0]",
        "components.schemas.ConsoleStats.examples[0]",
    } <= wheres, sorted(wheres)
    assert invalid_examples(document) == []


def test_an_invalid_example_is_reported_with_its_place(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    api_key = broken["components"]["schemas"]["ApiKeyCreate"]
    api_key["examples"] = [{"name": "bot", "scopes": [], "expires_at": "next week"}]
    api_key["properties"]["name"]["examples"] = [""]
    problems = invalid_examples(broken)
    assert "components.schemas.ApiKeyCreate.properties.name.examples[0]: '' should be " in (
        "\n".join(problems)
    )
    assert any(
        problem.startswith("components.schemas.ApiKeyCreate.examples[0]['scopes']:")
        for problem in problems
    ), problems
    assert any(
        problem.startswith("components.schemas.ApiKeyCreate.examples[0]['expires_at']:")
        for problem in problems
    ), problems


def body_examples(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """The whole-body examples of a JSON request body: the media type's own and those of its
    schema (through a reference), the ones Swagger UI pre-fills Try it out with."""
    examples = [media["example"]] if "example" in media else []
    examples += [entry["value"] for entry in media.get("examples", {}).values()]
    schema = media.get("schema", {})
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    examples += [schema["example"]] if "example" in schema else []
    examples += schema.get("examples", [])
    return examples


def unreachable_server(panel: Panel, owner_email: str) -> str:
    """A server on a node nobody listens for (loopback, closed port): routes under it check
    their body before they call the node, which then answers 503."""
    with transaction(panel.context.sessions) as db:
        owner = db.query(User).filter(User.email == owner_email).one()
        node = Node(
            name="examples",
            url=f"http://127.0.0.1:{free_port()}",
            token="t" * 64,
            agent_id="examples",
        )
        db.add(node)
        db.flush()
        server = Server(
            name="examples",
            owner_id=owner.id,
            target_kind=TargetKind.DOCKER,
            node_id=node.id,
            namespace="default",
            resource_name="examples",
            blueprint="toy",
            state="Running",
        )
        db.add(server)
        db.flush()
        return server.id


def fill(path: str, server_id: str, example: Any) -> str:
    """`path` with its parameters filled in: the test's server, the example's own value where
    it names one (a schedule's `name`), else a made-up name."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "server_id":
            return server_id
        if isinstance(example, dict) and isinstance(example.get(name), str):
            return str(example[name])
        return "example-name"

    return re.sub(r"\{([^}]+)\}", value, path)


def test_every_request_body_example_is_accepted(
    openapi_panel: Panel, admin_key: str, document: dict[str, Any]
) -> None:
    server_id = unreachable_server(openapi_panel, ADMIN_EMAIL)
    client = openapi_panel.client(api_key=admin_key)
    sent: set[str] = set()
    refused: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            for example in body_examples(document, media):
                response = client.request(
                    method.upper(), fill(path, server_id, example), json=example
                )
                sent.add(f"{method.upper()} {path}")
                if response.status_code == 422:
                    refused.append(f"{method.upper()} {path} {example}: {response.text}")
    assert {
        "POST /api/account/api-keys",
        "POST /api/servers/{server_id}/backups",
        "POST /api/servers/{server_id}/schedules",
        "PUT /api/servers/{server_id}/schedules/{name}",
    } <= sent, sent
    assert refused == []
