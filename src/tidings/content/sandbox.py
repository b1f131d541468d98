"""The Jinja sandbox templates run in, wired to the render's `Budget` (`budget.py`).

`GuardRewriter` rewrites a parsed template so that every `for` iterable, every `~` and
every list, tuple or dict literal with computed items passes through a budget filter;
`Sandbox` adds the rest: every filter wrapped by `guard_filter`, operators checked before
they run, calls to an allowlist of methods (their results measured), capture buffers
that count what they hold, and a `finalize` that refuses to print internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from types import BuiltinMethodType, MethodType
from typing import Any, Final

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
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
from markupsafe import Markup

from tidings.content.budget import (
    BUDGET,
    CAPTURE_FACTOR,
    Exceeded,
    Limits,
    approx_len,
    capped_filters,
    guard_filter,
    is_lazy,
    refuse_big_binop,
    sized,
)

__all__ = ["GuardRewriter", "Lenient", "MissingName", "Sandbox", "Strict"]

_LOOP_FILTER: Final = "_tidings_loop"
_CONCAT_FILTER: Final = "_tidings_concat"
_BUILT_FILTER: Final = "_tidings_built"


class MissingName(UndefinedError):
    """An undefined name, keeping the name (for `UndefinedVariable`)."""

    def __init__(self, message: str | None = None, *, name: str) -> None:
        super().__init__(message)
        self.name = name


def _counting_range(*args: int) -> range:
    budget = BUDGET.get()
    budget.tick()
    span = range(*args)
    try:
        budget.ranged += len(span)
    except OverflowError:  # longer than sys.maxsize
        budget.ranged = budget.limits.max_loop_iterations + 1
    if budget.ranged > budget.limits.max_loop_iterations:
        limit = budget.limits.max_loop_iterations
        raise Exceeded("loops", f"range() items over {limit} in one render")
    return span


@pass_context
def _guard_loop(_context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = BUDGET.get()
    limit = budget.limits.max_loop_iterations
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > limit:
            raise Exceeded("loops", f"loop iterations over {limit} in one render")
        budget.tick()
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: list[Any]) -> str:
    budget = BUDGET.get()
    budget.tick()
    size = sum(map(budget.size, parts))
    budget.refuse_over(size, "the result of ~")
    budget.charge(size)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _built(value: Any) -> Any:
    """A list, tuple or dict literal with computed items, just built."""
    return BUDGET.get().built_value(value, f"this {type(value).__name__}")


class _CaptureBuffer(list[str]):
    """The buffer of a captured body (see `_CodeGenerator`): counts what it is given."""

    __slots__ = ("_budget",)

    def __init__(self) -> None:
        super().__init__()
        self._budget = BUDGET.get()

    def _charge(self, chars: int) -> None:
        budget = self._budget
        budget.captured += chars
        cap = budget.limits.max_output_chars * CAPTURE_FACTOR
        if budget.captured > cap:
            raise Exceeded("output", f"captured output (macros, set blocks) over {cap} characters")
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


def _constant(node: nodes.Node) -> bool:
    """A literal whose items are all constants: bounded by the source, nothing to check."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.List | nodes.Tuple):
        return all(map(_constant, node.items))
    if isinstance(node, nodes.Dict):
        return all(_constant(pair.key) and _constant(pair.value) for pair in node.items)
    return False


class GuardRewriter(NodeTransformer):
    """Routes every `for` iterable, every `~` and every computed literal through the
    budget filters."""

    # Jinja's visitor dispatches on the node class name, hence visit_For.
    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)

    def _literal(self, node: nodes.List | nodes.Tuple | nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load" or _constant(node):
            return node  # an assignment target (`{% set a, b = … %}`), or bounded by the source
        return nodes.Filter(node, _BUILT_FILTER, [], [], None, None, lineno=node.lineno)

    visit_List = visit_Tuple = visit_Dict = _literal  # noqa: N815


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
_CALLABLE_KINDS: Final = (Macro, LoopContext, Joiner, BlockReference, Undefined)


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus the budget's checks. One per (autoescape, undefined) pair."""

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
        # Values these build are new: measured and charged (see `call`).
        self._building_globals = frozenset(map(id, (dict, Cycler, Namespace)))
        self.filters.update(capped_filters(limits.max_output_chars))
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _guard_loop
        self.filters[_CONCAT_FILTER] = _concat
        self.filters[_BUILT_FILTER] = _built

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
        budget = BUDGET.get()
        budget.tick()
        if not self.is_safe_callable(obj):
            name = getattr(obj, "__name__", type(obj).__name__)
            raise SecurityError(f"calling {name!r} is not allowed")
        builds = id(obj) in self._building_globals or (
            isinstance(obj, BuiltinMethodType | MethodType) and isinstance(obj.__self__, str)
        )
        if not builds:  # macros, loops, dict and list lookups: counted where they print
            return context.call(obj, *args, **kwargs)
        what = f"the arguments of {obj.__name__}()"
        args = tuple(sized(a, budget, what) if is_lazy(a) else a for a in args)
        result = context.call(obj, *args, **kwargs)
        return budget.built_value(result, f"the result of {obj.__name__}()")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = BUDGET.get()
        size = refuse_big_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        budget.remember(result, size)
        return result


class Strict(StrictUndefined):
    """Refuses any use but `is defined` and `|default`, naming what is missing."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, _named(exc, name))


class Lenient(ChainableUndefined):
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
    return partial(MissingName, name=name) if exc is UndefinedError and name else exc


@pass_context  # so that Jinja runs it on constants too, and before escaping them
def _finalize(_context: Context, value: object) -> object:
    """Every `{{ … }}` passes here before it is printed: refuse what is not data (a
    method, a macro, a loop…: no internals in the output) and containers too big to print.
    A missing value (None: no first name on file) prints as nothing, never as "None"."""
    if value is None:
        return ""
    if not isinstance(value, str):  # a string's length is checked as it is output
        budget = BUDGET.get()
        budget.refuse_over(approx_len(value, budget.cap, printable=True), "printing this value")
    return value
