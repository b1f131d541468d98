from __future__ import annotations

from tidings.privacy.scrub import REDACTED, Person

ADA = Person.of(email="ada@example.com", phone="+33612345678", first_name="Ada", last_name="Byron")


def test_own_records_lose_personal_keys_and_every_identifier() -> None:
    data = {
        "recipient": "ada@example.com",
        "user_agent": "Mozilla",
        "ip": "203.0.113.9",
        "diagnostic": "550 5.1.1 <ADA@example.com>: no such user",
        "note": "complaint by Ada Byron via 33612345678",
        "nested": [{"display_name": "Ada"}, {"code": 7}],
        "status": "5.1.1",
    }
    assert ADA.scrub(data) == {
        "diagnostic": f"550 5.1.1 <{REDACTED}>: no such user",
        "note": f"complaint by {REDACTED} via {REDACTED}",
        "nested": [{}, {"code": 7}],
        "status": "5.1.1",
    }


def test_shared_records_keep_their_keys_and_lose_only_this_persons_values() -> None:
    answer = {
        "recipient": "+33612345678",
        "to": {"first_name": "Ada", "email": "grace@example.com"},
        "note": "Adams family",  # a name inside another word is someone else's
        "results": [{"id": 1, "status": "created"}],
    }
    assert ADA.scrub(answer, shared=True) == {
        "recipient": REDACTED,
        "to": {"first_name": REDACTED, "email": "grace@example.com"},
        "note": "Adams family",
        "results": [{"id": 1, "status": "created"}],
    }


def test_a_person_without_identifiers_changes_nothing() -> None:
    nobody = Person.of(email=None, phone=None, first_name="A", last_name=None)
    assert nobody.scrub({"recipient": "x@example.com"}) == {"recipient": "x@example.com"}
