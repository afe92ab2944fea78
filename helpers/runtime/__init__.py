"""The embedded local runtime: "Gloo in a box" on 127.0.0.1.

One control-plane process per lab home (``controlplane``), driven through the
token-protected ``admin`` API (``python -m helpers.runtime.admin --home DIR``).

The core, shared by both gateway halves:

- ``home``: the lab home's files (token, state, store, logs);
- ``store``: the applied objects, on disk, so a restart loses nothing;
- ``apiserver``: what the Kubernetes API server refuses in the built-in kinds (and
  ``podspec`` in a pod template), with its limits (1 MiB an object); ``objectmeta``:
  what it refuses in ``metadata`` (names, labels, annotations, unknown fields), for
  every kind; ``corekinds``: its checks of a Secret and an EndpointSlice;
- ``reading``: what the control plane answers, changing nothing (objects with their
  status, events, ``ready``, ``status``, the served routes);
- ``pods`` and ``supervising``: Deployments as real child processes, restarted when
  they die, ready when their probe says so; ``podenv``: a container's environment as
  the kubelet builds it (``valueFrom``: downward API, ConfigMap and Secret keys;
  ``envFrom``); ``endpointslices``: a Service's endpoints from its EndpointSlices
  (Services without a selector), loopback addresses only;
- ``schema``: the engine that checks an object against a schema written as data;
- ``prometheus``: a real Prometheus server (after ``install prometheus``, when the machine
  has Debian's package), a child process like a pod, on 127.0.0.1 with its data under the
  lab home, scraping each gateway's stats every second, reloaded as gateways come and go;
- ``statsserver``: each gateway's stats in Prometheus's format on a 127.0.0.1 port of its
  own (``/stats/prometheus``, the lab's token), and ``GatewayStats``, every gateway's
  stats (their URLs, one gateway's snapshot or all added up);
- ``regex``: every regular expression, compiled and matched by RE2 as Envoy does;
- ``routes`` and ``matching``: the one API-neutral route table the proxies serve
  (virtual hosts, routes, matchers, weighted destinations, clusters);
- ``templating``: REST function templates, compiled at translation, rendered per request.
- ``servicedns``: in-lab DNS, Service names to ready pods on loopback (the file services.json
  in the lab home, read by pods and the canary controller's webhooks).

``gloo``: the Gloo Edge half (after ``install gloo``):

- ``gloo.edge``: discovery, translation and the gateway proxy of one lab;
- ``gloo.discovering``: one Upstream per Service port, REST functions from ``/swagger.json``
  (``gloo.functions`` reads them);
- ``gloo.schema`` and ``gloo.fields``: strict validation, as Gloo's CRDs and webhook
  (``gloo.routeschema``: a route's matchers, actions, destinations and options, shared by
  VirtualServices and RouteTables);
- ``gloo.translating``, ``gloo.parts``, ``gloo.status``: VirtualServices, Upstreams and
  UpstreamGroups into a route table, with a Gloo-shaped status per resource;
- ``gloo.groups``: UpstreamGroups as Gloo treats them (stored whatever they point at; the
  group's status, and the error or warning on the routes that use it);
- ``gloo.delegating`` and ``gloo.selectors``: ``delegateAction`` to RouteTables (by ref
  or selector), Gloo's rules; ``gloo.listening``: the gateway's listener, open only
  while a VirtualService exists.

``gatewayapi``: the Gateway API half (after ``install kgateway``):

- ``gatewayapi.kgateway``: the translation and one proxy per Gateway port;
- ``gatewayapi.schema`` and ``gatewayapi.fields``: the CRDs' schema and CEL rules
  (``gatewayapi.cel``: the rules across fields: parentRefs sectionName, listeners and
  TLS, addresses, mirror, CORS; ``gatewayapi.routerules``: an HTTPRoute rule's schema per
  channel); ``gatewayapi.channels``: the standard and experimental channels, what the
  experimental CRDs add (``retry`` served, the rest refused or warned as not implemented
  locally) and the pruning when switching back;
- ``gatewayapi.translating``, ``gatewayapi.parts``, ``gatewayapi.precedence``: HTTPRoutes
  into one table per listener, matches sorted by the specification's precedence;
- ``gatewayapi.delegating``: kgateway's route delegation: a parent HTTPRoute hands a
  path prefix to child HTTPRoutes (by name, ``"*"`` or label), flattened into its table;
- ``gatewayapi.actions``: one rule as an action: Service backends (appProtocol),
  mirrors, CORS, per-backendRef filters; ``gatewayapi.grants``: ReferenceGrants, which
  cross-namespace references are allowed;
- ``gatewayapi.listeners``: listener kinds and namespaces, conflicts, listeners sharing
  a port merged into one table; ``gatewayapi.certificates``: HTTPS listeners'
  certificateRefs and their TLS contexts (SNI picks the certificate);
- ``gatewayapi.status``: ``status.parents[]`` and listener conditions.

``flagger``: Flagger's canary analysis (after ``install flagger``; providers gloo and
gatewayapi:v1):

- ``flagger.controller``: a task per Canary, stepping ``flagger.analysis`` (the pure
  state machine, with ``flagger.status`` and ``flagger.weights``) every interval
  through a ``flagger.world`` (its interface) that does the I/O;
- ``flagger.schema``: what a Canary may say; ``flagger.objects``: the primary Deployment,
  Services, Upstreams and RouteTable it makes; ``flagger.metrics``: the built-in checks
  from the gateway's stats windows; ``flagger.webhooks``: the hooks, as Flagger calls
  them; ``flagger.events``: what happened, as Kubernetes Events;
- ``flagger.routers``: each provider's router: gloo's Upstreams and RouteTable,
  gatewayapi:v1's HTTPRoute (``flagger.httproutes``, as Flagger's Gateway API router
  writes it); ``flagger.gatewayschema``: what a gatewayapi:v1 Canary may say, its
  HTTPRoute checked against the Gateway API CRDs; ``flagger.windows``: every gateway's
  stats read as one, for the built-in checks;
- ``flagger.templates``: MetricTemplate queries rendered with Flagger's variables;
  ``flagger.prometheus``: Flagger's prometheus provider (``/api/v1/query``);
  ``flagger.templatechecks``: ``templateRef`` metrics run as Flagger runs them;
  ``flagger.templateschema``: what a MetricTemplate may say.

``proxy``: the data plane, serving one route table (swapped atomically):

- ``proxy.proxying``: the gateway proxy; ``proxy.downstreams``: client connections
  (``proxy.request``: one request); ``proxy.forwarding``: attempts, retries and
  timeouts, the answer relayed; ``proxy.rewriting``: the request sent upstream;
  ``proxy.upstreams``: pooled pod connections; ``proxy.mirroring``: RequestMirror
  copies; ``proxy.cors``: the CORS filter; ``proxy.tunnel``: WebSocket upgrades;
  ``proxy.tls``: SNI of HTTPS listeners; ``proxy.wire``: HTTP/1.1 framing;
  ``proxy.h2c``: HTTP/2 with prior knowledge to backends whose Service port has
  ``appProtocol: kubernetes.io/h2c``; ``proxy.h2server``: clients speaking HTTP/2 with
  prior knowledge on cleartext ports; ``proxy.h2wire``: HTTP/1.1 heads as HTTP/2
  headers, bodies sent within flow-control windows;
  ``proxy.stats``: per-upstream counts and latency, like Envoy's (``proxy.exposition``:
  as Envoy's ``/stats/prometheus`` text, with Envoy's names, labels and buckets); ``proxy.dataplane``:
  the event loop and thread every proxy serves from, apart from the control plane's.

Data flows one way: objects -> translator -> route table -> proxy (one per listener).
The runtime imports nothing of the package outside it but ``helpers.errors`` and
``helpers.kinds``.
"""
