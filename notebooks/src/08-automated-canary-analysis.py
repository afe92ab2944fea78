# Source of notebooks/08-automated-canary-analysis.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 8. Automated canary analysis
#
# In lessons 4 to 6 you were the canary controller: you moved the weight, looked at the
# numbers, and decided to promote or roll back. That is what a canary is for, and it is
# also why it fails in practice: a bad release at 3 a.m. gets a few percent of the
# traffic, and nobody is watching. **Flagger** automates the loop. Every interval it
# moves a step of traffic to the new version, *measures* it (success rate, latency) and
# promotes it when every step passed, or sends all traffic back to the old version as
# soon as the checks fail too often. You apply Flagger's own `Canary` object
# (`flagger.app/v1beta1`, provider `gloo`); the lab's canary controller runs it as
# Flagger would on a cluster.

# %% [markdown]
# ## What you will learn
#
# - what Flagger creates from a `Canary`: a primary Deployment, three Services, two
#   Upstreams and a RouteTable that a VirtualService delegates to;
# - the Canary's fields: `interval`, `threshold`, `stepWeight`, `maxWeight`, the
#   `metrics` with their thresholds, and the `webhooks` (load test and gates);
# - how a good version is promoted step by step, and a bad one rolled back on its own;
# - A/B testing by header with `iterations` and `match`, and the fallback route it needs;
# - a manual gate before promotion with `confirm-promotion`;
# - how to read a rollout in `lab.get("canaries")`, `lab.events()` and the live view.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [5. Weighted canary](05-weighted-canary.ipynb) | Necessary | weighted destinations, measured over many requests |
# | [6. Promote and clean up](06-promote-and-clean-up.ipynb) | Helpful | promotion and rollback by hand |
# | Kubernetes Deployments | Helpful | a change to the pod template is a new revision |
#
# **Time to learn**: 30 minutes (each rollout takes about half a minute).

# %% [markdown]
# ## Set up
#
# This cell starts the lesson from a clean lab: one Deployment `petstore` (v1), the
# Flagger load tester, Gloo, and the canary controller (`lab.install("flagger")`). A
# lab that ran a Canary before is emptied first. It is safe to run again.

# %%
from helpers import exercises, progressive, routing, sampling
from helpers.lessons.inforce import serves
from helpers.lessons.progressive import wait_for_clean_window
from helpers.live.progressive import CanaryWatch, apply_canary, follow_rollout, gate, wait_for_phase

lab = exercises.ensure(8)

# %% [markdown]
# ## Step 1: one Deployment, no Service yet
#
# With Flagger you deploy your application once, as a plain Deployment, and never touch
# the routing yourself. The lab runs `petstore` (v1) and `flagger-loadtester`, which
# Flagger's webhooks call to generate traffic and to hold gates:

# %%
lab.get("deployments")

# %% [markdown]
# ## Step 2: the Canary, field by field
#
# `progressive.canary()` is `manifests/flagger/canary.yaml`:

# %%
canary = progressive.canary()
print(routing.to_yaml(canary))

# %% [markdown]
# - `provider: gloo`: route with Gloo's RouteTables (on a cluster, Flagger's
#   `meshProvider`);
# - `targetRef`: the Deployment to analyse. Flagger watches its pod template: a change is
#   a new revision, and starts an analysis;
# - `service.port` / `targetPort`: the port of the Services Flagger creates, and the
#   container's port behind them;
# - `analysis.interval`: how often Flagger takes a step (2 s here so that you can watch a
#   whole rollout; Flagger's default is a minute);
# - `stepWeight` and `maxWeight`: each passed step gives the canary 10% more traffic, up
#   to 50%; the next passed step promotes it;
# - `threshold`: after this many failed checks, the canary is rolled back;
# - `metrics`: the checks. `request-success-rate` is the share of the canary's requests
#   that were not 5xx (at least 99%), `request-duration` their p99 latency (at most 500
#   ms), each over the last `interval` (15 s). Flagger's Gloo provider reads them from
#   Envoy's counters and latency histogram for the canary's Upstream, in PromQL
#   (`rate(...[15s])`): Flagger's Prometheus scrapes every 5 s and `rate` needs two
#   scrapes, so a window under 10 s finds no values on a cluster. The lab reads the
#   gateway's counters over the same window;
# - `webhooks`: `load-test-start` (type `pre-rollout`) asks the load tester to run `hey`
#   against the gateway before the first check, and `load-test` (type `rollout`, called
#   just before every check) starts it again whenever it has ended, so that the canary
#   gets traffic to measure even at night. A check that finds no traffic is a failed
#   check ("no values found"), so a load test started only by the `rollout` hook would
#   fail the first check of every rollout.
#
# Apply it and wait until Flagger has initialized it. The warning is about the 2 s
# interval: Flagger on a cluster runs an analysis every 10 s at the shortest (it raises
# shorter intervals to 10 s), the lab runs it as written. `apply_canary` is `lab.apply`, with
# the warnings in its lines only:

