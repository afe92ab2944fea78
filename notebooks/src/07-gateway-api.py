# Source of notebooks/07-gateway-api.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 7. The Gateway API: the canary with HTTPRoutes
#
# Open-source Gloo Edge reaches its end of life on 2026-12-31; its successor,
# **kgateway**, speaks the Kubernetes **Gateway API**. This lesson runs the same canary
# with a `Gateway` and `HTTPRoute`s, puts each VirtualService beside its HTTPRoute, and
# shows the one difference that bites during a migration: which route wins.

# %% [markdown]
# ## What you will learn
#
# - what a Gateway and an HTTPRoute are, and how a route attaches to a gateway;
# - the canary steps as HTTPRoutes: header canary, weights, promotion;
# - that the Gateway API picks the **best** match (exact path, longest prefix, method,
#   most headers, ...) while a VirtualService takes the **first** one in its list;
# - how to convert a VirtualService with `convert` and read its warnings.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [4. Header canary](04-header-canary.ipynb) | Necessary | the VirtualService steps |
# | [5. Weighted canary](05-weighted-canary.ipynb) | Helpful | weights and sampling |
#
# **Time to learn**: 20 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: both versions run, Gloo
# serves the header canary of lesson 4, and kgateway is installed with the Gateway of
# `manifests/gateway-api/0-gateway.yaml`. It is safe to run again. `serves` is the probe
# for `lab.wait_in_force` (lesson 3): kgateway, like Gloo, pushes a route change to
# Envoy a moment after `apply`.

# %%
from helpers import converting, exercises, httproutes, routing, sampling
from helpers.lessons.inforce import serves
from helpers.lessons.showing import side_by_side

lab = exercises.ensure(7)

# %% [markdown]
# ## Step 1: the Gateway
#
# `lab.install("kgateway")` added the GatewayClass `kgateway` and the namespace
# `kgateway-system`, as kgateway's Helm chart does on a cluster. A **Gateway** asks for
# listeners; this one has one HTTP listener that accepts routes from every namespace:

# %%
from pathlib import Path

print(Path("../manifests/gateway-api/0-gateway.yaml").read_text())

# %% [markdown]
# `lab.proxy_url(gateway=...)` is that Gateway's address (`coalmine proxy url --gateway
# kgateway-system/http` in a terminal). On a cluster kgateway runs an Envoy Deployment
# and a Service for each Gateway. Gloo's proxy keeps running beside it.
#
# > **Local lab:** each Gateway listener is served on its own port of 127.0.0.1, not on the port the listener names.

# %%
print(lab.get("gateways", namespace="kgateway-system").to_string(index=False))
kgateway = lab.proxy_url(gateway="kgateway-system/http")
gloo = lab.proxy_url()
print("kgateway:", kgateway)
print("gloo:    ", gloo)

# %% [markdown]
# ## Step 2: route everything to v1 with an HTTPRoute
#
# An HTTPRoute names its gateway in `parentRefs`, and lists **rules**: matches, filters
# and `backendRefs` (Services with a port). There are no REST functions, so each rule
# rewrites the path to the petstore's own API with a `URLRewrite` filter.

# %%
print(routing.to_yaml(httproutes.route_to_v1()))

# %%
lab.apply(httproutes.route_to_v1())
lab.wait_in_force(serves(kgateway + "/petstore", "v1"))
for path in ("/findPets", "/petstore", "/findPetWithId/1", "/petstorefront"):
    print(f"{path:17}", sampling.curl(kgateway + path))

# %% [markdown]
# `/petstorefront` is a 404: `PathPrefix /petstore` matches whole path segments
# (`/petstore`, `/petstore/1`), where Gloo's `prefix` matches any string that starts
# with it. The route's status says whether the gateway took it and found its Services:

# %%
for parent in lab.objects("httproutes", "petstore")[0]["status"]["parents"]:
    ref = parent["parentRef"]
    for c in parent["conditions"]:
        print(f'{ref["namespace"]}/{ref["name"]}: {c["type"]}={c["status"]} ({c["reason"]})')

# %% [markdown]
# ## Step 3: the header canary, side by side
#
# On the left the canary route of the VirtualService (lesson 4), on the right the
# canary rule of the HTTPRoute. Same request, same destination:

# %%
print(side_by_side(routing.to_yaml(routing.canary_route()), routing.to_yaml(httproutes.canary_rule()),
                   ("VirtualService route", "HTTPRoute rule")))

# %% [markdown]
# In the VirtualService the canary route had to come **first**. In the HTTPRoute the
# canary rule comes **last** (`httproutes.header_canary()`), and still wins: with one
# header match more than the plain `/findPets` rule, it ranks higher.

# %%
lab.apply(httproutes.header_canary())
CANARY = {"x-canary": "true"}
lab.wait_in_force(serves(kgateway + "/findPets", "v2", headers=CANARY))
for name, base in (("gloo", gloo), ("kgateway", kgateway)):
    print(f"{name:9} without: {sampling.curl(base + '/findPets')}")
    print(f"{name:9} with:    {sampling.curl(base + '/findPets', headers=CANARY)}")

