"""What one render may cost (`Limits`), and the checks that hold it to that (`Budget`).

A render's state is a `Budget` in a ContextVar (`BUDGET`), so renders in concurrent
threads or tasks never share one. The sandbox (`sandbox.py`) calls in here wherever a
template spends time or builds a value:

- time: `Budget.tick` reads the rendering thread's CPU clock (`time.thread_time`: the
  work the render did, not the time it waited for the GIL or the CPU while a loop or
  another process ran); the sandbox calls it on every output chunk, loop iteration,
  call, filter, operator and literal, and on every append to a captured body;
- size of one value: whatever a template builds is measured with `approx_len` (about
  `len(str(value))`, counting a shared part every time it would print, and stopping
  once past the limit) and refused past `max_output_chars`. Where the size is known
  beforehand it is checked before anything is allocated (`*`, `+`, `~`, `%`, and the
  widths and fillers of `center`, `indent`, `batch`…: `capped_filters`); otherwise right
  after (list, tuple and dict literals, the results of filters and of string methods),
  when the value's inputs were themselves within the limit. So no value is ever past the
  limit, and no single operation on one can take long or much memory: a structure that
  doubles by nesting (`[x, x]`) is refused at the level that reaches the limit, before a
  filter stringifies it. A filter's inputs are measured too (context data is not built by
  the template, but can be as large as a contact's attributes), and a lazy sequence
  given to a filter (`map`, `select`…) is measured item by item as the filter takes them
  (`sized`), so `|list` or `|join` stops at the limit instead of after it;
- memory of the whole render: each value built is charged once to `built`, at its own
  size (a container's slots, not what they share with older values), up to
  `max_built_chars`; captured bodies have their own cap (`CAPTURE_FACTOR` times the
  output limit), and so has the output;
- loops: `range()` items and `for` iterations, each up to `max_loop_iterations`.

Between two checkpoints one operation runs to its end (a sort, a regex, a `tojson`),
bounded by the sizes above, not by the clock: tens of milliseconds at the default limits.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from itertools import chain
from typing import TYPE_CHECKING, Any, Final

from jinja2.exceptions import SecurityError
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
    make_attrgetter,
    sync_do_join,
    sync_do_slice,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.utils import Cycler, Namespace, pass_environment, pass_eval_context
from markupsafe import Markup, soft_str

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["BUDGET", "Budget", "Exceeded", "Limits", "approx_len", "capped_filters"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one render may cost. `max_loop_iterations` bounds, separately, the items of
    all `range()` calls and the iterations of all `for` loops of one render;
    `max_output_chars` bounds the output and also every single value the template builds;
    `max_built_chars` bounds all the values one render builds, together."""

    max_source_chars: int = 200_000
    max_output_chars: int = 1_000_000
    max_render_seconds: float = 0.5
    max_loop_iterations: int = 100_000
    max_built_chars: int = 20_000_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive")


# Captured bodies are appended to again when a macro's result lands in an outer capture.
CAPTURE_FACTOR: Final = 8
# 4096 bits is about 1,233 digits: more than any message needs, cheap to compute and print.
MAX_INT_BITS: Final = 4096
_MAX_JSON_INDENT: Final = 8
_SIZED: Final = (str, list, tuple)
_KNOWN_SIZES: Final = 64
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?")


