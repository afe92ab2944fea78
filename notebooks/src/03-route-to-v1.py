# Source of notebooks/03-route-to-v1.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 3. Route to v1
#
# A **virtual service** tells the gateway which requests go where. Before any canary,
# every route sends traffic to the version you trust: v1. You build the virtual service
# `coalmine` route by route, then see that it is exactly the YAML in
# `manifests/gloo/1-route-to-v1.yaml`.
#
# Each step is shown two ways, as in the post: an imperative call (`routing.add_route`,
# like `glooctl add route`) and the declarative YAML you would apply.

# %% [markdown]
# ## What you will learn
#
# - how to create a virtual service and add routes to it;
# - how a prefix route with a prefix rewrite works (`/petstore` to `/api/pets`);
# - how function routing calls a discovered REST function (`findPets`, `findPetById`);
# - how to take a function's parameter from the request path.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [2. Install Gloo and discover](02-install-gloo-and-discover.ipynb) | Necessary | upstreams and REST functions |
# | YAML | Helpful | the manifests are YAML |
#
# **Time to learn**: 15 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: petstore v1 and v2 run,
# the gateway is installed, and there is no virtual service yet. It is safe to run again.

# %%
from helpers import exercises, routing

lab = exercises.ensure(3)

# %% [markdown]
# `curl` from `helpers.live.sampling` (one GET, the body back), `serves` (a probe for
# `lab.wait_in_force`, Step 2), and the gateway's address (like `glooctl proxy url`):

# %%
from pathlib import Path

from helpers.lessons.inforce import serves
from helpers.live.sampling import curl

gateway = lab.proxy_url()

# %% [markdown]
# ## Step 1: create the virtual service
#
# The post runs `glooctl create virtualservice --name coalmine`. The same object, built
# as a Python dict and shown as the YAML you would apply: a virtual host for every
# domain (`*`) in the namespace `gloo-system`, with no routes yet.

# %%
vs = routing.virtual_service([])
print(routing.to_yaml(vs))

# %%
lab.apply(vs)

# %% [markdown]
# ## Step 2: route `/petstore` to v1
#
# A prefix route matches every path that starts with `/petstore`. The petstore serves
# its pets at `/api/pets`, so the route rewrites the prefix: `/petstore` becomes
# `/api/pets`, and `/petstore/1` becomes `/api/pets/1`. `routing.add_route` returns a new
# virtual service with the route inserted first (index 0), as `glooctl add route` does.
#
# **Wait until a change is in force.** `lab.apply` returns once the virtual service is
# stored and validated. On a cluster, Gloo then translates it and pushes it to Envoy
# over xDS a moment later, so a request sent at once can still follow the old routes.
# `lab.wait_in_force(serves(url, version))` sends requests until `version` answers
# them all; every lesson calls it after a route change before it measures anything.
#
# > **Local lab:** the local control plane swaps the route table before `apply` returns, so `wait_in_force` returns at once.

# %%
route = routing.prefix_route("/petstore", "/api/pets", "v1")
vs = routing.add_route(vs, route)
lab.apply(vs)
lab.wait_in_force(serves(gateway + "/petstore", "v1"))
print(curl(gateway + "/petstore"))
print(curl(gateway + "/petstore/1"))

# %% [markdown]
# The declarative form of this step, the YAML of the whole virtual service:

# %%
print(routing.to_yaml(vs))

# %% [markdown]
# ## Step 3: route `/findPets` to a function
#
# Function routing calls a REST function that discovery found (lesson 2) instead of
# forwarding the path. The route matches exactly `/findPets` and calls `findPets` on
# v1; the gateway builds the request to `/api/pets` from the function's template.

# %%
route = routing.function_route({"exact": "/findPets"}, "findPets", "v1")
vs = routing.add_route(vs, route)
lab.apply(vs)
lab.wait_in_force(serves(gateway + "/findPets", "v1"))
print(curl(gateway + "/findPets"))

# %% [markdown]
# The route as YAML: the destination names the upstream and, under `destinationSpec`,
# the function.

# %%
print(routing.to_yaml(route))

# %% [markdown]
# ## Step 4: take a parameter from the path
#
# `findPetById` needs an `id`. The route's `parameters` give a template for the request
# path: for `/findPetWithId/2`, the template `/findPetWithId/{id}` sets `id` to `2`.

# %%
route = routing.function_route({"prefix": "/findPetWithId/"}, "findPetById", "v1",
                               parameters={":path": "/findPetWithId/{id}"})
vs = routing.add_route(vs, route)
lab.apply(vs)
lab.wait_in_force(serves(gateway + "/findPetWithId/1", "v1"))
print(curl(gateway + "/findPetWithId/1"))
print(curl(gateway + "/findPetWithId/2"))

# %% [markdown]
# ## Step 5: the same routes, declared in one file
#
# The three steps built exactly the virtual service of `routing.route_to_v1()`, which is
# the file `manifests/gloo/1-route-to-v1.yaml`. This is the YAML you apply when you
# work declaratively:

# %%
print(vs == routing.route_to_v1())
print(Path("../manifests/gloo/1-route-to-v1.yaml").read_text())

# %% [markdown]
# Applying the file changes nothing (`unchanged`: nothing to wait for), because the lab
# already holds the same object:

# %%
lab.apply("../manifests/gloo/1-route-to-v1.yaml")

# %% [markdown]
# ## Step 6: the route table
#
# The gateway tries routes in this order and uses the first that matches. The order
# does not matter yet, since no two routes match the same request; in lesson 4 it will.

# %%
print(lab.get("virtualservices")["ROUTES"][0])

# %% [markdown]
# ## Exercise: add a route `/pet/{id}`
#
# Add a route so that `GET /pet/2` through the gateway calls `findPetById` on v1 with
# `id` 2 (and answers the Cat). Keep the three routes you built. Hint:
# `routing.function_route` with a prefix matcher and a `:path` parameter, then
# `routing.add_route` and `lab.apply`. Stuck? `exercises.reset(3)` starts over.

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
# route = routing.function_route({"prefix": "/pet/"}, "findPetById", "v1",
#                                parameters={":path": "/pet/{id}"})
# lab.apply(routing.add_route(routing.route_to_v1(), route))
# lab.wait_in_force(serves(gateway + "/pet/2", "v1"))
# print(curl(gateway + "/pet/2"))
# ```
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(3)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(3)

# %%
exercises.check(3)

# %% [markdown]
# ## Summary
#
# - A virtual service holds an ordered list of routes for a set of domains.
# - A prefix route can rewrite the prefix: `/petstore` is served by `/api/pets`.
# - A function route calls a discovered REST function; `parameters` take its
#   arguments from the request, for example `:path` `/findPetWithId/{id}`.
# - `routing.add_route` (imperative) and `manifests/gloo/1-route-to-v1.yaml`
#   (declarative) produce the same object.
# - After a route change, `lab.wait_in_force(...)` waits until the gateway serves it: a
#   moment on a cluster, no time at all in the local lab.
#
# Next: [4. Header canary](04-header-canary.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Virtual services and routes (concepts)](https://docs.solo.io/gloo-edge/latest/introduction/architecture/concepts/)
# - [Path matching](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_selection/path_matching/)
# - [Prefix rewrite](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/request_processing/prefix_rewrite/)
# - [Routing to a REST endpoint (function routing)](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/rest_endpoint/)
# - [`glooctl add route`](https://docs.solo.io/gloo-edge/latest/reference/cli/glooctl_add_route/)