# %% [markdown]
# ## Step 4: weights, then promote
#
# `backendRefs` carry relative weights (default 1, 0 means no traffic). At 50/50, about
# half of 400 requests should reach v2; the check allows 5 standard deviations.

# %%
lab.apply(httproutes.weighted(50))
lab.wait_in_force(serves(kgateway + "/petstore", {"v1", "v2"}))
print(routing.to_yaml(httproutes.weighted(50)["spec"]["rules"][2]))
n = 400
split = sampling.sample(kgateway, "/petstore", n=n)
v2 = int((split["version"] == "v2").sum())
print("every request answered 200:", set(split["status"]) == {200})
print("v2 share within 5 sigma of 50%:", abs(v2 - n / 2) <= 5 * (n / 4) ** 0.5)

# %%
lab.apply(httproutes.all_to_v2())
lab.wait_in_force(serves(kgateway + "/petstore", "v2"))
print(sampling.curl(kgateway + "/petstore"))

# %% [markdown]
# ## Step 5: the same two rules, different winners
#
# Two routes: everything (`/`) to v1, and exactly `/api/pets` to v2, written in that
# order in both APIs. Which one answers `/api/pets`?

# %%
catch_all = {"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": routing.upstream("v1")}}}
exact = {"matchers": [{"exact": "/api/pets"}], "routeAction": {"single": {"upstream": routing.upstream("v2")}}}
vs = routing.virtual_service([catch_all, exact])
route = httproutes.http_route([httproutes.rule(httproutes.path_match("PathPrefix", "/"), "v1"),
                               httproutes.rule(httproutes.path_match("Exact", "/api/pets"), "v2")])
lab.apply(vs, route)
lab.wait_in_force(serves(gloo + "/api/pets", "v1"))
lab.wait_in_force(serves(kgateway + "/api/pets", "v2"))
print("gloo:    ", sampling.curl(gloo + "/api/pets"))
print("kgateway:", sampling.curl(kgateway + "/api/pets"))

# %% [markdown]
# Gloo takes the first route that matches, the catch-all: v1. The Gateway API ranks an
# exact path above any prefix: v2. A VirtualService moved across as it is can send
# traffic elsewhere. `convert` turns a VirtualService into HTTPRoutes and warns about
# exactly this:

# %%
result = converting.convert(vs, lab.objects("upstreams"))
for warning in result.warnings:
    print(warning)

# %% [markdown]
# ## Step 6: convert the header canary
#
# The header canary of lesson 4 calls REST functions, which have no Gateway API
# equivalent. `convert` says so, and (given the discovered upstreams) which rewrite
# calls the same petstore path:

# %%
result = converting.convert(routing.header_canary(), lab.objects("upstreams"))
for warning in result.warnings:
    print(warning)

# %% [markdown]
# ## Exercise: the header canary through kgateway
#
# Make the kgateway gateway do what Gloo's header canary does: `GET /findPets` with
# `x-canary: true` answers the v2 pets, without it the v1 pets, and `/petstore` and
# `/findPetWithId/1` answer from v1. Start from `result.objects` and the warnings above,
# or from `httproutes.route_to_v1()` and a rule of your own. Stuck?
# `exercises.reset(7)` starts over.

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
# route = httproutes.route_to_v1()
# route["spec"]["rules"].append(httproutes.canary_rule())  # last: it still wins
# lab.apply(route)
# lab.wait_in_force(serves(kgateway + "/findPets", "v2", headers={"x-canary": "true"}))
# print(sampling.curl(kgateway + "/findPets", headers={"x-canary": "true"}))
# ```
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(7)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(7)

# %%
exercises.check(7)

# %% [markdown]
# ## Summary
#
# - A Gateway declares listeners; an HTTPRoute attaches to it through `parentRefs` and
#   sends matching requests to Services by weight.
# - The canary steps translate one to one, except REST functions: use `URLRewrite`.
# - The Gateway API ranks matches (exact path, longest prefix, method, most headers,
#   most query parameters); on a tie, the oldest route, then the first by
#   `namespace/name` in alphabetical order, then the first rule in the route's list.
#   A VirtualService takes the first route that matches.
# - `converting.convert` (`coalmine convert -f vs.yaml`) writes the HTTPRoutes and warns
#   about everything that does not carry across, route order included.
#
# Next: let a controller run the canary for you, measuring each step and rolling a bad
# release back on its own: [8. Automated canary analysis](08-automated-canary-analysis.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Gateway API: HTTPRoute](https://gateway-api.sigs.k8s.io/reference/api-types/httproute/)
# - [kgateway: traffic splitting](https://kgateway.dev/docs/envoy/latest/traffic-management/traffic-split/)
# - [kgateway: route delegation](https://kgateway.dev/docs/envoy/latest/traffic-management/route-delegation/overview/), what `convert` makes of a RouteTable
# - [Gloo Edge: canary releases](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/canary/)
