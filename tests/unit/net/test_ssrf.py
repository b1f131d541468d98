"""The SSRF rules and the operator's policy, with the system resolver (numeric hosts and
`localhost` resolve offline) or a resolver faked at the function level (DNS only)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence

import pytest
from pydantic import ValidationError

from tidings.net.ssrf import (
    PRIVATE_NETWORKS,
    OutboundPolicy,
    Unresolved,
    UnsafeURL,
    check_url,
    refusal,
)
from tidings.settings import Settings

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://LOCALHOST./hook",
    "http://10.0.0.1/",
    "http://10.255.255.254/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",
    "http://0177.0.0.1/",  # octal
    "http://0x7f.1/",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://100.64.0.1/",  # CGNAT
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[fd12:3456::1]/",  # RFC 4193
    "http://[ff02::1]/",
    "http://240.0.0.1/",  # reserved
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1/", "only http and https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
async def test_malformed_urls_are_refused_without_resolving(url: str, reason: str) -> None:
    async def never(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolved")

    with pytest.raises(UnsafeURL, match=reason):
        await check_url(url, resolver=never)


async def test_every_resolved_address_must_be_public() -> None:
    async def round_robin(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(UnsafeURL, match=r"hooks\.example\.com resolves to 10\.0\.0\.7 is private"):
        await check_url("https://hooks.example.com/", resolver=round_robin)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeURL, match="does not resolve"):
        await check_url("https://nowhere.invalid/", resolver=nxdomain)


async def test_public_addresses_pass() -> None:
    target = await check_url("https://8.8.8.8:8443/hook")
    assert (target.host, target.port) == ("8.8.8.8", 8443)
    assert target.addresses == (ipaddress.ip_address("8.8.8.8"),)
    await check_url("http://[::ffff:8.8.8.8]/")  # mapped: judged by its IPv4 address
    await check_url("http://[2606:4700:4700::1111]/")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("100.64.1.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("169.254.169.254", False),
        ("::ffff:169.254.169.254", False),
        ("fe80::1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address refused, not bound)
        ("224.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("100.100.100.200", False),  # Alibaba's metadata service, inside CGNAT
        ("fd00:ec2::254", False),  # AWS's, inside fc00::/7
    ],
)
def test_the_retired_allow_private_opens_on_premise_targets_but_never_metadata(
    address: str, allowed: bool
) -> None:
    policy = OutboundPolicy().widened(PRIVATE_NETWORKS)
    reason = policy.refusal(ipaddress.ip_address(address))
    assert (reason is None) is allowed, reason
    assert refusal(ipaddress.ip_address(address)) is not None


# --- the operator's policy (TIDINGS_OUTBOUND_ALLOW) ----------------------------------------


def _resolves_to(*addresses: str) -> Callable[[str, int], Awaitable[Sequence[str]]]:
    async def resolver(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolver


def test_the_setting_parses_networks_addresses_and_host_names() -> None:
    policy = OutboundPolicy.parse(" 10.0.0.0/8, 192.168.1.20 ,fd00::/8,[::1], Relay.LAN. ,")
    assert [str(n) for n in policy.networks] == [
        "10.0.0.0/8",
        "192.168.1.20/32",
        "fd00::/8",
        "::1/128",
    ]
    assert policy.hosts == {"relay.lan"}
    assert OutboundPolicy.parse("") == OutboundPolicy()


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "a b", "x/y", "1234"])
def test_a_bad_entry_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        OutboundPolicy.parse(entry)


def test_settings_refuse_a_bad_entry_at_start_up() -> None:
    with pytest.raises(ValidationError, match="outbound_allow"):
        Settings(outbound_allow="10.0.0.1/8")
    assert Settings(outbound_allow="10.0.0.0/8").outbound_policy.networks


@pytest.mark.parametrize(
    ("allow", "address", "admitted"),
    [
        ("10.0.0.0/8", "10.9.8.7", True),
        ("10.0.0.0/8", "::ffff:10.9.8.7", True),  # judged by the IPv4 address it carries
        ("10.0.0.0/8", "10.0.0.0", True),
        ("10.0.0.0/8", "192.168.1.1", False),
        ("127.0.0.0/8", "::1", False),  # IPv6 loopback is its own entry
        ("0.0.0.0/0", "169.254.169.254", False),  # metadata: never by a wider network
        ("169.254.0.0/16", "169.254.169.254", False),
        ("169.254.0.0/16", "169.254.1.1", True),
        ("169.254.169.254", "169.254.169.254", True),  # … only by its own address
        ("169.254.169.254", "::ffff:169.254.169.254", True),
        ("100.64.0.0/10", "100.100.100.200", False),  # Alibaba's metadata, inside CGNAT
        ("fc00::/7", "fd00:ec2::254", False),  # AWS's, inside RFC 4193
        ("0.0.0.0/0", "0.0.0.0", False),  # noqa: S104 (refused, not bound)
        ("224.0.0.0/4", "224.0.0.1", False),
        ("", "127.0.0.1", False),
        ("", "8.8.8.8", True),
    ],
)
def test_what_a_network_entry_admits(allow: str, address: str, admitted: bool) -> None:
    reason = OutboundPolicy.parse(allow).refusal(ipaddress.ip_address(address))
    assert (reason is None) is admitted, reason


async def test_a_listed_name_admits_what_it_resolves_to_but_never_metadata() -> None:
    policy = OutboundPolicy.parse("kannel.lan")
    target = await policy.check_url("http://Kannel.LAN.:13013/", resolver=_resolves_to("10.1.1.1"))
    assert target.addresses == (ipaddress.ip_address("10.1.1.1"),)
    with pytest.raises(UnsafeURL, match="metadata"):
        await policy.vet("kannel.lan", 80, resolver=_resolves_to("169.254.169.254"))
    with pytest.raises(UnsafeURL, match=r"other\.lan resolves to 10\.1\.1\.2 is private"):
        await policy.vet("other.lan", 80, resolver=_resolves_to("10.1.1.2"))


async def test_a_name_resolving_inside_is_refused_naming_the_setting() -> None:
    with pytest.raises(UnsafeURL) as refused:
        await check_url("https://hooks.example.com/", resolver=_resolves_to("192.168.0.9"))
    assert refused.value.reason == (
        "hooks.example.com resolves to 192.168.0.9 is private;"
        " the operator may allow it in TIDINGS_OUTBOUND_ALLOW"
    )


@pytest.mark.parametrize("name", ["metadata.google.internal", "METADATA.GOOG.", "instance-data"])
async def test_metadata_names_are_refused_whatever_they_resolve_to(name: str) -> None:
    with pytest.raises(UnsafeURL, match="cloud metadata service"):
        await OutboundPolicy().vet(name, 80, resolver=_resolves_to("8.8.8.8"))
    listed = OutboundPolicy.parse(name.rstrip(".").lower())
    assert await listed.vet(name, 80, resolver=_resolves_to("8.8.8.8"))


async def test_a_name_that_does_not_resolve_is_told_apart() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(Unresolved):
        await OutboundPolicy().vet("nowhere.invalid", 25, resolver=nxdomain)
