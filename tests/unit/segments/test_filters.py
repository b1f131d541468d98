from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from tidings.errors import InvalidInput
from tidings.segments.filters import (
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_NODES,
    And,
    Condition,
    InList,
    Node,
    Not,
    Or,
    compile_filter,
    list_ids,
    parse,
)

DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
}


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        raw["value"] = value
    return raw


def nested(depth: int) -> dict[str, Any]:
    """A filter `depth` levels deep: depth - 1 `not`s around one condition."""
    node = cond("email", "exists")
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def errors_of(raw: object, *, path: str = "filter") -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(raw, path=path)
    return [(e.field, e.reason) for e in caught.value.errors]


def error_paths(raw: object) -> list[str]:
    return [field for field, _ in errors_of(raw)]


def sql(raw: object, dialect: str, *, org_id: int = 7) -> str:
    expr = compile_filter(parse(raw), org_id=org_id, dialect=dialect)
    compiled = expr.compile(dialect=DIALECTS[dialect], compile_kwargs={"literal_binds": True})
    return " ".join(str(compiled).split())


# --- parse: accepted filters -------------------------------------------------------------


def test_parse_the_documented_example() -> None:
    raw = {
        "and": [
            {"field": "attributes.plan", "op": "eq", "value": "pro"},
            {"field": "attributes.seats", "op": "gte", "value": 10},
            {"field": "email_status", "op": "eq", "value": "subscribed"},
            {"in_list": 3},
        ]
    }
    assert parse(raw) == And(
        (
            Condition("attributes.plan", "eq", "pro"),
            Condition("attributes.seats", "gte", 10),
            Condition("email_status", "eq", "subscribed"),
            InList(3),
        )
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (cond("email", "exists"), Condition("email", "exists")),
        (cond("phone", "not_exists"), Condition("phone", "not_exists")),
        (cond("first_name", "starts_with", "Ad"), Condition("first_name", "starts_with", "Ad")),
        (cond("last_name", "contains", "love"), Condition("last_name", "contains", "love")),
        (cond("locale", "in", ["fr", "en"]), Condition("locale", "in", ["fr", "en"])),
        (cond("timezone", "ne", "UTC"), Condition("timezone", "ne", "UTC")),
        (cond("sms_status", "eq", "subscribed"), Condition("sms_status", "eq", "subscribed")),
        (cond("attributes.seats", "lt", 2.5), Condition("attributes.seats", "lt", 2.5)),
        (cond("attributes.vip", "eq", True), Condition("attributes.vip", "eq", True)),
        (cond("attributes.vip", "ne", False), Condition("attributes.vip", "ne", False)),
        (cond("attributes.n", "not_in", [1, 2.0]), Condition("attributes.n", "not_in", [1, 2.0])),
        (cond("attributes.plan", "gte", "m"), Condition("attributes.plan", "gte", "m")),
        (cond("attributes._x9", "exists"), Condition("attributes._x9", "exists")),
        ({"in_list": 12}, InList(12)),
        ({"not": {"in_list": 1}}, Not(InList(1))),
        ({"or": [{"in_list": 1}]}, Or((InList(1),))),
    ],
    ids=[
        "exists",
        "not-exists",
        "starts-with",
        "contains",
        "in-text",
        "ne-text",
        "status",
        "attribute-float",
        "attribute-bool",
        "attribute-bool-ne",
        "attribute-not-in-numbers",
        "attribute-text-ordered",
        "attribute-underscore",
        "in-list",
        "not",
        "or-of-one",
    ],
)
def test_parse_accepts(raw: dict[str, Any], expected: Node) -> None:
    assert parse(raw) == expected


def test_parse_turns_timestamps_into_aware_datetimes() -> None:
    node = parse(cond("created_at", "gte", "2024-01-01T02:00:00+02:00"))
    assert isinstance(node, Condition)
    assert node.value == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert node.value.utcoffset() is not None


def test_parse_accepts_z_and_lists_of_timestamps() -> None:
    node = parse(cond("updated_at", "in", ["2024-01-01T00:00:00Z", "2024-06-01T00:00:00+00:00"]))
    assert isinstance(node, Condition)
    assert node.value == [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)]


