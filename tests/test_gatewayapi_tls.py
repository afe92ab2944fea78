"""HTTPS listeners (``gatewayapi.certificates``): certificateRefs to ``kubernetes.io/tls``
Secrets, the listener's ResolvedRefs as the conformance suite checks it
(gateway-invalid-tls-configuration, gateway-secret-*-reference-grant), and real TLS
handshakes on loopback where the client's SNI name picks the listener's certificate.

Certificates are made for each test run with the ``openssl`` command (self-signed,
one day, EC keys), so nothing secret is stored in the repository.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers.runtime.gatewayapi.certificates import KeyPair, port_context, resolve, server_context
from helpers.runtime.gatewayapi.grants import Grants
from helpers.runtime.gatewayapi.kgateway import Kgateway
from helpers.runtime.gatewayapi.translating import translate
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.store import Store

from .test_controlplane import control_plane
from .test_translating_gatewayapi_status import BASE, INFRA, WEB, gateway, http_route, to

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
)


def make_pair(tmp: Path, host: str) -> KeyPair:
    """A self-signed certificate for ``host`` (its subjectAltName) and its key."""
    cert, key = tmp / f"{host}.crt", tmp / f"{host}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={host}",
            "-addext", f"subjectAltName=DNS:{host}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return KeyPair(cert.read_bytes(), key.read_bytes())


def secret(
    name: str, pair: KeyPair | None = None, ns: str = INFRA, kind: str = "kubernetes.io/tls", **data: str
) -> dict[str, Any]:
    if pair is not None:
        data = {"tls.crt": base64.b64encode(pair.cert).decode(), "tls.key": base64.b64encode(pair.key).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": kind,
        "data": data,
    }


def https(listener_name: str = "https", hostname: str | None = None, **ref: Any) -> dict[str, Any]:
    """An HTTPS listener on port 443 whose certificateRef is Secret ``cert`` changed by ``ref``."""
    listener: dict[str, Any] = {
        "name": listener_name,
        "port": 443,
        "protocol": "HTTPS",
        "allowedRoutes": {"namespaces": {"from": "Same"}},
        "tls": {"certificateRefs": [{"group": "", "kind": "Secret", "name": "cert", **ref}]},
    }
    if hostname:
        listener["hostname"] = hostname
    return listener


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    tmp = tmp_path_factory.mktemp("certs")
    return {h: make_pair(tmp, h) for h in ("example.org", "second-example.org")}


def objects(*extra: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in extra}


# ── which refs resolve ───────────────────────────────────────────────────────


def test_a_tls_secret_in_the_gateways_namespace_resolves(pairs: dict[str, KeyPair]) -> None:
    found = resolve(https(), INFRA, objects(secret("cert", pairs["example.org"])), Grants([]))
    assert found.pair == pairs["example.org"] and found.problems == ()


@pytest.mark.parametrize(
    ("ref", "stored"),
    [
        ({"name": "nonexistent-certificate"}, None),
        ({"group": "wrong.group.company.io"}, None),
        ({"kind": "WrongKind"}, None),
        ({}, "malformed"),
        ({}, "opaque"),
    ],
    ids=["nonexistent", "unsupported-group", "unsupported-kind", "malformed", "not-kubernetes.io/tls"],
)
def test_invalid_certificate_refs(pairs: dict[str, KeyPair], ref: dict[str, Any], stored: str | None) -> None:
    hello = base64.b64encode(b"Hello world\n").decode()
    held = {
        None: secret("cert", pairs["example.org"]),
        "malformed": secret("cert", **{"tls.crt": hello, "tls.key": hello}),
        "opaque": secret("cert", pairs["example.org"], kind="Opaque"),
    }[stored]
    found = resolve(https(**ref), INFRA, objects(held), Grants([]))
    assert found.pair is None and [reason for reason, _ in found.problems] == ["InvalidCertificateRef"]


def test_a_secret_in_another_namespace_needs_a_grant(pairs: dict[str, KeyPair]) -> None:
    held = objects(secret("cert", pairs["example.org"], ns=WEB))
    denied = resolve(https(namespace=WEB), INFRA, held, Grants([]))
    assert denied.pair is None and denied.problems[0][0] == "RefNotPermitted"
    grant = {
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": WEB},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": INFRA}],
            "to": [{"group": "", "kind": "Secret"}],
        },
    }
    assert resolve(https(namespace=WEB), INFRA, held, Grants([grant])).pair == pairs["example.org"]


def test_listener_status_and_served_ports(pairs: dict[str, KeyPair]) -> None:
    gw = gateway("tls", https(), https("broken", "second-example.org", name="missing"))
    route = http_route("r", [{"name": "tls"}], [to("infra-backend-v1")])
    r = translate([*BASE, gw, route, secret("cert", pairs["example.org"])], {})
    good, broken = r.statuses[("Gateway", INFRA, "tls")]["listeners"]
    conds = [{c["type"]: (c["status"], c["reason"]) for c in li["conditions"]} for li in (good, broken)]
    assert conds[0]["ResolvedRefs"] == ("True", "ResolvedRefs") and conds[0]["Programmed"] == ("True", "Programmed")
    assert conds[1]["ResolvedRefs"] == ("False", "InvalidCertificateRef") and conds[1]["Programmed"][0] == "False"
    assert (
        good["supportedKinds"]
        == broken["supportedKinds"]
        == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    )
    assert good["attachedRoutes"] == broken["attachedRoutes"] == 1  # attached, though only one is served
    served = r.ports[(INFRA, "tls", 443)]
    assert served.scheme == "https" and served.listeners == ("https",)
    assert served.certificates == ((None, pairs["example.org"]),)


# ── handshakes on loopback ───────────────────────────────────────────────────


async def handshake(context: ssl.SSLContext, name: str | None, trust: KeyPair, tmp: Path) -> str:
    """Connect to a TLS server using ``context``, sending SNI ``name``; the peer certificate's CN."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    try:
        port = server.sockets[0].getsockname()[1]
        ca = tmp / "ca.pem"
        ca.write_bytes(trust.cert)
        client = ssl.create_default_context(cafile=str(ca))
        client.check_hostname = name is not None
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=name or "")
        peer = writer.get_extra_info("peercert")
        writer.close()
        return dict(x[0] for x in peer["subject"])["commonName"]
    finally:
        server.close()
        await server.wait_closed()


