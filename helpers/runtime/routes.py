"""The route table: the one API-neutral form the gateway proxy serves.

Translators turn VirtualServices (``gloo.translating``) and HTTPRoutes
(``gatewayapi.translating``) into a ``RouteTable``;
the proxy only ever reads one. Everything here is immutable and free of I/O, so a
table can be built, compared and swapped in atomically, and matching can be tested
without sockets.

    RouteTable ─► VirtualHost (domains) ─► Route (matchers, first match wins)
               │                               └► RouteAction ─► WeightedDestination ─► Destination
               └► Cluster (an upstream: endpoints, REST functions)
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

from helpers.runtime.matching import Matcher, RequestView
from helpers.runtime.regex import Pattern

# ── upstreams as the proxy sees them ─────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ready pod's address; ``labels`` are its pod's labels (sorted pairs), which a
    Gloo Upstream's ``kube.selector`` filters on. They do not take part in equality:
    an address is one endpoint whatever labels it was listed with."""

    host: str
    port: int
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class RestFunction:
    """A discovered REST function: how to call it upstream.

    ``headers`` holds rendered-at-request-time templates such as ``:method`` and
    ``:path`` (``/api/pets/{{ default(id, "") }}``); an empty template removes the
    header. ``body`` is a template too, or None to pass the request body through.
    """

    name: str
    headers: tuple[tuple[str, str], ...]
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """An upstream: where its healthy endpoints are and which REST functions it has."""

    name: str
    endpoints: tuple[Endpoint, ...] = ()
    functions: Mapping[str, RestFunction] = field(default_factory=dict)


# ── actions ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class RestCall:
    """``destinationSpec.rest``: call ``function``, extracting template parameters
    from request headers. ``parameters`` maps a header name (``:path`` included) to
    a compiled pattern whose named groups become template variables."""

    function: str
    parameters: tuple[tuple[str, Pattern], ...] = ()


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a request goes: a cluster by name, optionally a REST function on it.

    ``invalid`` says why the destination cannot be used (a Gateway API backendRef
    that does not resolve): requests sent to it are answered 500 with that text.
    """

    cluster: str
    rest: RestCall | None = None
    invalid: str | None = None
    protocol: str = "http"  # how to speak to the cluster: "http", or "h2c" / "ws" (appProtocol)


@dataclass(frozen=True, slots=True)
class Mirror:
    """RequestMirror: a copy of ``percent`` (0-100) of the requests goes to
    ``destination`` too; its answer is dropped and never delays the real one."""

    destination: Destination
    percent: float = 100.0


@dataclass(frozen=True, slots=True)
class Cors:
    """The Gateway API CORS filter: which origins (exact, or with ``*`` wildcards),
    methods and headers a browser may use, and what the answers expose."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None


