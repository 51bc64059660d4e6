"""Settings of the panel, from `STELLARSTACK_PANEL_*` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "example", "development"}
DEVELOPMENT_SECRET = "development-only-secret-never-use-in-production"


class Environment(StrEnum):
    """Where the panel runs; only development accepts the built-in secret and logged mail."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class PanelSettings(BaseSettings):
    """Everything the panel needs to start; passed explicitly, never read from globals."""

    model_config = SettingsConfigDict(env_prefix="STELLARSTACK_PANEL_", extra="forbid")

    environment: Environment = Environment.PRODUCTION
    """`development` relaxes the secret checks and logs mail instead of sending it."""
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    """Key for CSRF tokens and signed links; a random secret of at least 32 characters."""
    database_url: str = "sqlite:///stellarstack-panel.db"
    """SQLAlchemy URL: `sqlite:///file.db` (default) or `postgresql+psycopg://...`."""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    """Requests that work with the database at once, per process; the others wait their turn
    without holding a thread. The pool keeps this many connections and opens up to as many
    again plus 4 more (short side transactions, background tasks), so a PostgreSQL server
    needs `workers * (2 * this + 4)` connections per panel replica."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes `stellarstack panel serve` runs (each with its own pool); the background
    tasks run in one process at a time across workers and replicas."""
    background_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    """How long the process running the background tasks (webhook delivery, node heartbeats,
    status sync) holds them without renewing: when it dies, another process takes over
    within this time. Renewed every third of it."""
    data_dir: Path = Path(".")
    """Where the panel keeps its signing key when none is given."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = "http://localhost:8000"
    """The address users reach the panel at (links in mail, WebSocket origins)."""
    extra_origins: list[str] = Field(default_factory=list, max_length=16)
    """Other addresses the panel's own pages are opened at (e.g. `http://127.0.0.1:8000` beside
    `http://localhost:8000`): cookie-authenticated console sockets are accepted from them too."""
    session_lifetime_hours: int = Field(default=24 * 14, ge=1, le=24 * 365)
    """How long a login session lives without activity."""
    cookie_secure: bool = True
    """Mark cookies Secure (HTTPS only); turned off automatically in development."""
    signing_key_file: Path | None = None
    """PEM Ed25519 private key the panel signs server tokens with (generated when missing)."""
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    """Upgrade SMTP connections with STARTTLS (the server's certificate is checked)."""
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    smtp_ca_file: Path | None = None
    """PEM certificates to trust for the SMTP server (a private CA); the system's otherwise."""
    mail_from: str = "StellarStack <noreply@localhost>"
    mail_requests_per_account: int = Field(default=3, ge=1, le=1000)
    """Password-reset and verification mails per address in `login_window_seconds`."""
    mail_requests_per_ip: int = Field(default=10, ge=1, le=10000)
    """Password-reset and verification mails per client address in `login_window_seconds`."""
    login_attempts_per_account: int = Field(default=5, ge=1, le=1000)
    """Failed logins (or 2FA codes) per account in `login_window_seconds` before refusing."""
    login_attempts_per_ip: int = Field(default=20, ge=1, le=10000)
    """Failed logins per client address in `login_window_seconds` before refusing."""
    login_window_seconds: int = Field(default=900, ge=1, le=86400)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest JSON request body accepted (file uploads stream to the backend instead)."""
    webhook_allowed: list[str] = Field(default_factory=list)
    """`address:port` pairs webhooks may reach although they are not public."""
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    """Delivery attempts of one event before it is marked failed."""
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Wait after the first failed attempt; doubled after each further one (up to 6 hours)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Connect and read timeout of one delivery attempt."""
    webhook_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    """How often the delivery worker looks for due deliveries."""
    metrics_token: SecretStr | None = None
    """When set, `/metrics` requires `Authorization: Bearer <token>`; open otherwise."""
    console_connections_per_server: int = Field(default=8, ge=1, le=1000)
    """Open console WebSockets per server (per panel process; a Docker node allows 8 by
    default, one per panel socket)."""
    console_connections_per_user: int = Field(default=8, ge=1, le=1000)
    """Open console WebSockets per user, over all servers (per panel process)."""
    console_message_bytes: int = Field(default=4096, ge=64, le=65536)
    """Largest console message a client may send; a bigger one closes the socket (1009)."""
    console_messages_per_second: float = Field(default=5.0, gt=0, le=100)
    """Sustained console input rate per socket; bursts of twice that pass."""
    console_flood_close_after: int = Field(default=20, ge=1, le=10000)
    """Messages dropped for the rate in a row before the socket is closed (1008)."""
    console_recheck_seconds: float = Field(default=3.0, gt=0, le=60)
    """How often an open console re-checks the session or API key, the permission and the
    server's suspension (also checked on every message)."""
    kubeconfig: Path | None = None
    """Kubeconfig for Kubernetes targets; in-cluster credentials when unset and in a Pod."""

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> PanelSettings:
        if self.is_development:
            self.cookie_secure = False
            return self
        secret = self.secret_key.get_secret_value()
        if (
            secret == DEVELOPMENT_SECRET
            or secret.lower() in _PLACEHOLDERS
            or len(secret) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                "STELLARSTACK_PANEL_SECRET_KEY must be a random secret of at least "
                f"{MIN_SECRET_LENGTH} characters outside development (e.g. `openssl rand -hex "
                "32`); set STELLARSTACK_PANEL_ENVIRONMENT=development to run without one"
            )
        return self
