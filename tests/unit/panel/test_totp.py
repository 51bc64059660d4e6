"""TOTP against RFC 6238's test vectors, and the rule that a code is accepted only once."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest

from stellarstack.panel.security import totp
from stellarstack.panel.security.recovery_codes import (
    ALPHABET,
    hash_recovery_code,
    new_recovery_codes,
    normalise_recovery_code,
)

# RFC 6238 appendix B, SHA1: the ASCII key "12345678901234567890". The RFC lists 8-digit
# codes; a 6-digit code is the same value modulo 10**6, i.e. its last six digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "rfc_code"), RFC_VECTORS)
def test_codes_match_rfc_6238_sha1_vectors(unix_time: int, rfc_code: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.step_of(unix_time)) == rfc_code[-totp.DIGITS :]


@pytest.mark.parametrize(("unix_time", "rfc_code"), RFC_VECTORS)
def test_rfc_code_is_accepted_at_its_time_with_its_step(unix_time: int, rfc_code: str) -> None:
    code = rfc_code[-totp.DIGITS :]
    step = totp.accepted_step(RFC_SECRET, code, unix_time=unix_time, last_step=None)
    assert step == unix_time // 30


def test_secret_without_padding_and_in_lower_case_decodes() -> None:
    secret = RFC_SECRET.rstrip("=").lower()
    assert totp.code_at(secret, totp.step_of(59)) == "287082"


def test_same_code_is_refused_after_its_step_was_accepted() -> None:
    secret = totp.new_secret()
    now = 1_700_000_000.0
    code = totp.code_at(secret, totp.step_of(now))
    step = totp.accepted_step(secret, code, unix_time=now, last_step=None)
    assert step == totp.step_of(now)
    assert totp.accepted_step(secret, code, unix_time=now, last_step=step) is None
    # Still inside the drift window a step later: refused all the same.
    assert totp.accepted_step(secret, code, unix_time=now + 30, last_step=step) is None


def test_older_step_is_refused_once_a_newer_one_was_accepted() -> None:
    secret = totp.new_secret()
    now = 1_700_000_000.0
    previous = totp.code_at(secret, totp.step_of(now) - 1)
    current = totp.code_at(secret, totp.step_of(now))
    step = totp.accepted_step(secret, current, unix_time=now, last_step=None)
    assert step is not None
    assert previous != current
    assert totp.accepted_step(secret, previous, unix_time=now, last_step=step) is None


@pytest.mark.parametrize(
    ("offset_steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_one_step_of_drift_either_side(offset_steps: int, accepted: bool) -> None:
    secret = totp.new_secret()
    now = 1_700_000_000.0
    code = totp.code_at(secret, totp.step_of(now) + offset_steps)
    result = totp.accepted_step(secret, code, unix_time=now, last_step=None)
    assert (result is not None) is accepted


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.accepted_step(RFC_SECRET, code, unix_time=59, last_step=None) is None


def test_code_typed_with_a_space_is_accepted() -> None:
    assert totp.accepted_step(RFC_SECRET, "287 082", unix_time=59, last_step=None) == 1


def test_provisioning_uri_carries_secret_issuer_and_account() -> None:
    uri = urlparse(totp.provisioning_uri("ABCDEF", account="ada@example.com"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert uri.path == "/StellarStack%3Aada%40example.com"
    query = parse_qs(uri.query)
    assert query["secret"] == ["ABCDEF"]
    assert query["issuer"] == ["StellarStack"]
    assert query["digits"] == ["6"]
    assert query["period"] == ["30"]


def test_recovery_codes_are_ten_distinct_readable_codes() -> None:
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set(ALPHABET)


@pytest.mark.parametrize(
    "typed", ["K7QM-2XWE-94HT-VZAB", "k7qm2xwe94htvzab", " k7qm 2xwe-94ht vzab"]
)
def test_recovery_code_is_compared_without_case_dashes_or_spaces(typed: str) -> None:
    assert normalise_recovery_code(typed) == "k7qm2xwe94htvzab"
    assert hash_recovery_code(typed) == hash_recovery_code("k7qm-2xwe-94ht-vzab")
