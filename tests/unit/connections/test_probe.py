"""`connections.probe`: what "test this connection" says without a network: a host the
outbound policy refuses is refused before any connection, a sink reaches nothing."""

from __future__ import annotations

from tidings.connections.models import Connection
from tidings.connections.probe import probe
from tidings.net.ssrf import OutboundPolicy


async def test_a_host_the_policy_refuses_is_never_opened() -> None:
    relay = Connection(kind="smtp", channel="email", settings={"host": "10.0.0.1", "port": 25})
    result = await probe(relay, policy=OutboundPolicy.parse(""))
    assert result.ok is False
    assert len(result.lines) == 1
    assert result.lines[0].startswith("host: 10.0.0.1:25 refused:")


async def test_a_sink_reaches_no_host_and_passes() -> None:
    sink = Connection(kind="sink", channel="email", settings={})
    result = await probe(sink, policy=OutboundPolicy.parse(""))
    assert result.ok is True
    assert result.lines == ["a sink connection reaches no host: nothing to open"]


async def test_an_unknown_kind_fails() -> None:
    odd = Connection(kind="pigeon", channel="email", settings={})
    result = await probe(odd, policy=OutboundPolicy.parse(""))
    assert result.ok is False
    assert result.lines == ["unknown kind 'pigeon'"]
