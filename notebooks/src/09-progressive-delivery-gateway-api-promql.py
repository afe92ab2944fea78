# Source of notebooks/09-progressive-delivery-gateway-api-promql.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 9. Progressive delivery with the Gateway API and PromQL
#
# Lesson 8 ran Flagger's analysis on Gloo Edge with its two built-in checks. This lesson
# moves the same Canary to **kgateway** (`provider: gatewayapi:v1`), where Flagger steers
# an HTTPRoute, and writes a check of its own in **PromQL**, the query language of
# Prometheus, in which most real canary checks are written. The built-in checks compare
# one number with a fixed threshold; a query can compare the canary with the primary,
# and so catch a release that is worse without breaking any fixed limit.

# %% [markdown]
# ## What you will learn
#
# - the Canary with `provider: gatewayapi:v1`, and the HTTPRoute Flagger makes from it;
# - how a gateway shows its metrics to Prometheus: Envoy's counters and latency
#   histogram per cluster, in Prometheus's text format;
# - Flagger's `MetricTemplate`: a PromQL query with `{{ namespace }}`, `{{ target }}` and
#   `{{ interval }}`, used by a Canary metric through `templateRef`;
# - a release that passes the built-in checks and fails a PromQL check;
# - what happens to a template check when Prometheus cannot be reached.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | [8. Automated canary analysis](08-automated-canary-analysis.ipynb) | Necessary | the Canary, its steps and checks |
# | [7. The Gateway API](07-gateway-api.ipynb) | Helpful | Gateways and HTTPRoutes |
# | Prometheus | Helpful | counters, `rate()`, histograms |
#
# **Time to learn**: 25 minutes (each rollout takes about half a minute).

# %% [markdown]
# ## Set up
#
# This cell starts the lesson from a clean lab: kgateway with the Gateway
# `kgateway-system/http` (`manifests/gateway-api/0-gateway.yaml`), the canary controller,
# the Deployment `petstore` (v1), the Flagger load tester and, where this machine has
# one, a real **Prometheus** server (`lab.install("prometheus")`) that scrapes every
# gateway of the lab each second. `make prometheus` (or `sudo apt-get install
# prometheus`) installs it; without it, the cells that need it say below what changes,
# and everything else runs the same. It is safe to run again.

# %%
from helpers import exercises, progressive, routing, sampling
from helpers.lessons import promql
from helpers.live.progressive import apply_canary, follow_rollout, wait_for_phase

lab = exercises.ensure(9)
GATEWAY = "kgateway-system/http"

# %% [markdown]
# ## Step 1: the Canary on kgateway
#
# The Canary of lesson 8 needs two changes for the Gateway API: `provider:
# gatewayapi:v1`, and `service.gatewayRefs`, the Gateway the route attaches to. The
# load test goes through that Gateway's Service. This is
# `manifests/flagger/gatewayapi/canary.yaml`:

# %%
canary = progressive.canary(provider="gatewayapi:v1", gateway=GATEWAY)
print(routing.to_yaml({"provider": canary["spec"]["provider"], "service": canary["spec"]["service"]}))
print(canary["spec"]["analysis"]["webhooks"][0]["metadata"]["cmd"])

# %% [markdown]
# Apply it and wait until Flagger has initialized it. There is no VirtualService and no
# RouteTable to write this time: Flagger makes the HTTPRoute `petstore` itself, one rule
# that sends every request to the Services `petstore-primary` and `petstore-canary`,
# weighted 100/0:

# %%
print(apply_canary(lab, canary))
wait_for_phase(lab, ["Initialized"])
route = lab.objects("httproutes", "petstore", "default")[0]
print(routing.to_yaml(route["spec"]))

# %% [markdown]
# Flagger owns this route (it is the Canary's): it rewrites the two `weight`s at each
# step. A rule with no `matches` takes every path (`PathPrefix /`), so the Gateway
# serves the petstore's API:

# %%
pets = sampling.sample(lab.proxy_url(gateway=GATEWAY), "/api/pets", n=50)
print(sorted(set(pets["version"].tolist())), sorted(set(pets["status"].tolist())))

# %% [markdown]
# ## Step 2: ship a good version
#
# The same rollout as in lesson 8, `progressive.rollout("v2")`. Each step moves the two
# weights of the HTTPRoute; the built-in checks read what the Gateway sent to the
# `petstore-canary` Service:

# %%
print(lab.apply(progressive.rollout("v2")))
good = follow_rollout(lab, say=None)
print(" -> ".join(dict.fromkeys(step.phase for step in good.steps)))
print("weights seen:", sorted({step.weight for step in good.steps} - {0}))
weights = lab.objects("httproutes", "petstore", "default")[0]["spec"]["rules"][0]["backendRefs"]
print({ref["name"]: ref["weight"] for ref in weights})

