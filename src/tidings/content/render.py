"""Render org-written (untrusted) templates, sandboxed and capped, fast enough for millions.

    renderer = Renderer(Limits())                    # once per process: builds 4 environments
    compiled = renderer.compile(source, field="html", html=True)   # once per template part
    renderer.render(compiled, context, strict=False)               # once per recipient

`compile` parses the source once per undefined-mode, rewrites the syntax tree so loops,
`~` and computed literals report to the per-render budget, and refuses `include`,
`import` and `extends`. `render` checks the context is plain data (else TypeError: the
caller's bug, not the template's), then streams `Template.generate` and stops at the
first chunk past the output or time limit, or wherever the sandbox finds a limit passed.
Whatever goes wrong in the template is a `TemplateError`.

Most campaign templates only substitute values (`{{ first_name }}`,
`{{ contact.attributes.plan }}`). `compile` spots those from the syntax tree and keeps a
plan of their pieces; at send time (`strict=False`) such a template is rendered from the
plan by dictionary lookups in the (plain-data) context, without running template code,
and exactly as the sandbox would render it. Any value the plan cannot print (a
container, a method) and any other template (a filter, a tag, a call) goes through the
sandbox. `render_parts` renders a message's parts with one context check.

What bounds a render (`Limits`), and how, is in `budget.py`: time, the size of every
value the template builds (strings, lists, dicts, the inputs and results of filters and
methods), all it builds together, its output and its loops. The sandbox that applies those
checks is `sandbox.py`. A render stopped by a limit raises `OverBudget` (a TemplateError)
and counts in `tidings_render_budget_refusals_total{kind}`. A render is bounded; it is
not preemptible: callers on an event loop run it in a thread (`render_off_loop`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, cast

from jinja2 import Template, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from tidings import metrics
from tidings.content.budget import BUDGET, Budget, Exceeded, Limits
from tidings.content.sandbox import GuardRewriter, Lenient, MissingName, Sandbox, Strict

__all__ = ["Compiled", "Limits", "OverBudget", "Renderer", "TemplateError", "UndefinedVariable"]


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


class OverBudget(TemplateError):
    """A render stopped by its `Limits`; `kind` says which (time, size, memory, loops,
    output). Whatever the contact, the same template is likely to stop again. `seconds`:
    the rendering thread's CPU time the render ran before it was stopped."""

    def __init__(self, field: str, reason: str, kind: str, seconds: float = 0.0) -> None:
        super().__init__(field, reason)
        self.kind = kind
        self.seconds = seconds


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

    @property
    def substitution_only(self) -> bool:
        """Rendered at send time by lookups alone: no template code runs, so its cost is
        that of the values it prints."""
        return self._plan is not None


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_LOADING_TAGS: Final = {nodes.Extends: "extends", nodes.Include: "include",
                        nodes.Import: "import", nodes.FromImport: "import"}  # fmt: skip


class Renderer:
    """Compiles and renders template parts under one set of `Limits`. Build it once: it
    holds the four environments (autoescape on/off × strict/lenient undefined). Thread-safe:
    a render's state lives in a ContextVar, compiled templates are never mutated."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._envs = {
            (html, strict): Sandbox(
                limits, autoescape=html, undefined=Strict if strict else Lenient
            )
            for html in (False, True)
            for strict in (False, True)
        }

    def compile(self, source: str, *, field: str, html: bool) -> Compiled:
        """Compile `source` for both modes. `html=True` escapes what it prints (the HTML
        part); `html=False` is for subject, text and SMS. Raises TemplateError for a source
        over `max_source_chars`, a syntax error (with its line), an unknown filter or test,
        or an `include`, `import` or `extends` (templates are self-contained)."""
        if len(source) > self.limits.max_source_chars:
            reason = f"is {len(source)} characters; the limit is {self.limits.max_source_chars}"
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

    def _compile(self, source: str, field: str, env: Sandbox) -> Template:
        try:
            tree = env.parse(source)
            for kind, tag in _LOADING_TAGS.items():
                if (node := next(tree.find_all(kind), None)) is not None:
                    raise TemplateError(field, f"line {node.lineno}: {{% {tag} %}} is not allowed")
            guarded: nodes.Template = GuardRewriter().visit(tree)
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
            text = _substitute(template._plan, context, template.html, self.limits)
            if text is not None:
                return text
        limits = self.limits
        budget = Budget(limits)
        token = BUDGET.set(budget)
        jinja_template = template._strict if strict else template._lenient
        stream = cast(Generator[str, None, None], jinja_template.generate(context))
        parts: list[str] = []
        size = 0
        try:
            for chunk in stream:
                size += len(chunk)
                if size > limits.max_output_chars:
                    raise Exceeded("output", f"output over {limits.max_output_chars} characters")
                budget.tick()
                parts.append(chunk)
        except Exception as exc:  # the template is untrusted: whatever it raised is its fault
            error = _template_error(template.field, exc)
            if isinstance(error, OverBudget):
                error.seconds = budget.spent()
            raise error from exc
        finally:
            stream.close()
            BUDGET.reset(token)
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
    if isinstance(exc, MissingName):
        return UndefinedVariable(field, f"{where}{exc.message}", exc.name)
    if isinstance(exc, Exceeded):
        metrics.RENDER_BUDGET_REFUSALS.labels(exc.kind).inc()
        return OverBudget(field, f"{where}{exc}", exc.kind)
    if isinstance(exc, SecurityError | UndefinedError):
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
