"""The kubernetes backend: the same lab on a real cluster with Gloo Edge or kgateway.

    connecting   the official client: kubeconfig or in-cluster, errors that say what to do
    resources    apiVersion + kind -> REST path (the lab's kinds, then API discovery)
    applying     server-side apply (field manager ``coalmine``) and delete
    reading      objects as the local backend returns them; rollout and discovery status
    installing   what installing a gateway shares: a pending ledger record first, no Helm --wait
    gloo         Gloo Edge (Helm or glooctl) and its removal; what "strict validation" means
    kgateway     the Gateway API CRDs and kgateway (Helm), checked against each other, and their removal
    pins         the versions installed (Gloo chart, Helm major, kgateway charts, Gateway API) and their sources
    forwarding   127.0.0.1 -> the gateway's pods, where there is no load balancer
    ledger       what the lab applied and installed, so ``reset`` can undo it
    tools        the one seam for helm, glooctl and kubectl (argv lists, no shell)
    backend      ``KubernetesBackend``, tying them together

Data flows: manifests -> applying -> API server; API server -> reading -> tables.
"""

from helpers.backends.kube.backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
