"""The Lab API: everything a notebook does to the lab, in a few calls.

    lab = Lab()                       # the local runtime, this lab home
    lab.up()                          # start it (idempotent)
    lab.apply("manifests/petstore-v1.yaml")
    lab.install("gloo"); lab.wait()
    lab.get("upstreams")              # a pandas DataFrame, like glooctl get upstreams
    requests go to lab.proxy_url()

The CLI (``coalmine``) calls the same methods.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import yaml

from helpers.backends.base import Backend
from helpers.backends.local import LocalBackend
from helpers.errors import ApplyRefused, CoalmineError, InvalidArgument, NotFound
from helpers.kinds import GLOO_NAMESPACE, lookup
from helpers.loading import Source, load_manifests
from helpers.tables import GLOO_KINDS, rows

if TYPE_CHECKING:
    import pandas as pd


def default_namespace(kind: str) -> str:
    """``gloo-system`` for Gloo kinds (as glooctl), ``default`` for the rest (as kubectl)."""
    return GLOO_NAMESPACE if lookup(kind).name in GLOO_KINDS else "default"


BACKENDS = ("local", "kubernetes")

# What apply and delete take: paths, YAML text, dicts, or lists of them (nested too).
Sources = Source | Iterable[Source]


def _flat(sources: tuple[Sources, ...]) -> list[Source]:
    # load_manifests flattens nested lists itself; this only tells the type checker.
    return cast("list[Source]", list(sources))


def make_backend(backend: Backend | str | None = None, home: str | os.PathLike[str] | None = None) -> Backend:
    """The backend named by ``backend`` or ``COALMINE_BACKEND`` (default ``local``)."""
    if backend is not None and not isinstance(backend, str):
        return backend
    name = backend or os.environ.get("COALMINE_BACKEND", "local")
    if name == "local":
        return LocalBackend(home)
    if name == "kubernetes":
        # Imported only when chosen: the local lab needs no kubernetes client.
        from helpers.backends.kube import KubernetesBackend

        return KubernetesBackend(home)
    raise InvalidArgument(f'unknown backend "{name}": use "local" or "kubernetes"')


class Lab:
    """A canary lab: deploy the petstore, install the gateway, route, watch.

    ``backend`` is ``"local"`` (default, the embedded runtime on 127.0.0.1),
    ``"kubernetes"`` (the kubeconfig's current context; ``COALMINE_CONTEXT`` picks
    another) or a backend object; ``home`` picks the lab home (default ``COALMINE_HOME``).
    """

    def __init__(self, backend: Backend | str | None = None, home: str | os.PathLike[str] | None = None) -> None:
        self.backend = make_backend(backend, home)

    def __repr__(self) -> str:
        return f"Lab({self.backend!r})"

    def up(self) -> dict[str, Any]:
        """Start the lab if it is not running; returns its status."""
        return self.backend.up()

    def down(self, forget: bool = False) -> str:
        """Stop the lab and every process it started; returns what was done.

        With ``forget=True`` the lab also forgets what it holds (applied objects,
        installed gateways), so that the next ``up`` starts an empty lab; on a cluster
        that is ``reset()``: what the lab applied and installed is removed.
        """
        return self.backend.down(forget=forget)

    def status(self) -> dict[str, Any]:
        """The lab at a glance: home, gateway URL, objects, pods."""
        return self.backend.status()

    def apply(self, *sources: Sources) -> Applied:
        """Apply manifests (files, folders, YAML text or dicts, or lists of them), like
        ``kubectl apply -f``.

        Returns one line per object (``virtualservice.gateway.solo.io/coalmine configured``).
        An object accepted with a warning (a route to an upstream that does not exist)
        is applied, and the warning is printed too. Raises ``ApplyRefused`` if any object
        was refused; the others were applied and the running configuration of the
        refused ones is unchanged.
        """
        applied = Applied(_report(self.apply_each(*sources), "apply"))
        for warning in applied.warnings:
            print(warning, file=sys.stderr)
        return applied

    def apply_each(self, *sources: Sources) -> list[dict[str, Any]]:
        """Apply like ``apply``, but return one result per object instead of raising:
        ``{"ref", "action", "warnings"}``, or ``{"ref", "error"}`` for a refused one."""
        return self.backend.apply(load_manifests(_flat(sources)))

    def delete(
        self, *sources: Sources, kind: str | None = None, name: str | None = None, namespace: str | None = None
    ) -> list[str]:
        """Delete what ``sources`` describe, or one object by ``kind`` and ``name``.

        Deleting a pod makes its Deployment start a new one, as in Kubernetes.
        Raises ``NotFound`` when an object does not exist.
        """
        return _report(self.delete_each(*sources, kind=kind, name=name, namespace=namespace), "delete")

    def delete_each(
        self, *sources: Sources, kind: str | None = None, name: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Delete like ``delete``, but return one result per object instead of raising."""
        if kind is not None:
            if not name:
                raise InvalidArgument("delete needs -f PATH or KIND NAME")
            refs = [{"kind": lookup(kind).name, "name": str(name), "namespace": namespace or default_namespace(kind)}]
        else:
            refs = [
                {
                    "kind": o.get("kind", ""),
                    "name": (o.get("metadata") or {}).get("name", ""),
                    "namespace": (o.get("metadata") or {}).get("namespace") or "default",
                }
                for o in load_manifests(_flat(sources))
            ]
        return self.backend.delete(refs)

    def objects(
        self, kind: str, name: str | None = None, namespace: str | None = None, all_namespaces: bool = False
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` with their status, as dicts."""
        ns = None if all_namespaces else (namespace or default_namespace(kind))
        return self.backend.get(lookup(kind).name, ns, name)

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = None,
        all_namespaces: bool = False,
        wide: bool = False,
    ) -> pd.DataFrame:
        """A table of ``kind`` (pods, services, upstreams, vs, ...) as a DataFrame,
        with the columns ``coalmine get`` prints."""
        import pandas as pd

        found = self.objects(kind, name, namespace, all_namespaces)
        if name is not None and not found:
            raise NotFound(f'{lookup(kind).plural} "{name}" not found')
        table = rows(lookup(kind).name, found, wide=wide, with_namespace=all_namespaces)
        return pd.DataFrame(table, columns=list(table[0]) if table else None)

    def yaml(self, kind: str, name: str, namespace: str | None = None) -> str:
        """One object as YAML with its status, like ``kubectl get KIND NAME -o yaml``."""
        found = self.objects(kind, name, namespace)
        if not found:
            raise NotFound(f'{lookup(kind).plural} "{name}" not found')
        return yaml.safe_dump(found[0], sort_keys=False)

    def install(self, component: str = "gloo", port: int | None = None, channel: str | None = None) -> dict[str, Any]:
        """Install the gateway: ``gloo`` (discovery and the gateway proxy) or
        ``kgateway`` (the Gateway API: each Gateway listener gets its own proxy).

        ``channel`` picks kgateway's Gateway API CRDs: ``"standard"`` (the default, as
        kgateway's docs) or ``"experimental"`` (adds fields such as HTTPRoute ``retry``);
        installing again with the other channel switches."""
        return self.backend.install(component, port, channel)

    def uninstall(self, component: str = "gloo") -> list[str]:
        """Remove a gateway the lab installed on a cluster (kubernetes backend)."""
        return self.backend.uninstall(component)

    def reset(self) -> list[str]:
        """Undo everything the lab did to a cluster (kubernetes backend): delete what it
        applied, uninstall what it installed, stop its port-forwards."""
        return self.backend.reset()

    def wait(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until deployments are ready and the gateway serves (``WaitTimeout`` if not)."""
        return self.backend.wait(timeout)

    def wait_in_force(self, served: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Wait until the route change you just applied is what the gateway serves.

        ``apply`` returns when the change is stored and validated. On a cluster, Gloo
        (or kgateway) then translates it and pushes it to Envoy over xDS, a moment
        later: a request sent at once may still follow the old route. So the lessons
        call this after every route change they measure or build on. ``served`` asks
        the gateway whether it serves the change (``helpers.lessons.inforce.serves``
        builds one from a path and the versions that should answer). Locally it returns
        at once without asking: the local control plane swaps the route table before
        ``apply`` returns. On a cluster it asks every half second and raises
        ``WaitTimeout`` after ``timeout`` seconds. Returns whether it had to wait.
        """
        return self.backend.wait_in_force(served, timeout)

    def routes(self) -> list[dict[str, Any]]:
        """The route table the gateway serves, one row per route (local runtime)."""
        return self.backend.routes()

    def proxy_url(self, gateway: str | None = None) -> str:
        """The gateway's base URL (like ``glooctl proxy url``); with ``gateway``
        (``"kgateway-system/http"``), the URL of that Gateway API Gateway."""
        if gateway is None:
            return self.backend.proxy_url()
        return self.backend.proxy_url(gateway=gateway)

    def stats(self) -> dict[str, Any]:
        """Requests per upstream, by status, with latency percentiles (every gateway's
        added up)."""
        return self.backend.stats()

    def stats_url(self, gateway: str | None = None) -> str:
        """Where a gateway serves its stats in Prometheus's format, as Envoy's admin
        ``/stats/prometheus`` (the lab's token opens it: ``Authorization: Bearer``). By
        default Gloo's gateway-proxy; ``gateway`` ("namespace/name") picks a Gateway."""
        return self.backend.stats_url(gateway)

    def events(self, namespace: str | None = None) -> pd.DataFrame:
        """Events as ``kubectl get events`` lists them (LAST SEEN, TYPE, REASON, OBJECT,
        MESSAGE), oldest first: every phase change and failed check of a Canary is one.
        ``namespace`` None means every namespace (a NAMESPACE column is added)."""
        import pandas as pd

        table = rows("Event", self.backend.events(namespace), with_namespace=namespace is None)
        return pd.DataFrame(table, columns=list(table[0]) if table else None)


class Applied(list[str]):
    """What ``lab.apply`` did, one line per object; ``warnings`` are the lines that
    start with ``warning:`` (accepted, but look at them)."""

    @property
    def warnings(self) -> list[str]:
        """The warnings among the lines."""
        return [line for line in self if line.startswith("warning: ")]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # In a notebook: one line per object, as kubectl prints them.
        printer.text("\n".join(self) if self else "(nothing applied)")


def _report(results: Iterable[dict[str, Any]], verb: str) -> list[str]:
    lines: list[str] = []
    errors: list[str] = []
    error_class: type[CoalmineError] = ApplyRefused
    for r in results:
        if "error" in r:
            if not errors and r.get("reason") == "NotFound":
                error_class = NotFound
            errors.append(f"error: {r['ref']}: {r['error']}")
            continue
        lines.append(f"{r['ref']} {r['action']}")
        lines += [f"warning: {r['ref']}: {w}" for w in r.get("warnings") or []]
    if errors:
        done = ("\n" + "\n".join(lines)) if lines else ""
        raise error_class("\n".join(errors) + done)
    return lines
