# Source of notebooks/01-deploy-the-petstore.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 1. Deploy the petstore
#
# A canary release needs two versions of a service running at the same time. Here you
# deploy version 1 of a small pet store API and look at what runs, then deploy
# version 2 yourself. The two versions differ only in their data: v1 has two pets,
# v2 has three, each with the status `v2`.

# %% [markdown]
# ## What you will learn
#
# - how to apply Kubernetes manifests to the lab, as `kubectl apply -f` does;
# - how to read the pods and services as tables;
# - how to call one pod directly, without a gateway;
# - what the service's `/swagger.json` describes, which the gateway uses in lesson 2.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [0. Start here](00-start-here.ipynb) | Helpful | the environment check |
# | Deployment, Service, Pod | Helpful | explained briefly below |
#
# **Time to learn**: 10 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: the lab is running and
# nothing is deployed yet. It is safe to run again.

# %%
from helpers import exercises

lab = exercises.ensure(1)

# %% [markdown]
# `curl` from `helpers.live.sampling` stands in for the command: it sends one GET request
# and returns the body, with the status in front when the request failed.

# %%
import json

from helpers.live.sampling import curl

# %% [markdown]
# ## Step 1: apply petstore v1
#
# `manifests/petstore-v1.yaml` holds three objects: a ConfigMap with the app's code, a
# Service named `petstore-v1`, and a Deployment that runs one replica (one pod) of the
# app. `lab.apply` works like `kubectl apply -f`; `lab.wait` waits until the pods are
# ready.

# %%
for line in lab.apply("../manifests/petstore-v1.yaml"):
    print(line)
lab.wait()
print("petstore-v1 is ready")

# %% [markdown]
# ## Step 2: look at the pods and the service
#
# `lab.get(kind)` returns a table (a pandas DataFrame) with the columns of
# `kubectl get`. A pod's name is its Deployment's name, a hash of the pod template and
# a random suffix.

# %%
lab.get("pods")

# %% [markdown]
# A Service gives the pods one stable name. `ENDPOINTS` lists where it sends traffic: in
# the local lab each pod is a process listening on a port of 127.0.0.1.

# %%
lab.get("services")

# %% [markdown]
# ## Step 3: call v1 directly
#
# In a cluster you would `kubectl port-forward` to the pod. In the local lab the pod
# already listens on loopback, and its port is in the pod's status (`status.localPort`).
# Only a pod that runs and is ready answers: one that is starting, or shutting down
# (`Terminating`, with a `deletionTimestamp`), is skipped. The API lists the pets at
# `/api/pets`.

# %%
def pod_url(app):
    """The base URL of a running, ready pod whose label `app` is `app`."""
    for pod in lab.objects("pods"):
        ready = all(c["ready"] for c in pod["status"]["containerStatuses"])
        running = pod["status"]["phase"] == "Running" and "deletionTimestamp" not in pod["metadata"]
        if pod["metadata"]["labels"].get("app") == app and running and ready:
            return f"http://127.0.0.1:{pod['status']['localPort']}"
    raise LookupError(f"no running, ready pod of {app}: wait for it with lab.wait()")


v1_url = pod_url("petstore-v1")
print(curl(v1_url + "/api/pets"))

# %% [markdown]
# ## Step 4: read the API description
#
# The petstore describes its API in `/swagger.json` (OpenAPI 2.0). Each operation has an
# `operationId`; in lesson 2 Gloo turns these into REST functions you can route to.

# %%
swagger = json.loads(curl(v1_url + "/swagger.json"))
for path, operations in swagger["paths"].items():
    for method, operation in operations.items():
        print(f"{method.upper():7}{swagger['basePath'] + path:15}{operation['operationId']}")

# %% [markdown]
# ## Exercise: deploy petstore v2 yourself
#
# Deploy version 2 from `../manifests/petstore-v2.yaml`, wait for it, and call its pod
# directly with `pod_url("petstore-v2")`: it should list three pets, each with the
# status `v2`. Then run the check. If you get stuck, `exercises.reset(1)` puts the lab
# back to the start of the exercise.

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
# for line in lab.apply("../manifests/petstore-v2.yaml"):
#     print(line)
# lab.wait()
# print("v1:", curl(pod_url("petstore-v1") + "/api/pets"))
# print("v2:", curl(pod_url("petstore-v2") + "/api/pets"))
# ```
#
# </details>
#
# Both versions then run side by side, each behind its own Service.
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(1)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(1)

# %%
exercises.check(1)

# %% [markdown]
# ## Summary
#
# - `lab.apply(path)` applies manifests and `lab.wait()` waits for the pods.
# - `lab.get("pods")` and `lab.get("services")` show what runs, as tables.
# - A pod to call is one that runs and is ready, not one that is shutting down.
# - v1 answers with two pets, v2 with three; nothing routes between them yet.
# - `/swagger.json` names the API's operations: `findPets`, `findPetById`, `addPet`,
#   `deletePet`.
#
# Next: [2. Install Gloo and discover](02-install-gloo-and-discover.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Hello World: the petstore behind Gloo Edge](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/hello_world/)
# - [Installing Gloo Edge on Kubernetes](https://docs.solo.io/gloo-edge/latest/installation/gateway/kubernetes/)
# - [Kubernetes Deployments](https://kubernetes.io/docs/concepts/workloads/controllers/deployment/)
#   and [Services](https://kubernetes.io/docs/concepts/services-networking/service/)
