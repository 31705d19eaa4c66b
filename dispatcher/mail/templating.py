"""The template sandbox: what a settings template may do, and how long and how much.

Jinja2's sandbox stops access to Python internals but not a template that loops
for an hour or doubles a string until memory runs out. This module adds those
bounds: every loop, call, attribute access, filter and growing operator spends
from a per-render budget of steps, time and characters, and the few operations
that can allocate a lot in one step are checked before they run.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import Context, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from dispatcher.domain.events import Variable
from dispatcher.domain.textsafety import first_forbidden
from dispatcher.errors import TemplateProblem

# Limits of one render. An e-mail body of 100,000 characters is already far
# beyond anything a person reads; the time limit keeps one hostile template
# from holding a worker.
MAX_OUTPUT_CHARS = 100_000
MAX_VALUE_CHARS = 100_000
MAX_STEPS = 200_000
MAX_SECONDS = 1.0
MAX_RANGE = 10_000
MAX_WIDTH = 1_000
MAX_POWER_BITS = 4_096

TOO_DEEP = (
    "the template nests too deeply (brackets, expressions or blocks inside each other); flatten it"
)

_LOOP_GUARD = "_bounded_iter"
_CONCAT_GUARD = "_bounded_concat"
_LOCALE: contextvars.ContextVar[str] = contextvars.ContextVar("template_locale", default="de")
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)

# Filters a portal text may use. Left out on purpose: the ones that reach
# attributes by a string name (attr, map, select..., groupby, dictsort), whose
# history holds sandbox escapes, and the ones an e-mail text has no use for.
ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "d", "default", "e", "escape", "first",
        "float", "format", "indent", "int", "join", "last", "length", "list", "lower",
        "max", "min", "replace", "reverse", "round", "sort", "string", "striptags", "sum",
        "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap",
    }
)  # fmt: skip
# Globals a template may call; both are bounded versions of Jinja's own.
ALLOWED_GLOBALS = frozenset({"range", "namespace"})

# Widths or precisions of four digits, "*" widths, and replacement fields
# nested inside a format spec (whose width would come from an argument).
_FORMAT_WIDTH = re.compile(
    r"%[-#0 +]*(?:\d*\.)?(?:\d{4,}|\*)|\{[^{}]*:[^{}]*?\d{4,}|\{[^{}]*:[^{}]*\{"
)


class TemplateLimitExceeded(SecurityError):
    """A render went over its budget of steps, time or characters."""


class _Budget:
    __slots__ = ("deadline", "steps")

    def __init__(self, seconds: float) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + seconds

    def tick(self, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > MAX_STEPS:
            raise TemplateLimitExceeded(f"the template takes more than {MAX_STEPS} steps")
        # Reading the clock on every step would cost more than the steps.
        if self.steps & 0xFF == 0 and time.monotonic() > self.deadline:
            raise TemplateLimitExceeded("the template takes too long to render")


def _tick(cost: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick(cost)


def _check_size(value: Any, what: str = "a value") -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE_CHARS:
        raise TemplateLimitExceeded(f"{what} grows beyond {MAX_VALUE_CHARS} characters")
    return value


def _check_width(width: Any) -> None:
    if isinstance(width, int) and abs(width) > MAX_WIDTH:
        raise TemplateLimitExceeded(f"a width of {width} is above the limit of {MAX_WIDTH}")


def _check_format_string(fmt: Any) -> None:
    if isinstance(fmt, str) and _FORMAT_WIDTH.search(fmt):
        raise TemplateLimitExceeded(
            f"format widths and precisions above {MAX_WIDTH - 1} are not allowed"
        )


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    for count, item in enumerate(iterable):
        if count >= MAX_RANGE:
            raise TemplateLimitExceeded(f"a loop runs more than {MAX_RANGE} times")
        _tick()
        yield item


def _bounded_concat(*parts: Any) -> Any:
    _tick()
    if sum(len(str(part)) for part in parts) > MAX_VALUE_CHARS:
        raise TemplateLimitExceeded(f"a text grows beyond {MAX_VALUE_CHARS} characters")
    return markup_join(parts)


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateLimitExceeded(f"range() is limited to {MAX_RANGE} items")
    return result


# German as it always was (the built-in German texts read so); every other
# language by Babel, in the CLDR medium date and short time of the locale.
_GERMAN_DATE = "dd.MM.yyyy"
_GERMAN_DATETIME = "dd.MM.yyyy, HH:mm 'Uhr'"


@functools.lru_cache(maxsize=256)
def _babel_locale(tag: str) -> Locale:
    """The Babel locale of a BCP 47 tag, or of its language, else English."""
    parts = tag.replace("_", "-").split("-")
    for end in range(len(parts), 0, -1):
        try:
            return Locale.parse("_".join(parts[:end]))
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def _format_datetime(value: Any, style: str = "long") -> str:
    """Format an RFC 3339 timestamp for the language of the e-mail.

    The time is shown as the timestamp gives it, with its offset from UTC;
    it is never converted to the server's time zone.
    """
    if value is None:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.strftime("%z")
    zone = "UTC" if offset in {"+0000", ""} else f"UTC{offset[:3]}:{offset[3:]}"
    locale = _babel_locale(_LOCALE.get())
    if locale.language == "de":
        pattern = _GERMAN_DATE if style == "date" else _GERMAN_DATETIME
        text = babel_dates.format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=locale)
    elif style == "date":
        text = babel_dates.format_date(moment, "medium", locale=locale)
    else:
        date = babel_dates.format_date(moment, "medium", locale=locale)
        time_ = babel_dates.format_time(moment, "short", tzinfo=moment.tzinfo, locale=locale)
        text = str(locale.datetime_formats["medium"]).replace("{1}", date).replace("{0}", time_)
    return text if style == "date" else f"{text} ({zone})"


def _precheck_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    value = args[0] if args else None
    rest = args[1:]
    if name in {"center", "wordwrap", "truncate"}:
        _check_width(rest[0] if rest else kwargs.get("width", kwargs.get("length")))
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        _check_width(width)
        if isinstance(width, int) and isinstance(value, str):
            if (value.count("\n") + 1) * abs(width) + len(value) > MAX_VALUE_CHARS:
                raise TemplateLimitExceeded("indent would grow the text beyond the limit")
    elif name == "format":
        _check_format_string(value)
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        old, new = str(rest[0]), str(rest[1])
        hits = value.count(old) if old else len(value) + 1
        if len(value) + hits * len(new) > MAX_VALUE_CHARS:
            raise TemplateLimitExceeded("replace would grow the text beyond the limit")
    elif name == "join" and isinstance(value, list | tuple):
        sep = str(rest[0]) if rest else str(kwargs.get("d", ""))
        if sum(len(str(v)) for v in value) + len(sep) * len(value) > MAX_VALUE_CHARS:
            raise TemplateLimitExceeded("join would grow the text beyond the limit")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    wants = _PassArg.from_obj(func)

    # Marked pass_context so that Jinja's optimizer never runs a filter at
    # compile time, outside any budget and with the wrong language.
    @pass_context
    @functools.wraps(func)
    def bounded(context: Context, *args: Any, **kwargs: Any) -> Any:
        _tick()
        _precheck_filter(name, args, kwargs)
        if wants is _PassArg.context:
            result = func(context, *args, **kwargs)
        elif wants is _PassArg.eval_context:
            result = func(context.eval_ctx, *args, **kwargs)
        elif wants is _PassArg.environment:
            result = func(context.environment, *args, **kwargs)
        else:
            result = func(*args, **kwargs)
        return _check_size(result, f"the {name} filter's result")

    return bounded


def _precheck_binop(operator_: str, left: Any, right: Any) -> None:
    sized = (str, list, tuple)
    if operator_ == "*":
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(seq, sized)
                and isinstance(times, int)
                and len(seq) * times > MAX_VALUE_CHARS
            ):
                raise TemplateLimitExceeded("a repetition grows beyond the limit")
    elif operator_ == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(abs(left).bit_length(), 1) * right > MAX_POWER_BITS:
                raise TemplateLimitExceeded("a power is too large")
    elif operator_ == "%" and isinstance(left, str):
        _check_format_string(left)
    elif operator_ == "+" and isinstance(left, sized) and isinstance(right, sized):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            raise TemplateLimitExceeded("a text grows beyond the limit")


_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _GuardInserter(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name(_LOOP_GUARD, "load"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.Name(_CONCAT_GUARD, "load"), node.nodes, [], None, None, lineno=node.lineno
        )


_PRINTABLE = (str, int, float, bool, type(None))


def _printable(value: Any) -> Any:
    """Refuse to print anything but plain values: no functions, types or objects.

    Printing a method shows its repr ("<built-in method ... at 0x...>"), which
    is Python internals in an e-mail; a template must call it or leave it.
    """
    if isinstance(value, (*_PRINTABLE, Undefined)):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _printable(item)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            _printable(key)
            _printable(item)
        return value
    raise SecurityError(f"cannot print a {type(value).__name__}; print a text or number instead")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox with strict undefined names and bounded work."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, html: bool = False) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=html,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_printable,
        )
        self.filters = {
            name: _bounded_filter(name, DEFAULT_FILTERS[name]) for name in ALLOWED_FILTERS
        }
        self.filters["datetime"] = _bounded_filter("datetime", _format_datetime)
        self.tests = dict(self.tests)
        self.globals = {
            "range": _bounded_range,
            "namespace": self.globals["namespace"],
            _LOOP_GUARD: _bounded_iter,
            _CONCAT_GUARD: _bounded_concat,
        }

    # Loops and "~" concatenation are not routed through the sandbox, so the
    # parsed tree is rewritten to pass them through guards.
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        result = _GuardInserter().visit(tree)
        assert isinstance(result, nodes.Template)
        return result

    def parse_source(self, source: str) -> nodes.Template:
        """Parse without the guards, for static checks of what the author wrote."""
        return ImmutableSandboxedEnvironment._parse(self, source, None, None)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _tick()
        _precheck_binop(operator_, left, right)
        return self.binop_table[operator_](left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _STR_WIDTH_METHODS and args:
                _check_width(args[0])
            elif name == "join" and args:
                _precheck_filter("join", (list(args[0]), owner), {})
            elif name == "replace" and len(args) >= 2:
                _precheck_filter("replace", (owner, *args[:2]), {})
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__)
        return wrapped

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)


TEXT_ENV = BoundedEnvironment(html=False)
HTML_ENV = BoundedEnvironment(html=True)


@functools.lru_cache(maxsize=2048)
def compile_text(source: str) -> Any:
    """Compile once per distinct source; settings versions share their texts."""
    try:
        return TEXT_ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from None
    except RecursionError:
        raise TemplateProblem(TOO_DEEP) from None
    except SyntaxError as exc:
        # Jinja2 parsed it, but Python cannot compile the code made from it:
        # blocks nested beyond Python's limit ("too many levels of indentation").
        raise TemplateProblem(f"{TOO_DEEP} ({exc.msg})") from None


def render(
    template: Any,
    context: Mapping[str, Any],
    *,
    locale: str = "de",
    max_chars: int = MAX_OUTPUT_CHARS,
    seconds: float = MAX_SECONDS,
) -> str:
    """Render within the limits; raise ``TemplateProblem`` with the reason."""
    budget_token = _BUDGET.set(_Budget(seconds))
    locale_token = _LOCALE.set(locale)
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > max_chars:
                raise TemplateLimitExceeded(f"the output grows beyond {max_chars} characters")
            parts.append(chunk)
    except UndefinedError as exc:
        raise TemplateProblem(f"uses a value the event does not have: {exc.message}") from None
    except TemplateLimitExceeded as exc:
        raise TemplateProblem(str(exc)) from None
    except SecurityError as exc:
        raise TemplateProblem(f"refused by the sandbox: {exc}") from None
    except RecursionError:
        raise TemplateProblem("the template recurses too deeply") from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise TemplateProblem(f"fails to render: {exc}") from None
    finally:
        _BUDGET.reset(budget_token)
        _LOCALE.reset(locale_token)
    output = "".join(parts)
    # The source was checked for such characters, but an escape in a string
    # ('\x07', '\ud800') makes them at render time. A lone surrogate cannot
    # even be encoded as UTF-8; a control character could end up in a header.
    bad = first_forbidden(output, allow_newlines=True)
    if bad:
        raise TemplateProblem(
            f"prints the invisible or control character {bad}; a text may print visible "
            "characters, line breaks and tabs only"
        )
    return output


def render_text(source: str, context: Mapping[str, Any], *, locale: str = "de") -> str:
    return render(compile_text(source), context, locale=locale)


@dataclass(frozen=True)
class Finding:
    """One static problem in a template, with its line when known."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def check_source(source: str, variables: Mapping[str, Variable], what: str) -> list[Finding]:
    """Statically check a template against the names its e-mail offers.

    ``what`` names the e-mail in messages ("a password-reset e-mail").
    """
    findings: list[Finding] = []
    try:
        tree = TEXT_ENV.parse_source(source)
        local_names = _assigned_names(tree)
        for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Filter)):
            findings.extend(_check_node(node, variables, local_names, what))
    except TemplateSyntaxError as exc:
        return [Finding(f"syntax error: {exc.message}", exc.lineno)]
    except RecursionError:
        # Jinja2's parser and tree walk recurse: some 70 brackets inside
        # each other exhaust Python's stack.
        return [Finding(TOO_DEEP)]
    if not findings:
        try:
            compile_text(source)
        except TemplateProblem as exc:
            findings.append(Finding(exc.detail, exc.line))
    return _dedupe(findings)


