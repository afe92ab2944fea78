"""The embedded local runtime: "Gloo in a box" on 127.0.0.1.

One control-plane process per lab home (``controlplane``) holds:

- ``store``: the applied objects, on disk, so a restart loses nothing;
- ``supervising``: Deployments as real child processes, restarted when they die;
- ``discovering``: one Upstream per Service port, REST functions from ``/swagger.json``;
- ``translating``: VirtualServices + Upstreams → one ``routes.RouteTable`` (+ statuses);
- ``proxying``: the gateway proxy serving the current table (swapped atomically),
  with ``downstreams`` (client connections), ``rewriting`` (the request sent
  upstream), ``upstreams`` (pooled pod connections) and ``stats``;
- ``admin``: the token-protected admin API the CLI and notebooks talk to;
- ``kgateway``: the Gateway API half (after ``install kgateway``): ``gatewayapi_schema``
  checks Gateways and HTTPRoutes at apply, ``translating_gatewayapi`` makes one
  RouteTable per listener (matches sorted by the spec's precedence),
  ``gatewayapi_status`` writes ``status.parents[]`` conditions, and each listener is
  served by its own ``proxying.GatewayProxy``.

Data flows one way: objects → translator → RouteTable → proxy (one per listener).
"""
