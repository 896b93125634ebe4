"""k3s's deploy controller as the lab plays it: the add-ons a minimal install creates, edits kept."""

from __future__ import annotations

from bgpconform.kubeapi.client import STRATEGIC_MERGE_PATCH, Kube, Resources
from bgpconform.lab.cluster.k3s import bootstrap_objects, deploy_bootstrap


def _names(kube: Kube) -> set[tuple[str, str]]:
    return {
        (resource.plural, obj["metadata"]["name"])
        for resource, obj in bootstrap_objects()
        if kube.get_or_none(resource, obj["metadata"]["name"], obj["metadata"].get("namespace"))
    }


def test_a_fresh_api_gets_coredns_and_local_path_provisioner(kube: Kube) -> None:
    deploy_bootstrap(kube)
    assert _names(kube) == {(r.plural, o["metadata"]["name"]) for r, o in bootstrap_objects()}
    deployments = {d["metadata"]["name"] for d in kube.items(Resources.DEPLOYMENTS, "kube-system")}
    assert "coredns" in deployments


def test_an_addon_already_there_is_left_as_it_is(kube: Kube) -> None:
    """As k3s leaves an add-on a user edited; a second bootstrap (a restarted server) changes nothing."""
    deploy_bootstrap(kube)
    kube.patch(
        Resources.DEPLOYMENTS,
        "coredns",
        {"spec": {"replicas": 3}},
        "kube-system",
        content_type=STRATEGIC_MERGE_PATCH,
    )
    deploy_bootstrap(kube)
    assert kube.get(Resources.DEPLOYMENTS, "coredns", "kube-system")["spec"]["replicas"] == 3
