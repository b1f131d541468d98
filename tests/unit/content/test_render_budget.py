"""The render-bomb corpus: templates that build huge values in few characters, each
refused by the budget with a reason, long before it could stall a process.

Before the budget bounded every value (not only the output), the starred cases ran for
3 to 55 s or died of MemoryError inside one uninterruptible call (measured at 24
doublings on the default limits); each refusal here takes milliseconds.
"""

from __future__ import annotations

import time

import pytest

from tidings import metrics
from tidings.content.render import Limits, OverBudget, Renderer


def _doubled(start: str, step: str, then: str, times: int = 24) -> str:
    """`ns.v` set to `start`, then to `step` (of itself) `times` times, then `then`."""
    return (
        f"{{% set ns = namespace(v={start}) %}}"
        f"{{% for i in range({times}) %}}{{% set ns.v = {step} %}}{{% endfor %}}{then}"
    )


NESTED = "[ns.v, ns.v]"  # doubles what it prints at each level, in constant time
CORPUS = {
    "list +": _doubled("['x' * 100]", "ns.v + ns.v", "{{ ns.v|length }}"),
    "string ~": _doubled("'x'", "ns.v ~ ns.v", "{{ ns.v|length }}"),
    "string *": _doubled("'x'", "ns.v * 2", "{{ ns.v|length }}"),
    "nested list |upper*": _doubled("['x' * 100]", NESTED, "{{ ns.v|upper|length }}"),
    "nested list |e*": _doubled("['x' * 100]", NESTED, "{{ ns.v|e|length }}"),
    "nested list |list*": _doubled("['x' * 100]", f"{NESTED}|list", "{{ ns.v|upper }}"),
    "nested list |replace*": _doubled("['x']", NESTED, "{{ ns.v|replace('x', 'y') }}"),
    "nested list |map*": _doubled("['x']", NESTED, "{{ ns.v|map('upper')|join }}"),
    "nested list |sort": _doubled("['x']", NESTED, "{{ ns.v|sort|string }}"),
    "nested list |unique": _doubled("['x']", NESTED, "{{ ns.v|unique|list }}"),
    "nested list |batch": _doubled("['x']", NESTED, "{{ ns.v|batch(1)|list }}"),
    "nested list |pprint": _doubled("['x']", NESTED, "{{ ns.v|pprint }}"),
    "nested tuple |string": _doubled("'x'", "(ns.v, ns.v)", "{{ ns.v|string }}"),
    "nested dict |tojson": _doubled("'x'", "{'a': ns.v, 'b': ns.v}", "{{ ns.v|tojson }}"),
    "nested dict |dictsort": _doubled("'x'", "{'a': ns.v, 'b': ns.v}", "{{ ns.v|dictsort }}"),
    "nested dict |xmlattr*": _doubled("'x'", "{'a': ns.v, 'b': ns.v}", "{{ ns.v|xmlattr }}"),
    "nested dict |urlencode": _doubled("'x'", "{'a': ns.v, 'b': ns.v}", "{{ ns.v|urlencode }}"),
    "dict items()*": _doubled("'x'", "{'a': ns.v, 'b': ns.v}", "{{ ns.v.items()|string }}"),
    "dict()": _doubled("'x'", "dict(a=ns.v, b=ns.v)", "{{ ns.v|string }}"),
    "namespace()*": _doubled("'x'", "namespace(a=ns.v, b=ns.v)", "{{ ns.v|string }}"),
    "cycler()": _doubled("'x'", NESTED, "{{ cycler(ns.v).next()|string }}"),
    "nested joins": _doubled("['x' * 100]", "[ns.v|join, ns.v|join]", "", times=30),
    "max of nested": _doubled("['x']", NESTED, "{{ ns.v|max|string }}"),
    "comparing nested": _doubled("['x']", NESTED, "{{ ns.v == [ns.v[0], ns.v[1]] }}"),
    "split": "{% set s = 'a ' * 450000 %}{{ s.split()|length }}",
    "map center |join*": "{{ (['a'] * 10000)|map('center', 900000)|join|length }}",
    "map center |list*": "{{ (['a'] * 10000)|map('center', 900000)|list|length }}",
    "% with a mapping": "{% set x = 'x' * 900000 %}{{ ('%(a)s' * 1000) % {'a': x} }}",
    "|format with keywords": "{% set x = 'x' * 900000 %}{{ ('%(a)s' * 1000)|format(a=x) }}",
    "|filter block over a huge value": (
        "{% set x = 'x' * 900000 %}{% filter upper %}{{ x }}{{ x }}{% endfilter %}"
    ),
    "|forceescape": "{{ ('<' * 900000)|forceescape|length }}",
    "|urlencode of wide characters": "{{ ('\u4e00' * 900000)|urlencode|length }}",
    "self-holding namespace |string": (
        "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|string|length }}"
    ),
    "many large variables": (
        "{% set x = 'x' * 900000 %}"
        + "".join(f"{{% set a{i} = x ~ {i} %}}" for i in range(100))
        + "{{ a1|length }}"
    ),
    "a large value in every iteration": (
        "{% set x = 'x' * 900000 %}{% for i in range(100000) %}{% set y = x ~ i %}{% endfor %}"
    ),
    "macro recursion": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% else %}x{% endif %}"
        "{% endmacro %}{{ f(30)|length }}"
    ),
    "set capture of captures": (
        "{% set x = 'x' * 900000 %}{% set y %}{{ x }}{{ x }}{% endset %}"
        "{% set z %}{{ y }}{{ y }}{{ y }}{{ y }}{{ y }}{% endset %}{{ z|length }}"
    ),
    "loop.cycle": (
        "{% for i in range(100000) %}{{ loop.cycle('a', 'b')|upper|length }}{% endfor %}"
    ),
}


