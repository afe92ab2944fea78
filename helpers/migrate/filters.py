"""Migration help, the filters: what a Gloo route's options become on an HTTPRoute rule.

``headerManipulation`` becomes RequestHeaderModifier/ResponseHeaderModifier filters,
``redirectAction`` a RequestRedirect filter, ``timeout`` and ``retries`` the rule's
``timeouts`` and ``retry``. ``Filters`` is that part of the converter (``converting``),
mixed in like ``destinations.Destinations``; each option with no faithful equivalent
gets a warning. HTTPRoute ``retry`` is in the Gateway API's experimental channel only:
retries are converted for a cluster that has it (``channel="experimental"``), else
left out with a warning that says how to get it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_RETRY_CODES = {"5xx": [500, 502, 503, 504], "gateway-error": [502, 503, 504]}
CHANNELS = ("standard", "experimental")  # the Gateway API's release channels
_NEEDS_EXPERIMENTAL = (
    "HTTPRoute retry is in the Gateway API's experimental channel, which a cluster with the standard CRDs "
    "(kgateway's default) refuses; left out: convert with `--channel experimental` for a cluster that has it "
    "(`coalmine install kgateway --channel experimental`)"
)


class Filters:
    """Mixed into the converter: it provides ``warn`` and ``channel``."""

    channel = "standard"

    def warn(self, path: str, message: str) -> None:
        raise NotImplementedError

    def header_filters(
        self, route_ops: Mapping[str, Any] | None, vh_ops: Mapping[str, Any] | None, path: str
    ) -> list[dict[str, Any]]:
        filters = []
        for side, field_prefix in (("RequestHeaderModifier", "request"), ("ResponseHeaderModifier", "response")):
            spec: dict[str, list[Any]] = {}
            seen: set[str] = set()
            for ops in (route_ops or {}, vh_ops or {}):
                for h in ops.get(f"{field_prefix}HeadersToAdd") or []:
                    header = h["header"]
                    if header["key"].lower() in seen:
                        continue
                    seen.add(header["key"].lower())
                    spec.setdefault("add" if h.get("append") is not False else "set", []).append(
                        {"name": header["key"], "value": header.get("value") or ""}
                    )
                for name in ops.get(f"{field_prefix}HeadersToRemove") or []:
                    if name.lower() not in seen:
                        seen.add(name.lower())
                        spec.setdefault("remove", []).append(name)
            if spec:
                filters.append({"type": side, side[0].lower() + side[1:]: spec})
        return filters

    def redirect(self, r: Mapping[str, Any], path: str) -> dict[str, Any]:
        codes = {
            "MOVED_PERMANENTLY": 301,
            "FOUND": 302,
            "SEE_OTHER": 303,
            "TEMPORARY_REDIRECT": 307,
            "PERMANENT_REDIRECT": 308,
        }
        out: dict[str, Any] = {"statusCode": codes.get(r.get("responseCode") or "MOVED_PERMANENTLY", 301)}
        if r.get("httpsRedirect"):
            out["scheme"] = "https"
        if r.get("hostRedirect"):
            out["hostname"] = r["hostRedirect"]
        if r.get("pathRedirect"):
            out["path"] = {"type": "ReplaceFullPath", "replaceFullPath": r["pathRedirect"]}
        elif r.get("prefixRewrite"):
            out["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": r["prefixRewrite"]}
        for name in ("stripQuery", "portRedirect", "regexRewrite"):
            if r.get(name) is not None:
                self.warn(f"{path}.redirectAction.{name}", "has no Gateway API equivalent; left out")
        return {"type": "RequestRedirect", "requestRedirect": out}

    def timeouts(self, options: Mapping[str, Any], path: str) -> dict[str, str]:
        found = {}
        if options.get("timeout") is not None:
            found["request"] = _duration(options["timeout"])
        per_try = (options.get("retries") or {}).get("perTryTimeout")
        if per_try is not None:
            found["backendRequest"] = _duration(per_try)
        return found

    def retry(self, retries: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
        if not retries:
            return {}
        if self.channel != "experimental":
            self.warn(path, _NEEDS_EXPERIMENTAL)
            return {}
        if retries.get("numRetries", 1) < 1:
            self.warn(f"{path}.numRetries", "0 means no retries (retry.attempts must be at least 1); left out")
            return {}
        codes: set[int] = set(retries.get("retriableStatusCodes") or [])
        for cond in (c.strip() for c in str(retries.get("retryOn") or "").split(",") if c.strip()):
            if cond in _RETRY_CODES:
                codes |= set(_RETRY_CODES[cond])
            elif cond not in ("retriable-status-codes", "connect-failure", "refused-stream"):
                self.warn(f"{path}.retryOn", f'"{cond}" has no Gateway API equivalent; not retried')
        out: dict[str, Any] = {"attempts": retries.get("numRetries", 1)}
        if codes:
            out["codes"] = sorted(codes)
        if retries.get("retryBackOff"):
            self.warn(f"{path}.retryBackOff", "only a base interval exists (retry.backoff); maxInterval left out")
            base = (retries["retryBackOff"] or {}).get("baseInterval")
            if base is not None:
                out["backoff"] = _duration(base)
        return out


def _duration(value: Any) -> str:
    """A Gloo duration ("15s", "0.5s", {seconds: 1}) as a Gateway API one ("15s", "500ms")."""
    from helpers.runtime.gloo.fields import parse_duration

    seconds = parse_duration(value)
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
