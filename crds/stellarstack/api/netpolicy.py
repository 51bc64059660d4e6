"""Which network destinations user-supplied URLs may reach (file pulls, webhooks). Pure.

Server-side request forgery turns "download this URL for me" into "read your cloud metadata"
or "poke the admin port on localhost". A destination is allowed only when every address it
resolves to is a public unicast address; the caller then connects to exactly the address that
was checked (so DNS cannot change its answer in between) and checks every redirect again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by the `is_*` properties but never a legitimate target of a user's URL.
_EXTRA_BLOCKED = [
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT (shared address space)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64 of IPv4, e.g. 64:ff9b::a9fe:a9fe
    ipaddress.ip_network("fd00:ec2::/32"),  # cloud metadata over IPv6 (inside ULA, named anyway)
]
ALLOWED_SCHEMES = {"http": 80, "https": 443}


class DestinationRefusedError(ValueError):
    """A URL or address that user-supplied requests may not reach; the message says why."""


@dataclass(frozen=True)
class Destination:
    """A parsed URL target: scheme, host name as written, port."""

    scheme: str
    host: str
    port: int
    path_and_query: str


@dataclass(frozen=True)
class AddressPolicy:
    """Public unicast only, plus exact `(address, port)` exceptions (for an operator's own
    mirror, and for tests that can only serve on loopback)."""

    exceptions: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def check(self, address: str, port: int) -> None:
        """Raise `DestinationRefusedError` unless `address:port` may be reached."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if (str(ip), port) in self.exceptions:
            return
        reason = refusal_reason(ip)
        if reason is not None:
            raise DestinationRefusedError(f"{ip} is {reason}; only public addresses are allowed")


def refusal_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            inner = refusal_reason(mapped)
            return None if inner is None else f"an IPv6 form of an address that is {inner}"
        if ip.teredo is not None:
            return "a Teredo tunnel address"
    checks = [
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives here)"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (
            any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version),
            "in a special-purpose range",
        ),
        (not ip.is_global, "not a global address"),
    ]
    return next((why for blocked, why in checks if blocked), None)


def parse_destination(url: str) -> Destination:
    """Parse a user-supplied URL; refuse schemes other than http(s), credentials, odd hosts."""
    if len(url) > 4096:
        raise DestinationRefusedError("the URL is longer than 4096 characters")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DestinationRefusedError(f"scheme {scheme or '(none)'!r} is not http or https")
    if parts.username or parts.password:
        raise DestinationRefusedError("URLs with credentials are refused")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefusedError("the URL has no host")
    try:
        port = parts.port or ALLOWED_SCHEMES[scheme]
    except ValueError as exc:
        raise DestinationRefusedError(f"the port is invalid: {exc}") from exc
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Destination(scheme=scheme, host=host, port=port, path_and_query=path)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including the odd forms resolvers accept (decimal
    `2130706433`, octal `0177.0.0.1`, short `127.1`); None for a real host name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    try:
        numbers = [
            int(p, 0) if not p.isdigit() or not p.startswith("0") else int(p, 8) for p in parts
        ]
    except ValueError:
        return None
    # inet_aton: the last part fills the remaining bytes.
    value = 0
    for number in numbers[:-1]:
        if not 0 <= number <= 255:
            return None
        value = value * 256 + number
    remaining = 4 - (len(numbers) - 1)
    if not 0 <= numbers[-1] < 256**remaining:
        return None
    value = value * 256**remaining + numbers[-1]
    return ipaddress.IPv4Address(value)


def check_resolved(addresses: Iterable[str], port: int, policy: AddressPolicy) -> str:
    """Check every resolved address (one bad answer refuses the host) and return the first,
    which the caller must connect to."""
    listed = list(addresses)
    if not listed:
        raise DestinationRefusedError("the host name does not resolve")
    for address in listed:
        policy.check(address, port)
    return listed[0]
