"""The emulated operator over a real API server: CRD registration gated by the config read at start
(FACTS.md, "CRD registration, config, logs"; walkthrough, the operator restart and its log) and LB IPAM
end to end (FACTS.md, "LB IPAM")."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from bgpconform.cilium.install import CiliumValues
from bgpconform.cilium.operations import CiliumOperations
from bgpconform.cilium.versions import image_version
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cilium import crds
from bgpconform.lab.cilium.manifests import config_data, operator_deployment
from bgpconform.lab.cilium.operator import Operator, OperatorProgram, logfmt
from bgpconform.lab.cluster.runtime import ContainerContext
from bgpconform.topology import load_topology
from bgpconform.waiting import wait_for

POOL_CIDR = "172.198.1.0/24"
SATISFIED = "io.cilium/lb-ipam-request-satisfied"
# The walkthrough's `k logs -n kube-system cilium-operator-768959858c-zk7zq | grep CRD`, verbatim.
WALKTHROUGH_CRD_LINES = [
    'level=info msg="Creating CRD (CustomResourceDefinition)..." '
    "name=CiliumBGPPeeringPolicy/v2alpha1 subsys=k8s",
    *(
        f'level=info msg="CRD (CustomResourceDefinition) is installed and up-to-date" name={name} subsys=k8s'
        for name in (
            "CiliumExternalWorkload/v2",
            "CiliumNodeConfig/v2alpha1",
            "CiliumLoadBalancerIPPool/v2alpha1",
            "CiliumEndpoint/v2",
            "CiliumIdentity/v2",
            "CiliumNode/v2",
            "CiliumClusterwideNetworkPolicy/v2",
            "CiliumNetworkPolicy/v2",
            "CiliumBGPPeeringPolicy/v2alpha1",
        )
    ),
    'level=info msg="Starting CRD identity garbage collector" interval=15m0s subsys=cilium-operator-generic',
]
# The walkthrough's `k api-resources | grep -i cilium` before the restart: name -> short names.
WALKTHROUGH_API_RESOURCES = {
    "ciliumclusterwidenetworkpolicies": ["ccnp"],
    "ciliumendpoints": ["cep", "ciliumep"],
    "ciliumexternalworkloads": ["cew"],
    "ciliumidentities": ["ciliumid"],
    "ciliumloadbalancerippools": ["ippools", "ippool", "lbippool", "lbippools"],
    "ciliumnetworkpolicies": ["cnp", "ciliumnp"],
    "ciliumnodeconfigs": [],
    "ciliumnodes": ["cn", "ciliumn"],
}

Api = Any  # the client's generated API classes are untyped


class Log:
    """A container log: lines appended from the operator's thread."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)


@pytest.fixture
def core(kube: Kube) -> Api:
    return client.CoreV1Api(kube.api_client)


@pytest.fixture
def custom(kube: Kube) -> Api:
    return client.CustomObjectsApi(kube.api_client)


def install_config(kube: Kube, **values: Any) -> None:
    kube.create(
        Resources.CONFIGMAPS,
        {
            "metadata": {"name": "cilium-config"},
            "data": config_data(CiliumValues(cluster_name="k3s-rpi", **values)),
        },
        "kube-system",
    )


OperatorFactory = Callable[..., tuple[Operator, Log]]


@pytest.fixture
def run_operator(server: ApiServer) -> Iterator[OperatorFactory]:
    """Start an operator with its own client, as a new pod would, and wait until it is ready."""
    started: list[tuple[Operator, Any]] = []

    def start(rng: random.Random | None = None) -> tuple[Operator, Log]:
        api = new_api_client(str(server.kubeconfig_path))
        log = Log()
        operator = Operator(Kube(api), log, "1.13.4", resync=1.0, rng=rng)
        started.append((operator, api))
        operator.start()
        wait_for(
            lambda: (operator.ready(), operator.exit_code()),
            lambda state: state[0] or state[1] is not None,
            expected="the operator ready",
            timeout=20,
            describe=lambda _: log.lines()[-3:],
        )
        assert operator.exit_code() is None, log.lines()
        return operator, log

    yield start
    for operator, api in started:
        operator.stop()
        api.close()


