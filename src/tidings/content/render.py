"""Render org-written (untrusted) templates, sandboxed and capped, fast enough for millions.

    renderer = Renderer(Limits())                    # once per process: builds 4 environments
    compiled = renderer.compile(source, field="html", html=True)   # once per template part
    renderer.render(compiled, context, strict=False)               # once per recipient

`compile` parses the source once per undefined-mode, rewrites the syntax tree so loops and
`~` report to the per-render budget, and refuses `include`/`import`/`extends`. `render`
checks the context is plain data (else TypeError: the caller's bug, not the template's),
then streams `Template.generate` and stops at the first chunk past the output or time
limit. Whatever goes wrong in the template is a `TemplateError`.

Most campaign templates only substitute values (`{{ first_name }}`,
`{{ contact.attributes.plan }}`). `compile` spots those from the syntax tree and keeps a
plan of their pieces; at send time (`strict=False`) such a template is rendered from the
plan by dictionary lookups in the (plain-data) context, without running template code,
and exactly as the sandbox would render it. Any value the plan cannot print (a
container, a method) and any other template (a filter, a tag, a call) goes through the
sandbox. `render_parts` renders a message's parts with one context check.

What bounds a render (`Limits`), and how:
- time: the clock is read on every output chunk, every loop iteration, every call and
  every append to a captured body (macro, `{% set %}…{% endset %}`, `{% filter %}`);
- output: the streamed total, and all captured bodies together (`_CAPTURE_FACTOR` times
  the output limit, since a nested capture is counted once per level);
- loops: `range()` items and `for` iterations, each up to `max_loop_iterations`;
- size amplifiers are checked *before* they allocate: `*`, `**`, `%`, `+`, `~`, the
  filters `center indent format join replace wordwrap batch slice urlize string tojson
  pprint`, and printing a container; the methods a template may call are an allowlist
  that leaves out `ljust`, `zfill`, `format`, `join`, `replace`, `to_bytes`….
Not covered: other filters that stringify a container (`upper`, `escape`, … on a list
built from a large string repeated in a literal) allocate before any check. Such a value
is bounded by the source size, and the next checkpoint stops the render. Between two
checkpoints one operation runs to its end (a sort, a regex, a `tojson`), bounded by the
sizes above, not by the clock. A hard memory and CPU ceiling belongs to the process that
renders (an rlimit), not to this module.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from types import BuiltinMethodType, MethodType, TracebackType
from typing import Any, Final, cast

from jinja2 import Template, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_pprint,
    do_replace,
    do_tojson,
    do_urlize,
    do_wordwrap,
    sync_do_join,
    sync_do_slice,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import (
    BlockReference,
    ChainableUndefined,
    Context,
    LoopContext,
    Macro,
    StrictUndefined,
    Undefined,
    markup_join,
    str_join,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, missing, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, soft_str

__all__ = ["Compiled", "Limits", "Renderer", "TemplateError", "UndefinedVariable"]


class TemplateError(Exception):
    """A template that cannot be compiled or rendered. `field` names the template part
    (e.g. "subject", "html", "text"), `reason` says what is wrong, with the template line
    when one is known ("line 3: …"; always for syntax errors)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UndefinedVariable(TemplateError):
    """The template used a name (or key, or attribute) the context does not have."""

    def __init__(self, field: str, reason: str, name: str) -> None:
        super().__init__(field, reason)
        self.name = name


@dataclass(frozen=True, slots=True)
class Limits:
    """What one render may cost. `max_loop_iterations` bounds, separately, the items of
    all `range()` calls and the iterations of all `for` loops of one render."""

    max_source_chars: int = 200_000
    max_output_chars: int = 1_000_000
    max_render_seconds: float = 0.5
    max_loop_iterations: int = 100_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive")


