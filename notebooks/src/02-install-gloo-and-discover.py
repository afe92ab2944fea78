# Source of notebooks/02-install-gloo-and-discover.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 2. Install Gloo and discover
#
# Gloo is the API gateway that will route traffic between the two versions. Before it
# routes anything, it **discovers**: for every Service port it creates an *Upstream*
# (a destination the gateway can send requests to), and for the Services labelled for
# it, it reads their `/swagger.json` to learn their REST functions. Discovery is off in
# a plain install of Gloo 1.22; the lab turns it on.

# %% [markdown]
# ## What you will learn
#
# - how to install the gateway with discovery on, and what a plain install does instead;
# - how to list the discovered upstreams and their REST functions;
# - how Gloo names an upstream: `<namespace>-<service>-<port>`;
# - which Services function discovery reads: those labelled
#   `discovery.solo.io/function_discovery=enabled`;
# - that a gateway without any virtual service opens no listener: the connection is refused.

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
# `lab.install("gloo")` starts discovery and the gateway proxy. `lab.wait()` returns
# when discovery has found the services and the proxy is up.
#
# The post ran `glooctl install gateway`. Since Gloo 1.20 a plain install (Helm chart
# 1.22.1 defaults) has **discovery off**: no Upstream is created for you, and you would
# write each one yourself. The lab installs Gloo with discovery on, in Gloo's
# `WHITELIST` function-discovery mode (the chart's default mode), which is what
# `helpers/backends/kube/gloo.py` passes to Helm on a cluster:
#
# ```yaml
# discovery:
#   enabled: true        # the chart's default is false
#   fdsMode: WHITELIST   # read /swagger.json only where a label asks for it
# ```

# %%
lab.install("gloo")
lab.wait()
print("discovery is done and the gateway is installed")

# %% [markdown]
# ## Step 2: list the upstreams
#
# Discovery created one upstream per Service port, like `glooctl get upstreams`.
# `Accepted` means Gloo validated it and can route to it.
#
# On a cluster, discovery makes an upstream for **every** Service port in the namespaces
# it watches, so the list also holds `default-kubernetes-443`,
# `kube-system-kube-dns-53`, `gloo-system-gateway-proxy-80` and more. This cell keeps
# only the petstore's, so that it shows the same rows on every backend.
#
# > **Local lab:** the local lab has no Services but the ones you applied, so here the filter removes nothing.

# %%
upstreams = lab.get("upstreams")
petstore = upstreams[upstreams["UPSTREAM"].str.startswith("default-petstore-")]
petstore[["UPSTREAM", "TYPE", "STATUS"]]

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
# In `WHITELIST` mode, function discovery reads `/swagger.json` only from Services (or
# namespaces) labelled `discovery.solo.io/function_discovery=enabled`. Both petstore
# Services carry that label in their manifests:

# %%
for service in lab.objects("services"):
    labels = service["metadata"].get("labels") or {}
    print(service["metadata"]["name"], "discovery.solo.io/function_discovery =",
          labels.get("discovery.solo.io/function_discovery"))

# %% [markdown]
# > **Local lab:** local function discovery reads the `/swagger.json` of every Service, labelled or not; on a cluster, an unlabelled Service gets no functions.
#
# For each labelled service, function discovery read its `/swagger.json` and stored one
# *transformation* per operation in the upstream, under `spec.kube.serviceSpec.rest`:

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
# ## Step 5: no virtual service, no listener
#
# `lab.proxy_url()` is the gateway's address, like `glooctl proxy url`. No virtual
# service exists yet, and Gloo translates a gateway without virtual services into
# nothing (the setting `translateEmptyGateways` is false by default): Envoy opens **no
# listener**, so the connection is refused. It is not a `404`: nothing answers at all.
# Once the first virtual service exists (lesson 3), the gateway listens, and a request
# that no route matches gets `404`.

# %%
gateway = lab.proxy_url()
try:
    print(curl(gateway + "/petstore"))
except OSError as error:  # urllib's URLError: no HTTP answer at all
    print("no answer:", getattr(error, "reason", error))

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
# - `lab.install("gloo")` installs the gateway with discovery on (a plain Gloo 1.22
#   install has it off); discovery then runs on its own.
# - Each Service port becomes an upstream named `<namespace>-<service>-<port>`; on a
#   cluster that is every Service port of the watched namespaces.
# - Function discovery turns the operations in `/swagger.json` into REST functions
#   (`findPets`, `findPetById`, ...) on the upstream, for Services labelled
#   `discovery.solo.io/function_discovery=enabled`.
# - Without a virtual service, the gateway has no listener: the connection is refused.
#
# Next: [3. Route to v1](03-route-to-v1.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Discovered upstreams](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/discovered_upstream/)
# - [Function discovery (FDS) modes](https://docs.solo.io/gloo-edge/latest/installation/advanced_configuration/fds_mode/)
# - [Installing Gloo Edge on Kubernetes](https://docs.solo.io/gloo-edge/latest/installation/gateway/kubernetes/)
# - [Gloo Edge's Helm chart values](https://docs.solo.io/gloo-edge/latest/reference/helm_chart_values/open_source_helm_chart_values/) (`discovery.enabled`, `gateway.translateEmptyGateways`)
# - [Gloo Edge concepts: upstreams, virtual services, functions](https://docs.solo.io/gloo-edge/latest/introduction/architecture/concepts/)
