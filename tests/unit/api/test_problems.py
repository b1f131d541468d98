from __future__ import annotations

import pytest

from tidings.api.problems import field_path, problem_type
from tidings.errors import Forbidden, InvalidInput, NotFound, TidingsError, Unauthorized


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "contacts", 3, "email"), ("contacts[3].email", 3)),
        (("body", "contacts", 3, "attributes", 7), ("contacts[3].attributes[7]", 3)),
        (("body", "name"), ("name", None)),
        (("body", "list_ids", 0), ("list_ids[0]", 0)),
        (("body", 2, "email"), ("[2].email", 2)),
        (("query", "limit"), ("query.limit", None)),
        (("path", "org_id"), ("path.org_id", None)),
        (("body",), ("body", None)),
        ((), ("body", None)),
    ],
    ids=[
        "batch-row",
        "first-index-wins",
        "body-field",
        "body-list",
        "top-level-array",
        "query",
        "path",
        "body-only",
        "empty",
    ],
)
def test_field_path(loc: tuple[str | int, ...], expected: tuple[str, int | None]) -> None:
    assert field_path(loc) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Unauthorized, "urn:tidings:problem:unauthorized"),
        (Forbidden, "urn:tidings:problem:forbidden"),
        (NotFound, "urn:tidings:problem:not-found"),
        (InvalidInput, "urn:tidings:problem:invalid-input"),
        (TidingsError, "urn:tidings:problem:internal-error"),
    ],
)
def test_each_error_has_a_stable_problem_type(error: type[TidingsError], expected: str) -> None:
    # Fixed slugs, not derived from Python's HTTP phrases (which change between versions).
    assert problem_type(error.slug) == expected


def test_problem_type_of_invalid_input_is_as_documented() -> None:
    assert problem_type(InvalidInput.slug) == "urn:tidings:problem:invalid-input"
