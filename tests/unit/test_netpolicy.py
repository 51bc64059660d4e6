"""Which destinations user-supplied URLs may reach."""

from __future__ import annotations

import ipaddress

import pytest

from stellarstack.api.netpolicy import (
    AddressPolicy,
    DestinationRefusedError,
    check_resolved,
    literal_address,
    parse_destination,
    refusal_reason,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),
        ("100.64.0.1", "special-purpose"),
        ("198.18.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "private"),
        ("240.0.0.1", "private"),
        ("::ffff:127.0.0.1", "IPv6 form"),
        ("::ffff:169.254.169.254", "IPv6 form"),
        ("2002:7f00:1::", "IPv6 form"),
        ("64:ff9b::a9fe:a9fe", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    why = refusal_reason(ipaddress.ip_address(address))
    assert why is not None
    assert reason in why


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None
    AddressPolicy().check(address, 443)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
    ],
)
def test_literal_addresses_in_every_spelling(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("ftp://example.com/x", "scheme 'ftp'"),
        ("//example.com/x", r"scheme '\(none\)'"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///x", "no host"),
        ("http://example.com:99999/", "port"),
        ("http://example.com/" + "a" * 5000, "longer than"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(DestinationRefusedError, match=message):
        parse_destination(url)


def test_destination_parts() -> None:
    destination = parse_destination("HTTPS://Example.com./files/a.jar?x=1")
    assert (destination.scheme, destination.host, destination.port) == (
        "https",
        "example.com",
        443,
    )
    assert destination.path_and_query == "/files/a.jar?x=1"


def test_one_bad_answer_refuses_the_host() -> None:
    with pytest.raises(DestinationRefusedError, match="loopback"):
        check_resolved(["93.184.216.34", "127.0.0.1"], 80, AddressPolicy())
    with pytest.raises(DestinationRefusedError, match="does not resolve"):
        check_resolved([], 80, AddressPolicy())
    assert check_resolved(["93.184.216.34"], 80, AddressPolicy()) == "93.184.216.34"


def test_exceptions_are_exact_address_and_port() -> None:
    policy = AddressPolicy(frozenset({("127.0.0.1", 8080)}))
    policy.check("127.0.0.1", 8080)
    with pytest.raises(DestinationRefusedError):
        policy.check("127.0.0.1", 8081)
