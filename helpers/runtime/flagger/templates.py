"""A MetricTemplate's query rendered with Flagger's variables, as Go's text/template does.

Flagger parses ``spec.query`` as a Go template whose functions are the Canary's
variables (``render.go``, ``MetricTemplateModel``): ``{{ name }}``, ``{{ namespace }}``,
``{{ target }}``, ``{{ service }}``, ``{{ ingress }}``, ``{{ route }}``, ``{{ interval }}``
(the metric's own ``interval``, empty when it has none) and ``{{ variables.KEY }}``
(the metric's ``templateVariables``; a missing key is an error, ``missingkey=error``).

The local runtime renders that subset: single actions naming a variable, ``{{-``/``-}}``
trim markers and ``{{/* comments */}}``. What Go would refuse too (an unknown function,
an unclosed action) raises ``TemplateError`` worded as Go's; Go constructs Flagger's
templates do not need (``if``, ``range``, pipelines, arguments, literals) raise
``Unsupported``, a local limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime import regex

FUNCTIONS = ("name", "namespace", "target", "service", "ingress", "route", "interval", "variables")
_KEYWORDS = frozenset("if else end range with define template block break continue nil true false".split())
_TERM = regex.compile(r"(\.?[A-Za-z_][A-Za-z0-9_]*|\.)((\.[A-Za-z_][A-Za-z0-9_]*)*)")
_SPACE = " \t\r\n"
SUPPORTED = "{{ " + " }}, {{ ".join(FUNCTIONS[:-1]) + " }} and {{ variables.KEY }}"
_LIMIT = f"not rendered by the local runtime (it renders {SUPPORTED})"


class TemplateError(ValueError):
    """The query is not a template Go would run: Flagger fails the check with this text."""


class Unsupported(ValueError):
    """Valid Go template syntax the local runtime does not render."""


@dataclass(frozen=True)
class Model:
    """Flagger's ``MetricTemplateModel``: what the variables say for one metric."""

    name: str
    namespace: str
    target: str
    service: str
    ingress: str
    route: str
    interval: str
    variables: Mapping[str, str] = field(default_factory=dict)


def model_of(canary: Mapping[str, Any], metric: Mapping[str, Any]) -> Model:
    """The variables of ``metric`` in ``canary``, as Flagger's ``toMetricModel`` fills them."""
    meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
    target = str((spec.get("targetRef") or {}).get("name") or "")

    def named(ref: Any) -> str:
        return str(ref.get("name") or target) if isinstance(ref, Mapping) else target

    return Model(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or "default"),
        target=target,
        service=named(spec.get("service")),
        ingress=named(spec.get("ingressRef")),
        route=named(spec.get("routeRef")),
        interval=str(metric.get("interval") or ""),  # no default here: Flagger passes it as written
        variables={str(k): str(v) for k, v in (metric.get("templateVariables") or {}).items()},
    )


@dataclass(frozen=True)
class _Action:
    word: str  # a function name, or "." for the data
    fields: tuple[str, ...]
    pos: int  # where the word starts in the query (for Go's error position)


Part = str | _Action


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _column(text: str, pos: int) -> int:
    return pos - (text.rfind("\n", 0, pos) + 1)


def parse(query: str) -> list[Part]:
    """The query as text and actions; raises ``TemplateError`` or ``Unsupported``."""
    parts: list[Part] = []
    i = 0
    while True:
        start = query.find("{{", i)
        if start < 0:
            parts.append(query[i:])
            return [p for p in parts if p != ""]
        text = query[i:start]
        inner = start + 2
        if query.startswith("-", inner) and query[inner + 1 : inner + 2] in tuple(_SPACE):
            text, inner = text.rstrip(_SPACE), inner + 1
        parts.append(text)
        end = query.find("}}", inner)
        if end < 0:
            raise TemplateError(f"template: tmpl:{_line(query, start)}: unclosed action")
        body_end, i = end, end + 2
        if end - 1 >= inner and query[end - 1] == "-" and end - 2 >= inner and query[end - 2] in _SPACE:
            body_end = end - 1
            while i < len(query) and query[i] in _SPACE:
                i += 1
        action = _action(query, inner, body_end)
        if action is not None:
            parts.append(action)


def _action(query: str, begin: int, body_end: int) -> _Action | None:
    body = query[begin:body_end]
    stripped = body.strip(_SPACE)
    offset = begin + (len(body) - len(body.lstrip(_SPACE)))
    line = _line(query, offset)
    if stripped.startswith("/*"):
        if not stripped.endswith("*/"):
            raise TemplateError(f"template: tmpl:{line}: comment ends before closing delimiter")
        return None
    if not stripped:
        raise TemplateError(f"template: tmpl:{line}: missing value for command")
    words = stripped.split()
    if words[0] in _KEYWORDS:
        raise Unsupported(f"{{{{ {stripped} }}}}: Go template actions such as {words[0]} are {_LIMIT}")
    match = _TERM.fullmatch(stripped)
    if match is None:
        raise Unsupported(f"{{{{ {stripped} }}}}: pipelines, arguments, literals and variables are {_LIMIT}")
    word, chain = match.group(1), match.group(2)
    if word.startswith("."):  # the data (Flagger passes none): "." or ".Field.More"
        return _Action(".", tuple(stripped.split(".")[1:]) if word != "." else (), offset)
    if word not in FUNCTIONS:
        raise TemplateError(f'template: tmpl:{line}: function "{word}" not defined')
    return _Action(word, tuple(chain.split(".")[1:]), offset)


def _go_print(value: Any) -> str:
    if isinstance(value, Mapping):  # fmt prints a map with its keys sorted
        return "map[" + " ".join(f"{k}:{value[k]}" for k in sorted(value)) + "]"
    return str(value)


def render(query: str, model: Model) -> str:
    """The query with the variables of ``model`` filled in, as Flagger's ``RenderQuery``;
    a failure raises ``TemplateError`` with Flagger's wording ("template parsing failed:
    ...", "template excution failed: ...", its spelling). ``Unsupported`` passes through."""
    try:
        parts = parse(query)
    except TemplateError as e:
        raise TemplateError(f"template parsing failed: {e}") from None
    out = []
    for part in parts:
        out.append(part if isinstance(part, str) else _evaluate(query, part, model))
    return "".join(out)


def _evaluate(query: str, action: _Action, model: Model) -> str:
    def failed(pos: int, context: str, why: str) -> TemplateError:
        context = context if len(context) <= 20 else context[:20] + "..."
        where = f"tmpl:{_line(query, pos)}:{_column(query, pos)}"
        return TemplateError(f'template excution failed: template: {where}: executing "tmpl" at <{context}>: {why}')

    if action.word == ".":
        if not action.fields:
            return "<no value>"  # Flagger executes the template with no data
        shown = "." + ".".join(action.fields)
        raise failed(action.pos, shown, f'nil data; no entry for key "{action.fields[0]}"')
    value: Any = dict(model.variables) if action.word == "variables" else getattr(model, action.word)
    for name in action.fields:
        if isinstance(value, Mapping):
            if name not in value:
                raise failed(action.pos, action.word, f'map has no entry for key "{name}"')
            value = value[name]
        else:
            raise failed(action.pos, action.word, f"can't evaluate field {name} in type string")
    return _go_print(value)