# %%
print(apply_canary(lab, canary))
wait_for_phase(lab, ["Initialized"])
lab.get("canaries", wide=True)

# %% [markdown]
# Flagger made a copy of `petstore` called `petstore-primary` that now serves, and scaled
# `petstore` itself to zero: from now on `petstore` is only the *candidate*. It also made
# the Services `petstore`, `petstore-primary` and `petstore-canary`, one Gloo Upstream
# for each side, and the RouteTable `petstore` whose one route sends 100% to the primary
# and 0% to the canary:

# %%
print(lab.get("deployments")[["NAME", "READY"]].to_string(index=False), end="\n\n")
print(lab.get("services")[["NAME", "TYPE", "PORT(S)"]].to_string(index=False), end="\n\n")
print(lab.get("upstreams", namespace="default")[["UPSTREAM", "STATUS"]].to_string(index=False), end="\n\n")
route = lab.objects("routetables", "petstore", "default")[0]["spec"]["routes"][0]
print(routing.to_yaml(route))

# %% [markdown]
# ## Step 3: delegate to the RouteTable
#
# Flagger owns the RouteTable; you own the VirtualService in front of it. Its one route
# hands everything under `/` to the table (`delegateAction`), which inherits the `/`
# prefix (`inheritablePathMatchers: true`). This is `manifests/flagger/virtualservice.yaml`.
# As in lesson 3, `lab.wait_in_force` waits until the gateway serves the new route before
# the sample (at once locally; a moment on a cluster):

# %%
vs = progressive.delegating_virtual_service()
print(routing.to_yaml(vs))
print(lab.apply(vs))
lab.wait_in_force(serves(lab.proxy_url() + "/api/pets", "v1"))
sampling.shares(sampling.sample(lab, "/api/pets", n=100))

# %% [markdown]
# A RouteTable also has a `weight` field. It does **not** split traffic: when a
# delegating route selects several tables (by label), `weight` only orders their routes,
# the lowest first. Traffic is split by the weighted destinations *inside* a route, which
# is what Flagger changes.
#
# ## Step 4: ship a good version
#
# `progressive.rollout("v2")` is the Deployment `petstore` with `VERSION=v2`
# (`manifests/flagger/rollout-good.yaml`). Applying it changes the pod template, so
# Flagger starts an analysis. `follow_rollout` prints each new phase, weight and failed
# check as it happens, until the rollout ends:

# %%
watch = CanaryWatch(lab)  # keeps what it sees, for the plot at the end
print(lab.apply(progressive.rollout("v2")))
good = follow_rollout(lab, watch=watch)
print(f"{good.phase} {good.seconds:.0f}s after the new version was applied")

# %% [markdown]
# Progressing: 10, 20, ... 50% while both checks passed; Promoting: the candidate's pod
# template copied into `petstore-primary`; Finalising: all traffic to the (new) primary;
# Succeeded. The primary answers with v2 now, and the candidate is scaled to zero again:

# %%
print(lab.get("deployments")[["NAME", "READY"]].to_string(index=False))
sampling.shares(sampling.sample(lab, "/api/pets", n=100))

# %% [markdown]
# ## Step 5: ship a bad version
#
# `manifests/flagger/rollout-bad.yaml` is v3 with `ERROR_RATE=0.3`: 30% of its answers
# are 500s. The analysis gives it 10% of the traffic, measures a success rate far below
# 99%, and after `threshold` failed checks sends everything back to the primary. How
# many steps it takes differs a little from run to run (a few requests can all succeed
# by chance), so this cell prints what always holds:

# %%
print(lab.apply("../manifests/flagger/rollout-bad.yaml"))
bad = follow_rollout(lab, watch=watch, say=None)
print(f"{bad.phase} {bad.seconds:.0f}s after the bad version was applied")
print("weight back on the primary:", bad.steps[-1].weight == 0)
print("failed checks on the way:", max(step.failed_checks for step in bad.steps), "· threshold: 2")

# %% [markdown]
# How much did the bad version cost? It answered only the requests the analysis sent its
# way until the rollback (`bad.canary_requests`, of which `bad.canary_errors` were 500s;
# the numbers differ from run to run), and the primary failed none meanwhile:

# %%
primary_requests, primary_errors = watch.requests("primary", since=watch.samples[-1].t - bad.seconds)
print("the bad version answered requests:", bad.canary_requests > 0, "· some were 500s:", bad.canary_errors > 0)
print("it answered fewer requests than the primary:", bad.canary_requests < primary_requests)
print("requests the primary failed meanwhile:", primary_errors)
sampling.shares(sampling.sample(lab, "/api/pets", n=100))

# %% [markdown]
# Flagger records every step as an event on the Canary, as `kubectl describe canary`
# shows them. The failed checks say what was measured (the rate differs from run to run,
# so the cell hides the number), and the last two events are the rollback:

# %%
events = lab.events("default")
halts = events[events["MESSAGE"].str.startswith("Halt")]["MESSAGE"].tail(2)
print(sorted(set(halts.str.replace(r"\d+\.\d+%", "…%", regex=True))))
print(events[["TYPE", "MESSAGE"]].tail(2).to_string(index=False))

# %% [markdown]
# ## Step 6: A/B testing by header
#
# Some releases should reach chosen users first (testers, a beta group) rather than a
# random share of everyone. `progressive.ab_canary()` replaces `stepWeight`/`maxWeight`
# with `match` (requests with `x-canary: insider`) and `iterations` (5 intervals of
# checks, then promotion); its load test sends the header. Add a gate to it (Step 7):

# %%
ab = progressive.with_webhook(progressive.ab_canary(), progressive.gate())
print(routing.to_yaml({"analysis": ab["spec"]["analysis"]}))
print(apply_canary(lab, ab))

# %% [markdown]
# Ship v3 again, fixed this time (`progressive.rollout("v3")`). Not at once, though:
# each check looks back 15 s, so the bad version's 500s stay in the canary's window
# for 15 s after the rollback, and a release shipped sooner would be judged partly on
# them (with Flagger on a cluster too). `wait_for_clean_window` waits until the canary
# has answered nothing for a whole window. Once the A/B test runs, the RouteTable's
# only route carries the header matcher:

# %%
waited = wait_for_clean_window(lab)
print(lab.apply(progressive.rollout("v3")))
wait_for_phase(lab, ["Progressing"], iterations=1)
print(routing.to_yaml(lab.objects("routetables", "petstore", "default")[0]["spec"]["routes"][0]["matchers"]))

# %% [markdown]
# Insiders reach the candidate. Everyone else matches *nothing* in the table, and a
# request that matches no route gets a 404. Gloo puts a table's routes in place of the
# route that delegates to it, so the fix is a second route in the VirtualService, after
# the delegating one, that sends the rest to the primary's Upstream
# (`delegating_virtual_service(fallback=True)`):


# %%
def answers(**headers):
    """Who answered 50 requests: the versions, or the HTTP status of the failures."""
    df = sampling.sample(lab, "/api/pets", n=50, headers=headers)
    return sorted({str(v) if v else f"HTTP {s}" for v, s in zip(df["version"], df["status"], strict=True)})


print("insiders:", answers(**{"x-canary": "insider"}))
print("everyone else:", answers())
print(lab.apply(progressive.delegating_virtual_service(fallback=True)))
print("everyone else, with the fallback route:", answers())

# %% [markdown]
# ## Step 7: a manual gate before promotion
#
# The `confirm-promotion` webhook is asked before the promotion. Pointed at the load
# tester's `/gate/check`, it holds the rollout once the checks are done (phase
# `WaitingPromotion`, the checks still running) until someone opens the gate: here,
# until the insiders are happy with v3.

# %%
held = follow_rollout(lab, watch=watch, until=["WaitingPromotion"], say=None)
print(held.phase, "· insiders:", answers(**{"x-canary": "insider"}), "· everyone else:", answers())

