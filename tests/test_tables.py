"""kubectl- and glooctl-shaped tables from objects."""

from datetime import UTC, datetime

from helpers.tables import age, describe_route, render, rows


def test_age_like_kubectl():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert age("2026-01-01T11:59:30Z", now) == "30s"
    assert age("2026-01-01T11:55:00Z", now) == "5m0s"
    assert age("2026-01-01T09:30:00Z", now) == "2h30m"
    assert age("2025-12-29T12:00:00Z", now) == "3d"


def test_upstream_details_list_functions_like_glooctl():
    us = {
        "metadata": {"name": "default-petstore-v1-8080"},
        "spec": {
            "kube": {
                "serviceName": "petstore-v1",
                "serviceNamespace": "default",
                "servicePort": 8080,
                "serviceSpec": {"rest": {"transformations": {"findPets": {}, "addPet": {}}}},
            }
        },
        "status": {"statuses": {"gloo-system": {"state": "Accepted"}}},
    }
    (row,) = rows("Upstream", [us])
    assert row["UPSTREAM"] == "default-petstore-v1-8080" and row["TYPE"] == "Kubernetes"
    assert row["STATUS"] == "Accepted"
    assert row["DETAILS"].splitlines()[-3:] == ["functions:", "- addPet", "- findPets"]
    text = render("Upstream", [row])
    assert text.startswith("+") and "| - findPets" in text


def test_route_description_shows_matcher_headers_and_weights():
    route = {
        "matchers": [{"exact": "/findPets", "headers": [{"name": "x-canary", "value": "true"}]}],
        "routeAction": {
            "multi": {
                "destinations": [
                    {"weight": 10, "destination": {"upstream": {"name": "v2"}}},
                    {"weight": 90, "destination": {"upstream": {"name": "v1"}}},
                ]
            }
        },
    }
    assert describe_route(route) == "exact /findPets [x-canary=true] -> 10×v2 + 90×v1"


def test_kubectl_columns_for_pods():
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"containerStatuses": [{"ready": True, "restartCount": 2, "state": {"running": {}}}]},
    }
    (row,) = rows("Pod", [pod])
    assert row == {"NAME": "p", "READY": "1/1", "STATUS": "Running", "RESTARTS": 2}
    assert render("Pod", [row]).splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS"]
