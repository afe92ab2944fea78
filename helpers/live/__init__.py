"""Live traffic and what it shows: everything that watches or steers a running canary.

- ``answers``: who answered a request (v1, v2 or an error) and the shares per version;
- ``traffic``: ``Traffic``, the open-loop generator (records every request);
- ``sampling``: ``sample`` (n requests, a DataFrame), ``shares`` and ``curl``;
- ``following``: a VirtualService read as the gateway reads it (first match, weights),
  and the share of v2 to expect;
- ``control``: ``CanaryControl``, the canary state, the route change that sets it, and
  following the changes made elsewhere;
- ``plotting``: ``DistributionPlot``, the share/answers/latency figure;
- ``dashboard``: ``Dashboard``, widgets + the live plot (needs the ``lab`` extra);
- ``progressive``: ``CanaryWatch`` and ``follow_rollout``, a Flagger Canary's analysis
  as it happens (its phase, weight, and the checks per side);
- ``progressive_view``: ``ProgressiveView``, the dashboard's progressive-delivery view,
  and ``RolloutPlot``, its figure;
- ``demo``: ``run_demo``, the seed's whole rollout headless (``coalmine demo``), and
  ``run_progressive_demo``, a good and a bad rollout of a Canary (``--progressive``).

They sit on ``helpers.Lab`` and the builders; none reaches into a backend.
"""