class Exceeded(Exception):
    """A limit was hit. `kind` names it (time, size, memory, loops, output): the label of
    the refusals metric. The renderer turns it into a TemplateError with the line."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class Budget:
    """The state of one render, reached through `BUDGET`."""

    __slots__ = (
        "built", "cap", "captured", "deadline", "iterations", "known", "limits", "ranged",
        "started",
    )  # fmt: skip

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cap = limits.max_output_chars
        self.started = time.thread_time()
        self.deadline = self.started + limits.max_render_seconds
        self.ranged = self.iterations = self.captured = self.built = 0
        # The sizes of the last containers measured or built, so that growing a list one
        # item at a time (`ns.v + [item]`) measures the new item, not the whole list again.
        self.known: dict[int, tuple[object, int]] = {}

    def size(self, value: object) -> int:
        """`approx_len(value)` up to the limit, reusing the sizes of known containers."""
        return approx_len(value, self.cap, known=self.known)

    def remember(self, value: object, size: int) -> None:
        """`value`'s size, if it is a container (the sandbox never changes one) whose
        size was taken to its end."""
        if type(value) in (list, tuple, dict) and size <= self.cap:
            known = self.known
            known[id(value)] = (value, size)  # the reference keeps the id from being reused
            if len(known) > _KNOWN_SIZES:
                del known[next(iter(known))]

    def spent(self) -> float:
        """The rendering thread's CPU seconds since this render began."""
        return time.thread_time() - self.started

    def tick(self) -> None:
        if time.thread_time() > self.deadline:
            raise Exceeded("time", f"rendering took over {self.limits.max_render_seconds} s")

    def refuse_over(self, size: int, what: str) -> None:
        """Before building: refuse a value whose size is known to be over the limit."""
        if size > self.cap:
            raise Exceeded("size", f"{what} would be over {self.cap} characters")

    def measure(self, value: object, what: str) -> int:
        """The size of a value (see `approx_len`); refused past the limit."""
        size = self.size(value)
        if size > self.cap:
            raise Exceeded("size", f"{what} is over {self.cap} characters")
        self.remember(value, size)
        return size

    def charge(self, chars: int) -> None:
        """Count a value just built towards the render's total."""
        self.built += chars
        if self.built > self.limits.max_built_chars:
            limit = self.limits.max_built_chars
            raise Exceeded("memory", f"values built in one render over {limit} characters")

    def built_value(self, value: object, what: str) -> object:
        """A new value: measured (refused past the limit), then charged at its own size."""
        self.tick()
        size = self.measure(value, what)
        self.charge(own_size(value, size))
        return value


BUDGET: ContextVar[Budget] = ContextVar("tidings_render_budget")


def own_size(value: object, size: int) -> int:
    """What building `value` allocated: a container's slots (its items are older values,
    already counted), anything else its measured `size`."""
    if isinstance(value, list | tuple | dict):
        return 2 + 4 * len(value)
    return size


def approx_len(
    value: object,
    limit: int,
    *,
    printable: bool = False,
    known: Mapping[int, tuple[object, int]] | None = None,
) -> int:
    """About len(str(value)), walking containers (and the namespaces, cyclers and dict
    views that print their items) and stopping once past `limit`, so a list that repeats
    one large value is measured before it is stringified, in at most about `limit / 4`
    steps. With `printable`, a value that is not data (a function, a macro, a
    generator…) is refused."""
    kind = type(value)
    if kind is str or kind is Markup:  # most values: no walk
        return len(value)  # type: ignore[arg-type]
    if kind is float or value is None:
        return 24
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif known and (hit := known.get(id(item))) is not None and hit[0] is item:
            total += hit[1]
        elif isinstance(item, list | tuple):
            total += 2 + 4 * len(item)  # brackets, then quotes and ", " per item
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif printable:
            if not (isinstance(item, float | range | Undefined) or item is None):
                raise SecurityError(f"a {type(item).__name__!r} value cannot be printed")
            total += 24
        elif isinstance(item, Namespace):  # prints as <Namespace {…its attributes…}>
            total += 13
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Cycler):
            total += 24
            stack.append(item.items)
        elif isinstance(item, KeysView | ValuesView | ItemsView | set | frozenset):
            total += 2 + 4 * len(item)
            stack.extend(item)
        else:
            total += 24
    return total


def is_lazy(value: object) -> bool:
    """A sequence made as it is read (`map`, `select`, a generator…): `sized` measures it."""
    return isinstance(value, Iterator) and not isinstance(value, LoopContext)


def sized(items: Iterator[Any], budget: Budget, what: str) -> Iterator[Any]:
    """`items` as they come, refused once what they add up to is past the limit."""
    total = 2
    for item in items:
        total += 4 + budget.size(item)
        budget.refuse_over(total, what)
        yield item