def cilium_resources(custom: Api) -> dict[str, list[str]]:
    """`kubectl api-resources | grep -i cilium` through discovery: plural -> short names."""
    found: dict[str, list[str]] = {}
    for version in ("v2", "v2alpha1"):
        try:
            listed = custom.get_api_resources("cilium.io", version)
        except client.ApiException as exc:
            if exc.status == 404:
                continue
            raise
        for resource in listed.resources:
            if "/" not in resource.name:
                found[resource.name] = list(resource.short_names or [])
    return found


def find_kubectl() -> str | None:
    override = os.environ.get("BGPCONFORM_KUBECTL")
    return shutil.which(override or "kubectl")


Kubectl = Callable[..., str]


@pytest.fixture
def kubectl(server: ApiServer, tmp_path: Path) -> Kubectl:
    """Run kubectl against the server with its own cache; skips the test where kubectl is missing."""

    def run(*args: str) -> str:
        binary = find_kubectl()
        if binary is None:
            pytest.skip("kubectl is not installed")
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(tmp_path)}
        done = subprocess.run(
            [binary, "--cache-dir", str(tmp_path / "kube-cache"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


# -- CRD registration ----------------------------------------------------------------------------


def test_bgp_disabled_at_start_registers_everything_but_the_policy_crd(
    kube: Kube, custom: Api, run_operator: OperatorFactory, kubectl: Kubectl
) -> None:
    install_config(kube)
    operator, log = run_operator()
    assert cilium_resources(custom) == WALKTHROUGH_API_RESOURCES
    assert kube.get_or_none(Resources.CRDS, "ciliumbgppeeringpolicies.cilium.io") is None
    assert "ciliumbgppeeringpolicies" not in kubectl("api-resources")
    created = [line for line in log.lines() if "Creating CRD" in line]
    assert len(created) == len(WALKTHROUGH_API_RESOURCES)
    assert not any("CiliumBGPPeeringPolicy" in line for line in log.lines())
    assert [crd.kind for crd in operator.registered] == [
        "CiliumExternalWorkload",
        "CiliumNodeConfig",
        "CiliumLoadBalancerIPPool",
        "CiliumEndpoint",
        "CiliumIdentity",
        "CiliumNode",
        "CiliumClusterwideNetworkPolicy",
        "CiliumNetworkPolicy",
    ]


def test_config_set_alone_leaves_the_crd_missing_until_a_new_operator_starts(
    kube: Kube, custom: Api, run_operator: OperatorFactory, kubectl: Kubectl
) -> None:
    install_config(kube)
    first, _ = run_operator()
    CiliumOperations(kube).config_set("enable-bgp-control-plane", "true")
    assert CiliumOperations(kube).config_get()["enable-bgp-control-plane"] == "true"
    assert first.config["enable-bgp-control-plane"] == "false"  # read once, at start
    assert "ciliumbgppeeringpolicies" not in cilium_resources(custom)

    first.stop()  # the walkthrough's `k delete pod -n kube-system cilium-operator-...`
    _, log = run_operator()
    assert [line for line in log.lines() if "CRD" in line] == WALKTHROUGH_CRD_LINES
    assert cilium_resources(custom)["ciliumbgppeeringpolicies"] == ["bgpp"]
    listed = kubectl("api-resources", "--api-group=cilium.io")
    row = next(line for line in listed.splitlines() if line.startswith("ciliumbgppeeringpolicies "))
    assert row.split() == [
        "ciliumbgppeeringpolicies",
        "bgpp",
        "cilium.io/v2alpha1",
        "false",
        "CiliumBGPPeeringPolicy",
    ]
    assert log.lines()[0].startswith('level=info msg="Cilium Operator 1.13.4 ')
    assert log.lines()[-1] == 'level=info msg="Initialization complete" subsys=cilium-operator-generic'


def test_the_registered_policy_crd_is_structural_and_prunes_later_fields(
    kube: Kube, custom: Api, run_operator: OperatorFactory
) -> None:
    install_config(kube, enable_bgp_control_plane=True)
    run_operator()
    crd = kube.get(Resources.CRDS, "ciliumbgppeeringpolicies.cilium.io")
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["metadata"]["labels"] == {"io.cilium/k8s-crd-schema-version": "1.26.7"}
    assert "categories" not in crd["spec"]["names"]  # constructV1CRD drops them before 1.16
    policy = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumBGPPeeringPolicy",
        "metadata": {"name": "01-bgp-peering-policy"},
        "spec": {
            "nodeSelector": {"matchLabels": {"bgp-policy": "a"}},
            "virtualRouters": [
                {
                    "localASN": 64512,
                    "exportPodCIDR": True,
                    "neighbors": [{"peerAddress": "192.168.1.1/32", "peerASN": 64512, "peerPort": 179}],
                }
            ],
        },
    }
    created = custom.create_cluster_custom_object("cilium.io", "v2alpha1", "ciliumbgppeeringpolicies", policy)
    assert created["spec"]["virtualRouters"][0]["neighbors"] == [
        {"peerAddress": "192.168.1.1/32", "peerASN": 64512}
    ]
    bad = dict(policy, metadata={"name": "bad"}, spec={"virtualRouters": []})
    with pytest.raises(client.ApiException) as raised:
        custom.create_cluster_custom_object("cilium.io", "v2alpha1", "ciliumbgppeeringpolicies", bad)
    assert raised.value.status == 422


def test_an_older_crd_is_updated_and_a_current_one_left_alone(
    kube: Kube, run_operator: OperatorFactory
) -> None:
    install_config(kube)
    old = crds.LB_IP_POOL.definition()
    old["metadata"]["labels"] = {crds.SCHEMA_VERSION_LABEL: "1.26.3"}
    old["spec"]["versions"][0]["additionalPrinterColumns"] = []
    kube.create(Resources.CRDS, old)
    kube.create(Resources.CRDS, crds.CN.definition())
    _, log = run_operator()
    lines = log.lines()
    assert (
        logfmt(
            "info",
            "Updating CRD (CustomResourceDefinition)...",
            name="CiliumLoadBalancerIPPool/v2alpha1",
            subsys="k8s",
        )
        in lines
    )
    assert not any("CiliumNode/v2" in line and ("Creating" in line or "Updating" in line) for line in lines)
    updated = kube.get(Resources.CRDS, crds.LB_IP_POOL.name)
    assert updated["metadata"]["labels"][crds.SCHEMA_VERSION_LABEL] == "1.26.7"
    assert len(updated["spec"]["versions"][0]["additionalPrinterColumns"]) == 4


def test_a_missing_config_map_is_fatal(server: ApiServer, kube: Kube) -> None:
    log = Log()
    operator = Operator(kube, log)
    operator.start()
    try:
        wait_for(operator.exit_code, lambda code: code is not None, expected="the operator exits", timeout=10)
    finally:
        operator.stop()
    assert operator.exit_code() == 1
    assert not operator.ready()
    assert log.lines()[-1].startswith('level=fatal msg="Unable to read ConfigMap kube-system/cilium-config"')


def test_optional_crds_follow_their_config_keys() -> None:
    config = {
        "enable-local-redirect-policy": "true",
        "enable-envoy-config": "true",
        "disable-endpoint-crd": "true",
    }
    kinds = {crd.kind for crd in crds.crds_for_config(config)}
    assert {"CiliumLocalRedirectPolicy", "CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig"} <= kinds
    assert "CiliumEndpoint" not in kinds
    assert "CiliumBGPPeeringPolicy" not in kinds


def test_every_crd_definition_is_accepted_by_the_api(kube: Kube) -> None:
    for crd in crds.ALL_1_13:
        kube.create(Resources.CRDS, crd.definition("1.13.4"))
        found = kube.get(Resources.CRDS, crd.name)
        assert {c["type"]: c["status"] for c in found["status"]["conditions"]}["Established"] == "True"


def test_log_lines_quote_like_logrus() -> None:
    assert logfmt("info", "Connected", subsys="k8s") == "level=info msg=Connected subsys=k8s"
    assert logfmt("info", "a b", host="https://10.43.0.1:443", subsys="k8s") == (
        'level=info msg="a b" host="https://10.43.0.1:443" subsys=k8s'
    )
    assert image_version("quay.io/cilium/operator-generic:v1.13.4@sha256:09ab") == "1.13.4"
    assert image_version("quay.io/cilium/operator-generic") is None


# -- LB IPAM -------------------------------------------------------------------------------------


def make_pool(custom: Api, name: str, *cidrs: str) -> None:
    body = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": name},
        "spec": {"cidrs": [{"cidr": cidr} for cidr in cidrs]},
    }
    custom.create_cluster_custom_object("cilium.io", "v2alpha1", "ciliumloadbalancerippools", body)


def make_service(core: Api, name: str, load_balancer_ip: str | None = None) -> None:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": {"app": "simple-pod"},
        "ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}],
    }
    if load_balancer_ip:
        spec["loadBalancerIP"] = load_balancer_ip
    core.create_namespaced_service("default", {"metadata": {"name": name}, "spec": spec})


