from __future__ import annotations

import datetime

import pytest
from markupsafe import Markup

from tidings.content.render import Limits, Renderer, TemplateError, UndefinedVariable

CONTACT = {"first_name": "Ann", "last_name": "Lee <& Co>", "attributes": {"plan": "Pro"}}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(
    source: str,
    context: dict[str, object] | None = None,
    *,
    strict: bool = True,
    html: bool = False,
    limits: Limits | None = None,
) -> str:
    renderer = Renderer(limits) if limits else Renderer()
    compiled = renderer.compile(source, field="html" if html else "text", html=html)
    return renderer.render(
        compiled, {"contact": CONTACT} if context is None else context, strict=strict
    )


def refused(source: str, *, strict: bool = True, limits: Limits | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(source, strict=strict, limits=limits)
    return caught.value


# Personalisation and escaping


def test_personalises_subject_and_body(renderer: Renderer) -> None:
    subject = renderer.compile("Hello {{ contact.first_name }}", field="subject", html=False)
    body = renderer.compile(
        "{% for tag in tags %}{{ loop.index }}:{{ tag|upper }} {% endfor %}"
        "{{ contact.attributes.plan }}{% if vip %} (VIP){% endif %}",
        field="text",
        html=False,
    )
    context = {"contact": CONTACT, "tags": ["a", "b"], "vip": True}

    assert renderer.render(subject, context, strict=True) == "Hello Ann"
    assert renderer.render(body, context, strict=False) == "1:A 2:B Pro (VIP)"


def test_a_compiled_template_renders_many_contexts(renderer: Renderer) -> None:
    compiled = renderer.compile("Hi {{ name }}", field="subject", html=False)

    names = [renderer.render(compiled, {"name": f"n{i}"}, strict=False) for i in range(3)]

    assert names == ["Hi n0", "Hi n1", "Hi n2"]


def test_macros_calls_and_recursive_loops_still_work() -> None:
    # The rewritten loops, counted buffers and callable allowlist must not get in the way.
    source = (
        "{% macro item(x) %}<{{ x.n }}{{ caller() if caller else '' }}>{% endmacro %}"
        "{% for x in tree recursive %}{% call item(x) %}{{ loop(x.kids) }}{% endcall %}"
        "{% endfor %}|{{ tree|map(attribute='n')|join(',') }}|{% set c = cycler('a', 'b') %}"
        "{{ c.next() }}{{ c.next() }}"
    )
    tree = [{"n": 1, "kids": [{"n": 2, "kids": []}]}, {"n": 3, "kids": []}]

    assert render(source, {"tree": tree}) == "<1<2>><3>|1,3|ab"


def test_html_part_escapes_what_it_prints() -> None:
    assert render("<p>{{ contact.last_name }}</p>", html=True) == "<p>Lee &lt;&amp; Co&gt;</p>"


def test_text_part_prints_as_is() -> None:
    assert render("{{ contact.last_name }}", html=False) == "Lee <& Co>"


def test_html_part_escapes_across_tilde_concatenation() -> None:
    assert render("{{ contact.last_name ~ '!' }}", html=True) == "Lee &lt;&amp; Co&gt;!"


# Undefined names


@pytest.mark.parametrize(
    ("source", "name"),
    [("Hi {{ frist_name }}", "frist_name"), ("Hi {{ contact.nickname }}", "nickname")],
)
def test_strict_names_the_undefined_variable(source: str, name: str) -> None:
    with pytest.raises(UndefinedVariable) as caught:
        render(source, strict=True)

    assert caught.value.name == name
    assert caught.value.field == "text"
    assert name in caught.value.reason
    assert caught.value.reason.startswith("line 1: ")


def test_strict_still_allows_guards_for_optional_values() -> None:
    source = "{{ contact.nickname|default('friend') }}{% if x is defined %}!{% endif %}"

    assert render(source, strict=True) == "friend"


def test_lenient_renders_undefined_as_empty() -> None:
    assert render("Hi {{ frist_name }}!", strict=False) == "Hi !"


def test_lenient_renders_attributes_of_undefined_as_empty() -> None:
    source = "[{{ contact.nope.deeper }}][{{ nope.a.b }}][{% for x in contact.nope %}x{% endfor %}]"

    assert render(source, strict=False) == "[][][]"


def test_lenient_still_refuses_arithmetic_on_undefined() -> None:
    with pytest.raises(UndefinedVariable) as caught:
        render("{{ contact.age + 1 }}", strict=False)

    assert caught.value.name == "age"


# The sandbox

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self.__dict__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ nope.__class__ }}",
    "{{ contact.__class__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{% set x = ''.__class__ %}{{ x is defined }}",
]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused(source: str, strict: bool) -> None:
    error = refused(source, strict=strict)

    assert "<class" not in error.reason
    assert "not allowed" in error.reason


