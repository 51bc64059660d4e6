"""Settings of the node agent, from `STELLARSTACK_NODE_*` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stellarstack.api.netpolicy import AddressPolicy

MIN_TOKEN_LENGTH = 32
_PLACEHOLDERS = {"changeme", "change-me", "secret", "token", "password", "example"}


class NodeSettings(BaseSettings):
    """Where the agent keeps its state, what it listens on, and the panel's token."""

    model_config = SettingsConfigDict(env_prefix="STELLARSTACK_NODE_", extra="forbid")

    token: SecretStr
    """Bearer token the panel authenticates with; at least 32 characters, never a placeholder."""
    data_dir: Path = Path("/var/lib/stellarstack")
    """Server data directories and the agent's SQLite state live here."""
    host: str = "127.0.0.1"
    """Address the node API listens on."""
    port: int = Field(default=8443, ge=1, le=65535)
    """Port the node API listens on."""
    agent_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=63)
    """Name this agent's containers are labelled with; unique per Docker engine."""
    publish_address: str = "0.0.0.0"
    """Host address game ports are published on."""
    probe_host: str = "127.0.0.1"
    """Address readiness probes connect to (the published ports on this host)."""
    tls_cert: Path | None = None
    """PEM certificate for HTTPS; plain HTTP when unset (only behind a TLS proxy or on loopback)."""
    tls_key: Path | None = None
    """PEM private key for `tls_cert`."""
    console_connections_per_server: int = Field(default=8, ge=1, le=256)
    """Most simultaneous console WebSockets per server."""
    console_message_bytes: int = Field(default=4096, ge=64, le=65536)
    """Largest console message a client may send."""
    console_messages_per_second: float = Field(default=10, gt=0, le=1000)
    """Sustained console input rate per connection (bursts of twice that are allowed)."""
    sftp_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the SFTP server; SFTP is off when unset."""
    sftp_host: str = "0.0.0.0"
    """Address the SFTP server listens on (players connect to it, so all by default)."""
    sftp_users_file: Path | None = None
    """JSON or YAML file of SFTP users (password hashes, keys, per-server permissions);
    required with `sftp_port` until the panel authenticates SFTP logins."""

    panel_public_key: str | None = None
    """The panel's Ed25519 public key (PEM). With it, browsers may use short-lived server
    tokens the panel signs; without it, only the node token is accepted."""
    pull_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    """Largest file a URL pull may download (the server's disk quota applies as well)."""
    pull_allowed: list[str] = Field(default_factory=list)
    """`address:port` pairs URL pulls may reach although they are not public (e.g. a mirror
    on the node's own network). Everything else private, loopback or link-local is refused."""

    def pull_policy(self) -> AddressPolicy:
        """The destination policy for URL pulls."""
        exceptions = set()
        for entry in self.pull_allowed:
            address, _, port = entry.rpartition(":")
            exceptions.add((address.strip("[]"), int(port)))
        return AddressPolicy(frozenset(exceptions))

    @field_validator("token")
    @classmethod
    def _strong_token(cls, token: SecretStr) -> SecretStr:
        value = token.get_secret_value()
        if value.lower() in _PLACEHOLDERS or len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"STELLARSTACK_NODE_TOKEN must be a random secret of at least "
                f"{MIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        return token

    @model_validator(mode="after")
    def _sftp_needs_users(self) -> NodeSettings:
        if self.sftp_port is not None and self.sftp_users_file is None:
            raise ValueError(
                "STELLARSTACK_NODE_SFTP_USERS_FILE is required when STELLARSTACK_NODE_SFTP_PORT "
                "is set (it lists who may log in to which server)"
            )
        return self

    @property
    def state_file(self) -> Path:
        """The agent's desired-state database."""
        return self.data_dir / "nodeproxy.sqlite"

    @property
    def servers_dir(self) -> Path:
        """Root of the per-server data directories."""
        return self.data_dir / "servers"

    @property
    def sftp_host_key(self) -> Path:
        """The SFTP server's ed25519 host key (generated on first start, mode 0600)."""
        return self.data_dir / "ssh_host_ed25519_key"