@pytest.mark.parametrize("source", CORPUS.values(), ids=CORPUS.keys())
def test_every_bomb_is_refused_with_its_reason(source: str) -> None:
    renderer = Renderer()
    compiled = renderer.compile(source, field="html", html=True)
    started = time.monotonic()

    with pytest.raises(OverBudget) as caught:
        renderer.render(compiled, {}, strict=False)

    assert time.monotonic() - started < 5  # a sanity bound: the budget itself is 0.5 s
    error = caught.value
    assert error.field == "html"
    assert error.kind in {"time", "size", "memory", "loops", "output"}
    assert any(word in error.reason for word in ("over", "took")), error.reason


def test_a_nested_bomb_is_refused_at_the_level_that_reaches_the_limit() -> None:
    error = _refusal(CORPUS["nested list |upper*"])

    assert error.kind == "size"
    assert error.reason == "line 1: this list is over 1000000 characters"


def test_a_lazy_sequence_is_refused_as_it_is_read() -> None:
    error = _refusal(CORPUS["map center |list*"])

    assert error.reason == "line 1: the input of |list would be over 1000000 characters"


def test_a_mapping_printed_many_times_by_percent_is_refused_before_formatting() -> None:
    error = _refusal(CORPUS["% with a mapping"])

    assert "the result of % formatting would be over 1000000" in error.reason


def test_all_a_render_builds_is_bounded_too() -> None:
    error = _refusal(CORPUS["many large variables"])

    assert error.kind == "memory"
    assert "values built in one render over 20000000 characters" in error.reason


def test_context_data_too_large_for_a_filter_is_refused() -> None:
    renderer = Renderer()
    compiled = renderer.compile("{{ notes|upper }}", field="text", html=False)

    with pytest.raises(OverBudget, match="the input of \\|upper is over 1000000"):
        renderer.render(compiled, {"notes": "n" * 1_000_001}, strict=False)


def test_refusals_are_counted_by_kind() -> None:
    counter = metrics.RENDER_BUDGET_REFUSALS.labels("size")
    before = counter._value.get()

    _refusal(CORPUS["nested list |upper*"])

    assert counter._value.get() == before + 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Building a list one item at a time: each step is charged its own slots only.
        (
            "{% set ns = namespace(v=[]) %}{% for i in range(2000) %}"
            "{% set ns.v = ns.v + [{'n': i, 'label': 'item ' ~ i}] %}{% endfor %}"
            "{{ ns.v|length }} {{ ns.v[-1].label }}",
            "2000 item 1999",
        ),
        ("{{ ([[1], [2, 3]] * 1000)|sum(start=[])|length }}", "3000"),
        ("{{ [1, 2]|sum }} {{ [[1], [2]]|sum(start=[]) }}", "3 [1, 2]"),
        ("{{ '%s and %s' % ('a', 'b') }} {{ '%(x)s!'|format(x='y') }}", "a and b y!"),
        ("{{ {'b': 1, 'a': [1, 2]}|dictsort|list }}", "[('a', [1, 2]), ('b', 1)]"),
        ("{% for a, b in [(1, 2)] %}{{ a + b }}{% endfor %}", "3"),
        ("{{ (range(3)|map('string')|join(','))|upper }}", "0,1,2"),
        ("{% set d = dict(a=1) %}{{ d.items()|list }}", "[('a', 1)]"),
    ],
)
def test_ordinary_templates_are_not_refused(source: str, expected: str) -> None:
    renderer = Renderer()
    compiled = renderer.compile(source, field="text", html=False)

    assert renderer.render(compiled, {}, strict=True) == expected


def _refusal(source: str, limits: Limits | None = None) -> OverBudget:
    renderer = Renderer(limits or Limits())
    compiled = renderer.compile(source, field="text", html=False)
    with pytest.raises(OverBudget) as caught:
        renderer.render(compiled, {}, strict=False)
    return caught.value
