"""Templates that only substitute values render without running template code; these
tests hold that path to exactly what the sandbox renders, over generated templates and
contexts, and check that anything else still goes through the sandbox."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tidings.content.render import Compiled, Limits, Renderer, TemplateError

RENDERER = Renderer()
NAMES = ("first_name", "plan", "contact", "attributes", "items", "upper", "real", "missing")
CHARS = "ab<>&'\"é 🎉\n{}%"


def value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(10**20), 10**20)
    if kind == 3:
        return rng.choice([0.5, -1e300, float("inf"), float("nan"), 1e-7])
    if kind <= 6:
        return "".join(rng.choices(CHARS, k=rng.randrange(6)))
    if kind == 7:
        return [value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return context(rng, depth + 1)


def context(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    return {rng.choice(NAMES): value(rng, depth) for _ in range(rng.randrange(6))}


def source(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randrange(8)):
        if rng.random() < 0.6:
            pieces.append("{{ " + ".".join(rng.choices(NAMES, k=rng.randint(1, 3))) + " }}")
        else:
            pieces.append("".join(rng.choices("ab <>&é\n\t}#%-", k=rng.randrange(6))))
    return "".join(pieces)


def sandboxed(compiled: Compiled, context: dict[str, Any]) -> str | TemplateError:
    """What the sandbox alone renders (the plan set aside)."""
    try:
        return RENDERER._render(
            Compiled(compiled.field, compiled.html, compiled._strict, compiled._lenient),
            context,
            strict=False,
        )
    except TemplateError as exc:
        return exc


def rendered(compiled: Compiled, context: dict[str, Any]) -> str | TemplateError:
    try:
        return RENDERER.render(compiled, context, strict=False)
    except TemplateError as exc:
        return exc


@pytest.mark.parametrize("seed", range(20))
def test_substitution_renders_exactly_as_the_sandbox(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        html = rng.random() < 0.5
        compiled = RENDERER.compile(source(rng), field="html" if html else "text", html=html)
        assert compiled._plan is not None
        data = context(rng)
        expected, got = sandboxed(compiled, data), rendered(compiled, data)
        if isinstance(expected, TemplateError):
            assert isinstance(got, TemplateError)
            assert got.reason == expected.reason
        else:
            assert got == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ name|upper }}",
        "{{ name() }}",
        "{{ a['b'] }}",
        "{{ 'x' }}",
        "{{ a ~ b }}",
        "{% if a %}x{% endif %}",
        "{% for i in range(3) %}{{ i }}{% endfor %}",
        "{% set x = 1 %}{{ x }}",
        "{{ range }}",
        "{{ self }}",
        "{{ a._private }}",
        "{{ _a }}",
    ],
)
def test_anything_but_substitution_goes_through_the_sandbox(source: str) -> None:
    assert RENDERER.compile(source, field="text", html=False)._plan is None


@pytest.mark.parametrize(
    ("source", "context", "reason"),
    [
        ("{{ contact.items }}", {"contact": {"items": "x"}}, "cannot be printed"),
        ("{{ name.upper }}", {"name": "ann"}, "cannot be printed"),
        ("{{ tags }}", {"tags": ["x" * 60]}, None),
    ],
)
def test_values_the_plan_cannot_print_are_left_to_the_sandbox(
    source: str, context: dict[str, Any], reason: str | None
) -> None:
    compiled = RENDERER.compile(source, field="text", html=False)
    assert compiled._plan is not None
    got = rendered(compiled, context)
    assert got == sandboxed(compiled, context) if reason is None else reason in str(got)


def test_the_output_limit_holds_for_substitution() -> None:
    renderer = Renderer(Limits(max_output_chars=10))
    compiled = renderer.compile("Hi {{ name }}", field="text", html=False)
    assert compiled._plan is not None
    assert renderer.render(compiled, {"name": "Ann"}, strict=False) == "Hi Ann"
    with pytest.raises(TemplateError, match="output over 10 characters"):
        renderer.render(compiled, {"name": "x" * 20}, strict=False)


def test_the_context_is_still_checked() -> None:
    compiled = RENDERER.compile("Hi {{ name }}", field="text", html=False)
    with pytest.raises(TypeError):
        RENDERER.render(compiled, {"name": "Ann", "when": object()}, strict=False)


def test_render_parts_renders_each_part() -> None:
    parts = {
        "subject": RENDERER.compile("Hi {{ name }}", field="subject", html=False),
        "html": RENDERER.compile("<p>{{ name }}{% if vip %}!{% endif %}</p>", field="html",
                                 html=True),
    }  # fmt: skip
    assert RENDERER.render_parts(parts, {"name": "<Ann>", "vip": True}, strict=False) == {
        "subject": "Hi <Ann>",
        "html": "<p>&lt;Ann&gt;!</p>",
    }
