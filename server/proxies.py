"""Trusted proxies: which peers may speak for the client (X-Forwarded-For, X-Request-ID).

`PLAZA_TRUSTED_PROXIES` lists the IPs or CIDRs of the reverse proxies in front of Plaza.
Only a request whose TCP peer is one of them may tell Plaza the client's address or its
request id: from anyone else those headers are the client's own claim, and would let it
pick the IP the per-IP rate limits see or forge ids into the logs. This module is the one
home of that rule; the rate limits and the access log both ask it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "NO_PROXIES",
    "TrustedProxies",
    "client_ip",
    "header",
    "is_trusted",
    "parse_trusted_proxies",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The trusted networks; `"10.0.0.7" in proxies`. A plain class, not a tuple of
    networks: Settings is a dependency, and Litestar's signature models (msgspec) refuse
    a union of two classes (IPv4Network | IPv6Network) anywhere inside one."""

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(networks)

    def __contains__(self, address: object) -> bool:
        if not self.networks:
            return False  # the default: asked for every request and socket, parse nothing
        ip = _address(address) if isinstance(address, str) else None
        return ip is not None and any(ip in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustedProxies) and other.networks == self.networks

    def __hash__(self) -> int:
        return hash(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({', '.join(str(n) for n in self.networks)})"


# The default: no peer speaks for anyone but itself.
NO_PROXIES = TrustedProxies()


def parse_trusted_proxies(raw: str | None) -> TrustedProxies:
    """`10.0.0.1, 10.1.0.0/16, ::1` -> networks; ValueError names a bad item."""
    if raw is None:
        return NO_PROXIES
    networks: list[Network] = []
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        try:
            # strict=False: `10.1.2.3/16` means the /16 it lies in, as nginx reads it.
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR") from None
    return TrustedProxies(networks)


# Peers and proxy hops repeat (a proxy's few addresses, a client's many requests); parsing
# one is ~5 µs. Bounded: hops come from headers, which anyone can fill.
@functools.lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _peer(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def is_trusted(scope: Mapping[str, Any], trusted: TrustedProxies) -> bool:
    """The connection's TCP peer is one of the trusted proxies."""
    peer = _peer(scope)
    return peer is not None and peer in trusted


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def client_ip(scope: Mapping[str, Any], trusted: TrustedProxies) -> str | None:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the
    right-most address of X-Forwarded-For that is not itself a trusted proxy (each proxy
    appends the peer it saw, so everything left of the first untrusted hop is the
    client's own claim and is ignored)."""
    peer = _peer(scope)
    if peer is None or not is_trusted(scope, trusted):
        return peer
    forwarded = header(scope, b"x-forwarded-for")
    if forwarded is None:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            return peer  # a malformed chain: trust nothing in it
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer
