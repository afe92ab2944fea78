#!/usr/bin/env python3
"""Render the manifests that carry the lab's apps (helpers/apps/*.py) in ConfigMaps.

    manifests/petstore-v1.yaml, petstore-v2.yaml   the two petstores of lessons 1-7
    manifests/flagger/petstore.yaml                one Deployment `petstore` (v1) for Flagger
    manifests/flagger/rollout-good.yaml            that Deployment with VERSION v2
    manifests/flagger/rollout-bad.yaml             ... v3 answering 30% of API requests with 500
    manifests/flagger/rollout-slow.yaml            ... v3 adding a second to every API request
    manifests/flagger/loadtester.yaml              Flagger's load tester API (flagger-loadtester)

Each app is a ConfigMap holding its source byte for byte and a Deployment that runs that
file on a stock python image. The local runtime and a real cluster apply the same files,
so edit an app's source or the templates below, then:

    python scripts/render_manifests.py           # rewrite the files
    python scripts/render_manifests.py --check   # exit 1 if a file is stale (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from string import Template

import yaml

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "helpers" / "apps"
VERSIONS = ("v1", "v2")
# The bad rollouts ship v3 (v2's pets with status "v3"), so the dashboard tells the bad
# canary from the promoted v2.
BAD = {"ERROR_RATE": "0.3"}  # request-success-rate falls to about 70%
SLOW = {"LATENCY_MS": "1000"}  # request-duration's p99 passes a second
REGRESSION = {"LATENCY_MS": "150"}  # request-duration's p99 (max 500 ms) lets it through

PETSTORE_HEADER = """\
# petstore $version: the go-swagger petstore of the seed post, as a stdlib-only Python
# file in a ConfigMap, run by a stock python image. The Deployment meets the
# "restricted" Pod Security Standard. Gloo discovery turns the Service into the
# Upstream default-petstore-$version-8080; its label asks Gloo's function discovery
# (fdsMode WHITELIST) to read the REST functions from /swagger.json.
"""
FLAGGER_PETSTORE_HEADER = """\
# petstore for Flagger (lesson 8): the ConfigMap with the petstore's source and one
# Deployment `petstore` (VERSION v1), "restricted" Pod Security Standard. No Service:
# the Canary (canary.yaml) makes Flagger create the Services petstore, petstore-primary
# and petstore-canary and the Deployment petstore-primary, a copy of this one. The
# rollout-*.yaml files change only this Deployment's env, which starts an analysis.
"""
ROLLOUT_HEADERS = {
    "good": """\
# rollout-good: the Deployment `petstore` of petstore.yaml with VERSION v2. Applying it
# changes the pod template, so Flagger starts a canary analysis; v2 answers every
# request, the checks pass and it is promoted step by step.
""",
    "bad": """\
# rollout-bad: the Deployment `petstore` with VERSION v3 and ERROR_RATE 0.3: about 30%
# of its /api requests answer 500, request-success-rate falls below its threshold, and
# Flagger rolls it back.
""",
    "slow": """\
# rollout-slow: the Deployment `petstore` with VERSION v3 and LATENCY_MS 1000: every
# /api request takes a second longer, request-duration (p99) passes its thresholdRange
# max, and Flagger rolls it back.
""",
    "regression": """\
# rollout-regression (lesson 9): the Deployment `petstore` with VERSION v3 and
# LATENCY_MS 150: every /api request takes 150 ms longer. The built-in checks pass it
# (no errors, p99 well under request-duration's 500 ms); the MetricTemplate
# latency-regression.yaml (the canary's p95 against the primary's) rolls it back.
""",
}
LOADTESTER_HEADER = """\
# flagger-loadtester: a load tester that speaks Flagger's loadtester API (POST / with a
# `hey` cmd, /gate/check|open|close, /rollback/check|open|close), as a stdlib-only Python
# file in a ConfigMap run by a stock python image; "restricted" Pod Security Standard.
# Canary webhooks reach it at http://flagger-loadtester.default/ (Service port 80 to the
# pod's 8080), as they reach Flagger's own loadtester. It runs hey commands only.
"""

CONFIG_MAP = Template("""\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: $config_map
  namespace: default
  labels:
    app: $app
data:
  $file: |
$source
""")

PETSTORE_SERVICE = Template("""\
---
apiVersion: v1
kind: Service
metadata:
  name: $app
  namespace: default
  labels:
    app: $app
    discovery.solo.io/function_discovery: enabled
spec:
  type: ClusterIP
  selector:
    app: $app
  ports:
    - name: http
      port: 8080
      targetPort: 8080
      protocol: TCP
""")

LOADTESTER_SERVICE = Template("""\
---
apiVersion: v1
kind: Service
metadata:
  name: $app
  namespace: default
  labels:
    app: $app
spec:
  type: ClusterIP
  selector:
    app: $app
  ports:
    - name: http
      port: 80
      targetPort: 8080
      protocol: TCP
""")

# $labels and $env are rendered blocks; everything else is literal YAML.
DEPLOYMENT = Template("""\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $app
  namespace: default
  labels:
$labels
spec:
  replicas: 1
  selector:
    matchLabels:
      app: $app
  template:
    metadata:
      labels:
$pod_labels
      annotations:
        # A new app source changes the pod template, so applying it rolls the pods.
        coalmine.io/$container-sha256: "$sha256"
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 10
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: $container
          image: python:3.12-slim
          imagePullPolicy: IfNotPresent
          command: ["python", "/app/$file"]
          env:
$env
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 1
            periodSeconds: 2
            timeoutSeconds: 1
            failureThreshold: 3
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          resources:
            requests:
              cpu: 50m
              memory: 32Mi
            limits:
              cpu: 500m
              memory: 128Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: app
              mountPath: /app
              readOnly: true
      volumes:
        - name: app
          configMap:
            name: $config_map
