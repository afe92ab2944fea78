"""Flagger in a box: the canary controller of the local runtime (after ``install flagger``).

The core, pure and driven by a clock (no sockets):

- ``analysis``: one tick of Flagger's scheduler (``advance``): phases, gates,
  checks, weight steps, promotion and rollback;
- ``world``: what a tick asks of the I/O side (``World``) and gives back (``Tick``,
  ``Event``);
- ``weights``: Flagger's step weights, strategies and the routes a status implies;
- ``status``: the Canary's status and its ``Promoted`` condition, written as Flagger does;
- ``schema``: what a Canary may say locally (strict, as the CRD), Go durations.

The controller's shell, doing the I/O around the core:

- ``controller``: one loop per Canary, calling ``analysis`` each ``interval``;
- ``objects``: the primary Deployment, Services, Upstreams and RouteTable Flagger's
  gloo router makes;
- ``metrics``: the built-in checks, from the gateway's per-upstream stats;
- ``webhooks``: calls to the webhooks, Flagger's payloads;
- ``events``: the events recorded on each Canary.
"""
