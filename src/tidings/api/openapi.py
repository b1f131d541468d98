"""The OpenAPI document, completed with the answers every route really gives.

FastAPI documents what a route declares, plus a 422 in its own JSON shape for any route
with parameters or a body. The document served is that one, completed in one pass:

- every error answer outside /compat is `application/problem+json` with the `Problem`
  schema, FastAPI's 422 included, whatever content a route declared for it;
- a dialect route never answers FastAPI's 422 (its invalid input is its own 400): that
  entry is dropped, its own statuses stay (`compat.routing.dialect_router`);
- every route that takes a body may answer 413 (`TIDINGS_MAX_BODY_BYTES`) and 415 (a
  media type no route reads): `api/body.py`, in the route's own error shape.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tidings.api.problems import DESCRIPTIONS, PROBLEM_JSON, Problem

PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_422: Final = "#/components/schemas/HTTPValidationError"
_BODY_ANSWERS: Final = (413, 415)
_LINKS: Final = ("/u/", "/l/", "/o/", "/p/")
_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then cached on the app)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    complete(spec)
    app.openapi_schema = spec
    return spec


def complete(spec: dict[str, Any]) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schemas["Problem"].pop("$defs", {}).items():
        schemas[name] = sub
    for path, item in spec.get("paths", {}).items():
        native = not path.startswith("/compat/")
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                _complete_operation(operation, native=native, links=path[:3] in _LINKS)
    if not any(_FASTAPI_422 in str(item) for item in spec.get("paths", {}).values()):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _complete_operation(operation: dict[str, Any], *, native: bool, links: bool) -> None:
    """`links`: a recipient's link (`/u`, `/l`, `/o`, `/p`), whose errors are pages or
    empty, never problems."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    fastapi_422 = responses.get("422")
    if fastapi_422 is not None and _FASTAPI_422 in str(fastapi_422):
        if native:
            responses["422"] = _problem_answer(422)
        else:
            del responses["422"]
    if "requestBody" in operation:
        shape = _error_content(responses, native=native)
        for status in _BODY_ANSWERS:
            responses.setdefault(
                str(status), {"description": DESCRIPTIONS[status], "content": copy.deepcopy(shape)}
            )
    if native:
        for code, answer in responses.items():
            if code[:1] not in ("4", "5"):
                continue
            content = answer.setdefault("content", {})
            if not content and not links:  # declared by its description only
                content[PROBLEM_JSON] = {}
            if PROBLEM_JSON in content:
                content[PROBLEM_JSON].setdefault("schema", PROBLEM_REF)
    else:  # an error declared by its description only (an Idempotency-Key's 409 and 422)
        for code, answer in responses.items():
            if code[:1] in ("4", "5") and not answer.get("content"):
                answer["content"] = copy.deepcopy(_error_content(responses, native=False))


def _problem_answer(status: int) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[status], "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _error_content(responses: dict[str, Any], *, native: bool) -> dict[str, Any]:
    """The operation's error body: problem+json natively, else its 401's (every dialect
    route declares one, in the dialect's shape)."""
    if native:
        return {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    content: dict[str, Any] = responses["401"]["content"]
    return content
