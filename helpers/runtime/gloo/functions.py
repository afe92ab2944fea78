"""REST functions, as Gloo's function discovery finds them in a Swagger spec.

Discovery turns each operation of ``/swagger.json`` into a *transformation*: the
``:method`` and ``:path`` (and optionally a body) to send upstream, written as inja
templates such as ``/api/pets/{{ default(id, "") }}``. A route that calls the
function names its parameters with header templates such as
``':path': /findPetWithId/{id}``; the proxy extracts ``id`` from the request and
renders the templates (``templating``). This module reads the transformations
from a Swagger spec and turns one into the proxy's ``RestFunction``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime.routes import RestFunction
from helpers.runtime.templating import PARAM


def _swagger_path_template(base: str, path: str, query: list[str]) -> str:
    rendered = PARAM.sub(lambda m: f'{{{{ default({m.group(1)}, "") }}}}', base.rstrip("/") + path)
    if query:
        rendered += "?" + "&".join(f'{q}={{{{default({q}, "")}}}}' for q in query)
    return rendered


def transformations_from_swagger(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Gloo-shaped ``serviceSpec.rest.transformations`` for every operation with an
    ``operationId`` in a Swagger 2.0 document."""
    base = str(spec.get("basePath") or "")
    found: dict[str, dict[str, Any]] = {}
    for path, operations in (spec.get("paths") or {}).items():
        if not isinstance(operations, Mapping):
            continue
        for method, op in operations.items():
            if not isinstance(op, Mapping) or "operationId" not in op:
                continue
            params = [p for p in op.get("parameters") or [] if isinstance(p, Mapping)]
            query = [str(p["name"]) for p in params if p.get("in") == "query" and "name" in p]
            headers: dict[str, Any] = {
                ":method": {"text": method.upper()},
                ":path": {"text": _swagger_path_template(base, path, query)},
                "content-type": {"text": "application/json"},
            }
            transformation: dict[str, Any] = {"headers": headers}
            if not any(p.get("in") == "body" for p in params):
                headers["content-length"] = {"text": "0"}
                headers["content-type"] = {}
                headers["transfer-encoding"] = {}
                transformation["body"] = {}
            found[str(op["operationId"])] = transformation
    return dict(sorted(found.items()))


def function_from_transformation(name: str, transformation: Mapping[str, Any]) -> RestFunction:
    """The proxy's view of one transformation: header templates and an optional body.

    An empty header template (``content-type: {}``) removes that header; an empty
    ``body: {}`` sends no body; no ``body`` key passes the request body through.
    """
    headers = tuple(
        (str(h).lower(), str((v or {}).get("text", ""))) for h, v in (transformation.get("headers") or {}).items()
    )
    body: str | None = None
    if "body" in transformation:
        body = str((transformation.get("body") or {}).get("text", ""))
    return RestFunction(name=name, headers=headers, body=body)
