"""The conformance suite's base infrastructure, written from its facts (v1.6.1).

Three namespaces (``gateway-conformance-infra``, ``-app-backend``, ``-web-backend``, the
last two labelled ``gateway-conformance: backend``), the Gateways the HTTPRoute tests
attach to (``same-namespace``, ``all-namespaces``, ``backend-namespaces``,
``same-namespace-with-https-listener`` with four HTTPS listeners on 443), and the echo
backends: infra-backend-v1 (2 pods; ports 8080 http, 8081 h2c, 8082 ws),
infra-backend-v2 (2), infra-backend-v3 (1), app-backend-v1/v2 (2 each), web-backend (2).
Each echo pod is ``helpers/apps/echo.py`` on a python image, its source in a ConfigMap
(infra-backend-v1's runs ``h2c_echo.py`` beside this file: echo.py plus h2c on the same
port, as a local pod has one port where echo-basic serves h2c on a second one),
told its name and namespace by the downward API as the suite's Deployments do. The TLS
certificate for the HTTPS listeners is made at test time (``trustme``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import trustme

INFRA = "gateway-conformance-infra"
APP = "gateway-conformance-app-backend"
WEB = "gateway-conformance-web-backend"
CLASS = "kgateway"  # the GatewayClass `install kgateway` makes (the suite's {GATEWAY_CLASS_NAME})
CONTROLLER = "kgateway.dev/kgateway"
ECHO = Path(__file__).resolve().parents[2] / "helpers" / "apps" / "echo.py"
H2C_ECHO = Path(__file__).resolve().with_name("h2c_echo.py")  # echo.py + HTTP/2 prior knowledge
CERT_SECRET = "tls-validity-checks-certificate"
CERT_HOSTS = ["example.org", "second-example.org", "unknown-example.org", "*.wildcard.org"]
GW = "gateway.networking.k8s.io/v1"


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def listener(name: str, port: int, protocol: str = "HTTP", hostname: str | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "port": port, "protocol": protocol, **extra}
    if hostname:
        found["hostname"] = hostname
    found.setdefault("allowedRoutes", {"namespaces": {"from": "Same"}})
    return found


def gateway(name: str, *listeners: dict[str, Any], ns: str = INFRA) -> dict[str, Any]:
    return {
        "apiVersion": GW,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"gatewayClassName": CLASS, "listeners": list(listeners)},
    }


def https(name: str, hostname: str | None = None) -> dict[str, Any]:
    tls = {"certificateRefs": [{"group": "", "kind": "Secret", "name": CERT_SECRET, "namespace": INFRA}]}
    return listener(name, 443, "HTTPS", hostname, tls=tls)


def echo_backend(
    name: str, ns: str, replicas: int, ports: list[dict[str, Any]] | None = None, script: str = "echo.py"
) -> list[dict[str, Any]]:
    """A Service and a Deployment of echo pods, as the suite's backends."""
    service_ports = ports or [{"protocol": "TCP", "port": 8080, "targetPort": 3000}]
    container = {
        "name": name,
        "image": "python:3.12-slim",
        "command": ["python", f"/app/{script}"],
        "ports": [{"name": "http", "containerPort": 3000}, {"name": "h2c", "containerPort": 3001}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 3000}, "periodSeconds": 5},
        "volumeMounts": [{"name": "app", "mountPath": "/app"}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": service_ports},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "app", "configMap": {"name": "echo-app"}}],
                    },
                },
            },
        },
    ]


def echo_source(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "echo-app", "namespace": ns},
        "data": {"echo.py": ECHO.read_text(), "h2c_echo.py": H2C_ECHO.read_text()},
    }


def tls_secret(ca: trustme.CA) -> dict[str, Any]:
    """The listeners' certificate (kubernetes.io/tls) for the hosts the tests ask for."""
    cert = ca.issue_cert(*CERT_HOSTS)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": CERT_SECRET, "namespace": INFRA},
        "data": {
            "tls.crt": base64.b64encode(chain).decode(),
            "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode(),
        },
    }


def manifests(ca: trustme.CA) -> list[dict[str, Any]]:
    """Everything the suite's base manifests set up, in apply order."""
    infra_v1_ports = [
        {"name": "first-port", "protocol": "TCP", "port": 8080, "targetPort": 3000},
        {
            "name": "second-port",
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
            "port": 8081,
            "targetPort": 3001,
        },
        {"name": "third-port", "protocol": "TCP", "appProtocol": "kubernetes.io/ws", "port": 8082, "targetPort": 3000},
    ]
    backend_ns = {"gateway-conformance": "backend"}
    return [
        namespace(INFRA, {"gateway-conformance": "infra"}),
        namespace(APP, backend_ns),
        namespace(WEB, backend_ns),
        *(echo_source(ns) for ns in (INFRA, APP, WEB)),
        tls_secret(ca),
        gateway("same-namespace", listener("http", 80)),
        gateway(
            "same-namespace-with-https-listener",
            https("https"),
            https("https-with-hostname", "second-example.org"),
            https("https-with-wildcard-hostname", "*.wildcard.org"),
            https("https-with-hostname-matching-wildcard", "fourth-example.wildcard.org"),
        ),
        gateway("all-namespaces", listener("http", 80, allowedRoutes={"namespaces": {"from": "All"}})),
        gateway(
            "backend-namespaces",
            listener(
                "http",
                80,
                allowedRoutes={"namespaces": {"from": "Selector", "selector": {"matchLabels": backend_ns}}},
            ),
        ),
        *echo_backend("infra-backend-v1", INFRA, 2, infra_v1_ports, script="h2c_echo.py"),
        *echo_backend("infra-backend-v2", INFRA, 2),
        *echo_backend("infra-backend-v3", INFRA, 1),
        *echo_backend("app-backend-v1", APP, 2),
        *echo_backend("app-backend-v2", APP, 2),
        *echo_backend("web-backend", WEB, 2),
    ]