# %% [markdown]
# Open the gate (what `curl -d '{"name": "petstore", "namespace": "default"}'
# http://flagger-loadtester.default/gate/open` does on a cluster), let the promotion
# finish, and close the gate again for the next release:

# %%
print(gate(lab, "open"))
promoted = follow_rollout(lab, watch=watch, say=None)
print(" -> ".join(dict.fromkeys(step.phase for step in promoted.steps)))
print(gate(lab, "close"))
print("insiders:", answers(**{"x-canary": "insider"}), "· everyone else:", answers())

# %% [markdown]
# ## Step 8: watch it live
#
# Everything above, on one figure: the canary's weight with the step targets and the
# failed checks (×), and the success rate and p99 latency of each side against the
# thresholds (dashed):

# %%
from helpers.live.progressive_view import ProgressiveView, RolloutPlot

plot = RolloutPlot()
plot.update(watch, marks=True)
plot

# %% [markdown]
# The live view draws the same figure every second, with the latest events, and has
# buttons to ship the good or the bad version and to open or close the gate. Click
# **ship bad** and watch the rollback; click **ship good (v2)** and watch the steps.

# %%
view = ProgressiveView(lab)
view

# %%
view.stop()

# %% [markdown]
# ## Step 9: the exercise's Canary
#
# `exercises.reset(8)` starts the lab again with a Canary that checks **only** the
# success rate. A version that answers every request, slowly, passes it:
# `manifests/flagger/rollout-slow.yaml` (v3 with `LATENCY_MS=1000`) would be promoted.

# %%
exercises.reset(8)
metrics = lab.objects("canaries", "petstore", "default")[0]["spec"]["analysis"]["metrics"]
print(routing.to_yaml(metrics))
print("only progressive.success_rate():", metrics == [progressive.success_rate()])
print("the lesson's Canary also had progressive.duration():", progressive.duration())

# %% [markdown]
# ## Exercise: catch the slow version
#
# Change the Canary so that its analysis rolls the slow version back while a healthy
# version still passes: add a `request-duration` check (`progressive.duration(...)`, a
# maximum p99 in milliseconds). Then ship `manifests/flagger/rollout-slow.yaml` and
# follow the rollout. The check passes when the slow version was rolled back by your
# check. Stuck? `exercises.reset(8)` starts over.

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
# apply_canary(lab, progressive.canary(metrics=[progressive.success_rate(), progressive.duration(500)]))
# lab.apply("../manifests/flagger/rollout-slow.yaml")
# follow_rollout(lab)
# ```
#
# Any maximum from 50 ms to below 1000 ms works: the petstore answers in a few
# milliseconds, the slow version in a second.
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(8)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(8)

# %%
exercises.check(8)

# %% [markdown]
# ## Summary
#
# - A canary exists to *measure* a new version on a little real traffic before everyone
#   gets it; Flagger does the measuring, stepping, promoting and rolling back for you.
# - From a `Canary`, Flagger's Gloo provider makes `<name>-primary`, the Services
#   `<name>`, `<name>-primary`, `<name>-canary`, two Upstreams and the RouteTable
#   `<name>`; your VirtualService delegates to that table.
# - A new pod template starts an analysis: `stepWeight` more traffic every `interval`
#   while the `metrics` pass, promotion after `maxWeight`, rollback after `threshold`
#   failed checks. A check with no traffic is a failed check too.
# - `match` + `iterations` turn the canary into an A/B test by header; add a route after
#   the delegating one for the requests without the header.
# - `confirm-promotion` (and the other gates) hold a rollout until the load tester's gate
#   is opened.
# - A RouteTable's `weight` orders tables; it does not split traffic.
#
# `coalmine demo --progressive` runs the good and the bad rollout headless and saves
# the plot.
#
# Next: [9. Progressive delivery with the Gateway API and PromQL](09-progressive-delivery-gateway-api-promql.ipynb):
# the same Canary on kgateway, and checks of your own written in PromQL.

# %% [markdown]
# ## Learn more
#
# - [Delegation with RouteTables](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/delegation/)
# - [Flagger: Gloo canary deployments](https://docs.flagger.app/tutorials/gloo-progressive-delivery)
# - [Flagger: how it works](https://docs.flagger.app/usage/how-it-works) and
#   [deployment strategies](https://docs.flagger.app/usage/deployment-strategies)
# - [Flagger: webhooks and gates](https://docs.flagger.app/usage/webhooks)
