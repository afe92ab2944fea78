"""What a Canary with ``provider: gatewayapi:v1`` may say (Flagger's CRD, 1.44).

``variant`` derives this Canary schema from the gloo one (``flagger.schema``):
``spec.service`` gains the fields Flagger's Gateway API router reads
(``gatewayRefs``, required; ``hosts``, ``match``, ``timeout``, ``backendTimeout``,
``headers``, ``rewrite``, ``mirror``, ``corsPolicy``) and ``analysis.match`` uses
header and query matches. What the router cannot say is refused, as it would stop
the Canary on a cluster ("Gateway API doesn't support the specified ... matching
selector"): header matches by prefix or suffix, method matches other than exact.
``check_route`` then checks the HTTPRoute the router would write against the
Gateway API CRDs (``gatewayapi.schema``), so a bad hostname or timeout is refused at
apply instead of failing every tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime.flagger import httproutes
from helpers.runtime.gatewayapi import schema as gatewayapi_schema
from helpers.runtime.schema import (
    BOOL,
    STR,
    Anything,
    Found,
    Ignored,
    ListOf,
    MapOf,
    Obj,
    Scalar,
    at,
    compile_regex,
    one_of,
)

_UNUSED = "not used by Flagger's gatewayapi router; ignored (on a cluster too)"
_LOCAL = "not supported by the local runtime; ignored"


def _string_match(kinds: tuple[str, ...], refused: str) -> Obj:
    """An Istio-style string match of which the router reads only ``kinds``."""

    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        for how in ("exact", "prefix", "suffix", "regex"):
            if how in value and how not in kinds:
                found.error(at(path, how), refused)
        if isinstance(value.get("regex"), str):
            compile_regex(value["regex"], at(path, "regex"), found)

    return Obj(
        {"exact": STR, "prefix": STR, "suffix": STR, "regex": STR},
        rules=(one_of(("exact", "prefix", "suffix", "regex"), "needs one of exact, prefix or regex"), rule),
    )


_HEADER = _string_match(
    ("exact", "regex"),
    "Flagger's gatewayapi router matches headers by exact or regex only (on a cluster the Canary stops with "
    '"Gateway API doesn\'t support the specified header matching selector")',
)
_QUERY = _string_match(
    ("exact", "regex"),
    "Flagger's gatewayapi router matches query parameters by exact or regex only",
)
_METHOD = _string_match(("exact",), "Flagger's gatewayapi router matches a method by exact only")
_URI = _string_match(("exact", "prefix", "regex"), "a path matches by exact, prefix or regex")


def _match(analysis: bool) -> ListOf:
    """``service.match`` (every field the router reads) or ``analysis.match`` (A/B:
    only the headers and query parameters go into the route)."""
    dropped = Ignored("A/B routing uses only headers and queryParams (Flagger drops the rest; on a cluster too)")
    fields: dict[str, Any] = {
        "headers": MapOf(_HEADER),
        "queryParams": MapOf(_QUERY),
        "uri": dropped if analysis else _URI,
        "method": dropped if analysis else _METHOD,
    }
    for name in "name scheme authority port sourceLabels sourceNamespace withoutHeaders ignoreUriCase".split():
        fields[name] = Ignored(_UNUSED)
    return ListOf(Obj(fields))


def _headers() -> Obj:
    ops = Obj({"add": MapOf(STR), "set": MapOf(STR), "remove": ListOf(STR)})
    return Obj({"request": ops, "response": ops})


_GATEWAY_REF = Obj(
    {
        "group": STR,
        "kind": STR,
        "name": STR,
        "namespace": STR,
        "sectionName": STR,
        "port": Scalar("int", 1, 65535),
    },
    required=("name",),
)
_SERVICE_FIELDS: dict[str, Any] = {
    "gatewayRefs": ListOf(_GATEWAY_REF),
    "hosts": ListOf(STR),
    "match": _match(analysis=False),
    "timeout": STR,
    "backendTimeout": STR,
    "headers": _headers(),
    "rewrite": Obj({"uri": STR, "authority": STR, "type": STR}),
    "mirror": ListOf(Obj({"backendRef": Anything()}, required=("backendRef",))),
    "corsPolicy": Obj(
        {
            "allowOrigin": ListOf(STR),
            "allowOrigins": Ignored(
                "Flagger's gatewayapi router reads allowOrigin (plain origins), not allowOrigins; ignored"
            ),
            "allowMethods": ListOf(STR),
            "allowHeaders": ListOf(STR),
            "exposeHeaders": ListOf(STR),
            "allowCredentials": BOOL,
            "maxAge": STR,
        }
    ),
    **{f: Ignored(_UNUSED) for f in "retries gateways meshName backends delegation trafficPolicy".split()},
}


def _gateway_refs(value: Mapping[str, Any], path: str, found: Found) -> None:
    refs = value.get("gatewayRefs")
    if not refs:
        found.error(
            at(path, "gatewayRefs"),
            "required with provider gatewayapi:v1: the Gateways the HTTPRoute Flagger makes attaches to, "
            "e.g. [{name: http, namespace: kgateway-system}] (Flagger: GatewayRefs must be specified when "
            "using Gateway API as a provider.)",
        )
    elif isinstance(refs, list) and len(refs) > 32:
        found.error(at(path, "gatewayRefs"), f"at most 32 Gateways, got {len(refs)}")


def variant(canary: Obj) -> Obj:
    """The Canary schema for ``gatewayapi:v1``, from the gloo one (``canary``)."""
    spec = canary.fields["spec"]
    assert isinstance(spec, Obj)
    service, analysis = spec.fields["service"], spec.fields["analysis"]
    assert isinstance(service, Obj) and isinstance(analysis, Obj)
    new_service = Obj(
        {**service.fields, **_SERVICE_FIELDS},
        required=service.required,
        rules=(*service.rules, _gateway_refs),
        hints=service.hints,
    )
    new_analysis = Obj(
        {
            **analysis.fields,
            "match": _match(analysis=True),
            **{f: Ignored(_LOCAL) for f in ("mirror", "mirrorWeight", "sessionAffinity")},
        },
        required=analysis.required,
        rules=analysis.rules,
        hints=analysis.hints,
    )
    new_spec = Obj(
        {**spec.fields, "service": new_service, "analysis": new_analysis},
        required=spec.required,
        rules=spec.rules,
        hints=spec.hints,
    )
    return Obj({**canary.fields, "spec": new_spec}, required=canary.required, rules=canary.rules, hints=canary.hints)


def check_route(canary: Mapping[str, Any], found: Found) -> None:
    """Refuse a Canary whose HTTPRoute the Gateway API CRDs (standard channel) would refuse."""
    meta = canary.get("metadata") or {}
    named = {
        **canary,
        "metadata": {"name": meta.get("name") or "canary", "namespace": meta.get("namespace") or "default"},
    }
    try:
        route = httproutes.http_route(named, 100, 0)
    except httproutes.MatchError as e:
        found.error("spec.service.match", str(e))
        return
    for problem in gatewayapi_schema.validate(route, "standard"):
        found.error("spec.service", f"the HTTPRoute Flagger would make is refused by the Gateway API: {problem}")
