"""The panel under test (pytest plugin): a fresh database per test on SQLite and on PostgreSQL,
the real application, and clients that log in the way browsers and API clients do.

`panel_db_url` is parametrised over both databases, so every test that uses it (directly or
through `panel`) runs on both.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import PanelContext, build_context
from stellarstack.panel.db.engine import make_engine
from stellarstack.panel.db.migrate import upgrade
from stellarstack.panel.settings import PanelSettings
from support.postgres import PostgresServer

ADMIN_EMAIL = "admin@example.com"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A migrated database that each test's database is copied from."""
    name = "panel_template"
    postgres_server.admin(f"CREATE DATABASE {name}")
    engine = make_engine(postgres_server.url(name))
    upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def panel_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/panel.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("postgres_template")
    name = f"panel_{secrets.token_hex(6)}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Clock:
    """The panel's clock in tests: real time plus an offset the test moves."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def panel_settings(tmp_path: Path, database_url: str, **overrides: Any) -> PanelSettings:
    values: dict[str, Any] = {
        "environment": "production",
        "secret_key": secrets.token_hex(32),
        "database_url": database_url,
        "data_dir": tmp_path,
        "public_url": "https://testserver",
        **overrides,
    }
    return PanelSettings(**values)


@dataclass
class Panel:
    """The running panel: its context (database, clock) and a factory of clients."""

    context: PanelContext
    app: Any
    clock: Clock
    _clients: list[TestClient] = field(default_factory=list)

    def client(self, *, api_key: str | None = None) -> PanelClient:
        raw = TestClient(self.app, base_url="https://testserver")
        raw.__enter__()
        self._clients.append(raw)
        return PanelClient(raw, api_key=api_key)

    def close(self) -> None:
        for raw in self._clients:
            raw.__exit__(None, None, None)
        self.context.engine.dispose()

    def setup_admin(self, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> PanelClient:
        client = self.client()
        response = client.post(
            "/api/auth/setup", json={"email": email, "name": "Admin", "password": password}
        )
        assert response.status_code == 201, response.text
        client.csrf = response.json()["csrf_token"]
        return client

    def login(self, email: str, password: str = PASSWORD) -> PanelClient:
        client = self.client()
        client.login(email, password)
        return client


class PanelClient:
    """A TestClient that sends the CSRF header on writes (as the panel's pages do) or an API
    key as a bearer token."""

    def __init__(self, raw: TestClient, *, api_key: str | None = None) -> None:
        self.raw = raw
        self.api_key = api_key
        self.csrf: str | None = None

    def _headers(self, method: str, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.api_key is not None:
            merged.setdefault("Authorization", f"Bearer {self.api_key}")
        elif self.csrf and method not in {"GET", "HEAD", "OPTIONS"}:
            merged.setdefault("X-CSRF-Token", self.csrf)
        return merged

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        kwargs["headers"] = self._headers(method.upper(), kwargs.get("headers"))
        return self.raw.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    def login(self, email: str, password: str = PASSWORD) -> Any:
        response = self.raw.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]
        return response.json()

    def create_api_key(self, scopes: list[str], name: str = "test key") -> str:
        response = self.post("/api/account/api-keys", json={"name": name, "scopes": scopes})
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key


@pytest.fixture
def panel_clock() -> Clock:
    return Clock()


@pytest.fixture
def panel(tmp_path: Path, panel_db_url: str, panel_clock: Clock) -> Iterator[Panel]:
    context = build_context(panel_settings(tmp_path, panel_db_url))
    context.clock = panel_clock
    running = Panel(context=context, app=create_app(context), clock=panel_clock)
    yield running
    running.close()


def create_user(panel: Panel, admin: PanelClient, email: str, password: str = PASSWORD) -> str:
    """A regular user made by the admin through the API; returns the user id."""
    response = admin.post(
        "/api/admin/users", json={"email": email, "name": email.split("@")[0], "password": password}
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id