# --- parse: errors name the path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ([], "filter"),
        ("email", "filter"),
        ({}, "filter"),
        ({"xor": []}, "filter"),
        ({"and": []}, "filter.and"),
        ({"or": {"in_list": 1}}, "filter.or"),
        ({"and": [{"in_list": 1}], "or": [{"in_list": 2}]}, "filter.and"),
        ({"and": [cond("email", "exists"), cond("email", "like", "a")]}, "filter.and[1].op"),
        ({"or": [{"and": [cond("nope", "eq", "a")]}]}, "filter.or[0].and[0].field"),
        ({"not": cond("email", "eq", 3)}, "filter.not.value"),
        ({"not": {"in_list": 1}, "in_list": 2}, "filter"),
        ({"not": "x"}, "filter.not"),
        ({"in_list": "3"}, "filter.in_list"),
        ({"in_list": True}, "filter.in_list"),
        ({"in_list": 3, "field": "email"}, "filter.in_list"),
        ({**cond("email", "eq", "a"), "extra": 1}, "filter"),
        (cond("attributes.Company Name", "eq", "x"), "filter.field"),
        (cond("attributes.", "eq", "x"), "filter.field"),
        (cond("attrs.plan", "eq", "x"), "filter.field"),
        (cond("id", "eq", "1"), "filter.field"),
        ({"field": 3, "op": "eq", "value": "x"}, "filter.field"),
        ({"field": "email", "value": "x"}, "filter.op"),
        (cond("email", "eq"), "filter.value"),
    ],
    ids=[
        "array",
        "string",
        "empty-object",
        "unknown-combinator",
        "empty-and",
        "or-not-array",
        "and-with-or",
        "bad-op-in-and",
        "nested-field",
        "value-under-not",
        "not-with-company",
        "not-of-string",
        "list-id-string",
        "list-id-bool",
        "in-list-with-company",
        "unknown-key",
        "attribute-with-space",
        "attribute-empty",
        "wrong-prefix",
        "not-a-field",
        "field-not-string",
        "missing-op",
        "missing-value",
    ],
)
def test_parse_error_names_the_path(raw: object, path: str) -> None:
    assert error_paths(raw) == [path]


def test_parse_reports_every_bad_node() -> None:
    raw = {"and": [cond("nope", "eq", "a"), cond("email", "exists"), {"in_list": "x"}]}
    assert error_paths(raw) == ["filter.and[0].field", "filter.and[2].in_list"]


def test_parse_prefixes_paths_with_the_given_path() -> None:
    assert [f for f, _ in errors_of({"or": [{}]}, path="segment.filter")] == [
        "segment.filter.or[0]"
    ]


# --- parse: limits -----------------------------------------------------------------------


def test_parse_accepts_the_maximum_depth() -> None:
    assert isinstance(parse(nested(MAX_DEPTH)), Not)


def test_parse_rejects_deeper_filters() -> None:
    errors = errors_of(nested(MAX_DEPTH + 1))
    assert errors == [("filter" + ".not" * MAX_DEPTH, f"a filter nests at most {MAX_DEPTH} deep")]


def test_parse_accepts_the_maximum_node_count() -> None:
    node = parse({"or": [{"in_list": i} for i in range(1, MAX_NODES)]})
    assert isinstance(node, Or)
    assert len(node.children) == MAX_NODES - 1


def test_parse_rejects_too_many_nodes() -> None:
    errors = errors_of({"or": [{"in_list": i} for i in range(1, MAX_NODES + 1)]})
    assert errors[0] == (f"filter.or[{MAX_NODES - 1}]", f"a filter has at most {MAX_NODES} nodes")


def test_parse_accepts_the_maximum_in_values() -> None:
    node = parse(cond("attributes.n", "in", list(range(MAX_IN_VALUES))))
    assert isinstance(node, Condition)
    assert len(node.value) == MAX_IN_VALUES


def test_parse_rejects_too_many_in_values() -> None:
    errors = errors_of(cond("attributes.n", "not_in", list(range(MAX_IN_VALUES + 1))))
    assert [f for f, _ in errors] == ["filter.value"]
    assert str(MAX_IN_VALUES) in errors[0][1]


