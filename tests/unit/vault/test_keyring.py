"""Sealing secrets: a round trip, and every way a value must refuse to open (a wrong key,
a value tampered with, a value moved to another column, an unknown version), and the
syntax of TIDINGS_SECRET_KEYS."""

from __future__ import annotations

import base64

import pytest

from tidings.settings import Settings
from tidings.vault.keyring import Keyring, SecretError, derive, keyring_for, new_key, parse

MASTER = b"a-master-secret-of-at-least-32-characters"
PURPOSE = "connections.credentials"


def _ring(text: str) -> Keyring:
    return parse(text, lambda: MASTER)


def test_a_sealed_value_opens_to_what_was_sealed_and_shows_nothing_of_it() -> None:
    ring = _ring(f"v1:{new_key()}")
    secret = '{"password": "hunter2-ü"}'
    sealed = ring.seal(secret, PURPOSE)
    assert sealed.startswith("enc:v1:")
    assert "hunter2" not in sealed
    assert ring.open(sealed, PURPOSE) == secret
    assert ring.seal(secret, PURPOSE) != sealed  # a fresh nonce each time


def test_another_key_a_tampered_value_or_another_column_does_not_open() -> None:
    ring = _ring(f"v1:{new_key()}")
    sealed = ring.seal("hunter2", PURPOSE)
    with pytest.raises(SecretError):
        _ring(f"v1:{new_key()}").open(sealed, PURPOSE)  # same version, another key
    with pytest.raises(SecretError):
        _ring(f"v2:{new_key()}").open(sealed, PURPOSE)  # the version is unknown
    with pytest.raises(SecretError):
        ring.open(sealed, "webhook_endpoints.secret")  # moved to another column
    prefix, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 1
    with pytest.raises(SecretError):
        ring.open(f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", PURPOSE)
    with pytest.raises(SecretError):
        ring.open(sealed.replace("enc:v1:", "enc:v1:!!"), PURPOSE)  # not base64
    with pytest.raises(SecretError):
        ring.open("hunter2", PURPOSE)  # not sealed at all
    with pytest.raises(SecretError) as refused:
        _ring(f"v1:{new_key()}").open(sealed, PURPOSE)
    assert "hunter2" not in str(refused.value)


def test_the_newest_key_seals_and_every_key_opens() -> None:
    old, new = new_key(), new_key()
    sealed_old = _ring(f"v1:{old}").seal("s", PURPOSE)
    both = _ring(f"v2:{new},v1:{old}")
    assert both.current == "v2"
    assert both.open(sealed_old, PURPOSE) == "s"
    assert not both.is_current(sealed_old)
    assert both.is_current(both.seal("s", PURPOSE))


def test_derived_is_a_key_made_from_the_master_secret() -> None:
    ring = _ring("v0:derived")
    assert ring.keys == (("v0", derive(MASTER)),)
    assert (
        _ring(f"v0:{base64.b64encode(derive(MASTER)).decode()}").open(
            ring.seal("s", PURPOSE), PURPOSE
        )
        == "s"
    )
    settings = Settings(secret_key=MASTER.decode(), database_url="postgresql+asyncpg://x/y")
    assert keyring_for(settings).keys == ring.keys  # the default: v0:derived
    configured = Settings(**{**settings.model_dump(), "secret_keys": f"v3:{new_key()}"})
    assert keyring_for(configured).current == "v3"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("nokey", "entry 1"),
        ("v1:", "key 'v1'"),
        ("v1:not base64!", "key 'v1'"),
        (f"v1:{base64.b64encode(b'short').decode()}", "32 bytes"),
        (f"v1:{new_key()},bad version!:{new_key()}", "entry 2"),
    ],
)
def test_a_bad_keys_setting_is_refused_naming_the_entry(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as refused:
        _ring(text)
    assert text.rpartition(":")[2] not in str(refused.value) or len(text.rpartition(":")[2]) < 8


def test_a_version_appears_once() -> None:
    with pytest.raises(ValueError, match="once"):
        _ring(f"v1:{new_key()},v1:{new_key()}")
