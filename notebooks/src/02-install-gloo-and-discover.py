# Source of notebooks/02-install-gloo-and-discover.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 2. Install Gloo and discover
#
# Gloo is the API gateway that will route traffic between the two versions. Before it
# routes anything, it **discovers**: for every Service port it creates an *Upstream*
# (a destination the gateway can send requests to), and it reads each service's
# `/swagger.json` to learn its REST functions.

# %% [markdown]
# ## What you will learn
#
# - how to install the gateway, as `glooctl install gateway` does;
# - how to list the discovered upstreams and their REST functions;
# - how Gloo names an upstream: `<namespace>-<service>-<port>`;
# - that a gateway without routes answers `404`.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [1. Deploy the petstore](01-deploy-the-petstore.ipynb) | Necessary | the set-up cell deploys it for you |
# | OpenAPI (Swagger) | Helpful | a JSON description of an HTTP API |
#
# **Time to learn**: 10 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: petstore v1 and v2 are
# deployed and ready, and the gateway is not installed yet. It is safe to run again.

# %%
from helpers import exercises, routing

lab = exercises.ensure(2)

# %% [markdown]
# `curl` from `helpers.live.sampling` stands in for the command: it sends one GET request
# and returns the body, with the status in front when the request failed.

# %%


from helpers.live.sampling import curl

# %% [markdown]
# ## Step 1: install the gateway
#
# `lab.install("gloo")` starts discovery and the gateway proxy, like
# `glooctl install gateway` in the post. `lab.wait()` returns when discovery has
# found the services and the proxy serves.

# %%
lab.install("gloo")
lab.wait()
print("discovery is done and the gateway serves")

# %% [markdown]
# ## Step 2: list the upstreams
#
# Discovery created one upstream per Service port, like `glooctl get upstreams`.
# `Accepted` means Gloo validated it and can route to it.

# %%
upstreams = lab.get("upstreams")
upstreams[["UPSTREAM", "TYPE", "STATUS"]]

# %% [markdown]
# ## Step 3: where the names come from
#
# An upstream's name is `<namespace>-<service>-<port>`: the Service `petstore-v1` in
# namespace `default`, port 8080, becomes `default-petstore-v1-8080`. Upstreams live in
# the `gloo-system` namespace. Routes refer to them by this name.

# %%
for upstream in lab.objects("upstreams"):
    kube = upstream["spec"]["kube"]
    print(f"namespace {kube['serviceNamespace']}, service {kube['serviceName']}, "
          f"port {kube['servicePort']}  ->  {upstream['metadata']['name']}")

# %% [markdown]
# `routing.upstream(version)` builds the reference that routes use in the next lessons:

# %%
routing.upstream("v1")

# %% [markdown]
# ## Step 4: the discovered REST functions
#
# Function discovery read each service's `/swagger.json` and stored one *transformation*
# per operation in the upstream, under `spec.kube.serviceSpec.rest`:

# %%
for upstream in lab.objects("upstreams"):
    rest = upstream["spec"].get("kube", {}).get("serviceSpec", {}).get("rest")
    if rest:  # only services that publish a swagger document have functions
        print(upstream["metadata"]["name"], sorted(rest["transformations"]))

# %% [markdown]
# A transformation is a request template. `findPetById` becomes a `GET` to `/api/pets/`
# followed by the parameter `id`: a route that calls this function supplies `id`, for
# example from the request path (lesson 3).

# %%
v1 = lab.objects("upstreams", "default-petstore-v1-8080")[0]
print(routing.to_yaml(v1["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]["findPetById"]))

# %% [markdown]
# ## Step 5: the gateway has no routes yet
#
# `lab.proxy_url()` is the gateway's address, like `glooctl proxy url`. Nothing tells
# the gateway where to send requests yet, so it answers `404`.

# %%
gateway = lab.proxy_url()
print(curl(gateway + "/petstore"))

# %% [markdown]
# ## Exercise: scale petstore v1 to 2 replicas
#
# Run petstore v1 with two pods: change `spec.replicas` of the `petstore-v1` Deployment
# to 2 and apply it. (`lab.apply` also takes dicts: `helpers.load_manifests` reads a
# file into a list of dicts you can change.) Then wait, and look at the pods, the
# service's endpoints and the upstreams. Stuck? `exercises.reset(2)` starts over.

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
# from helpers import load_manifests
#
# docs = load_manifests("../manifests/petstore-v1.yaml")  # a list of dicts
# for doc in docs:
#     if doc["kind"] == "Deployment":
#         doc["spec"]["replicas"] = 2
# lab.apply(docs)
# lab.wait()
# lab.get("pods")
# ```
#
# The service `petstore-v1` then has two endpoints (`lab.get("services")`), but there is
# still one upstream per service (`lab.get("upstreams")`): scaling changes where the
# upstream's traffic goes, not the upstreams.
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(2)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(2)

# %%
exercises.check(2)

# %% [markdown]
# ## Summary
#
# - `lab.install("gloo")` installs the gateway; discovery then runs on its own.
# - Each Service port becomes an upstream named `<namespace>-<service>-<port>`.
# - Function discovery turns the operations in `/swagger.json` into REST functions
#   (`findPets`, `findPetById`, ...) on the upstream.
# - Without a virtual service, the gateway answers `404`.
#
# Next: [3. Route to v1](03-route-to-v1.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Discovered upstreams](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/discovered_upstream/)
# - [Function discovery (FDS) modes](https://docs.solo.io/gloo-edge/latest/installation/advanced_configuration/fds_mode/)
# - [Installing Gloo Edge on Kubernetes](https://docs.solo.io/gloo-edge/latest/installation/gateway/kubernetes/)
# - [Gloo Edge concepts: upstreams, virtual services, functions](https://docs.solo.io/gloo-edge/latest/introduction/architecture/concepts/)