# --- parse: type rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (cond("email", "eq", 3), "email compares with strings"),
        (cond("email_status", "eq", True), "email_status compares with strings"),
        (cond("locale", "in", ["fr", 1]), "all of one type"),
        (cond("attributes.plan", "contains", 3), "contains compares strings"),
        (cond("attributes.vip", "starts_with", True), "starts_with compares strings"),
        (cond("attributes.vip", "lt", True), "lt does not compare booleans"),
        (cond("attributes.vip", "gte", False), "gte does not compare booleans"),
        (cond("created_at", "gt", "2024-01-01T00:00:00"), "needs a time zone offset"),
        (cond("updated_at", "in", ["2024-01-01T00:00:00Z", "2024-01-02"]), "time zone offset"),
        (cond("created_at", "gt", "yesterday"), "not an ISO 8601 timestamp"),
        (cond("created_at", "gt", 1_700_000_000), "created_at compares with strings"),
        (cond("attributes.n", "in", [1, "1"]), "all of one type"),
        (cond("attributes.n", "in", [1, True]), "all of one type"),
        (cond("attributes.n", "in", []), "non-empty array"),
        (cond("attributes.n", "in", 1), "non-empty array"),
        (cond("attributes.n", "eq", [1]), "strings, numbers or booleans"),
        (cond("attributes.n", "eq", {"a": 1}), "strings, numbers or booleans"),
        (cond("attributes.n", "exists", 1), "take no value"),
        (cond("attributes.n", "not_exists", False), "take no value"),
    ],
    ids=[
        "number-on-column",
        "bool-on-column",
        "mixed-in-on-column",
        "contains-number",
        "starts-with-bool",
        "lt-bool",
        "gte-bool",
        "naive-timestamp",
        "naive-timestamp-in-list",
        "not-a-timestamp",
        "epoch-number",
        "mixed-number-string",
        "mixed-number-bool",
        "empty-in",
        "in-scalar",
        "eq-array",
        "eq-object",
        "exists-with-value",
        "not-exists-with-false",
    ],
)
def test_parse_enforces_type_rules(raw: dict[str, Any], reason: str) -> None:
    errors = errors_of(raw)
    assert [f for f, _ in errors] == ["filter.value"]
    assert reason in errors[0][1]


@pytest.mark.parametrize("op", ["contains", "starts_with"])
def test_text_ops_on_timestamps_are_rejected_or_compile(op: str) -> None:
    raw = cond("created_at", op, "2024-01-01T00:00:00+00:00")
    try:
        node = parse(raw)
    except InvalidInput as exc:
        rejected = [e.field for e in exc.errors]
    else:
        for name, dialect in DIALECTS.items():
            compile_filter(node, org_id=1, dialect=name).compile(dialect=dialect)
        return
    assert rejected == ["filter.value"]


# --- list_ids ----------------------------------------------------------------------------


def test_list_ids_collects_every_in_list() -> None:
    node = parse(
        {
            "and": [
                {"in_list": 1},
                {"or": [{"in_list": 2}, {"not": {"in_list": 3}}, cond("email", "exists")]},
                {"not": {"and": [{"in_list": 1}, {"in_list": 4}]}},
            ]
        }
    )
    assert list_ids(node) == {1, 2, 3, 4}


@pytest.mark.parametrize(
    "raw",
    [cond("email", "exists"), {"not": cond("phone", "exists")}, {"or": [cond("email", "exists")]}],
    ids=["condition", "not", "or"],
)
def test_list_ids_is_empty_without_lists(raw: dict[str, Any]) -> None:
    assert list_ids(parse(raw)) == set()


# --- compile_filter ----------------------------------------------------------------------


def test_numeric_attribute_comparison_is_guarded_on_sqlite() -> None:
    text = sql(cond("attributes.seats", "gte", 10), "sqlite")
    assert "json_type(contacts.attributes, '$.\"seats\"') IN ('integer', 'real')" in text
    assert "ELSE NULL END >= 10" in text


def test_numeric_attribute_comparison_is_guarded_on_postgresql() -> None:
    text = sql(cond("attributes.seats", "gte", 10), "postgresql")
    assert "jsonb_typeof((contacts.attributes -> 'seats')) IN ('number')" in text
    assert "ELSE NULL END >= 10" in text


@pytest.mark.parametrize(
    ("dialect", "guard"),
    [("sqlite", "IN ('true', 'false')"), ("postgresql", "= 'boolean'")],
    ids=["sqlite", "postgresql"],
)
def test_boolean_attribute_comparison_is_guarded(dialect: str, guard: str) -> None:
    assert guard in sql(cond("attributes.vip", "eq", True), dialect)


