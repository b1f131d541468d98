from __future__ import annotations

from ipaddress import ip_address

import pytest

from tidings.channels.smtp import helo_refusal
from tidings.net.hostnames import fqdn_of_url, helo_name, is_fqdn


@pytest.mark.parametrize(
    "name",
    ["mail.example.com", "mail.example.com.", "a.b", "xn--bcher-kva.example", "m-1.example.org"],
)
def test_fully_qualified_names(name: str) -> None:
    assert is_fqdn(name)
    assert helo_name(name) == name.removesuffix(".")


@pytest.mark.parametrize(
    "name",
    ["localhost", "worker7", "", ".", "a..b", "-a.example", "a-.example", "a_b.example",
     "mail.localhost", "192.168.1.25", "a.123", "a" * 64 + ".example", "bücher.example",
     "mail example.com"],
)  # fmt: skip
def test_names_receivers_refuse(name: str) -> None:
    assert not is_fqdn(name)
    with pytest.raises(ValueError, match="fully qualified domain name"):
        helo_name(name)


def test_address_literals_are_valid_helo_names() -> None:
    assert helo_name("[192.0.2.1]") == "[192.0.2.1]"
    assert helo_name("[IPv6:2001:db8::1]") == "[IPv6:2001:db8::1]"
    for bad in ("[2001:db8::1]", "[IPv6:192.0.2.1]", "[300.1.1.1]", "[]"):
        with pytest.raises(ValueError, match="address literal"):
            helo_name(bad)


@pytest.mark.parametrize("bad", ["mail.example.com\r\nMAIL FROM:<x@y>", "a.b\n", "a\0.b"])
def test_line_breaks_are_refused_before_anything_else(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        helo_name(bad)


def test_the_public_url_gives_its_host_when_fully_qualified() -> None:
    assert fqdn_of_url("https://tidings.example.com/base") == "tidings.example.com"
    assert fqdn_of_url("https://tidings.example.com:8443") == "tidings.example.com"
    assert fqdn_of_url("http://127.0.0.1:8000") is None
    assert fqdn_of_url("http://localhost:8000") is None
    assert fqdn_of_url("http://[::1]:8000") is None
    assert fqdn_of_url("not a url") is None


def test_a_bare_helo_goes_to_loopback_only() -> None:
    loopback = [ip_address("127.0.0.1"), ip_address("::1")]
    remote = [ip_address("127.0.0.1"), ip_address("192.0.2.1")]
    assert helo_refusal("localhost", loopback) is None
    assert helo_refusal("mail.example.com", remote) is None
    assert helo_refusal("[192.0.2.7]", remote) is None
    for bare in ("localhost", "worker7"):
        reason = helo_refusal(bare, remote)
        assert reason is not None
        assert repr(bare) in reason
        assert "TIDINGS_SMTP_HELO_NAME" in reason
        assert "settings.helo_name" in reason