def _assigned_names(tree: nodes.Template) -> set[str]:
    names: set[str] = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx in {"store", "param"}:
            names.add(node.name)
    for macro in tree.find_all(nodes.Macro):
        names.add(macro.name)
    if any(True for _ in tree.find_all(nodes.CallBlock)):
        names.add("caller")
    names.add("loop")
    return names


def _check_node(
    node: nodes.Node, variables: Mapping[str, Variable], local_names: set[str], what: str
) -> Iterable[Finding]:
    line = node.lineno
    if isinstance(node, nodes.Name):
        if node.name.startswith("_"):
            yield Finding(f"names starting with '_' are not allowed ({node.name})", line)
        elif (
            node.ctx == "load"
            and node.name not in variables
            and node.name not in local_names
            and node.name not in ALLOWED_GLOBALS
        ):
            offered = ", ".join(sorted(variables))
            yield Finding(
                f"{{{{ {node.name} }}}} is not offered by {what}; use one of: {offered}", line
            )
        return
    if isinstance(node, nodes.Filter):
        if node.name not in TEXT_ENV.filters:
            allowed = ", ".join(sorted(TEXT_ENV.filters))
            yield Finding(f"the filter {node.name!r} is not available; use one of: {allowed}", line)
        return
    key = _static_key(node)
    if key is not None and key.startswith("_"):
        yield Finding(f"attributes starting with '_' are not allowed ({key})", line)
        return
    path = _static_path(node)
    if path is None or path[0] in local_names or path[0] not in variables:
        return
    spec = variables[path[0]]
    for depth, part in enumerate(path[1:], start=1):
        children = spec.fields
        if children is None or part not in children:
            # Plain values may use string methods such as .upper(); only
            # records with named parts can have a mistyped part.
            if children is not None:
                dotted = ".".join(path[: depth + 1])
                yield Finding(
                    f"{{{{ {dotted} }}}} does not exist; {'.'.join(path[:depth])} has: "
                    f"{', '.join(children)}",
                    line,
                )
            return
        spec = children[part]


def _static_key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        value = node.arg.value
        return value if isinstance(value, str) else None
    return None


def _static_path(node: nodes.Node) -> list[str] | None:
    """``contact.name`` or ``contact["name"]`` as ["contact", "name"], else None."""
    path: list[str] = []
    current: nodes.Node = node
    while isinstance(current, nodes.Getattr | nodes.Getitem):
        key = _static_key(current)
        if key is None:
            return None
        path.append(key)
        current = current.node
    if not isinstance(current, nodes.Name):
        return None
    path.append(current.name)
    path.reverse()
    return path


def _dedupe(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


__all__ = [
    "HTML_ENV",
    "MAX_OUTPUT_CHARS",
    "TEXT_ENV",
    "Finding",
    "TemplateLimitExceeded",
    "check_source",
    "compile_text",
    "render",
    "render_text",
]
