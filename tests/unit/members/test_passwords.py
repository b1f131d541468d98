from __future__ import annotations

import pytest

from tidings.errors import InvalidInput
from tidings.members import passwords


async def test_a_password_verifies_against_its_own_hash_only() -> None:
    encoded = await passwords.hash_password("correct horse battery")
    assert encoded.startswith("$argon2id$")
    assert "correct horse" not in encoded
    assert await passwords.verify(encoded, "correct horse battery")
    assert not await passwords.verify(encoded, "correct horse battery ")
    assert not await passwords.verify(None, "correct horse battery")  # nobody: fails
    assert not await passwords.verify("not a hash", "correct horse battery")
    assert not await passwords.verify(encoded, "x" * (passwords.MAX_LENGTH + 1))


def test_strength_names_the_field() -> None:
    passwords.check_strength("x" * passwords.MIN_LENGTH)
    for bad in ("x" * (passwords.MIN_LENGTH - 1), "x" * (passwords.MAX_LENGTH + 1)):
        with pytest.raises(InvalidInput) as refused:
            passwords.check_strength(bad, field="new_password")
        assert refused.value.errors[0].field == "new_password"