@dataclass(frozen=True, slots=True)
class WeightedDestination:
    """A destination with its relative weight; ``header_ops`` and ``mirrors`` are the
    Gateway API's per-backendRef filters, applied only when this one is picked."""

    destination: Destination
    weight: int
    header_ops: HeaderOps | None = None
    mirrors: tuple[Mirror, ...] = ()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Envoy-style retries: ``retry_on`` holds conditions such as ``5xx``,
    ``connect-failure``, ``reset``, ``retriable-status-codes``."""

    retry_on: frozenset[str]
    num_retries: int = 1
    per_try_timeout: float | None = None
    retriable_status_codes: frozenset[int] = frozenset()

    def retries_status(self, status: int) -> bool:
        if "5xx" in self.retry_on and status >= 500:
            return True
        if "gateway-error" in self.retry_on and status in (502, 503, 504):
            return True
        return "retriable-status-codes" in self.retry_on and status in self.retriable_status_codes

    def retries_connect_failure(self) -> bool:
        """A connection that could not be made: nothing reached the upstream."""
        return bool(self.retry_on & {"5xx", "gateway-error", "connect-failure", "reset"})

    def retries_reset(self) -> bool:
        """A connection that broke after the request was written: the upstream may
        have read it, so only these conditions send it again (as Envoy's)."""
        return bool(self.retry_on & {"5xx", "gateway-error", "reset"})

    def retries_timeout(self) -> bool:
        """A per-try timeout: Envoy resets that attempt and retries it as a reset."""
        return self.retries_reset()


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault injection: abort ``abort_percent``% with ``abort_status``; delay
    ``delay_percent``% by ``delay_seconds``."""

    abort_percent: float = 0.0
    abort_status: int = 503
    delay_percent: float = 0.0
    delay_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """Headers to add (name, value, append) and remove, on request and response."""

    request_add: tuple[tuple[str, str, bool], ...] = ()
    request_remove: frozenset[str] = frozenset()
    response_add: tuple[tuple[str, str, bool], ...] = ()
    response_remove: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RouteAction:
    """Forward to one of ``destinations``, chosen by relative weight.

    ``prefix_rewrite`` replaces what the path matcher matched (Gloo's
    prefixRewrite, the Gateway API's ReplacePrefixMatch); ``full_path_rewrite``
    replaces the whole path (ReplaceFullPath); ``host_rewrite`` the Host header.
    """

    destinations: tuple[WeightedDestination, ...]
    prefix_rewrite: str | None = None
    timeout: float | None = 15.0  # seconds; None means no timeout (Gloo's 0)
    retries: RetryPolicy | None = None
    faults: Faults | None = None
    header_ops: HeaderOps | None = None
    full_path_rewrite: str | None = None
    host_rewrite: str | None = None
    mirrors: tuple[Mirror, ...] = ()
    cors: Cors | None = None
    _cumulative: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        running, cumulative = 0, []
        for d in self.destinations:
            running += d.weight
            cumulative.append(running)
        object.__setattr__(self, "_cumulative", tuple(cumulative))

    @property
    def total_weight(self) -> int:
        return self._cumulative[-1] if self._cumulative else 0

    def pick(self, roll: float) -> Destination:
        """The destination for a uniform random ``roll`` in [0, 1)."""
        return self.pick_weighted(roll).destination

    def pick_weighted(self, roll: float) -> WeightedDestination:
        """The weighted destination (with its own filters) for a uniform random ``roll`` in [0, 1)."""
        if len(self.destinations) == 1:
            return self.destinations[0]
        index = bisect.bisect_right(self._cumulative, roll * self.total_weight)
        return self.destinations[min(index, len(self.destinations) - 1)]


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """Answer without any upstream (Gloo's directResponseAction, and error routes)."""

    status: int
    body: str = ""
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class Redirect:
    """Answer with a redirect (Gloo's redirectAction, the Gateway API's RequestRedirect).

    With ``gateway_api`` the Location's port follows the Gateway API: ``port`` if
    set, else the scheme's well-known port when ``scheme`` is set, else the port the
    request came in on; 80 for http and 443 for https are left out.
    """

    status: int = 301
    host: str | None = None
    path: str | None = None
    prefix_rewrite: str | None = None
    scheme: str | None = None
    port: int | None = None
    gateway_api: bool = False


Action = RouteAction | DirectResponse | Redirect


@dataclass(frozen=True, slots=True)
class Route:
    """A route: any of ``matchers`` (empty means prefix ``/``) selects ``action``.

    ``source`` says where it came from, e.g. ``gloo-system/coalmine routes[0]``.
    """

    matchers: tuple[Matcher, ...]
    action: Action
    name: str = ""
    source: str = ""

    def match(self, request: RequestView) -> Matcher | None:
        """The first matcher that selects ``request``, or None."""
        if not self.matchers:
            return Matcher() if request.path.startswith("/") else None
        for m in self.matchers:
            if m.matches(request):
                return m
        return None


# ── hosts and the table ──────────────────────────────────────────────────────


def domain_matches(domain: str, host: str) -> bool:
    """Envoy's domain rules: ``*``, ``*.suffix``, ``prefix.*`` or an exact name.

    ``host`` is compared with and without its port, so ``*`` and ``localhost``
    both match ``localhost:8080``.
    """
    host = host.lower()
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    domain = domain.lower()
    if domain == "*":
        return True
    for candidate in {host, bare}:
        if domain.startswith("*") and candidate.endswith(domain[1:]) and len(candidate) > len(domain) - 1:
            return True
        if domain.endswith("*") and candidate.startswith(domain[:-1]) and len(candidate) > len(domain) - 1:
            return True
        if candidate == domain:
            return True
    return False


def _domain_rank(domain: str) -> tuple[int, int]:
    # Envoy: exact names first, then suffix wildcards, then prefix wildcards
    # (longest first), then the catch-all.
    if domain == "*":
        return (3, 0)
    if domain.startswith("*"):
        return (1, -len(domain))
    if domain.endswith("*"):
        return (2, -len(domain))
    return (0, 0)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    """Routes served for a set of domains (one per VirtualService).

    ``listener`` is the hostname of the Gateway listener it belongs to ("" for a
    listener without one), when several listeners share the proxy's port (see
    ``RouteTable.listener_hostnames``)."""

    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    listener: str = ""


@dataclass(frozen=True)
class RouteTable:
    """Everything the gateway serves, built in one piece and swapped in atomically.

    ``listener_hostnames`` lists the hostnames ("" for none) of the Gateway
    listeners sharing this port when there are several: a request is then routed
    only among the virtual hosts of its listener (picked by TLS SNI on an HTTPS
    port, by Host otherwise), and a Host that belongs to another listener of the
    port is misdirected (421). Empty: every virtual host serves every request."""

    virtual_hosts: tuple[VirtualHost, ...] = ()
    clusters: Mapping[str, Cluster] = field(default_factory=dict)
    version: int = 0
    listener_hostnames: tuple[str, ...] = ()

    def listener_for(self, name: str) -> str | None:
        """The listener hostname that serves ``name`` (a Host or an SNI name): an
        exact hostname first, then the longest matching wildcard, then "" (a
        listener without hostname); None when no listener of the port takes it."""
        bare = name.lower()
        if bare.count(":") == 1:
            bare = bare.rsplit(":", 1)[0]
        best: tuple[tuple[int, int], str] | None = None
        for hostname in self.listener_hostnames:
            h = hostname.lower()
            if not h:
                rank = (2, 0)
            elif h == bare:
                rank = (0, 0)
            elif h.startswith("*.") and bare.endswith(h[1:]) and len(bare) > len(h) - 1:
                rank = (1, -len(h))
            else:
                continue
            if best is None or rank < best[0]:
                best = (rank, hostname)
        return best[1] if best is not None else None

    def virtual_host_for(self, host: str, listener: str | None = None) -> VirtualHost | None:
        """The virtual host whose best-ranked domain matches ``host`` (among those of
        ``listener`` when it is given)."""
        best: tuple[tuple[int, int], VirtualHost] | None = None
        for vh in self.virtual_hosts:
            if listener is not None and vh.listener != listener:
                continue
            for domain in vh.domains:
                if domain_matches(domain, host):
                    rank = _domain_rank(domain)
                    if best is None or rank < best[0]:
                        best = (rank, vh)
        return best[1] if best else None

    def select(self, request: RequestView, listener: str | None = None) -> tuple[Route, Matcher] | None:
        """The first route of the matching virtual host (of ``listener``, if given)
        that matches, with the matcher that selected it; None means 404."""
        vh = self.virtual_host_for(request.host, listener)
        if vh is None:
            return None
        for route in vh.routes:
            m = route.match(request)
            if m is not None:
                return route, m
        return None
