# Source of notebooks/05-weighted-canary.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 5. Weighted canary
#
# The header canary reaches only those who ask for it. The next step sends a share of
# **all** traffic to v2: first 10%, then half. The gateway picks a destination for each
# request at random, in proportion to the weights, so you measure the split over many
# requests.

# %% [markdown]
# ## What you will learn
#
# - how weighted destinations (`multi`) split the traffic of one route;
# - how to measure the split by sending many requests and counting who answered;
# - how close to the weights a measured split should be;
# - how to plot the split as it settles;
# - how to steer the canary live, with a slider, while traffic flows.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [4. Header canary](04-header-canary.ipynb) | Necessary | the x-canary route stays first |
# | pandas DataFrames | Helpful | the measurements are tables |
#
# **Time to learn**: 20 minutes.

# %% [markdown]
# ## Set up
#
# This cell puts the lab in the state this lesson starts from: both versions run, the
# gateway is installed, and the virtual service is the header canary
# (`manifests/gloo/2-header-canary.yaml`). It is safe to run again. `serves` is the
# probe for `lab.wait_in_force` (lesson 3: on a cluster a route change reaches Envoy a
# moment after `apply`).

# %%
from helpers import exercises, routing, sampling
from helpers.lessons.inforce import serves

lab = exercises.ensure(5)
gateway = lab.proxy_url()

# %% [markdown]
# ## Step 1: measure the split
#
# `sampling.sample` sends `n` requests through the gateway at a steady rate (1000 a
# second), and records for each which version answered (v2's pets have the status `v2`), the HTTP
# status and the latency. `sampling.shares` counts them per version. Without the header,
# every request goes to v1:

# %%
sampling.shares(sampling.sample(lab, "/findPets", n=200))

# %% [markdown]
# With the header, every request goes to v2:

# %%
sampling.shares(sampling.sample(lab, "/findPets", n=200, headers={"x-canary": "true"}))

# %% [markdown]
# ## Step 2: send 10% to v2
#
# `routing.weighted(10)` gives every route a `multi` action with two weighted
# destinations: v2 with weight 10 and v1 with weight 90. Each destination gets its weight
# divided by the sum of the weights. The `x-canary` route stays first, so testers can
# still pin v2. Here is the `/findPets` route:

# %%
vs = routing.weighted(10)
find_pets = vs["spec"]["virtualHost"]["routes"][2]
print(routing.to_yaml(find_pets))

# %%
lab.apply(vs)
lab.wait_in_force(serves(gateway + "/findPets", {"v1", "v2"}))  # v2 answers too now
print(lab.get("virtualservices")["ROUTES"][0])

# %% [markdown]
# ## Step 3: measure the 10/90 split
#
# Sample 1000 requests. The numbers change from run to run, since each request is a
# random draw.

# %%
# NBVAL_IGNORE_OUTPUT
# (a random split: the next cell checks it against the weights)
ten = sampling.sample(lab, "/findPets", n=1000)
sampling.shares(ten)

# %% [markdown]
# How close is close enough? With `n` requests and a weight share `p`, the count that
# goes to v2 varies by about `sqrt(n·p·(1-p))` requests (one standard deviation). A
# correct split lands within 5 standard deviations almost always (a false alarm about
# once in 1.7 million runs):

# %%
import math


def within_tolerance(df, version, percent, sigmas=5):
    """True when the share of requests that `version` answered is within `sigmas`
    standard deviations of `percent` %."""
    n, p = len(df), percent / 100
    share = (df["version"] == version).mean()
    return abs(share - p) <= sigmas * math.sqrt(p * (1 - p) / n)


print("every request answered 200:", bool((ten["status"] == 200).all()))
print("v2 share within tolerance of 10%:", within_tolerance(ten, "v2", 10))

# %% [markdown]
# ## Step 4: half and half
#
# The next step of the rollout is the file `manifests/gloo/4-weighted-50-50.yaml`, which
# is `routing.weighted(50)`. Apply it declaratively and measure again.
#
# A probe cannot tell 10% from 50% in a few requests (both versions answered before
# too), so the wait below proves little here; the sample of 1000 after it does.

# %%
print(lab.apply("../manifests/gloo/4-weighted-50-50.yaml"))
lab.wait_in_force(serves(gateway + "/findPets", {"v1", "v2"}))
applied = lab.objects("virtualservices", "coalmine")[0]
print("same routes as routing.weighted(50):", applied["spec"] == routing.weighted(50)["spec"])

# %%
# NBVAL_IGNORE_OUTPUT
# (a random split: the next cell checks it against the weights)
half = sampling.sample(lab, "/findPets", n=1000)
sampling.shares(half)

# %%
print("every request answered 200:", bool((half["status"] == 200).all()))
print("v2 share within tolerance of 50%:", within_tolerance(half, "v2", 50))

# %% [markdown]
# ## Step 5: plot the split
#
# The running share of v2 after each request: noisy at first, it settles near the
# weight as the requests add up. The dashed lines are the weights.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(8, 4))
for df, percent in ((ten, 10), (half, 50)):
    running = (df["version"] == "v2").cumsum() / (df["request"] + 1)
    line, = ax.plot(df["request"] + 1, running * 100, label=f"v2 weight {percent}, v1 weight {100 - percent}")
    ax.axhline(percent, linestyle="--", color=line.get_color())