def pool_conditions(kube: Kube, name: str) -> dict[str, dict[str, Any]]:
    pool = kube.get(Resources.LB_IP_POOLS, name)
    return {c["type"]: c for c in (pool.get("status") or {}).get("conditions") or []}


def service_status(kube: Kube, name: str) -> tuple[list[str], dict[str, Any] | None]:
    status = kube.get(Resources.SERVICES, name, "default").get("status") or {}
    ips = [i["ip"] for i in (status.get("loadBalancer") or {}).get("ingress") or []]
    found = [c for c in status.get("conditions") or [] if c["type"] == SATISFIED]
    return ips, (found[-1] if found else None)


def wait_ips(kube: Kube, name: str, until: Callable[[list[str]], bool], expected: str) -> list[str]:
    return wait_for(lambda: service_status(kube, name)[0], until, expected=expected, timeout=15).value


def test_a_service_gets_an_address_inside_the_pool(
    kube: Kube, core: Api, custom: Api, run_operator: OperatorFactory, kubectl: Kubectl
) -> None:
    install_config(kube)
    run_operator()
    make_service(core, "before-any-pool")
    make_pool(custom, "lb-pool", POOL_CIDR)
    make_service(core, "my-service")
    for name in ("before-any-pool", "my-service"):
        ips = wait_ips(kube, name, bool, f"{name} has an LB IP")
        address = ip_address(ips[0])
        assert address in ip_network(POOL_CIDR)
        assert str(address) not in ("172.198.1.0", "172.198.1.255")
        condition = service_status(kube, name)[1]
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("True", "satisfied")
    first, second = service_status(kube, "before-any-pool")[0], service_status(kube, "my-service")[0]
    assert first != second
    conditions = wait_for(
        lambda: pool_conditions(kube, "lb-pool"),
        lambda c: c.get("io.cilium/ips-used", {}).get("message") == "2",
        expected="the pool counts two used IPs",
        timeout=10,
    ).value
    assert (conditions["io.cilium/conflict"]["status"], conditions["io.cilium/conflict"]["reason"]) == (
        "False",
        "resolved",
    )
    assert conditions["io.cilium/ips-total"]["message"] == "254"
    assert conditions["io.cilium/ips-available"]["message"] == "252"
    assert conditions["io.cilium/ips-available"]["reason"] == "noreason"
    table = kubectl("get", "ippools").splitlines()
    assert table[0].split() == ["NAME", "DISABLED", "CONFLICTING", "IPS", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["lb-pool", "false", "False", "252"]


def test_an_overlapping_pool_is_marked_and_released_when_the_overlap_goes(
    kube: Kube, core: Api, custom: Api, run_operator: OperatorFactory
) -> None:
    install_config(kube)
    run_operator()
    make_pool(custom, "lb-pool", POOL_CIDR)
    make_service(core, "my-service")
    held = wait_ips(kube, "my-service", bool, "my-service has an LB IP")
    make_pool(custom, "overlapping", "172.198.1.128/25")
    conflict = wait_for(
        lambda: pool_conditions(kube, "overlapping").get("io.cilium/conflict", {}),
        lambda c: c.get("status") == "True",
        expected="the newer pool marked conflicting",
        timeout=10,
    ).value
    assert conflict["reason"] == "cidr_overlap"
    assert conflict["message"] == (
        "Pool conflicts since CIDR '172.198.1.128/25' overlaps CIDR '172.198.1.0/24' from IP Pool 'lb-pool'"
    )
    assert pool_conditions(kube, "lb-pool")["io.cilium/conflict"]["status"] == "False"
    make_service(core, "second")
    second = wait_ips(kube, "second", bool, "the first pool still allocates")
    assert ip_address(second[0]) in ip_network(POOL_CIDR)
    assert service_status(kube, "my-service")[0] == held

    custom.delete_cluster_custom_object("cilium.io", "v2alpha1", "ciliumloadbalancerippools", "lb-pool")
    resolved = wait_for(
        lambda: pool_conditions(kube, "overlapping").get("io.cilium/conflict", {}),
        lambda c: c.get("status") == "False",
        expected="the mark lifted once the overlap is gone",
        timeout=10,
    ).value
    assert resolved["reason"] == "resolved"
    for name in ("my-service", "second"):
        ips = wait_ips(
            kube,
            name,
            lambda ips: bool(ips) and ip_address(ips[0]) in ip_network("172.198.1.128/25"),
            "re-homed",
        )
        assert ips[0] not in ("172.198.1.128", "172.198.1.255")


def test_a_requested_address_outside_every_pool_is_reported(
    kube: Kube, core: Api, custom: Api, run_operator: OperatorFactory
) -> None:
    install_config(kube)
    run_operator()
    make_pool(custom, "lb-pool", POOL_CIDR)
    make_service(core, "wants-elsewhere", load_balancer_ip="10.99.0.5")
    make_service(core, "wants-inside", load_balancer_ip="172.198.1.77")
    condition = wait_for(
        lambda: service_status(kube, "wants-elsewhere")[1],
        lambda c: c is not None,
        expected="a condition on the service",
        timeout=10,
    ).value
    assert condition is not None
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "no_pool",
        "No pool exists with a CIDR containing '10.99.0.5'",
    )
    assert service_status(kube, "wants-elsewhere")[0] == []
    assert wait_ips(kube, "wants-inside", bool, "the requested IP") == ["172.198.1.77"]


