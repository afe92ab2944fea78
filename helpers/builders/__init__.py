"""Route builders: the lessons' routes as plain dicts, equal to the files in ``manifests/``.

- ``routing``: Gloo VirtualServices for the seed's steps (route to v1, header canary,
  weighted split, all to v2) and the pieces they are made of; ``to_yaml``.
- ``httproutes``: the same steps as Gateway API HTTPRoutes (and the Gateway).
- ``progressive``: lesson 8's Flagger Canary, the VirtualService that delegates to its
  RouteTable, and the rollouts (``manifests/flagger/``).

They build data only: nothing here talks to a lab.
"""