ax.set_xlabel("requests sent")
ax.set_ylabel("share answered by v2 (%)")
ax.set_ylim(0, 100)
ax.legend()
plt.show()

# %% [markdown]
# ## Step 6: steer it live
#
# The dashboard sends steady traffic through the gateway (100 requests a second to
# `/findPets`; one in five carries `x-canary: true`) and redraws twice a second what it
# measures. Its controls apply real route changes:
#
# - **v2 weight (%)** applies `routing.canary(weight)`, the weighted VirtualService you
#   applied above, when you let go of the slider;
# - **header canary** keeps or drops the `x-canary` route;
# - **Promote** sends everything to v2, **Roll back** everything to v1;
# - **traffic (req/s)** and **traffic on** change or pause the traffic.
#
# The VirtualService on the right is the one applied, whoever applied it: a change from
# a cell (`lab.apply`) shows up in the controls within a second. The dashed line is the
# share of requests v2 should answer: the weight, plus the requests that carry the
# header while the header canary is on (a fifth of them go to v2 whatever the weight).
# Move the slider to 0, then to 50, and watch the orange v2 band follow the dashed
# line within a second or two. If the kernel restarts, the dashboard says that its
# controls no longer work: run this cell again.

# %%
from helpers.live.dashboard import Dashboard

dash = Dashboard(lab, rate=100)
dash

# %% [markdown]
# ## Step 7: the same, from code
#
# `dash.set_weight(0)` moves the slider as your mouse would. With weight 0, only the
# requests that carry the header reach v2. Wait until the change is in force, then for
# 200 more answers, and count the answers to the requests sent after the change:

# %%
def after_the_change(dash, answers=200):
    """The requests sent after the last route change, once `answers` more have come back."""
    since = dash.control.last_apply["applied_s"]
    dash.traffic.wait_for_answers(answers)
    frame = dash.traffic.frame()
    return frame[frame["sent_s"] > since]


def v2_shares(frame):
    plain, canary = frame[~frame["canary"]], frame[frame["canary"]]
    print(f"requests without the header answered by v2: {(plain['version'] == 'v2').mean():.0%}")
    print(f"requests with x-canary: true answered by v2: {(canary['version'] == 'v2').mean():.0%}")


dash.set_weight(0)
lab.wait_in_force(serves(gateway + "/findPets", "v1"))
print(dash.control.describe())
v2_shares(after_the_change(dash))

# %% [markdown]
# **Promote** sends every request to v2, with or without the header:

# %%
dash.promote_button.click()
lab.wait_in_force(serves(gateway + "/findPets", "v2"))
print(dash.control.describe())
v2_shares(after_the_change(dash))

# %% [markdown]
# **Roll back** sends everything to v1 and drops the header route, so even testers
# who send `x-canary: true` get v1:

# %%
dash.rollback_button.click()
lab.wait_in_force(serves(gateway + "/findPets", "v1", headers={"x-canary": "true"}))
print(dash.control.describe())
v2_shares(after_the_change(dash))

# %% [markdown]
# The dashboard follows route changes made anywhere. Apply a 30/70 split from this cell:
# the slider, the dashed line, the message and the YAML take it up. `dash.sync()` reads
# the routes at once (the dashboard does it by itself every half second):

# %%
lab.apply(routing.weighted(30))
lab.wait_in_force(serves(gateway + "/findPets", {"v1", "v2"}))
dash.sync()
print(dash.control.describe())
print("slider:", dash.weight.value, "· header canary:", dash.header.value)
print(f"v2 should answer {dash.control.expected():.0f}% of the requests: 30% of those without the header, all with it")

# %% [markdown]
# Stop the traffic when you are done (the **traffic on** button starts it again):

# %%
dash.stop()
print("traffic running:", dash.traffic.running)

# %% [markdown]
# ## Exercise: 25% to v2
#
# Send 25% of the traffic to v2 and 75% to v1, on every weighted route. Keep the
# `x-canary` route first. The check looks at the weights and then samples 400 requests.
# Stuck? `exercises.reset(5)` starts over (at 10/90).

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
# lab.apply(routing.weighted(25))
# ```
#
# If the dashboard above still runs, its slider moves to 25 within a second: it reads
# the routes that are applied, whoever applied them.
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(5)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(5)

# %%
exercises.check(5)

# %% [markdown]
# ## Summary
#
# - A `multi` route action splits one route's traffic by weight; a destination gets its
#   weight divided by the sum of the weights.
# - A split is random per request: measure it over many requests and compare with a
#   tolerance, not with an exact number.
# - `routing.weighted(10)` and `routing.weighted(50)` are the files
#   `3-weighted-10-90.yaml` and `4-weighted-50-50.yaml` in `manifests/gloo/`.
# - The dashboard applies the same VirtualServices from a slider and buttons, and shows
#   within a second or two what the traffic does; `coalmine demo` runs the whole rollout
#   headless and saves the same plot.
#
# Next: [6. Promote and clean up](06-promote-and-clean-up.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Multiple destinations with weights](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/multi_destination/)
# - [Upstream groups](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/upstream_groups/)
# - [Canary releases with Gloo Edge](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/canary/)