@pytest.mark.parametrize(
    "source",
    ["{{ range }}", "{{ cycler }}", "{{ self }}", "{{ 'a'.upper }}", "{{ contact.items() }}"],
)
def test_internals_are_never_printed(source: str) -> None:
    error = refused(source)

    assert "cannot be printed" in error.reason


def test_mutating_the_context_is_refused() -> None:
    refused("{{ contact.update({'first_name': 'Eve'}) }}")

    assert CONTACT["first_name"] == "Ann"


def test_methods_outside_the_allowlist_are_refused() -> None:
    assert render("{{ contact.first_name.upper() }}") == "ANN"
    assert "'ljust'" in refused("{{ 'x'.ljust(10) }}").reason
    refused("{{ (1).to_bytes(4, 'big') }}")


def test_lipsum_is_not_offered() -> None:
    with pytest.raises(UndefinedVariable):
        render("{{ lipsum(10) }}")


@pytest.mark.parametrize(
    ("source", "tag"),
    [
        ("a\n{% include 'x.html' %}", "include"),
        ("a\n{% import 'x.html' as x %}", "import"),
        ("a\n{% from 'x.html' import y %}", "import"),
        ("a\n{% extends 'x.html' %}", "extends"),
    ],
)
def test_loading_other_templates_is_refused_at_compile(
    renderer: Renderer, source: str, tag: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.compile(source, field="html", html=True)

    assert caught.value.field == "html"
    assert caught.value.reason == f"line 2: {{% {tag} %}} is not allowed"


# The context


@pytest.mark.parametrize(
    "value",
    [
        object(),
        b"bytes",
        len,
        datetime.date(2025, 1, 1),
        Markup("<b>trusted?</b>"),
        {1: "int key"},
        ["ok", {"deep": [object()]}],
    ],
    ids=["object", "bytes", "function", "date", "str-subclass", "int-key", "nested"],
)
def test_a_non_plain_context_value_is_refused(renderer: Renderer, value: object) -> None:
    compiled = renderer.compile("{{ x }}", field="text", html=False)

    with pytest.raises(TypeError, match=r"context\['x'\]"):
        renderer.render(compiled, {"x": value}, strict=False)


def test_plain_context_may_share_and_nest_containers(renderer: Renderer) -> None:
    shared: dict[str, object] = {"a": [1, 2.5, True, None, ("t",)]}
    cyclic: list[object] = []
    cyclic.append(cyclic)

    renderer.check_context({"x": shared, "y": shared, "z": cyclic})


# Syntax errors


def test_syntax_error_reports_field_and_line(renderer: Renderer) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.compile("Hello\n\n{{ contact.first_name }\n", field="subject", html=False)

    assert caught.value.field == "subject"
    assert caught.value.reason.startswith("line 3: ")


def test_unknown_filter_reports_its_line(renderer: Renderer) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.compile("a\n{{ x|nosuchfilter }}", field="html", html=True)

    assert caught.value.reason.startswith("line 2: ")
    assert "nosuchfilter" in caught.value.reason


def test_runtime_error_reports_its_line() -> None:
    assert refused("ok\n\n{{ 1 // 0 }}").reason.startswith("line 3: ZeroDivisionError")


# Limits


def test_source_over_the_limit_is_refused_at_compile() -> None:
    renderer = Renderer(Limits(max_source_chars=20))
    renderer.compile("x" * 20, field="text", html=False)

    with pytest.raises(TemplateError, match="21 characters; the limit is 20"):
        renderer.compile("x" * 21, field="text", html=False)


def test_output_over_the_limit_is_refused() -> None:
    limits = Limits(max_output_chars=100)
    assert render("{% for i in range(25) %}abcd{% endfor %}", limits=limits) == "abcd" * 25

    error = refused("{% for i in range(26) %}abcd{% endfor %}", limits=limits)
    assert "output over 100 characters" in error.reason


def test_captured_output_is_capped_too() -> None:
    # Nothing reaches the stream until the macro returns: its buffer must count.
    source = (
        "{% macro m() %}{% for i in range(1000) %}abcd{% endfor %}{% endmacro %}{{ m()|length }}"
    )

    error = refused(source, limits=Limits(max_output_chars=100))

    assert "captured output" in error.reason


def test_range_budget_is_exhausted_by_nested_loops_that_print_nothing() -> None:
    limits = Limits(max_loop_iterations=1_000)
    assert render("{% for i in range(1000) %}{% endfor %}done", limits=limits) == "done"

    source = "{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}"
    assert "range() items over 1000" in refused(source, limits=limits).reason


def test_loops_over_data_count_too() -> None:
    # Not a range in sight: the iterations themselves are counted.
    source = "{% set s = 'x' * 100 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"

    error = refused(source, limits=Limits(max_loop_iterations=1_000))

    assert "loop iterations over 1000" in error.reason


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ 10**9 * 'x' }}",
        "{{ ['x'] * 10**9 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '%0999999999d'|format(1) }}",
        "{{ 'x'|center(10**9) }}",
        "{{ 'a\nb'|indent(10**9) }}",
        "{{ 'ab'|replace('', 'x' * 900000) }}",
        "{{ ['x' * 900000] * 2 }}",
        "{{ (['x' * 300000] * 3)|join('y' * 100000) }}",
        "{{ [1]|batch(10**9, 0)|list|length }}",
        "{{ [1]|slice(10**9)|list|length }}",
    ],
)
def test_size_multipliers_are_refused_before_they_allocate(source: str) -> None:
    assert "would be over" in refused(source).reason