# A substitution-only template: leading text, then (name, attribute path, text after).
_Plan = tuple[str, tuple[tuple[str, tuple[str, ...], str], ...]]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A template part compiled for both modes; opaque outside this module."""

    field: str
    html: bool
    _strict: Template
    _lenient: Template
    # The context names the template reads (Jinja's undeclared variables).
    names: frozenset[str] = frozenset()
    # Pure substitution (literal text and `{{ name }}` / `{{ a.b.c }}`, nothing else):
    # the pieces, a str for literal text, a tuple of names for a lookup. None otherwise.
    _plan: _Plan | None = None


# Captured bodies are appended to again when a macro's result lands in an outer capture.
_CAPTURE_FACTOR: Final = 8
# 4096 bits is about 1,233 digits: more than any message needs, cheap to compute and print.
_MAX_INT_BITS: Final = 4096
_MAX_JSON_INDENT: Final = 8
_LOOP_FILTER: Final = "_tidings_loop"
_CONCAT_FILTER: Final = "_tidings_concat"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?")


class _Exceeded(Exception):
    """A limit was hit; render() turns it into a TemplateError with the template line."""


class _MissingName(UndefinedError):
    def __init__(self, message: str | None = None, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class _Budget:
    """The state of one render, reached through `_BUDGET` (a ContextVar, so concurrent
    renders in threads or tasks never share one)."""

    __slots__ = ("captured", "deadline", "iterations", "limits", "ranged")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_render_seconds
        self.ranged = self.iterations = self.captured = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Exceeded(f"rendering took over {self.limits.max_render_seconds} s")


_BUDGET: ContextVar[_Budget] = ContextVar("tidings_render_budget")


def _counting_range(*args: int) -> range:
    budget = _BUDGET.get()
    span = range(*args)
    try:
        budget.ranged += len(span)
    except OverflowError:  # longer than sys.maxsize
        budget.ranged = budget.limits.max_loop_iterations + 1
    if budget.ranged > budget.limits.max_loop_iterations:
        raise _Exceeded(f"range() items over {budget.limits.max_loop_iterations} in one render")
    return span


@pass_context
def _guard_loop(_context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _BUDGET.get()
    limit = budget.limits.max_loop_iterations
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > limit:
            raise _Exceeded(f"loop iterations over {limit} in one render")
        budget.tick()
        yield item


class _CaptureBuffer(list[str]):
    """The buffer of a captured body (see `_CodeGenerator`): counts what it is given."""

    __slots__ = ("_budget",)

    def __init__(self) -> None:
        super().__init__()
        self._budget = _BUDGET.get()

    def _charge(self, chars: int) -> None:
        budget = self._budget
        budget.captured += chars
        cap = budget.limits.max_output_chars * _CAPTURE_FACTOR
        if budget.captured > cap:
            raise _Exceeded(f"captured output (macros, set blocks) over {cap} characters")
        budget.tick()

    def append(self, item: str) -> None:
        self._charge(len(item))
        super().append(item)

    def extend(self, items: Iterable[str]) -> None:
        items = tuple(items)
        self._charge(sum(map(len, items)))
        super().extend(items)


class _CodeGenerator(CodeGenerator):
    def buffer(self, frame: Frame) -> None:
        # The compiled template creates its capture buffers here; ours are counted.
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.capture_buffer()")


class _GuardRewriter(NodeTransformer):
    """Routes every `for` iterable and every `~` through the budget filters."""

    # Jinja's visitor dispatches on the node class name, hence visit_For.
    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def _approx_len(value: object, limit: int, *, printable: bool = False) -> int:
    """About len(str(value)), walking containers and stopping once past `limit`, so a
    list that repeats one large string is measured before it is stringified. With
    `printable`, a value that is not data (a function, a macro, a generator…) is refused."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple):
            total += 2 + 4 * len(item)  # brackets, then quotes and ", " per item
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif not printable or isinstance(item, float | range | Undefined) or item is None:
            total += 24
        else:
            raise SecurityError(f"a {type(item).__name__!r} value cannot be printed")
    return total


