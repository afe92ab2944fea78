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
- ``demo``: ``run_demo``, the seed's whole rollout headless (``coalmine demo``).

They sit on ``helpers.Lab`` and the builders; none reaches into a backend.
"""