@pytest.mark.parametrize("operator", ["~", "+"])
def test_doubling_a_string_in_a_loop_is_refused(operator: str) -> None:
    source = (
        "{% set ns = namespace(s='x') %}"
        f"{{% for i in range(40) %}}{{% set ns.s = ns.s {operator} ns.s %}}{{% endfor %}}"
    )

    assert "would be over 1000000 characters" in refused(source).reason


def test_huge_powers_are_refused() -> None:
    assert "over 4096 bits" in refused("{{ 2 ** (10 ** 10) }}").reason
    assert "over 4096 bits" in refused("{{ 10 ** 10000000000 }}").reason
    assert render("{{ 2 ** 4000 > 0 }}") == "True"


def test_power_is_left_associative_in_jinja() -> None:
    # Unlike Python, Jinja reads `2 ** 10 ** 10` as (2 ** 10) ** 10 = 2 ** 100: harmless.
    assert render("{{ 2 ** 10 ** 10 }}") == str(2**100)


def test_squaring_an_int_in_a_loop_is_refused() -> None:
    source = (
        "{% set ns = namespace(n=3) %}"
        "{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}"
    )

    assert "over 4096 bits" in refused(source).reason


def test_a_slow_render_is_stopped() -> None:
    # Legitimate, bounded output (900 kB) and no loop or call: only the check on each
    # streamed chunk can see the time go by.
    source = "{% set s = 'x' * 100000 %}" + "{{ s|upper }}" * 9

    assert len(render(source)) == 900_000
    error = refused(source, limits=Limits(max_render_seconds=1e-6))
    assert "rendering took over 1e-06 s" in error.reason


def test_a_loop_that_prints_nothing_is_stopped_by_the_clock() -> None:
    # 90,000 empty iterations: within the loop budget, far over 1 ms.
    source = "{% set s = 'x' * 300 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"

    assert render(source) == ""
    error = refused(source, limits=Limits(max_render_seconds=0.001))
    assert "rendering took over 0.001 s" in error.reason


def test_macro_recursion_that_prints_nothing_is_stopped_by_the_clock() -> None:
    # 2**18 calls, no loop, no output: only the check on each call stops it inside the
    # macro, on line 2; the check on the one output chunk would see it at the end, and
    # outside the template (no line).
    source = (
        "{% macro f(n) %}{% if n -%}\n"
        "{% set a = f(n - 1) %}{% set b = f(n - 1) %}{% endif %}{% endmacro %}{{ f(18) }}"
    )

    error = refused(source, limits=Limits(max_render_seconds=0.01))

    assert error.reason == "line 2: rendering took over 0.01 s"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_output_chars"):
        Limits(max_output_chars=0)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_a_missing_value_prints_as_nothing(strict: bool) -> None:
    renderer = Renderer()
    compiled = renderer.compile("Hello {{ first_name }}!", field="subject", html=False)
    assert renderer.render(compiled, {"first_name": None}, strict=strict) == "Hello !"
