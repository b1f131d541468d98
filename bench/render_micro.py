"""Cost of one render through `tidings.content.render`, against bare Jinja.

    python bench/render_micro.py [--renders 20000]

Renders a ~3 KB HTML body that prints a dozen variables, and a one-line subject, the
given number of times each, and prints microseconds per render: first through
`Renderer.render` (context check, budgets, streamed caps, lenient undefined), then the
same sources through a bare `ImmutableSandboxedEnvironment` (`Template.render`), which is
Jinja's own cost. Best of three runs, so that a noisy neighbour shows less.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from jinja2.sandbox import ImmutableSandboxedEnvironment

from tidings.content.render import Renderer

SUBJECT = "Hello {{ contact.first_name }}"

PARAGRAPH = (
    '<p style="font-family: Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5;'
    ' color: #333333; margin: 0 0 16px 0;">Lorem ipsum dolor sit amet, consectetur adipiscing'
    " elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim"
    " veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo.</p>\n"
)

BODY = (
    '<!doctype html>\n<html><body>\n<table role="presentation" width="100%">'
    "<tr><td>\n<h1>Hello {{ first_name }} {{ last_name }},</h1>\n"
    + PARAGRAPH
    + "<p>Your plan: <b>{{ plan }}</b>, renewing on {{ renewal_date }} in {{ city }}.</p>\n"
    + PARAGRAPH
    + "<p>We will write to {{ email }} or call {{ phone }}.</p>\n"
    + PARAGRAPH
    + "<p>Your account manager is {{ vars.manager }}; your code is {{ vars.code }}.</p>\n"
    + PARAGRAPH
    + '<p><a href="{{ vars.survey_url }}">Tell us how we did</a>, {{ contact.first_name }}.</p>\n'
    + PARAGRAPH
    + PARAGRAPH
    + PARAGRAPH
    + "<p>{{ contact.attributes.company }} · {{ locale }}</p>\n"
    + '<p><a href="{{ vars.unsubscribe_url }}">Unsubscribe</a></p>\n'
    + "</td></tr></table>\n</body></html>\n"
)


def context() -> dict[str, object]:
    """The shape `tidings.content.context.render_context` gives a template."""
    fields: dict[str, object] = {
        "email": "ann.lee@example.com",
        "phone": "+33612345678",
        "first_name": "Ann",
        "last_name": "Lee <& Co>",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
    }
    attributes: dict[str, object] = {
        "plan": "Pro",
        "renewal_date": "2026-01-31",
        "city": "Lyon",
        "company": "Lee & Sons",
    }
    variables: dict[str, object] = {
        "manager": "Bob",
        "code": "X7-42",
        "survey_url": "https://example.com/s?id=42&k=abc",
        "unsubscribe_url": "https://example.com/u/42",
    }
    return {
        **fields,
        **attributes,
        **variables,
        "contact": {**fields, "attributes": attributes},
        "vars": variables,
    }


def per_render_us(render: Callable[[], str], renders: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(renders):
            render()
        best = min(best, time.perf_counter() - start)
    return best / renders * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20_000)
    renders = parser.parse_args().renders

    data = context()
    renderer = Renderer()
    body = renderer.compile(BODY, field="html", html=True)
    subject = renderer.compile(SUBJECT, field="subject", html=False)
    bare_html = ImmutableSandboxedEnvironment(autoescape=True)
    bare_text = ImmutableSandboxedEnvironment(autoescape=False)
    bare_body = bare_html.from_string(BODY)
    bare_subject = bare_text.from_string(SUBJECT)
    assert renderer.render(body, data, strict=True) == bare_body.render(data)

    size = len(renderer.render(body, data, strict=False))
    print(f"HTML body: {len(BODY)} chars of source, {size} of output, {renders} renders")
    rows = [
        ("body    Renderer.render", lambda: renderer.render(body, data, strict=False)),
        ("body    bare Jinja     ", lambda: bare_body.render(data)),
        ("subject Renderer.render", lambda: renderer.render(subject, data, strict=False)),
        ("subject bare Jinja     ", lambda: bare_subject.render(data)),
    ]
    for label, render in rows:
        print(f"{label}  {per_render_us(render, renders):7.2f} µs/render")


if __name__ == "__main__":
    main()
