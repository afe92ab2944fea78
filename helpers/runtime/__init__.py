"""The embedded local runtime: "Gloo in a box" on 127.0.0.1.

One control-plane process per lab home (``controlplane``) holds:

- ``store``: the applied objects, on disk, so a restart loses nothing;
- ``supervising``: Deployments as real child processes, restarted when they die;
- ``discovering``: one Upstream per Service port, REST functions from ``/swagger.json``;
- ``translating``: VirtualServices + Upstreams → one ``routes.RouteTable`` (+ statuses);
- ``proxying``: the gateway proxy serving the current table (swapped atomically),
  with ``downstreams`` (client connections), ``rewriting`` (the request sent
  upstream), ``upstreams`` (pooled pod connections) and ``stats``;
- ``admin``: the token-protected admin API the CLI and notebooks talk to.

Data flows one way: objects → translator → RouteTable → proxy.
"""