def test_random_allocation_hands_out_one_stable_address_per_service(
    kube: Kube, core: Api, custom: Api, run_operator: OperatorFactory
) -> None:
    install_config(kube)
    operator, _ = run_operator(random.Random(13))
    make_pool(custom, "lb-pool", POOL_CIDR)
    names = [f"svc-{index}" for index in range(4)]
    for name in names:
        make_service(core, name)
    held = {name: wait_ips(kube, name, bool, f"{name} has an LB IP") for name in names}
    assert all(len(ips) == 1 for ips in held.values())
    assert len({ips[0] for ips in held.values()}) == len(names)
    controller = operator.lbipam
    assert controller is not None
    passes = controller.passes
    for name in names:  # every change wakes the controller; nothing it decides may move an address
        kube.patch(Resources.SERVICES, name, {"metadata": {"labels": {"touched": "yes"}}}, "default")
    wait_for(lambda: controller.passes, lambda n: n >= passes + 2, expected="more LB IPAM passes", timeout=10)
    assert {name: service_status(kube, name)[0] for name in names} == held
    used = wait_for(
        lambda: pool_conditions(kube, "lb-pool").get("io.cilium/ips-used", {}).get("message"),
        lambda message: message == "4",
        expected="four used IPs",
        timeout=10,
    )
    assert used.value == "4"


