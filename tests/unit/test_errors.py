"""The error tree the docs draw is the one the code has."""

from __future__ import annotations

import re
from pathlib import Path

from tidings import errors

DOCS = Path(__file__).parents[2] / "docs" / "architecture.md"


def _drawn(text: str) -> dict[str, int]:
    """Class name → status of each row under `TidingsError` in a drawn tree."""
    return {name: int(status) for name, status in re.findall(r"[├└]── (\w+)\s+(\d{3})", text)}


def _descendants(cls: type) -> list[type]:
    return [d for sub in cls.__subclasses__() for d in (sub, *_descendants(sub))]


def test_the_docs_and_the_docstring_draw_every_error_with_its_status() -> None:
    in_code = {cls.__name__: cls.status for cls in _descendants(errors.TidingsError)}
    assert _drawn(DOCS.read_text()) == in_code
    assert errors.__doc__ is not None
    assert _drawn(errors.__doc__) == in_code