""")

_PLAIN = re.compile(r"[A-Za-z][-\w.]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: str) -> str:
    """``value`` as a YAML string: plain when it reads back as that string, else quoted."""
    return value if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS else json.dumps(value)


def block(mapping: Mapping[str, str], indent: str) -> str:
    return "\n".join(f"{indent}{key}: {scalar(value)}" for key, value in mapping.items())


def env_block(env: Mapping[str, str]) -> str:
    items = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return "\n".join(
        f"            - name: {name}\n              value: {scalar(value)}" for name, value in items.items()
    )


def literal_block(text: str, indent: str = "    ") -> str:
    """The body of a YAML ``|`` block that loads back to exactly ``text``."""
    if not text.endswith("\n") or text.endswith("\n\n") or text[:1] in (" ", "\t", "\n"):
        # "|" keeps exactly one final newline and takes its indentation from the first line.
        raise ValueError("the source must start with a non-blank line and end with one newline")
    # Blank lines stay empty so the file has no trailing whitespace.
    return "\n".join(indent + line if line else "" for line in text[:-1].split("\n"))


def config_map(app: str, file: str, source: str) -> str:
    return CONFIG_MAP.substitute(config_map=f"{app}-app", app=app, file=file, source=literal_block(source))


def deployment(
    app: str, container: str, file: str, source: str, labels: Mapping[str, str], env: Mapping[str, str]
) -> str:
    return DEPLOYMENT.substitute(
        app=app,
        labels=block(labels, "    "),
        pod_labels=block(labels, "        "),
        container=container,
        sha256=hashlib.sha256(source.encode()).hexdigest(),
        file=file,
        env=env_block(env),
        config_map=f"{app}-app",
    )


def generated(source: str, header: str, *documents: str) -> str:
    return (
        f"# GENERATED by scripts/render_manifests.py from helpers/apps/{source}: do not edit.\n#\n{header}"
        + "".join(documents)
    )


def petstore(version: str, source: str) -> str:
    """manifests/petstore-<version>.yaml: ConfigMap, Service and Deployment petstore-<version>."""
    app = f"petstore-{version}"
    return generated(
        "petstore.py",
        Template(PETSTORE_HEADER).substitute(version=version),
        config_map(app, "petstore.py", source),
        PETSTORE_SERVICE.substitute(app=app),
        deployment(app, "petstore", "petstore.py", source, {"app": app, "version": version}, {"VERSION": version}),
    )


def flagger_petstore(source: str) -> str:
    return generated(
        "petstore.py",
        FLAGGER_PETSTORE_HEADER,
        config_map("petstore", "petstore.py", source),
        deployment("petstore", "petstore", "petstore.py", source, {"app": "petstore"}, {"VERSION": "v1"}),
    )


def rollout(kind: str, env: Mapping[str, str], source: str) -> str:
    return generated(
        "petstore.py",
        ROLLOUT_HEADERS[kind],
        deployment(
            "petstore",
            "petstore",
            "petstore.py",
            source,
            {"app": "petstore"},
            {"VERSION": "v3" if env else "v2", **env},
        ),
    )


def loadtester(source: str) -> str:
    app = "flagger-loadtester"
    return generated(
        "loadtester.py",
        LOADTESTER_HEADER,
        config_map(app, "loadtester.py", source),
        deployment(app, "loadtester", "loadtester.py", source, {"app": app}, {}),
        LOADTESTER_SERVICE.substitute(app=app),
    )


# manifest (relative to manifests/) -> (the app it carries, how to render it from that app's source)
OUTPUTS: dict[str, tuple[str, Callable[[str], str]]] = {
    **{f"petstore-{v}.yaml": ("petstore.py", partial(petstore, v)) for v in VERSIONS},
    "flagger/petstore.yaml": ("petstore.py", flagger_petstore),
    "flagger/rollout-good.yaml": ("petstore.py", partial(rollout, "good", {})),
    "flagger/rollout-bad.yaml": ("petstore.py", partial(rollout, "bad", BAD)),
    "flagger/rollout-slow.yaml": ("petstore.py", partial(rollout, "slow", SLOW)),
    "flagger/gatewayapi/rollout-regression.yaml": ("petstore.py", partial(rollout, "regression", REGRESSION)),
    "flagger/loadtester.yaml": ("loadtester.py", loadtester),
}


def render(name: str, source: str) -> str:
    file, make = OUTPUTS[name]
    text = make(source)
    # Never write a manifest whose ConfigMap would not load back to the source.
    for doc in yaml.safe_load_all(text):
        if doc["kind"] == "ConfigMap" and doc["data"][file] != source:
            raise ValueError(f"{name}: the ConfigMap does not round-trip {file}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if a manifest differs from what would be rendered"
    )
    args = parser.parse_args(argv)
    sources: dict[str, str | None] = {}
    stale = []
    for name, (file, _) in OUTPUTS.items():
        if file not in sources:
            path = APPS / file
            sources[file] = path.read_bytes().decode("utf-8") if path.exists() else None
        source = sources[file]
        if source is None:  # e.g. a partial copy of the repository
            print(f"skipped manifests/{name}: helpers/apps/{file} is missing", file=sys.stderr)
            continue
        path = ROOT / "manifests" / name
        text = render(name, source)
        current = path.read_bytes().decode("utf-8") if path.exists() else None
        if current == text:
            continue
        rel = path.relative_to(ROOT)
        if args.check:
            stale.append(rel)
            print(f"{rel} is stale: run python scripts/render_manifests.py", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
            print(f"wrote {rel}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
