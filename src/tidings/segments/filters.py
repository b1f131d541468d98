"""The segment filter language: a small JSON tree, validated here and evaluated in SQL.

    filter    := {"and": [filter, …]} | {"or": [filter, …]} | {"not": filter}
               | {"in_list": LIST_ID}
               | {"field": FIELD, "op": OP, "value": VALUE}
    FIELD     := email | phone | first_name | last_name | locale | timezone
               | email_status | sms_status | created_at | updated_at | attributes.NAME
    OP        := eq | ne | lt | lte | gt | gte | in | not_in | contains | starts_with
               | exists | not_exists

Example — pro-plan contacts with ten seats or more, subscribed to email, on list 3:

    {"and": [{"field": "attributes.plan", "op": "eq", "value": "pro"},
             {"field": "attributes.seats", "op": "gte", "value": 10},
             {"field": "email_status", "op": "eq", "value": "subscribed"},
             {"in_list": 3}]}

On attributes the value's JSON type picks the comparison: a number compares numerically
and matches only numeric attributes, a string as text, a boolean as a boolean.
`contains` and `starts_with` are case-insensitive. `parse` is pure; `compile_filter`
turns the tree into one SQL condition on `contacts`, scoped to the org.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true

from tidings.api.fields import MAX_ID
from tidings.contacts.models import Contact
from tidings.contacts.normalize import ATTRIBUTE_NAME
from tidings.db.dialect import json_bool, json_number, json_present, json_text
from tidings.errors import FieldError, InvalidInput
from tidings.lists.models import ListMember

MAX_DEPTH = 10
MAX_NODES = 200
MAX_IN_VALUES = 1_000
COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "email_status",
    "sms_status",
)
TIMESTAMPS = ("created_at", "updated_at")
Op = Literal[
    "eq",
    "ne",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "exists",
    "not_exists",
]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]
_ORDERED = ("lt", "lte", "gt", "gte")
_TEXT_ONLY = ("contains", "starts_with")


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class InList:
    list_id: int


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any = None


Node = And | Or | Not | InList | Condition


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0
        self.errors: list[FieldError] = []

    def fail(self, path: str, reason: str) -> None:
        self.errors.append(FieldError(path, reason))

    def node(self, raw: object, path: str, depth: int) -> Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(path, f"a filter has at most {MAX_NODES} nodes")
            return None
        if depth > MAX_DEPTH:
            self.fail(path, f"a filter nests at most {MAX_DEPTH} deep")
            return None
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        for combinator in ("and", "or"):
            if combinator in raw:
                return self.combine(raw, combinator, path, depth)
        if "not" in raw:
            if len(raw) != 1:
                self.fail(path, "`not` stands alone in its object")
                return None
            child = self.node(raw["not"], f"{path}.not", depth + 1)
            return Not(child) if child is not None else None
        if "in_list" in raw:
            list_id = raw["in_list"]
            if (
                len(raw) != 1
                or not isinstance(list_id, int)
                or isinstance(list_id, bool)
                or not 1 <= list_id <= MAX_ID
            ):
                self.fail(f"{path}.in_list", "must be a list id (integer), alone in its object")
                return None
            return InList(list_id)
        if "field" in raw:
            return self.condition(raw, path)
        self.fail(path, "expected one of and, or, not, in_list, field")
        return None

    def combine(self, raw: dict[str, Any], key: str, path: str, depth: int) -> Node | None:
        items = raw[key]
        if len(raw) != 1 or not isinstance(items, list) or not items:
            self.fail(f"{path}.{key}", "must be a non-empty array, alone in its object")
            return None
        children = [self.node(c, f"{path}.{key}[{i}]", depth + 1) for i, c in enumerate(items)]
        if any(c is None for c in children):
            return None
        kept = tuple(c for c in children if c is not None)
        return And(kept) if key == "and" else Or(kept)

    def condition(self, raw: dict[str, Any], path: str) -> Node | None:
        unknown = set(raw) - {"field", "op", "value"}
        if unknown:
            self.fail(path, f"unknown keys: {', '.join(sorted(unknown))}")
            return None
        name, op, value = raw.get("field"), raw.get("op"), raw.get("value")
        if not isinstance(name, str) or not _known_field(name):
            self.fail(f"{path}.field", f"unknown field {name!r}")
            return None
        if op not in OPS:
            self.fail(f"{path}.op", f"must be one of {', '.join(OPS)}")
            return None
        reason = _check_value(name, str(op), value)
        if reason:
            self.fail(f"{path}.value", reason)
            return None
        if name in TIMESTAMPS and op not in ("exists", "not_exists"):
            value = (
                [datetime.fromisoformat(v) for v in value]
                if isinstance(value, list)
                else datetime.fromisoformat(str(value))
            )
        return Condition(name, str(op), value)


def _known_field(name: str) -> bool:
    if name in COLUMNS or name in TIMESTAMPS:
        return True
    prefix, _, attribute = name.partition(".")
    return prefix == "attributes" and bool(ATTRIBUTE_NAME.match(attribute))


def _scalar_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _storable(number: object) -> bool:
    """A number SQL can bind: a finite float, or an integer within the signed 64-bit range."""
    if isinstance(number, int):
        return -MAX_ID - 1 <= number <= MAX_ID
    return isinstance(number, float) and math.isfinite(number)


def _check_value(name: str, op: str, value: object) -> str | None:
    """Why `value` cannot go with `op` on `name`, or None when it can."""
    if op in ("exists", "not_exists"):
        return None if value is None else "exists and not_exists take no value"
    values = value if op in ("in", "not_in") else [value]
    if not isinstance(values, list) or not values or len(values) > MAX_IN_VALUES:
        return f"in and not_in take a non-empty array of at most {MAX_IN_VALUES} values"
    kinds = {_scalar_kind(v) for v in values}
    if None in kinds or len(kinds) != 1:
        return "values must be strings, numbers or booleans, all of one type"
    kind = kinds.pop()
    if kind == "number" and not all(_storable(v) for v in values):
        return "numbers must be finite, and integers within the signed 64-bit range"
    is_attribute = name.startswith("attributes.")
    if not is_attribute and kind != "text":
        return f"{name} compares with strings"
    if name in TIMESTAMPS:
        if op in _TEXT_ONLY:
            return f"{op} does not apply to timestamps; use lt, lte, gt or gte"
        for v in values:
            try:
                parsed = datetime.fromisoformat(str(v))
            except ValueError:
                return f"{v!r} is not an ISO 8601 timestamp"
            if parsed.tzinfo is None:
                return f"{v!r} needs a time zone offset (e.g. Z or +02:00)"
    if op in _TEXT_ONLY and kind != "text":
        return f"{op} compares strings"
    if op in _ORDERED and kind == "bool":
        return f"{op} does not compare booleans"
    return None


def parse(raw: object, *, path: str = "filter") -> Node:
    """Validate a raw filter; InvalidInput names every bad node by its path."""
    parser = _Parser()
    node = parser.node(raw, path, 1)
    if parser.errors or node is None:
        raise InvalidInput(parser.errors or [FieldError(path, "invalid filter")])
    return node


def list_ids(node: Node) -> set[int]:
    """Every list the filter refers to (to check they belong to the org)."""
    match node:
        case And(children) | Or(children):
            return set().union(*(list_ids(c) for c in children))
        case Not(child):
            return list_ids(child)
        case InList(list_id):
            return {list_id}
        case _:
            return set()


def _operand(condition: Condition, dialect: str) -> Any:
    if not condition.field.startswith("attributes."):
        return getattr(Contact, condition.field)
    key = condition.field.partition(".")[2]
    sample = condition.value[0] if isinstance(condition.value, list) else condition.value
    match _scalar_kind(sample):
        case "number":
            return json_number(Contact.attributes, key, dialect)
        case "bool":
            return json_bool(Contact.attributes, key, dialect)
        case _:
            return json_text(Contact.attributes, key, dialect)


def _presence(c: Condition, dialect: str) -> ColumnElement[bool]:
    if c.field.startswith("attributes."):
        return json_present(Contact.attributes, c.field.partition(".")[2], dialect)
    return getattr(Contact, c.field).is_not(None)  # type: ignore[no-any-return]


def _compile_condition(c: Condition, dialect: str) -> ColumnElement[bool]:
    if c.op in ("exists", "not_exists"):
        present = _presence(c, dialect)  # never NULL, so NOT needs no coalesce
        return present if c.op == "exists" else not_(present)
    column = _operand(c, dialect)
    match c.op:
        case "eq":
            return column == c.value  # type: ignore[no-any-return]
        case "ne":
            # SQL's NULL <> x is unknown; a contact without the field is "not equal".
            return or_(column.is_(None), column != c.value)
        case "lt":
            return column < c.value  # type: ignore[no-any-return]
        case "lte":
            return column <= c.value  # type: ignore[no-any-return]
        case "gt":
            return column > c.value  # type: ignore[no-any-return]
        case "gte":
            return column >= c.value  # type: ignore[no-any-return]
        case "in":
            return column.in_(c.value)  # type: ignore[no-any-return]
        case "not_in":
            return or_(column.is_(None), column.not_in(c.value))
        case "contains":
            return column.icontains(c.value, autoescape=True)  # type: ignore[no-any-return]
        case "starts_with":
            return column.istartswith(c.value, autoescape=True)  # type: ignore[no-any-return]
    raise AssertionError(f"unhandled op {c.op}")


def compile_filter(node: Node, *, org_id: int, dialect: str) -> ColumnElement[bool]:
    """One SQL condition on `contacts` for the filter, list lookups scoped to `org_id`."""
    match node:
        case And(children):
            return and_(
                true(), *(compile_filter(c, org_id=org_id, dialect=dialect) for c in children)
            )
        case Or(children):
            return or_(
                false(), *(compile_filter(c, org_id=org_id, dialect=dialect) for c in children)
            )
        case Not(child):
            # Two-valued logic: a condition that is unknown (NULL) for a contact is false,
            # so `not` of it is true, as a reader of the filter expects.
            inner = compile_filter(child, org_id=org_id, dialect=dialect)
            return not_(func.coalesce(inner, false()))
        case InList(list_id):
            members = select(ListMember.contact_id).where(
                ListMember.org_id == org_id, ListMember.list_id == list_id
            )
            return Contact.id.in_(members)
        case Condition():
            return _compile_condition(node, dialect)
    raise AssertionError(f"unhandled node {node!r}")
