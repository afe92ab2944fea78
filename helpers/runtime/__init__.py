"""The embedded local runtime: "Gloo in a box" on 127.0.0.1.

One control-plane process per lab home (``controlplane``), driven through the
token-protected ``admin`` API (``python -m helpers.runtime.admin --home DIR``).

The core, shared by both gateway halves:

- ``home``: the lab home's files (token, state, store, logs);
- ``store``: the applied objects, on disk, so a restart loses nothing;
- ``apiserver``: what the Kubernetes API server refuses in the built-in kinds (and
  ``podspec`` in a pod template), with its limits (1 MiB an object);
- ``pods`` and ``supervising``: Deployments as real child processes, restarted when
  they die, ready when their probe says so;
- ``schema``: the engine that checks an object against a schema written as data;
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
- ``gloo.schema`` and ``gloo.fields``: strict validation, as Gloo's CRDs and webhook;
- ``gloo.translating``, ``gloo.parts``, ``gloo.status``: VirtualServices, Upstreams and
  UpstreamGroups into a route table, with a Gloo-shaped status per resource;
- ``gloo.delegating`` and ``gloo.selectors``: ``delegateAction`` to RouteTables (by ref
  or selector), Gloo's rules; ``gloo.listening``: the gateway's listener, open only
  while a VirtualService exists.

``gatewayapi``: the Gateway API half (after ``install kgateway``):

- ``gatewayapi.kgateway``: the translation and one proxy per Gateway listener;
- ``gatewayapi.schema`` and ``gatewayapi.fields``: the CRDs' schema and CEL rules;
- ``gatewayapi.translating``, ``gatewayapi.parts``, ``gatewayapi.precedence``: HTTPRoutes
  into one table per listener, matches sorted by the specification's precedence;
- ``gatewayapi.delegating``: kgateway's route delegation: a parent HTTPRoute hands a
  path prefix to child HTTPRoutes (by name, ``"*"`` or label), flattened into its table;
- ``gatewayapi.status``: ``status.parents[]`` and listener conditions.

``flagger``: Flagger's canary analysis (after ``install flagger``; provider gloo):

- ``flagger.controller``: a task per Canary, stepping ``flagger.analysis`` (the pure
  state machine, with ``flagger.status`` and ``flagger.weights``) every interval
  through a ``flagger.world`` (its interface) that does the I/O;
- ``flagger.schema``: what a Canary may say; ``flagger.objects``: the primary Deployment,
  Services, Upstreams and RouteTable it makes; ``flagger.metrics``: the built-in checks
  from the gateway's stats windows; ``flagger.webhooks``: the hooks, as Flagger calls
  them; ``flagger.events``: what happened, as Kubernetes Events.

``proxy``: the data plane, serving one route table (swapped atomically):

- ``proxy.proxying``: the gateway proxy; ``proxy.downstreams``: client connections;
  ``proxy.rewriting``: the request sent upstream; ``proxy.upstreams``: pooled pod
  connections; ``proxy.wire``: HTTP/1.1 framing; ``proxy.stats``: per-upstream counts
  and latency, like Envoy's; ``proxy.dataplane``: the event loop and thread every
  proxy serves from, apart from the control plane's.

Data flows one way: objects -> translator -> route table -> proxy (one per listener).
The runtime imports nothing of the package outside it but ``helpers.errors`` and
``helpers.kinds``.
"""