# %% [markdown]
# ## Step 3: the Gateway's metrics in Prometheus's format
#
# A real gateway is Envoy, and Envoy counts every request per *cluster* (one per
# Service it sends to). Its admin page `/stats/prometheus` shows the counters in
# Prometheus's text format, and Prometheus scrapes that page every few seconds. Each
# gateway of the lab serves the same page, with Envoy's names; `lab.stats_url(gateway)`
# is where (`coalmine proxy stats-url --gateway kgateway-system/http`; the lab's token
# opens it). `promql.scrape` reads it and parses it with `prometheus_client`'s
# `text_string_to_metric_families`, as Prometheus would. The page declares each
# metric's type:

# %%
before = promql.scrape(lab, GATEWAY)
print("\n".join(before.types()))

# %% [markdown]
# - `envoy_cluster_upstream_rq`: requests per cluster and status code
#   (`envoy_cluster_name`, `envoy_response_code`), a counter: it only grows;
# - `envoy_cluster_upstream_rq_total`: all the requests of a cluster;
# - `envoy_cluster_upstream_rq_time`: a histogram of their latency in milliseconds:
#   `_bucket{le="25"}` counts the requests answered within 25 ms, `_sum` and `_count`.
#
# kgateway names the cluster of a Service `kube_<namespace>_<service>_<port>`, so
# the primary's is `kube_default_petstore-primary_80`. From the parsed families, the
# requests per status code of each side: so far both answered only 200s (the counts
# grow while the load test runs, so the cell shows which codes):

# %%
for role in promql.ROLES:
    codes = before.requests_by_code(role)
    print(role, sorted(code for code, n in codes.items() if n > 0))

# %% [markdown]
# Prometheus keeps each scrape as a *sample*. `rate(x[15s])` is how fast the counter
# `x` grew per second over the last 15 s (it needs at least two samples in the window),
# and `histogram_quantile(0.95, sum(rate(..._bucket[15s])) by (le))` the 95th
# percentile latency of the requests in that window. Flagger's built-in checks are such
# queries; this is why a metric's `interval` must span at least two scrapes.
#
# ## Step 4: a check in PromQL
#
# Flagger's `MetricTemplate` is a query with placeholders that Flagger fills in for each
# check: `{{ namespace }}` and `{{ target }}` (the Canary's namespace and Deployment) and
# `{{ interval }}` (the metric's). This one,
# `manifests/flagger/gatewayapi/latency-regression.yaml` (`progressive.latency_regression()`),
# is how many milliseconds the canary's p95 is above the primary's:

# %%
template = progressive.metric_template("latency-regression", progressive.LATENCY_REGRESSION_QUERY)
print(routing.to_yaml({k: template[k] for k in ("kind", "metadata")}))
print(template["spec"]["provider"])
print(template["spec"]["query"])

# %% [markdown]
# A Canary metric uses it with `templateRef`, and its `thresholdRange` applies to the
# query's number. The lesson's Canary keeps both built-in checks and adds this one: the
# canary's p95 may be at most 100 ms above the primary's.

# %%
metric = progressive.template_metric("latency-regression", maximum=100)
print(routing.to_yaml(metric))
print(lab.apply(template))
print(apply_canary(lab, progressive.with_metrics(canary, [progressive.success_rate(), progressive.duration(), metric])))

# %% [markdown]
# ## Step 5: a release the built-in checks let through
#
# `manifests/flagger/gatewayapi/rollout-regression.yaml` is v3 with `LATENCY_MS=150`:
# every answer is right, 150 ms late. The built-in `request-duration` (p99 at most
# 500 ms) passes it, and a fixed limit low enough to catch it would be tuned to this one
# app's speed. Compared with the primary, it is obviously worse. Ship it:

# %%
before = promql.scrape(lab, GATEWAY)
print(lab.apply("../manifests/flagger/gatewayapi/rollout-regression.yaml"))
regression = follow_rollout(lab, say=None)
print(regression.phase, "· weight back on the primary:", regression.steps[-1].weight == 0)
failed = [m for m in lab.events("default")["MESSAGE"] if m.startswith(("Halt", "Metric"))][-2:]
print("every failed check was latency-regression's:", all("latency-regression" in m for m in failed))

# %% [markdown]
# Why the built-in checks let it through: between the two scrapes, the canary's
# requests (all of them v3's) had a p99 well under request-duration's 500 ms, and no
# errors; but their p95 was more than 100 ms above the primary's. These are the numbers
# the queries compute, here straight from the two scrapes:

# %%
after = promql.scrape(lab, GATEWAY)
p99 = promql.quantile_between(before, after, "canary", 0.99)
p95 = {role: promql.quantile_between(before, after, role, 0.95) for role in promql.ROLES}
print("built-in request-duration would pass (canary p99 <= 500 ms):", p99 is not None and p99 <= 500)
print("latency-regression fails (canary p95 - primary p95 > 100 ms):", p95["canary"] - p95["primary"] > 100)
print("the canary answered no 5xx:", not any(code.startswith("5") for code in after.requests_by_code("canary")))

