"""The operator's outbound setting as the test suite sets it.

Every server the tests start (aiosmtpd, the HTTP gateways, Dovecot) listens on loopback,
which Tidings refuses to connect to unless the operator opens it: the suite opens it
here, once — in the `settings` fixture and the CLI's environment (tests/conftest.py) and
in the channels the tests build by hand — as an operator opens a LAN relay.
"""

from __future__ import annotations

from typing import Final

from tidings.net.ssrf import OutboundPolicy

LOOPBACK_ALLOW: Final = "127.0.0.0/8,::1"
LOOPBACK: Final = OutboundPolicy.parse(LOOPBACK_ALLOW)
