"""How kinds are named: kubectl's and glooctl's spellings, and the error for an unknown one."""

import pytest

from helpers import kinds
from helpers.errors import NotFound, UnknownKind


@pytest.mark.parametrize(
    "word", ["vs", "virtualservice", "virtualservices", "VirtualService", "virtualservices.gateway.solo.io"]
)
def test_lookup_accepts_kubectl_spellings(word):
    assert kinds.lookup(word).name == "VirtualService"


@pytest.mark.parametrize(
    "word,kind",
    [
        ("po", "Pod"),
        ("svc", "Service"),
        ("deploy", "Deployment"),
        ("us", "Upstream"),
        ("ug", "UpstreamGroup"),
        ("ns", "Namespace"),
    ],
)
def test_short_names(word, kind):
    assert kinds.lookup(word).name == kind


def test_unknown_resource_type_lists_known_ones():
    with pytest.raises(UnknownKind, match=r'doesn\'t have a resource type "gadgets".*virtualservices'):
        kinds.lookup("gadgets")


def test_key_and_ref():
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}}
    assert kinds.key(obj) == ("Deployment", "default", "x")
    assert kinds.ref(obj) == "deployment.apps/x"
    vs = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "coalmine", "namespace": "gloo-system"},
    }
    assert kinds.ref(vs) == "virtualservice.gateway.solo.io/coalmine"
    assert kinds.key({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}}) == (
        "Namespace",
        "",
        "n",
    )


def test_an_unknown_kind_is_a_not_found_error_not_a_key_error():
    assert issubclass(UnknownKind, NotFound) and not issubclass(UnknownKind, KeyError)