@pytest.mark.parametrize(
    ("dialect", "guard"),
    [("sqlite", "= 'text')"), ("postgresql", "= 'string')")],
    ids=["sqlite", "postgresql"],
)
def test_text_attribute_comparison_matches_only_json_strings(dialect: str, guard: str) -> None:
    # Without the guard a JSON true reads as 'true' on PostgreSQL and 1 on SQLite.
    text = sql(cond("attributes.plan", "eq", "pro"), dialect)
    assert guard in text
    assert text.endswith("ELSE NULL END = 'pro'")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_in_list_is_scoped_to_the_org(dialect: str) -> None:
    text = sql({"in_list": 3}, dialect, org_id=42)
    assert text.startswith("contacts.id IN (SELECT list_members.contact_id FROM list_members")
    assert "list_members.org_id = 42" in text
    assert "list_members.list_id = 3" in text


def test_not_wraps_its_condition_in_coalesce_on_postgresql() -> None:
    text = sql({"not": cond("attributes.seats", "gt", 1)}, "postgresql")
    assert text.startswith("NOT coalesce(")
    assert text.endswith(", false)")


def test_not_wraps_its_condition_in_coalesce_on_sqlite() -> None:
    text = sql({"not": cond("attributes.seats", "gt", 1)}, "sqlite")
    assert text.startswith("coalesce(")
    assert text.endswith(", 0) = 0")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("op", ["ne", "not_in"])
def test_negative_ops_match_contacts_without_the_field(dialect: str, op: str) -> None:
    value = "a@example.com" if op == "ne" else ["a@example.com"]
    assert sql(cond("email", op, value), dialect).startswith("contacts.email IS NULL OR ")


@pytest.mark.parametrize(
    ("op", "expected"),
    [("exists", "contacts.phone IS NOT NULL"), ("not_exists", "contacts.phone IS NULL")],
)
def test_exists_ops(op: str, expected: str) -> None:
    assert sql(cond("phone", op), "sqlite") == expected


@pytest.mark.parametrize(
    ("dialect", "fragment"),
    [("sqlite", "lower(contacts.email) LIKE"), ("postgresql", "contacts.email ILIKE")],
    ids=["sqlite", "postgresql"],
)
def test_contains_is_case_insensitive_and_escapes_wildcards(dialect: str, fragment: str) -> None:
    text = sql(cond("email", "contains", "50%_off"), dialect)
    assert fragment in text
    assert "ESCAPE '/'" in text
    assert "50/%/_off" in text.replace("%%", "%")


@pytest.mark.parametrize(
    ("dialect", "literal"),
    [("sqlite", "'2023-12-31 22:00:00"), ("postgresql", "'2023-12-31 22:00:00+00:00'")],
    ids=["sqlite", "postgresql"],
)
def test_timestamps_compare_in_utc(dialect: str, literal: str) -> None:
    text = sql(cond("created_at", "gt", "2024-01-01T00:00:00+02:00"), dialect)
    assert text.startswith("contacts.created_at > ")
    assert literal in text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_and_or_combine_their_children(dialect: str) -> None:
    text = sql(
        {"and": [cond("email", "exists"), {"or": [{"in_list": 1}, {"in_list": 2}]}]}, dialect
    )
    assert text.startswith("contacts.email IS NOT NULL AND (")
    assert " OR contacts.id IN (" in text
    assert "list_members.list_id = 1" in text
    assert "list_members.list_id = 2" in text


@pytest.mark.parametrize(
    "value", [2**63, -(2**63) - 1, [1, 2**64], float("inf"), float("nan")], ids=repr
)
def test_a_number_sql_cannot_bind_is_refused_at_parse(value: Any) -> None:
    op = "in" if isinstance(value, list) else "eq"
    [(field, reason)] = errors_of(cond("attributes.n", op, value))
    assert field == "filter.value"
    assert "64-bit" in reason


def test_the_widest_numbers_sql_binds_are_accepted() -> None:
    assert isinstance(parse(cond("attributes.n", "in", [2**63 - 1, -(2**63), 1.5e300])), Condition)


@pytest.mark.parametrize("list_id", [0, -1, 2**63], ids=["zero", "negative", "past-64-bit"])
def test_in_list_takes_only_an_id_a_key_column_can_hold(list_id: int) -> None:
    assert error_paths({"in_list": list_id}) == ["filter.in_list"]