def _refuse_over(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise _Exceeded(f"{what} would be over {limit} characters")


def _printf_width(fmt: object, limit: int) -> None:
    """Refuse `%`-formatting whose widths or precisions would pad past `limit`."""
    if not isinstance(fmt, str):
        return
    total = 0
    for width, precision in _PRINTF.findall(fmt):
        if "*" in (width, precision):
            raise SecurityError("'*' widths are not allowed in % formatting")
        for digits in (width, precision):
            total += int(digits) if 0 < len(digits) < 10 else (limit + 1 if digits else 0)
    _refuse_over(total, limit, "% formatting padding")


# Methods a template may call: none of them returns much more than it is given. (A word
# list: five lines where a list literal would take thirty-five.)
_STR_METHODS: Final = frozenset(
    "capitalize casefold count endswith find index isalnum isalpha isascii isdecimal isdigit "  # noqa: SIM905
    "isidentifier islower isnumeric isprintable isspace istitle isupper lower lstrip partition "
    "removeprefix removesuffix rfind rindex rpartition rsplit rstrip split splitlines "
    "startswith strip swapcase title upper".split()
)
_SAFE_METHODS: Final[Mapping[type, frozenset[str]]] = {
    str: _STR_METHODS,
    Markup: _STR_METHODS | {"striptags", "unescape"},
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    LoopContext: frozenset({"changed", "cycle"}),
    Cycler: frozenset({"next", "reset"}),
}
_SIZED: Final = (str, list, tuple)
_CALLABLE_KINDS: Final = (Macro, LoopContext, Joiner, BlockReference, Undefined)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus the checks above. One per (autoescape, undefined) pair."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: Limits, *, autoescape: bool, undefined: type[Undefined]) -> None:
        super().__init__(autoescape=autoescape, undefined=undefined, loader=None)
        self.limits = limits
        self.finalize = _finalize
        # Jinja's defaults minus lipsum(), whose `n` multiplies its output.
        self.globals = {
            "range": _counting_range,
            "dict": dict,
            "cycler": Cycler,
            "joiner": Joiner,
            "namespace": Namespace,
        }
        self._callable_globals = frozenset(map(id, self.globals.values()))
        self.filters.update(_capped_filters(limits.max_output_chars))
        self.filters[_LOOP_FILTER] = _guard_loop
        self.filters[_CONCAT_FILTER] = _concat

    def capture_buffer(self) -> _CaptureBuffer:
        return _CaptureBuffer()

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja returns an undefined that prints as "" when lenient; refuse outright instead.
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__!r} is not allowed")

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, _CALLABLE_KINDS) or id(obj) in self._callable_globals:
            return True
        if isinstance(obj, BuiltinMethodType | MethodType):
            allowed = _SAFE_METHODS.get(type(obj.__self__), frozenset())
            return obj.__name__ in allowed
        return False

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _BUDGET.get().tick()
        if not self.is_safe_callable(obj):
            name = getattr(obj, "__name__", type(obj).__name__)
            raise SecurityError(f"calling {name!r} is not allowed")
        return context.call(obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        cap = self.limits.max_output_chars
        if operator == "**" and type(left) in (int, bool) and type(right) in (int, bool):
            if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > _MAX_INT_BITS:
                raise _Exceeded(f"the result of ** would be over {_MAX_INT_BITS} bits")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, _SIZED) and isinstance(times, int):
                    _refuse_over(_approx_len(seq, cap) * times, cap, "the result of *")
            both_int = isinstance(left, int) and isinstance(right, int)
            if both_int and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise _Exceeded(f"the result of * would be over {_MAX_INT_BITS} bits")
        elif operator == "%":
            _printf_width(left, cap)
        elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            _refuse_over(_approx_len(left, cap) + _approx_len(right, cap), cap, "the sum")
        return super().call_binop(context, operator, left, right)


class _StrictUndefined(StrictUndefined):
    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, _named(exc, name))