def test_a_listener_context_serves_its_certificate(pairs: dict[str, KeyPair], tmp_path: Path) -> None:
    cn = asyncio.run(handshake(server_context(pairs["example.org"]), "example.org", pairs["example.org"], tmp_path))
    assert cn == "example.org"


def test_sni_picks_the_certificate_of_the_listener_for_that_name(pairs: dict[str, KeyPair], tmp_path: Path) -> None:
    shared = port_context(((None, pairs["example.org"]), ("second-example.org", pairs["second-example.org"])))
    for name in ("second-example.org", "example.org"):
        assert asyncio.run(handshake(shared, name, pairs[name], tmp_path)) == name
    assert asyncio.run(handshake(shared, None, pairs["example.org"], tmp_path)) == "example.org"  # no SNI: the default
    with pytest.raises(ssl.SSLCertVerificationError):  # a name no listener has: the default's certificate
        asyncio.run(handshake(shared, "second-example.org", pairs["example.org"], tmp_path))


def test_a_malformed_pair_does_not_make_a_context() -> None:
    with pytest.raises(ssl.SSLError):
        server_context(KeyPair(b"Hello world\n", b"Hello world\n"))


def test_kgateway_serves_an_https_listener(pairs: dict[str, KeyPair], tmp_path: Path) -> None:
    store = Store(tmp_path / "store.json")
    kg = Kgateway(store, UpstreamStats())
    kg.install()
    for obj in (*BASE[1:], gateway("tls", https()), secret("cert", pairs["example.org"])):
        store.put(obj)
    store.put(http_route("r", [{"name": "tls"}], [{"backendRefs": []}]))  # answers 500 itself

    async def scenario() -> tuple[str, bytes]:
        kg.rebuild(list(store), {}, 1)
        await kg.sync()
        try:
            url = kg.urls()[f"{INFRA}/tls"]["https"]
            ca = tmp_path / "ca.pem"
            ca.write_bytes(pairs["example.org"].cert)
            client = ssl.create_default_context(cafile=str(ca))
            port = int(url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="example.org")
            writer.write(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
            status = await reader.readline()
            writer.close()
            return url, status
        finally:
            await kg.close()

    url, status = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert url.startswith("https://127.0.0.1:") and status.startswith(b"HTTP/1.1 500")


def test_the_control_plane_serves_https_and_shows_ignored_fields_at_apply(
    pairs: dict[str, KeyPair], tmp_path: Path
) -> None:
    gw = gateway("tls", https())
    gw["spec"]["infrastructure"] = {"labels": {"team": "pets"}}
    route = http_route("r", [{"name": "tls"}], [{"backendRefs": []}])  # answers 500 itself
    for obj in (gw, route):
        obj["metadata"] = {k: obj["metadata"][k] for k in ("name", "namespace")}

    async def get(port: int, trusted: KeyPair) -> bytes:
        ca = tmp_path / "ca.pem"
        ca.write_bytes(trusted.cert)
        client = ssl.create_default_context(cafile=str(ca))
        client.check_hostname = False  # the second certificate names another host: trust is what is tested
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="example.org")
        writer.write(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
        status = await reader.readline()
        writer.close()
        return status

    async def scenario() -> tuple[list[dict[str, Any]], bytes, bytes, bool]:
        async with control_plane(tmp_path / "home") as cp:
            await cp.install("kgateway")
            results = cp.apply([BASE[1], secret("cert", pairs["example.org"]), gw, route])
            await cp.settle()
            url = cp.kgateway.urls()[f"{INFRA}/tls"]["https"]
            port = int(url.rsplit(":", 1)[1])
            first = await get(port, pairs["example.org"])
            cp.apply([secret("cert", pairs["second-example.org"])])  # a new certificate: the listener restarts
            await cp.settle()
            again = cp.kgateway.urls()[f"{INFRA}/tls"]["https"] == url
            second = await get(port, pairs["second-example.org"])
            return results, first, second, again

    results, first, second, same_port = asyncio.run(asyncio.wait_for(scenario(), 45))
    assert [r.get("error") for r in results] == [None] * 4, results
    assert any("infrastructure" in w for w in results[2]["warnings"]), results[2]
    assert first.startswith(b"HTTP/1.1 500") and second.startswith(b"HTTP/1.1 500") and same_port
