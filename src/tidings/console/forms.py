"""Checking a form as the API checks a body: the same pydantic model, so a page shows
beside each field the same 422 message the API gives for it.

    body = validated(SegmentCreate, {"name": name, "filter": tree})   # InvalidInput if bad

A page catches `InvalidInput` and re-renders its form with `errors` (`field_errors` in
`_forms.html` puts each one beside its field).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tidings.api.problems import field_path
from tidings.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            field, index = field_path(err["loc"])
            errors.append(FieldError(field, err["msg"], index))
        raise InvalidInput(errors) from None
