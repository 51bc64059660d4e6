"""What the running panel holds: settings, database, signing key. Built once at start and
passed to everything explicitly (FastAPI reads it from `app.state`)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from stellarstack.panel.backends.registry import BackendRegistry
from stellarstack.panel.db.engine import make_engine, make_session_factory
from stellarstack.panel.db.gate import DatabaseGate
from stellarstack.panel.metrics import PanelMetrics
from stellarstack.panel.services.activity import ActivityRecorder
from stellarstack.panel.services.mail import Mailer, UnconfiguredMailer, mailer_for
from stellarstack.panel.settings import PanelSettings


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PanelContext:
    settings: PanelSettings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    """For read-only requests: no write lock on SQLite."""
    signing_key: Ed25519PrivateKey
    database_gate: DatabaseGate
    """Every piece of request work that uses the database passes it (see `DatabaseGate`)."""
    activity: ActivityRecorder = field(default_factory=ActivityRecorder)
    metrics: PanelMetrics = field(default_factory=PanelMetrics)
    mailer: Mailer = field(default_factory=UnconfiguredMailer)
    """SMTP, or the log in development; `build_context` picks it from the settings."""
    clock: Callable[[], datetime] = field(default=_utcnow)
    """Injected so tests can move time (TOTP steps, expiries) without sleeping."""
    backends: BackendRegistry = field(default_factory=BackendRegistry)
    """The backend of each Docker node and Kubernetes target servers run on."""

    @property
    def public_key_pem(self) -> str:
        return (
            self.signing_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The panel's Ed25519 key for server tokens; created (mode 0600) on first start. Safe
    when several processes start at once (`serve --workers N`): the key is written to a file
    of its own and linked into place, so the first link wins and everyone reads a whole
    key."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            # Another process may have been first: then its key is the one.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return loaded


def build_context(settings: PanelSettings, *, engine: Engine | None = None) -> PanelContext:
    engine = engine or make_engine(settings.database_url, admissions=settings.database_pool_size)
    key_file = settings.signing_key_file or settings.data_dir / "panel-signing-key.pem"
    signing_key = load_signing_key(key_file)
    return PanelContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        read_sessions=make_session_factory(engine, read_only=True),
        signing_key=signing_key,
        database_gate=DatabaseGate(settings.database_pool_size),
        backends=BackendRegistry(kubeconfig=settings.kubeconfig, signing_key=signing_key),
        mailer=mailer_for(settings),
    )