# Filters that give back (a part of) what they are given, or a number: nothing to measure.
_PASS_THROUGH: Final = frozenset(
    "abs attr count d default first float int last length max min random round wordcount".split()  # noqa: SIM905
)


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (the filter `name`) with its inputs measured, lazy inputs `sized`, and its
    result measured and charged (a lazy result is measured by whoever reads it)."""
    if name in _PASS_THROUGH:

        @wraps(func)  # also copies Jinja's `jinja_pass_arg` mark
        def timed(*args: Any, **kwargs: Any) -> Any:
            BUDGET.get().tick()
            return func(*args, **kwargs)

        return timed
    what = f"the input of |{name}"
    result_is = f"the result of |{name}"

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = BUDGET.get()
        budget.tick()
        args = tuple([_input(a, budget, what) for a in args])
        if kwargs:
            kwargs = {k: _input(a, budget, what) for k, a in kwargs.items()}
        result = func(*args, **kwargs)
        kind = type(result)
        if kind is str or kind is Markup:  # most filters: measured without a walk
            if len(result) > budget.cap:
                raise Exceeded("size", f"{result_is} is over {budget.cap} characters")
            budget.charge(len(result))
        elif kind not in _INERT and not is_lazy(result) and all(result is not a for a in args):
            budget.built_value(result, result_is)
        return result

    return guarded


# What a filter may be given or give back that holds nothing to measure.
_INERT: Final = frozenset({int, float, bool, type(None), Context, EvalContext})


def _input(value: Any, budget: Budget, what: str) -> Any:
    kind = type(value)
    if kind is str or kind is Markup:
        if len(value) > budget.cap:
            raise Exceeded("size", f"{what} is over {budget.cap} characters")
    elif kind not in _INERT:
        if is_lazy(value):
            return sized(value, budget, what)
        budget.measure(value, what)
    return value


def refuse_big_binop(budget: Budget, operator: str, left: Any, right: Any) -> int:
    """Before `left <operator> right` is computed: refuse it if its result would be over
    a limit, else charge it. Returns the size the result will have (0: a number)."""
    budget.tick()
    if operator == "**" and type(left) in (int, bool) and type(right) in (int, bool):
        if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise Exceeded("size", f"the result of ** would be over {MAX_INT_BITS} bits")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and isinstance(times, int):
                size = budget.size(seq) * max(times, 0)
                budget.refuse_over(size, "the result of *")
                budget.charge(len(seq) * max(times, 0) * (1 if isinstance(seq, str) else 4))
                return size
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Exceeded("size", f"the result of * would be over {MAX_INT_BITS} bits")
    elif operator == "%":
        size = printf_size(left, right, budget)
        budget.charge(size)
        return size
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        size = budget.size(left) + budget.size(right)
        budget.refuse_over(size, "the sum")
        budget.charge((len(left) + len(right)) * (1 if isinstance(left, str) else 4))
        return size
    return 0


def printf_size(fmt: object, args: object, budget: Budget) -> int:
    """About the size of `fmt % args`, refused past the limit before it is formatted:
    widths and precisions, and each conversion of a mapping counted at its largest value
    (`'%(a)s%(a)s…' % {'a': big}` prints `big` once per conversion)."""
    if not isinstance(fmt, str):
        return 0
    conversions, padding = _printf_shape(str(fmt))
    budget.refuse_over(padding, "% formatting padding")
    if isinstance(args, Mapping):
        largest = max(map(budget.size, args.values()), default=0)
        size = len(fmt) + padding + conversions * largest
    else:
        size = len(fmt) + padding + budget.size(args)
    budget.refuse_over(size, "the result of % formatting")
    return size


@lru_cache(maxsize=256)  # format strings are mostly constants of the template
def _printf_shape(fmt: str) -> tuple[int, int]:
    """The number of conversions in `fmt`, and the padding its widths and precisions ask
    for (a 10-digit one counts as past any limit)."""
    found = _PRINTF.findall(fmt)
    padding = 0
    for width, precision in found:
        if "*" in (width, precision):
            raise SecurityError("'*' widths are not allowed in % formatting")
        for digits in (width, precision):
            padding += int(digits) if 0 < len(digits) < 10 else (10**10 if digits else 0)
    return len(found), padding


def capped_filters(cap: int) -> dict[str, Callable[..., Any]]:
    """Jinja's filters that can multiply their input, each checked before it runs (and,
    like every filter, through `guard_filter` as well)."""

    def center(value: str, width: int = 80) -> str:
        BUDGET.get().refuse_over(width, "center width")
        return do_center(value, width)

    def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        budget = BUDGET.get()
        step = len(width) if isinstance(width, str) else width
        budget.refuse_over(step, "indent width")
        budget.refuse_over(len(soft_str(s)) + step * (soft_str(s).count("\n") + 1), "indent")
        return do_indent(s, width, first, blank)

    def format_(value: str, *args: Any, **kwargs: Any) -> str:
        printf_size(value, kwargs or args, BUDGET.get())
        return do_format(value, *args, **kwargs)

    @pass_eval_context
    def join(
        eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
    ) -> str:
        items = list(value)
        budget = BUDGET.get()
        budget.refuse_over(budget.size(items) + len(d) * len(items), "join")
        return sync_do_join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
        text, old_, new_ = soft_str(s), soft_str(old), soft_str(new)
        hits = text.count(old_) if old_ else len(text) + 1
        hits = hits if count is None or count < 0 else min(hits, count)
        BUDGET.get().refuse_over(len(text) + hits * max(0, len(new_) - len(old_)), "replace")
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
        BUDGET.get().refuse_over(len(soft_str(s)) * (1 + wrap) + wrap, "wordwrap")
        return do_wordwrap(
            eval_ctx.environment, s, width, break_long_words, wrapstring, break_on_hyphens
        )

    # Each filler counts for at least a list slot; without one, batch makes nothing new.
    def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
        if fill_with is not None:
            budget = BUDGET.get()
            budget.refuse_over(linecount * (budget.size(fill_with) + 4), "batch")
        return do_batch(value, linecount, fill_with)

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
        budget = BUDGET.get()
        budget.refuse_over(slices * (budget.size(fill_with) + 4), "slice")
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
        BUDGET.get().refuse_over(3 * len(text) + (len(text) // 2 + 1) * per_link, "urlize")
        return do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)

    def string(value: Any) -> str:
        budget = BUDGET.get()
        budget.refuse_over(budget.size(value), "string")
        return soft_str(value)

    def pprint(value: Any) -> str:
        budget = BUDGET.get()
        budget.refuse_over(budget.size(value), "pprint")
        return do_pprint(value)

    @pass_eval_context
    def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
        if (indent or 0) > _MAX_JSON_INDENT:
            raise Exceeded("size", f"the tojson indent would be over {_MAX_JSON_INDENT}")
        budget = BUDGET.get()
        budget.refuse_over(budget.size(value), "tojson")
        return do_tojson(eval_ctx, value, indent)

    # Python's sum() adds lists one by one: quadratic. Lists and tuples are chained instead.
    @pass_environment
    def sum_(
        environment: Environment,
        iterable: Iterable[Any],
        attribute: str | int | None = None,
        start: Any = 0,
    ) -> Any:
        items = list(iterable)
        if attribute is not None:
            items = list(map(make_attrgetter(environment, attribute), items))
        if isinstance(start, list | tuple) and all(type(i) is type(start) for i in items):
            budget = BUDGET.get()
            budget.refuse_over(budget.size(start) + budget.size(items), "sum")
            return type(start)(chain(start, *items))
        return sum(items, start)

    return {
        "center": center, "indent": indent, "format": format_, "join": join,
        "replace": replace, "wordwrap": wordwrap, "batch": batch, "slice": slice_,
        "urlize": urlize, "string": string, "pprint": pprint, "tojson": tojson, "sum": sum_,
    }  # fmt: skip
