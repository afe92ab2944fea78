# Source of notebooks/04-header-canary.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 4. Header canary
#
# The first canary is opt-in: requests that carry the header `x-canary: true` go to v2,
# and everything else still goes to v1. Testers can try the new version in production
# while no user sees it. Neither service changes; only a route is added.

# %% [markdown]
# ## What you will learn
#
# - how a route matches on a request header;
# - how to send `x-canary: true` requests to v2 and all others to v1;
# - why the header route must come first: the gateway uses the **first** route that
#   matches.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [3. Route to v1](03-route-to-v1.ipynb) | Necessary | virtual services, function routes |
# | HTTP headers | Helpful | name/value pairs sent with a request |
#
# **Time to learn**: 15 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: both versions run, the
# gateway is installed, and every route of the virtual service `coalmine` goes to v1
# (`manifests/gloo/1-route-to-v1.yaml`). It is safe to run again.

# %%
from helpers import exercises, routing

lab = exercises.ensure(4)

# %% [markdown]
# `curl` from `helpers.live.sampling` (one GET, the body back), `serves` for
# `lab.wait_in_force` (lesson 3: on a cluster a route change reaches Envoy a moment
# after `apply`), the gateway's address, and the header the canary uses:

# %%
from pathlib import Path

from helpers.lessons.inforce import serves
from helpers.live.sampling import curl

gateway = lab.proxy_url()
CANARY = {"x-canary": "true"}

# %% [markdown]
# ## Step 1: where we start
#
# Three routes, all to v1. A request with the header also gets v1: no route looks at
# headers yet.

# %%
print(lab.get("virtualservices")["ROUTES"][0])
print()
print("without the header:", curl(gateway + "/findPets"))
print("with x-canary: true:", curl(gateway + "/findPets", headers=CANARY))

# %% [markdown]
# ## Step 2: a route that matches on a header
#
# The canary route matches exactly `/findPets`, like the v1 route, and in addition
# requires the header `x-canary` with the value `true`. All conditions of a matcher must
# hold. Its destination is the `findPets` function on v2.

# %%
canary = routing.function_route(
    {"exact": "/findPets", "headers": [{"name": "x-canary", "value": "true"}]},
    "findPets", "v2")
print(routing.to_yaml(canary))

# %% [markdown]
# `routing.header_route(route)` adds the same header condition to any route: it returns
# a copy of the route whose matchers also require `x-canary: true`. The same canary
# route, built from the plain `/findPets` route to v2:

# %%
plain = routing.function_route({"exact": "/findPets"}, "findPets", "v2")
print(routing.header_route(plain) == canary)

# %% [markdown]
# ## Step 3: add it first and try it
#
# `routing.add_route` inserts the route at index 0, first in the list, as
# `glooctl add route` does.

# %%
vs = routing.add_route(routing.route_to_v1(), canary)
lab.apply(vs)
lab.wait_in_force(serves(gateway + "/findPets", "v2", headers=CANARY))
print(lab.get("virtualservices")["ROUTES"][0])
print()
print("without the header:", curl(gateway + "/findPets"))
print("with x-canary: true:", curl(gateway + "/findPets", headers=CANARY))

# %% [markdown]
# ## Step 4: the declarative form
#
# This virtual service is `routing.header_canary()`, which is the file
# `manifests/gloo/2-header-canary.yaml`. Applying the file changes nothing:

# %%
print(vs == routing.header_canary())
print(Path("../manifests/gloo/2-header-canary.yaml").read_text())

# %%
lab.apply("../manifests/gloo/2-header-canary.yaml")

# %% [markdown]
# ## Step 5: put the header route last
#
# Why first? The gateway tries the routes in order and stops at the first match. Insert
# the same canary route at the end of the list instead (`index=3`, after the three v1
# routes) and send the header again:

# %%
routes = routing.route_to_v1()["spec"]["virtualHost"]["routes"]
last = routing.add_route(routing.route_to_v1(), canary, index=len(routes))
lab.apply(last)
lab.wait_in_force(serves(gateway + "/findPets", "v1", headers=CANARY))
print(lab.get("virtualservices")["ROUTES"][0])
print()
print("with x-canary: true:", curl(gateway + "/findPets", headers=CANARY))

# %% [markdown]
# The request carries the header, yet v1 answers. The plain `exact /findPets` route
# matches it too (it ignores headers), and it comes first, so the canary route is never
# reached. Gloo accepts this virtual service (its check for routes that can never be
# reached, the Helm value `gateway.validation.warnRouteShortCircuiting`, is off by
# default and deprecated), so the mistake shows only in the traffic.
#
# Put the canary route back in first place:

# %%
lab.apply(routing.header_canary())
lab.wait_in_force(serves(gateway + "/findPets", "v2", headers=CANARY))
print("with x-canary: true:", curl(gateway + "/findPets", headers=CANARY))

# %% [markdown]
# ## Exercise: a header canary on `/petstore` too
#
# Make `x-canary: true` work on `/petstore` as well: with the header, `GET /petstore`
# returns the v2 pets; without it, the v1 pets. Keep the `/findPets` canary. Hint:
# `routing.header_route` turns `routing.prefix_route("/petstore", "/api/pets", "v2")` into
# a header route; place it before the plain `/petstore` route, for example first, with
# `routing.add_route`. Stuck? `exercises.reset(4)` starts over.

# %%
# Your answer here:


# %% [markdown]
# ### Reference answer
#
# Try the exercise yourself first; the check below says `PASS` once the lab does what
# it asks, or what is missing. Then compare with the reference answer:
#
# <details><summary>Show the reference answer</summary>
#
# ```python
# petstore_canary = routing.header_route(routing.prefix_route("/petstore", "/api/pets", "v2"))
# lab.apply(routing.add_route(routing.header_canary(), petstore_canary))
# lab.wait_in_force(serves(gateway + "/petstore", "v2", headers=CANARY))
# print("without the header:", curl(gateway + "/petstore"))
# print("with x-canary: true:", curl(gateway + "/petstore", headers=CANARY))
# ```
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(4)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(4)

# %%
exercises.check(4)

# %% [markdown]
# ## Summary
#
# - A matcher can require headers; every condition of the matcher must hold.
#   `routing.header_route(route)` adds the `x-canary: true` condition to any route.
# - With the header route first, `x-canary: true` reaches v2 and all other requests v1.
# - Routes are tried in order and the first match wins: a more specific route placed
#   after a general one is never used, and by default Gloo does not warn you.
#
# Next: [5. Weighted canary](05-weighted-canary.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Header matching](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_selection/header_matching/)
# - [Destination selection: matchers](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_selection/)
# - [Canary releases with Gloo Edge](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/canary/)
