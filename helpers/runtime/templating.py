"""The templates REST function calls are made of, as Gloo writes them.

Discovery writes a function's ``:path`` as an inja template such as
``/api/pets/{{ default(id, "") }}``; a route that calls it names its parameters with
a template such as ``/findPetWithId/{id}``. ``compile_parameter`` turns the latter
into a pattern (at translation), ``render`` fills the former (in the proxy, per
request). Pure functions, shared by the Gloo translator and the proxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{\s*(?:default\(\s*([A-Za-z_][\w]*)\s*,\s*\"([^\"]*)\"\s*\)|([A-Za-z_][\w]*))\s*\}\}")
PARAM = re.compile(r"\{([A-Za-z_][\w]*)\}")
# Gloo's extractor accepts these characters in a path parameter.
_PARAM_VALUE = r"[-._~%!$&'()*+,;=:@\w]+"


def render(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` and ``{{ default(name, "x") }}`` from ``variables``."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        fallback = m.group(2) if m.group(1) else ""
        value = variables.get(name)
        return fallback if value is None or value == "" else str(value)

    return _PLACEHOLDER.sub(fill, template)


def compile_parameter(template: str) -> re.Pattern[str]:
    """Compile a route parameter template (``/findPetWithId/{id}``) into a pattern
    whose named groups are the parameters. Raises ``re.error`` on a bad template."""
    parts, last = [], 0
    names: set[str] = set()
    for m in PARAM.finditer(template):
        if m.group(1) in names:
            raise re.error(f"parameter {{{m.group(1)}}} appears twice")
        names.add(m.group(1))
        parts.append(re.escape(template[last : m.start()]))
        parts.append(f"(?P<{m.group(1)}>{_PARAM_VALUE})")
        last = m.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))
