# Source of notebooks/00-start-here.ipynb, in jupytext "percent" format.
# Edit this file, then run `make notebooks` (scripts/build_notebooks.py --execute).

# %% [markdown]
# # 0. Start here
#
# This lab teaches the **canary release** with the Gloo API gateway: you run a new
# version of a service next to the old one, send it a small, controlled part of the
# traffic, and move all traffic over only when the new version has proved itself. The
# services and the routing stay the same throughout; only the gateway's routes change.
#
# The lessons follow Scott Cranton's 2019 post *Canary Deployments with Solo.io Gloo*,
# rewritten for Gloo Edge 1.x. Every step runs real HTTP requests through a real
# gateway on your machine.

# %% [markdown]
# ## What you will learn
#
# - what the lab teaches, and the order of the lessons;
# - how to check that your machine is ready, and how to read a `FIX` line;
# - how to pick the backend the lab runs on;
# - how exercises work: `check`, `solve` and `reset`.

# %% [markdown]
# ## Prerequisites
#
# | Concept | Importance | Notes |
# |---|---|---|
# | Python and Jupyter | Necessary | Run a cell with Shift+Enter |
# | HTTP requests and JSON | Helpful | Status codes, paths, headers |
# | Kubernetes objects (Deployment, Service, Pod) | Helpful | Lesson 1 shows them |
#
# **Time to learn**: 5 minutes.

# %% [markdown]
# ## The lessons
#
# Each notebook teaches one idea and ends with an exercise you can check.
#
# | Lesson | Notebook | The idea | Time to learn |
# |---|---|---|---|
# | 0 | `00-start-here` | this page: check your machine, pick the backend | 5 min |
# | 1 | `01-deploy-the-petstore` | two versions of a service run side by side | 10 min |
# | 2 | `02-install-gloo-and-discover` | the gateway discovers services and their REST functions | 10 min |
# | 3 | `03-route-to-v1` | a virtual service routes paths and functions to one version | 15 min |
# | 4 | `04-header-canary` | a request header picks the new version; the first matching route wins | 15 min |
# | 5 | `05-weighted-canary` | weights send a share of all traffic to the new version | 20 min |
# | 6 | `06-promote-and-clean-up` | promote, decommission without a failed request, roll back | 15 min |
# | 7 | `07-gateway-api` | the same canary with the Kubernetes Gateway API (kgateway) | 20 min |
# | 8 | `08-automated-canary-analysis` | a Flagger Canary measures each step and rolls a bad version back on its own | 30 min |
# | 9 | `09-progressive-delivery-gateway-api-promql` | the Canary on kgateway, and a check written in PromQL | 25 min |
#
# Every lesson runs on its own: its first code cell puts the lab in exactly the state
# the lesson starts from (it adds what earlier lessons built and removes what later
# ones added), so you can open any notebook in any order, and go back.

# %% [markdown]
# ## Step 1: check your environment
#
# `doctor()` checks Python, the packages the lab needs, and that the local lab starts.
# Each line is `OK` or `FIX`; a `FIX` line ends with the command that repairs it.

# %%
from helpers import doctor

doctor.doctor()

# %% [markdown]
# ## Step 2: pick the backend
#
# This is the one cell that names the backend. `local` runs everything on your machine:
# the pods are processes and the gateway listens on 127.0.0.1, so no cluster is needed.
#
# `kubernetes` runs the same lessons on a real cluster (kind, minikube or any other)
# with Gloo Edge, using your kubeconfig's current context: `docs/real-cluster.md` says
# how. Changing this value is the only change you make: the lessons, manifests and
# exercises stay the same. The lessons read the same choice from the `COALMINE_BACKEND`
# environment variable (default `local`), so for a cluster start JupyterLab with
# `COALMINE_BACKEND=kubernetes make lab`.

# %%
import os

from helpers import Lab

BACKEND = os.environ.get("COALMINE_BACKEND", "local")  # or "kubernetes"
lab = Lab(BACKEND)
status = lab.up()
print("backend:", BACKEND)
print("lab home:", status["home"])
print("pods running:", status["pods"]["total"])

# %% [markdown]
# The lab keeps running when you close this notebook, so the next lesson finds what
# this one started. `lab.down()` stops it and every process it started.

# %% [markdown]
# ## Step 3: how exercises work
#
# Each lesson ends with an exercise and three helpers from `helpers.exercises`:
#
# - `exercises.check(N)` looks at the lab and sends real requests, then shows `PASS`,
#   or `FAIL` with what it found and a hint for the next step;
# - `exercises.reset(N)` puts the lab back to the start of the exercise;
# - `exercises.solve(N)` applies the reference answer. The lessons show the answer
#   folded away and keep this call commented out (`# exercises.solve(N)`), so that
#   running all cells never does the exercise for you: remove the `#` when you want it.
#
# Here is the check of lesson 1's exercise, which you have not done yet:

# %%
from helpers import exercises

exercises.check(1)

# %% [markdown]
# ## Summary
#
# - The lab teaches canary releases with Gloo in seven short lessons after this one:
#   six with Gloo Edge, and the same canary with the Gateway API in lesson 7.
# - `doctor.doctor()` tells you what is missing and how to fix it.
# - `BACKEND = "local"` runs the lab on your machine, `"kubernetes"` on a cluster; the
#   backend is the only thing you change.
# - `check`, `solve` and `reset` help you through each exercise.
#
# Next: [1. Deploy the petstore](01-deploy-the-petstore.ipynb).

# %% [markdown]
# ## Learn more
#
# - [Gloo Edge documentation](https://docs.solo.io/gloo-edge/latest/)
# - [Gloo Edge concepts](https://docs.solo.io/gloo-edge/latest/introduction/architecture/concepts/)
# - [Canary releases with Gloo Edge](https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/canary/)
# - [Canary Release](https://martinfowler.com/bliki/CanaryRelease.html), by Danilo Sato
