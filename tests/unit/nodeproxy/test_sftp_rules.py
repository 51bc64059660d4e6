"""Pure SFTP rules: the user name format, the FileError -> SFTP status table, client path
normalisation, password hashes, the users file, the login rate limiter and the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest
from pydantic import ValidationError

from stellarstack.nodeproxy.files import FileError, FileErrorCode
from stellarstack.nodeproxy.settings import NodeSettings
from stellarstack.nodeproxy.sftp import (
    SFTP_STATUS,
    LoginLimits,
    LoginRateLimiter,
    Permission,
    SftpGrant,
    SftpLogin,
    client_path,
    hash_password,
    parse_username,
    relative_path,
    sftp_error,
    verify_password,
)
from stellarstack.nodeproxy.sftp.auth import normalise_public_key, parse_users

TOKEN = "t" * 48


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("alice.games.mc1", SftpLogin("alice", "games", "mc1")),
        ("Bob_2-x.default.survival", SftpLogin("Bob_2-x", "default", "survival")),
        # Server names are DNS subdomains: their dots stay with the name.
        ("alice.games.mc1.eu.west", SftpLogin("alice", "games", "mc1.eu.west")),
    ],
)
def test_usernames_parse(login: str, expected: SftpLogin) -> None:
    assert parse_username(login) == expected
    assert str(expected) == login


@pytest.mark.parametrize(
    "login",
    [
        "",
        "alice",
        "alice.games",
        "alice.games.",
        ".games.mc1",
        "al ice.games.mc1",
        "alice@x.games.mc1",
        "alice.Games.mc1",  # namespaces are lower-case DNS labels
        "alice.games.MC1",
        "alice.games.-mc1",
        "alice.games.mc1..x",
        "alice.games.mc1/../x",
        "a" * 65 + ".games.mc1",
        "alice." + "n" * 64 + ".mc1",
        "alice.games." + "n" * 254,
    ],
)
def test_bad_usernames_are_refused(login: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_username(login)


def test_every_file_error_code_has_an_sftp_status() -> None:
    assert set(SFTP_STATUS) == set(FileErrorCode)
    # Only SFTP v3 codes: the server speaks version 3, newer codes would be folded anyway.
    assert all(code <= asyncssh.FX_OP_UNSUPPORTED for code in SFTP_STATUS.values())


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (FileErrorCode.NOT_FOUND, asyncssh.FX_NO_SUCH_FILE),
        (FileErrorCode.DENIED, asyncssh.FX_PERMISSION_DENIED),
        (FileErrorCode.SYMLINK_REFUSED, asyncssh.FX_PERMISSION_DENIED),
        (FileErrorCode.NOT_A_REGULAR_FILE, asyncssh.FX_PERMISSION_DENIED),
        (FileErrorCode.QUOTA_EXCEEDED, asyncssh.FX_FAILURE),
        (FileErrorCode.EXISTS, asyncssh.FX_FAILURE),
        (FileErrorCode.BAD_PATH, asyncssh.FX_FAILURE),
        (FileErrorCode.IO_ERROR, asyncssh.FX_FAILURE),
    ],
)
def test_file_errors_map_to_sftp_statuses(code: FileErrorCode, status: int) -> None:
    error = sftp_error(FileError(code, "dir/file.txt"))
    assert error.code == status
    assert "dir/file.txt" in error.reason


@pytest.mark.parametrize(
    ("raw", "absolute"),
    [
        (b"", "/"),
        (b".", "/"),
        (b"/", "/"),
        (b"//a//b/", "/a/b"),
        (b"a/./b", "/a/b"),
        (b"/../../etc", "/etc"),
        (b"../../..", "/"),
        (b"a/../../b", "/b"),
        (b"/a/b/../c", "/a/c"),
    ],
)
def test_client_paths_never_climb_above_the_root(raw: bytes, absolute: str) -> None:
    assert client_path(raw) == absolute
    assert relative_path(raw) == absolute.lstrip("/")


def test_nul_in_a_path_is_refused() -> None:
    with pytest.raises(asyncssh.SFTPError):
        client_path(b"a\x00b")


def test_password_hashes_verify_and_reject() -> None:
    encoded = hash_password("hunter2!")
    assert encoded.startswith("scrypt$")
    assert encoded != hash_password("hunter2!")  # salted
    assert verify_password("hunter2!", encoded)
    assert not verify_password("hunter2", encoded)
    assert not verify_password("hunter2!", "bcrypt$whatever")
    assert not verify_password("hunter2!", "scrypt$x$y")


def test_grants_check_permission_nodes() -> None:
    grant = SftpGrant("bob", "games", "mc1", frozenset({"files.sftp", "files.read"}))
    assert grant.allows(Permission.READ)
    assert not grant.allows(Permission.DELETE)


def test_users_file_is_validated_naming_the_field() -> None:
    good = {
        "users": {
            "alice": {
                "password": hash_password("x"),
                "authorized_keys": ["ssh-ed25519 AAAAC3Nza alice@laptop"],
                "servers": {"games/mc1": ["files.sftp", "files.read"]},
            }
        }
    }
    users = parse_users(good)
    assert users["alice"].authorized_keys == frozenset({"ssh-ed25519 AAAAC3Nza"})
    bad: list[tuple[Any, str]] = [
        ({}, "users"),
        ({"users": {"a.b": {}}}, r"users\.a\.b"),
        ({"users": {"a": {"password": "plain"}}}, r"users\.a\.password"),
        ({"users": {"a": {"authorized_keys": ["nokey"]}}}, r"users\.a\.authorized_keys"),
        ({"users": {"a": {"servers": {"mc1": ["files.read"]}}}}, r"users\.a\.servers"),
        ({"users": {"a": {"servers": {"g/mc1": ["files.all"]}}}}, r"users\.a\.servers\.g/mc1"),
    ]
    for document, field in bad:
        with pytest.raises(ValueError, match=field):
            parse_users(document)


def test_public_keys_compare_without_comment() -> None:
    assert normalise_public_key("ssh-ed25519 AAAA  me@host") == "ssh-ed25519 AAAA"


def test_login_rate_limiter_per_user_and_per_address() -> None:
    now = [0.0]
    limiter = LoginRateLimiter(
        LoginLimits(per_ip_rate=1, per_ip_burst=5, per_user_rate=0.5, per_user_burst=2),
        clock=lambda: now[0],
    )
    assert limiter.allow("10.0.0.1", "alice")
    assert limiter.allow("10.0.0.2", "alice")
    assert not limiter.allow("10.0.0.3", "alice")  # alice's bucket is empty
    assert limiter.allow("10.0.0.3", "bob")
    now[0] = 2.0  # one token back for alice
    assert limiter.allow("10.0.0.4", "alice")
    assert not limiter.allow("10.0.0.4", "alice")
    for _ in range(3):
        limiter.allow("10.0.0.9", None)
    for _ in range(2):
        limiter.allow("10.0.0.9", None)
    assert not limiter.allow("10.0.0.9", "carol")  # the address is spent


def test_login_rate_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = LoginRateLimiter(LoginLimits(max_tracked=100), clock=lambda: now[0])
    for i in range(1000):
        now[0] += 0.001
        limiter.allow(f"10.0.{i // 256}.{i % 256}", f"user{i}")
    assert len(limiter._ips) <= 100
    assert len(limiter._users) <= 100


def test_sftp_settings(tmp_path: Path) -> None:
    off = NodeSettings(token=TOKEN)  # type: ignore[arg-type]
    assert off.sftp_port is None
    users = tmp_path / "users.yaml"
    on = NodeSettings(
        token=TOKEN,  # type: ignore[arg-type]
        data_dir=tmp_path,
        sftp_port=2022,
        sftp_users_file=users,
    )
    assert on.sftp_host_key == tmp_path / "ssh_host_ed25519_key"
    with pytest.raises(ValidationError, match="SFTP_USERS_FILE"):
        NodeSettings(token=TOKEN, sftp_port=2022)  # type: ignore[arg-type]


def test_login_rate_limiter_forgets_refilled_buckets_before_spent_ones() -> None:
    now = [0.0]
    limiter = LoginRateLimiter(
        LoginLimits(per_ip_rate=0.001, per_ip_burst=1, max_tracked=10), clock=lambda: now[0]
    )
    assert limiter.allow("attacker", None)
    for i in range(8):
        limiter.allow(f"10.0.0.{i}", None)
    now[0] = 10_000.0  # everyone refilled except what the attacker spends again now
    assert limiter.allow("attacker", None)
    limiter.allow("newcomer", None)  # the 10th address: prunes refilled buckets
    assert not limiter.allow("attacker", None)