class _LenientUndefined(ChainableUndefined):
    """Prints as "", and so does any attribute of it: `{{ contact.nope.deeper }}`."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, _named(exc, name))


def _named(exc: type[Exception], name: str | None) -> Any:
    # Jinja builds the exception from the message alone; keep the name for UndefinedVariable.
    # Without a name (`loop.previtem` on the first item…) it stays a plain TemplateError.
    return partial(_MissingName, name=name) if exc is UndefinedError and name else exc


@pass_context  # so that Jinja runs it on constants too, and before escaping them
def _finalize(_context: Context, value: object) -> object:
    """Every `{{ … }}` passes here before it is printed: refuse what is not data (a
    method, a macro, a loop…: no internals in the output) and containers too big to print.
    A missing value (None: no first name on file) prints as nothing, never as "None"."""
    if value is None:
        return ""
    if type(value) is not str:
        cap = _BUDGET.get().limits.max_output_chars
        _refuse_over(_approx_len(value, cap, printable=True), cap, "printing this value")
    return value


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: list[Any]) -> str:
    cap = _limits(eval_ctx).max_output_chars
    _refuse_over(sum(_approx_len(part, cap) for part in parts), cap, "the result of ~")
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _limits(eval_ctx: EvalContext) -> Limits:
    environment = eval_ctx.environment
    assert isinstance(environment, _Sandbox)
    return environment.limits


def _capped_filters(cap: int) -> dict[str, Callable[..., Any]]:
    """Jinja's filters that can multiply their input, each checked before it runs."""

    def center(value: str, width: int = 80) -> str:
        _refuse_over(width, cap, "center width")
        return do_center(value, width)

    def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        step = len(width) if isinstance(width, str) else width
        _refuse_over(step, cap, "indent width")
        _refuse_over(len(soft_str(s)) + step * (soft_str(s).count("\n") + 1), cap, "indent")
        return do_indent(s, width, first, blank)

    def format_(value: str, *args: Any, **kwargs: Any) -> str:
        _printf_width(value, cap)
        _refuse_over(_approx_len([value, args, kwargs], cap), cap, "format")
        return do_format(value, *args, **kwargs)

    @pass_eval_context
    def join(
        eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
    ) -> str:
        items = list(value)
        _refuse_over(_approx_len(items, cap) + len(d) * len(items), cap, "join")
        return sync_do_join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
        text, old_, new_ = soft_str(s), soft_str(old), soft_str(new)
        hits = text.count(old_) if old_ else len(text) + 1
        hits = hits if count is None or count < 0 else min(hits, count)
        _refuse_over(len(text) + hits * max(0, len(new_) - len(old_)), cap, "replace")
        return do_replace(eval_ctx, s, old, new, count)

    @pass_eval_context
    def wordwrap(
        eval_ctx: EvalContext,
        s: str,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> str:
        wrap = len(wrapstring) if wrapstring is not None else 2
        _refuse_over(len(soft_str(s)) * (1 + wrap) + wrap, cap, "wordwrap")
        return do_wordwrap(
            eval_ctx.environment, s, width, break_long_words, wrapstring, break_on_hyphens
        )

    # Each filler counts for at least a list slot; without one, batch makes nothing new.
    def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
        if fill_with is not None:
            _refuse_over(linecount * (_approx_len(fill_with, cap) + 4), cap, "batch")
        return do_batch(value, linecount, fill_with)

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
        _refuse_over(slices * (_approx_len(fill_with, cap) + 4), cap, "slice")
        return sync_do_slice(value, slices, fill_with)

    @pass_eval_context
    def urlize(
        eval_ctx: EvalContext,
        value: str,
        trim_url_limit: int | None = None,
        nofollow: bool = False,
        target: str | None = None,
        rel: str | None = None,
        extra_schemes: Iterable[str] | None = None,
    ) -> str:
        text = soft_str(value)
        per_link = len(target or "") + len(rel or "") + 64
        _refuse_over(3 * len(text) + (len(text) // 2 + 1) * per_link, cap, "urlize")
        return do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)

    def string(value: Any) -> str:
        _refuse_over(_approx_len(value, cap), cap, "string")
        return soft_str(value)

    def pprint(value: Any) -> str:
        _refuse_over(_approx_len(value, cap), cap, "pprint")
        return do_pprint(value)

    @pass_eval_context
    def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
        _refuse_over(indent or 0, _MAX_JSON_INDENT, "the tojson indent")
        _refuse_over(_approx_len(value, cap), cap, "tojson")
        return do_tojson(eval_ctx, value, indent)

    return {
        "center": center, "indent": indent, "format": format_, "join": join,
        "replace": replace, "wordwrap": wordwrap, "batch": batch, "slice": slice_,
        "urlize": urlize, "string": string, "pprint": pprint, "tojson": tojson,
    }  # fmt: skip


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_LOADING_TAGS: Final = {nodes.Extends: "extends", nodes.Include: "include",
                        nodes.Import: "import", nodes.FromImport: "import"}  # fmt: skip


class Renderer:
    """Compiles and renders template parts under one set of `Limits`. Build it once: it
    holds the four environments (autoescape on/off × strict/lenient undefined). Thread-safe:
    a render's state lives in a ContextVar, compiled templates are never mutated."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self._limits = limits
        self._envs = {
            (html, strict): _Sandbox(
                limits, autoescape=html, undefined=_StrictUndefined if strict else _LenientUndefined
            )
            for html in (False, True)
            for strict in (False, True)
        }

    def compile(self, source: str, *, field: str, html: bool) -> Compiled:
        """Compile `source` for both modes. `html=True` escapes what it prints (the HTML
        part); `html=False` is for subject, text and SMS. Raises TemplateError for a source
        over `max_source_chars`, a syntax error (with its line), an unknown filter or test,
        or an `include`, `import` or `extends` (templates are self-contained)."""
        if len(source) > self._limits.max_source_chars:
            reason = f"is {len(source)} characters; the limit is {self._limits.max_source_chars}"
            raise TemplateError(field, reason)
        strict, lenient = (self._compile(source, field, self._envs[html, s]) for s in (True, False))
        tree = self._envs[html, False].parse(source)
        return Compiled(
            field=field,
            html=html,
            _strict=strict,
            _lenient=lenient,
            names=frozenset(meta.find_undeclared_variables(tree)),
            _plan=_substitution_plan(tree),
        )

    def _compile(self, source: str, field: str, env: _Sandbox) -> Template:
        try:
            tree = env.parse(source)
            for kind, tag in _LOADING_TAGS.items():
                if (node := next(tree.find_all(kind), None)) is not None:
                    raise TemplateError(field, f"line {node.lineno}: {{% {tag} %}} is not allowed")
            guarded: nodes.Template = _GuardRewriter().visit(tree)
            guarded.set_environment(env)  # the nodes the rewriter added
            return env.from_string(guarded)
        except TemplateSyntaxError as exc:
            raise TemplateError(field, f"line {exc.lineno}: {exc.message}") from exc
        except RecursionError as exc:
            raise TemplateError(field, "is nested too deeply") from exc

    def check_context(self, context: Mapping[str, object]) -> None:
        """Raise TypeError unless `context` is plain data: str, int, float, bool, None,
        list, tuple and dict with str keys, all the way down (exact types: no subclasses,
        so no `__missing__`, no `__html__`). The sandbox guards attribute access; plain data
        means there is also nothing behind it to reach (no method, module or frame), and
        that what a template prints depends on the data alone. `render` calls this."""
        if not _is_plain(context):
            raise TypeError(
                f"{_impure_path(context, 'context')}; templates get plain data only "
                "(str, int, float, bool, None, list, tuple, dict with str keys)"
            )

    def render(self, template: Compiled, context: Mapping[str, object], *, strict: bool) -> str:
        """Render `template` with `context` (checked by `check_context` first).

        strict=True (preview): an undefined name, key or attribute raises UndefinedVariable
        naming it (`is defined` and `|default` still work). strict=False (send time): it
        prints as "", and so do its attributes; other uses of it (arithmetic, calls) still
        raise UndefinedVariable. Any other failure, or a `Limits` overrun, is TemplateError.
        """
        self.check_context(context)
        return self._render(template, context, strict=strict)

    def render_parts(
        self, templates: Mapping[str, Compiled], context: Mapping[str, object], *, strict: bool
    ) -> dict[str, str]:
        """`render` of each of `templates` (by part name) with one `context`, checked once."""
        self.check_context(context)
        return {
            part: self._render(template, context, strict=strict)
            for part, template in templates.items()
        }

    def _render(self, template: Compiled, context: Mapping[str, object], *, strict: bool) -> str:
        if not strict and template._plan is not None:
            text = _substitute(template._plan, context, template.html, self._limits)
            if text is not None:
                return text
        limits = self._limits
        budget = _Budget(limits)
        token = _BUDGET.set(budget)
        jinja_template = template._strict if strict else template._lenient
        stream = cast(Generator[str, None, None], jinja_template.generate(context))
        parts: list[str] = []
        size = 0
        try:
            for chunk in stream:
                size += len(chunk)
                if size > limits.max_output_chars:
                    raise _Exceeded(f"output over {limits.max_output_chars} characters")
                budget.tick()
                parts.append(chunk)
        except Exception as exc:  # the template is untrusted: whatever it raised is its fault
            raise _template_error(template.field, exc) from exc
        finally:
            stream.close()
            _BUDGET.reset(token)
        return "".join(parts)


# Names Jinja resolves without the context (globals, template internals): never substituted.
_SPECIAL_NAMES: Final = frozenset({"range", "dict", "cycler", "joiner", "namespace", "self",
                                   "loop", "super", "varargs", "kwargs", "caller"})  # fmt: skip
_UNDEFINED: Final = object()
# The attributes of each plain type, which Jinja looks up before a dict's keys.
_ATTRIBUTES: Final = {kind: frozenset(dir(kind)) for kind in (*_SCALARS, dict, list, tuple)}


def _substitution_plan(tree: nodes.Template) -> _Plan | None:
    """The pieces of a template that only prints literal text, names and attributes of
    names (`{{ first_name }}`, `{{ contact.attributes.plan }}`); None for anything else
    (a filter, a test, a call, a tag, a subscript, a constant, an operator…), which
    always renders through the sandbox. The plan is the leading text, then per value
    printed: its name, its attribute path, and the text that follows it."""
    head = ""
    steps: list[tuple[str, tuple[str, ...], str]] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            if type(node) is nodes.TemplateData:
                if steps:
                    name, attrs, after = steps[-1]
                    steps[-1] = (name, attrs, after + node.data)
                else:
                    head += node.data
                continue
            path: list[str] = []
            while type(node) is nodes.Getattr:
                path.append(node.attr)
                node = node.node
            if type(node) is not nodes.Name or node.name in _SPECIAL_NAMES:
                return None
            if node.name.startswith("_") or any(name.startswith("_") for name in path):
                return None
            steps.append((node.name, tuple(reversed(path)), ""))
    return head, tuple(steps)


def _escape_html(text: str) -> str:
    """As markupsafe's `escape`, as a plain str (no Markup object made)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _substitute(
    plan: _Plan, context: Mapping[str, object], html: bool, limits: Limits
) -> str | None:
    """A substitution-only template rendered without running template code, exactly as
    the lenient sandbox renders it: a missing name or attribute prints as "", None as "",
    str, int, float and bool as `str()` (escaped in HTML). None when a value is anything
    else (a container, an attribute that is a method…) or the output is over the limit:
    the caller then renders through the sandbox, which prints it or says why not."""
    head, steps = plan
    out = [head]
    get = context.get
    for name, attrs, after in steps:
        value: Any = get(name, _UNDEFINED)
        for attr in attrs:
            if value is _UNDEFINED:
                break  # an attribute of a missing value is missing too
            attributes = _ATTRIBUTES.get(type(value))
            if attributes is None or attr in attributes:
                return None  # a method or an attribute of the value: the sandbox decides
            # A dict's key; a scalar's or a list's item: missing.
            value = value.get(attr, _UNDEFINED) if type(value) is dict else _UNDEFINED
        kind = type(value)
        if kind is str:
            out.append(_escape_html(value) if html else value)
        elif kind is int or kind is float or kind is bool:
            out.append(str(value))
        elif value is not None and value is not _UNDEFINED:
            return None
        out.append(after)
    text = "".join(out)
    return text if len(text) <= limits.max_output_chars else None


def _is_plain(context: Mapping[str, object]) -> bool:
    # Once per render, so kept lean: no paths, one set for shared (or cyclic) containers.
    stack: list[Any] = [context]
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        kind = type(value)
        if kind is dict or value is context:
            for key, item in value.items():
                if type(key) is not str:
                    return False
                if type(item) not in _SCALARS:
                    stack.append(item)
        elif kind is list or kind is tuple:
            stack.extend(item for item in value if type(item) not in _SCALARS)
        else:
            return False
    return True


def _impure_path(value: object, path: str, seen: frozenset[int] = frozenset()) -> str:
    """Where `_is_plain` failed, for the message, e.g. "context['contact']['at'] is a date"."""
    kind = type(value)
    if kind in _SCALARS or id(value) in seen:
        return ""
    seen = seen | {id(value)}
    if isinstance(value, Mapping) and (kind is dict or path == "context"):
        for key, item in value.items():
            if type(key) is not str:
                return f"{path} has a {type(key).__name__} key"
            if found := _impure_path(item, f"{path}[{key!r}]", seen):
                return found
        return ""
    if kind is list or kind is tuple:
        assert isinstance(value, list | tuple)
        for index, item in enumerate(value):
            if found := _impure_path(item, f"{path}[{index}]", seen):
                return found
        return ""
    return f"{path} is a {kind.__name__}"


def _template_error(field: str, exc: Exception) -> TemplateError:
    line = _template_line(exc.__traceback__)
    where = f"line {line}: " if line else ""
    if isinstance(exc, _MissingName):
        return UndefinedVariable(field, f"{where}{exc.message}", exc.name)
    if isinstance(exc, _Exceeded | SecurityError | UndefinedError):
        return TemplateError(field, f"{where}{exc}")
    if isinstance(exc, RecursionError):
        return TemplateError(field, f"{where}recursion too deep")
    return TemplateError(field, f"{where}{type(exc).__name__}: {exc}")


def _template_line(tb: TracebackType | None) -> int | None:
    # Jinja rewrites the traceback so that template frames carry template line numbers.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