def test_the_program_adapter_runs_the_operator_from_a_container_context(
    server: ApiServer, kube: Kube, tmp_path: Path
) -> None:
    install_config(kube)
    topology = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "lab.yaml")
    log = Log()
    container = operator_deployment(CiliumValues.for_topology(topology))["spec"]["template"]["spec"][
        "containers"
    ][0]
    ctx = ContainerContext(
        pod={"metadata": {"name": "cilium-operator-768959858c-zk7zq", "namespace": "kube-system"}},
        container=container,
        node=topology.nodes[0],
        topology=topology,
        network=cast(Any, None),  # a hostNetwork program that touches no namespace
        kubeconfig=str(server.kubeconfig_path),
        directory=tmp_path,
        attachment=None,
        log=log,
        register_exec=lambda handler: None,
    )
    program = OperatorProgram(ctx)
    program.start()
    try:
        wait_for(
            program.ready, bool, expected="the operator ready", timeout=20, describe=lambda _: log.lines()
        )
        assert program.exit_code() is None
    finally:
        program.stop()
    assert log.lines()[1] == (
        'level=info msg="Establishing connection to apiserver" host="https://192.168.1.200:6443" subsys=k8s'
    )
    assert kube.get_or_none(Resources.CRDS, crds.LB_IP_POOL.name) is not None