# %% [markdown]
# **Without Prometheus.** If this machine has no Prometheus
# (`lab.status()["prometheus"]["available"]` is False), the template's query cannot
# run: Flagger records `Metric query failed for latency-regression: ...` and counts a
# failed check, exactly as a failed query does on a cluster. The slow version above was
# then rolled back too, but so would a good one be: a Canary whose checks cannot be
# measured never promotes anything. Install Prometheus (`make prometheus`) and run the
# lesson again to see the query decide.

# %% [markdown]
# ## Step 6: the exercise's Canary
#
# `exercises.reset(9)` starts the lab again with a Canary whose **only** check is
# latency-regression. A version that fails fast passes it: `rollout-bad.yaml` (v3 with
# `ERROR_RATE=0.3`, 30% of its answers 500) would be promoted.

# %%
exercises.reset(9)
metrics = lab.objects("canaries", "petstore", "default")[0]["spec"]["analysis"]["metrics"]
print(routing.to_yaml(metrics))

# %% [markdown]
# ## Exercise: catch the failing version in PromQL
#
# Write a MetricTemplate whose query is the canary's **error rate**: the percentage of
# the canary's requests answered with a 5xx (`envoy_cluster_upstream_rq` by
# `envoy_response_code`). Apply it (`progressive.metric_template(name, query)`), add it
# to the Canary's metrics with a maximum of a few percent
# (`progressive.template_metric(name, maximum=...)`), then ship
# `manifests/flagger/rollout-bad.yaml` and follow the rollout. The check passes when
# your template rolled the bad version back. Stuck? `exercises.reset(9)` starts over.
# Tip: a version without errors has *no* 5xx series at all, and a division by a
# missing series gives no value (a failed check), so compute 100 minus the share of
# the answers that were *not* 5xx.

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
# cluster = 'envoy_cluster_name=~"kube_{{ namespace }}_{{ target }}-canary_[0-9]+"'
# window = "[{{ interval }}]"
# query = (
#     "100 - sum(rate(envoy_cluster_upstream_rq{" + cluster + ', envoy_response_code!~"5.*"}' + window + "))\n"
#     "/ sum(rate(envoy_cluster_upstream_rq{" + cluster + "}" + window + ")) * 100\n"
# )
# lab.apply(progressive.metric_template("error-rate", query))
# checks = [*metrics, progressive.template_metric("error-rate", maximum=1)]
# apply_canary(lab, progressive.with_metrics(canary, checks))
# lab.apply("../manifests/flagger/rollout-bad.yaml")
# follow_rollout(lab)
# ```
#
# Any maximum below 30% catches this version; a healthy one answers no 5xx at all.
#
# </details>
#
# To apply the reference answer instead, remove the `#` in front of `exercises.solve(9)`
# below and run that cell, then the check.

# %%
# (reference answer: remove the "#" on the next line to apply it)
# exercises.solve(9)

# %%
exercises.check(9)

# %% [markdown]
# ## Summary
#
# - With `provider: gatewayapi:v1` and `service.gatewayRefs`, Flagger makes one HTTPRoute
#   whose rule weights the `<name>-primary` and `<name>-canary` Services; it rewrites the
#   weights at each step. No VirtualService or RouteTable is needed.
# - Envoy counts requests per cluster and status code, and their latency in a
#   histogram; Prometheus scrapes them from `/stats/prometheus` and PromQL reads them
#   over a window (`rate(...[15s])`, at least two scrapes).
# - A `MetricTemplate` is a PromQL query with `{{ namespace }}`, `{{ target }}` and
#   `{{ interval }}`; a Canary metric uses it through `templateRef`, with a
#   `thresholdRange` for the query's number.
# - A query can compare the canary with the primary, and catch a release that is worse
#   without breaking a fixed limit. Write error rates as `100 -` the share of good
#   answers, so that a healthy version still gives a value.
# - A query that cannot run is a failed check: without Prometheus, nothing is promoted.
#
# This is the last lesson. `coalmine demo --progressive` runs lesson 8's rollouts
# headless; [0. Start here](00-start-here.ipynb) lists them all.

# %% [markdown]
# ## Learn more
#
# - [Flagger: Gateway API progressive delivery](https://docs.flagger.app/tutorials/gatewayapi-progressive-delivery)
# - [Flagger: metrics analysis and MetricTemplates](https://docs.flagger.app/usage/metrics)
# - [Prometheus: querying basics](https://prometheus.io/docs/prometheus/latest/querying/basics/)
#   and [histograms and summaries](https://prometheus.io/docs/practices/histograms/)
# - [Envoy: statistics](https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats)
# - [Gloo Edge: observability](https://docs.solo.io/gloo-edge/latest/guides/observability/), the
#   same Envoy metrics from Gloo's gateway-proxy
