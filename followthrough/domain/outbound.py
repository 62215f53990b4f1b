"""Where Followthrough's checks may call out to: the policy's allow-list of hosts.

An acceptance criterion names a URL (an http_check's, a prometheus_url of its own), and whoever
writes a draft writes it. So a check calls out only to public addresses, or to hosts the policy
lists: loopback, private networks, link-local addresses (cloud metadata at 169.254.169.254 among
them), shared, reserved and multicast ranges are refused unless listed. The address is judged
after the name is resolved, so a name that resolves to 127.0.0.1 is refused like 127.0.0.1.

The installation's own Prometheus (FOLLOWTHROUGH_PROMETHEUS_URL) is the operator's choice and is
trusted; a URL named inside a draft is not.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST_NAME = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?")


class OutboundPolicy(BaseModel):
    """The hosts checks may reach besides public addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names, IP addresses or networks (10.0.0.0/8) checks may call besides "
        "public addresses; loopback, private and link-local ones only when listed",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_or_networks(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if _network(host) is None and not _HOST_NAME.fullmatch(host):
                raise ValueError(f"'{host}' is not a host name, an IP address or a network")
        return [host.lower().rstrip(".") for host in hosts]

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `host`, resolved to `address`, may not be called; None when it may."""
        address = _unmapped(address)
        if self._listed(host, address) or _public(address):
            return None
        kind = _kind(address)
        shown = host if host == str(address) else f"{host} ({address})"
        return (
            f"{shown} is a {kind} address, which checks may reach only when the policy lists "
            "it under outbound.allowed_hosts"
        )

    def _listed(self, host: str, address: IPAddress) -> bool:
        name = host.lower().rstrip(".").strip("[]")
        for entry in self.allowed_hosts:
            if entry == name:
                return True
            network = _network(entry)
            if network is not None and address.version == network.version and address in network:
                return True
        return False


def _public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:127.0.0.1 is 127.0.0.1."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    return "non-public"


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _network(text: str) -> IPNetwork | None:
    """An address or a network as a network (127.0.0.1 is 127.0.0.1/32); None for a name."""
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return None
