"""The templates REST function calls are made of, as Gloo writes them.

Discovery writes a function's ``:path`` as an inja template such as
``/api/pets/{{ default(id, "") }}``; a route that calls it names its parameters with
a template such as ``/findPetWithId/{id}``. ``compile_parameter`` turns the latter
into a pattern (at translation), ``render`` fills the former (in the proxy, per
request). Pure functions, shared by the Gloo translator and the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping

from helpers.runtime import regex

_PLACEHOLDER = regex.compile(r"\{\{\s*(?:default\(\s*([A-Za-z_][\w]*)\s*,\s*\"([^\"]*)\"\s*\)|([A-Za-z_][\w]*))\s*\}\}")
PARAM = regex.compile(r"\{([A-Za-z_][\w]*)\}")
# Gloo's extractor accepts these characters in a path parameter.
_PARAM_VALUE = r"[-._~%!$&'()*+,;=:@\w]+"


def render(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` and ``{{ default(name, "x") }}`` from ``variables``."""

    def fill(m: regex.Match) -> str:
        name = m.group(1) or m.group(3)
        fallback = m.group(2) if m.group(1) else ""
        value = variables.get(name)
        return fallback if value is None or value == "" else str(value)

    return _PLACEHOLDER.sub(fill, template)


def compile_parameter(template: str) -> regex.Pattern:
    """Compile a route parameter template (``/findPetWithId/{id}``) into an RE2
    pattern whose named groups are the parameters. Raises ``regex.RegexError`` on a
    bad template."""
    parts, last = [], 0
    names: set[str] = set()
    for m in PARAM.finditer(template):
        if m.group(1) in names:
            raise regex.RegexError(f"parameter {{{m.group(1)}}} appears twice")
        names.add(m.group(1))
        parts.append(regex.escape(template[last : m.start()]))
        parts.append(f"(?P<{m.group(1)}>{_PARAM_VALUE})")
        last = m.end()
    parts.append(regex.escape(template[last:]))
    return regex.user_pattern("".join(parts))
