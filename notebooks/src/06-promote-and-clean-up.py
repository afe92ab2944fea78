# Source of notebooks/06-promote-and-clean-up.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 6. Promote and clean up
#
# v2 has handled half of the traffic without trouble. Now you **promote** it (all
# traffic to v2), **decommission** v1 without failing a single request, and learn how to
# **roll back** if v2 misbehaves after all. At the end you stop the lab.

# %% [markdown]
# ## What you will learn
#
# - how to promote v2 by sending every route to it;
# - why you promote first and delete v1 second, and how to measure that no request
#   failed;
# - how to roll back to v1;
# - how to stop the lab and every process it started.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [5. Weighted canary](05-weighted-canary.ipynb) | Necessary | measuring the split |
# | Threads | Helpful | Step 3 sends traffic from a background thread |
#
# **Time to learn**: 15 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: both versions run, the
# gateway is installed, and traffic is split 50/50 (`manifests/gloo/4-weighted-50-50.yaml`).
# It is safe to run again. `serves` is the probe for `lab.wait_in_force` (lesson 3).

# %%
from helpers import exercises, routing, sampling
from helpers.lessons.inforce import serves

lab = exercises.ensure(6)
gateway = lab.proxy_url()

# %% [markdown]
# ## Step 1: where we start
#
# Every route splits its traffic between v2 and v1 with equal weights; the `x-canary`
# route still pins v2.

# %%
print(lab.get("virtualservices")["ROUTES"][0])

# %% [markdown]
# ## Step 2: promote v2
#
# `routing.all_to_v2()` (the file `manifests/gloo/5-all-to-v2.yaml`) sends every route to
# v2 alone. The `x-canary` route is gone: it would pick the same version as the routes
# below it. v1 still runs, but gets no traffic, once the change is in force: on a
# cluster Envoy gets it a moment after `apply`, and `lab.wait_in_force` waits until only
# v2 answers. Deleting v1 before that would fail the requests still sent to it.

# %%
lab.apply(routing.all_to_v2())
lab.wait_in_force(serves(gateway + "/findPets", "v2"))
print(lab.get("virtualservices")["ROUTES"][0])

# %%
sampling.shares(sampling.sample(lab, "/findPets", n=200))

# %% [markdown]
# ## Step 3: decommission v1 while traffic flows
#
# Deleting v1 is safe only because no route sends traffic to it any more. To show that,
# send steady traffic (`Traffic`, 500 requests a second, in the background) and delete the
# `petstore-v1` Deployment while it flows; its pod stops. Then count the requests that
# did not answer `200`.

# %%
from helpers.live.traffic import Traffic

with Traffic(lab, rate=500) as traffic:
    traffic.wait_for_answers(200)       # traffic is flowing
    deleted = lab.delete(kind="deployment", name="petstore-v1")
    traffic.wait_for_answers(500)       # and goes on flowing after the delete
during = traffic.frame()

for line in deleted:
    print(line)
print("at least 700 requests:", len(during) >= 700)
print("all answered by v2:", bool((during["version"] == "v2").all()))
print("not 200:", int((during["status"] != 200).sum()))

# %% [markdown]
# No request failed. Only petstore v2 runs now:

# %%
lab.get("deployments")

# %% [markdown]
# The Service `petstore-v1`, and so its upstream, still exist, but with no endpoints.
# Had you deleted the Deployment while v1 still had weight 50, about half of the
# requests after the delete would have failed with `503`: the gateway would have
# picked v1 for them and found no pod to send them to.

# %%
lab.get("services")

# %% [markdown]
# ## Step 4: roll back
#
# Suppose v2 misbehaves after all. As long as v1 runs, rolling back is one apply of
# `routing.rollback()`, the routes of lesson 3. Here v1's pods are gone, so deploy v1
# again first (only its Deployment is created; the rest is unchanged), wait until it is
# ready, and then move the traffic back.

# %%
for line in lab.apply("../manifests/petstore-v1.yaml"):
    print(line)
lab.wait()
lab.apply(routing.rollback())
lab.wait_in_force(serves(gateway + "/findPets", "v1"))
print(lab.get("virtualservices")["ROUTES"][0])

# %%
sampling.shares(sampling.sample(lab, "/findPets", n=200))

# %% [markdown]
# This is why you keep the old version running for a while after a promotion: rolling
# back to a version that runs takes one apply, and redeploying takes longer.

# %% [markdown]
# ## Exercise: promote and decommission v1
#
# You are back on v1. Finish the release once more, in the safe order: send every route
# to v2, then delete all of v1 (its Deployment, Service and ConfigMap; `lab.delete`
# takes a manifest file, like `kubectl delete -f`). The check looks at the routes, the
# deployments, and `/petstore` through the gateway. Stuck? `exercises.reset(6)` starts
# over (at 50/50).

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
# lab.apply(routing.all_to_v2())                        # promote first
# lab.wait_in_force(serves(gateway + "/findPets", "v2"))  # v1 gets no traffic now
# lab.delete("../manifests/petstore-v1.yaml")           # then remove all of v1
# ```
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(6)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(6)

# %%
exercises.check(6)

# %% [markdown]
# ## Step 5: stop the lab
#
# `lab.down()` stops the gateway, the pods and the control plane, whichever notebook
# started them, and says what it did: no process of the lab is left. To start again
# from any lesson, run that lesson's set-up cell: it starts the lab and rebuilds the
# state the lesson needs.

# %%
print(lab.down())

# %% [markdown]
# ## Summary
#
# - Promote by sending every route to v2 (`routing.all_to_v2()`).
# - Delete v1 only after no route sends it traffic, and the change is in force
#   (`lab.wait_in_force`); measured under load, no request failed.
# - A Service without pods keeps its upstream, with no endpoints.
# - Roll back with `routing.rollback()`; it is one apply while v1 still runs.
# - `lab.down()` stops the lab and all of its processes.
#
# You have done a whole canary release: deploy, discover, route, canary by header,
# canary by weight, promote, decommission, and roll back. Next, the same canary with
# the Gateway API: [7. The Gateway API](07-gateway-api.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Canary releases with Gloo Edge](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/canary/)
# - [Configuration validation](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/configuration_validation/)
# - [Flagger: automated canary releases with Gloo Edge](https://docs.flagger.app/tutorials/gloo-progressive-delivery)
