"""What a Canary makes, as Flagger's deployment controller and Gloo router make it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from helpers.runtime.flagger import objects

CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "petstore", "namespace": "default", "uid": "u-1"},
    "spec": {
        "provider": "gloo",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
        "service": {"port": 80, "targetPort": 8080},
        "analysis": {"interval": "1s", "match": [{"headers": {"x-canary": {"exact": "true"}}}]},
    },
}
TARGET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "petstore", "namespace": "default", "labels": {"app": "petstore", "team": "pets"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "petstore"}},
        "template": {
            "metadata": {"labels": {"app": "petstore", "tier": "web"}, "annotations": {"flagger-id": "old"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "command": ["python", "/app/petstore.py"],
                        "env": [{"name": "VERSION", "value": "v1"}],
                    }
                ],
                "volumes": [{"name": "app", "configMap": {"name": "petstore-app"}}],
            },
        },
    },
}
CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "petstore-app", "namespace": "default"},
    "data": {"a": "1"},
}


def test_names_follow_flagger() -> None:
    n = objects.Names.of(CANARY)
    assert (n.apex, n.primary, n.canary, n.primary_deployment) == (
        "petstore",
        "petstore-primary",
        "petstore-canary",
        "petstore-primary",
    )
    assert n.primary_upstream == "default-petstore-primaryupstream-80"
    assert n.canary_upstream == "default-petstore-canaryupstream-80"


def test_primary_deployment_copies_the_template_under_the_primary_label() -> None:
    configs = objects.tracked(TARGET["spec"]["template"], {"petstore-app": CM})
    primary = objects.primary_deployment(CANARY, TARGET, configs)
    assert primary["metadata"]["name"] == "petstore-primary"
    assert primary["metadata"]["labels"] == {"app": "petstore-primary"}  # no include-label-prefix: only the selector
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "petstore-primary"}}
    assert primary["spec"]["replicas"] == 2
    template = primary["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "petstore-primary", "tier": "web"}
    assert template["metadata"]["annotations"]["flagger-id"] != "old"
    assert template["spec"]["volumes"] == [{"name": "app", "configMap": {"name": "petstore-app-primary"}}]
    assert template["spec"]["containers"] == TARGET["spec"]["template"]["spec"]["containers"]
    assert objects.owned_by(primary, CANARY)
    assert TARGET["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "petstore-app"  # not mutated
    (cm,) = objects.primary_configmaps(CANARY, configs)
    assert (cm["metadata"]["name"], cm["data"]) == ("petstore-app-primary", {"a": "1"})


def test_config_tracking_can_be_disabled_and_changes_the_revision() -> None:
    template = TARGET["spec"]["template"]
    disabled = copy.deepcopy(CM)
    disabled["metadata"]["annotations"] = {"flagger.app/config-tracking": "disabled"}
    assert objects.tracked(template, {"petstore-app": disabled}) == {}
    changed = copy.deepcopy(CM)
    changed["data"] = {"a": "2"}
    before = objects.revision(template, {"petstore-app": CM})
    assert objects.revision(template, {"petstore-app": changed}) != before
    assert objects.revision(template, {"petstore-app": CM}) == before


def test_services_select_primary_and_canary_pods() -> None:
    canary_svc, primary_svc, apex = objects.services(CANARY, TARGET, {})
    assert [s["metadata"]["name"] for s in (canary_svc, primary_svc, apex)] == [
        "petstore-canary",
        "petstore-primary",
        "petstore",
    ]
    assert canary_svc["spec"]["selector"] == {"app": "petstore"}
    assert primary_svc["spec"]["selector"] == apex["spec"]["selector"] == {"app": "petstore-primary"}
    assert apex["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
    assert apex["metadata"]["labels"] == {"app": "petstore"}


def test_a_users_service_keeps_its_metadata() -> None:
    mine = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default", "labels": {"x": "y"}},
        "spec": {"selector": {"app": "petstore"}, "ports": [{"port": 8080}]},
    }
    apex = objects.services(CANARY, TARGET, {"petstore": mine})[2]
    assert apex["metadata"] == mine["metadata"]  # no owner reference: deleting the Canary keeps it
    assert apex["spec"]["selector"] == {"app": "petstore-primary"} and apex["spec"]["ports"][0]["port"] == 80


def test_upstreams_and_route_table() -> None:
    primary_us, canary_us = objects.upstreams(CANARY, TARGET)
    assert primary_us["metadata"]["namespace"] == "default"
    assert primary_us["spec"]["kube"] == {
        "serviceName": "petstore-primary",
        "serviceNamespace": "default",
        "servicePort": 80,
        "selector": {"app": "petstore-primary"},
    }
    assert canary_us["spec"]["kube"]["selector"] == {"app": "petstore"}
    rt = objects.route_table(CANARY, 70, 30)
    (route,) = rt["spec"]["routes"]
    assert route["inheritablePathMatchers"] is True
    assert route["matchers"] == [{"headers": [{"name": "x-canary", "value": "true"}]}]
    dests = route["routeAction"]["multi"]["destinations"]
    assert [(d["destination"]["upstream"]["name"], d["weight"]) for d in dests] == [
        ("default-petstore-primaryupstream-80", 70),
        ("default-petstore-canaryupstream-80", 30),
    ]
    assert objects.weights(rt, CANARY) == (70, 30)


def test_a_target_without_a_selector_label_is_refused() -> None:
    bad = copy.deepcopy(TARGET)
    bad["spec"]["selector"] = {"matchLabels": {"role": "x"}}
    with pytest.raises(objects.ObjectError, match=r"must contain one of \[app name app.kubernetes.io/name\]"):
        objects.primary_deployment(CANARY, bad, {})
