"""The SSRF rules, with the system resolver (numeric hosts and `localhost` resolve offline)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from tidings.net.ssrf import PRIVATE_NETWORKS, OutboundPolicy, UnsafeURL, check_url, refusal

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
