"""The CustomResourceDefinitions Cilium 1.13's operator registers, as the objects it sends.

Names, scopes and short names are the walkthrough's `kubectl api-resources | grep -i cilium` (and
`bgpp` once BGP is on); the set registered follows `pkg/k8s/synced/crd.go` (FACTS.md, "CRD
registration, config, logs"). The two CRDs the harness exercises carry their 1.13 structural schemas
(FACTS.md, "BGP control plane v1" and "LB IPAM": exact fields, pool printer columns DISABLED,
CONFLICTING, IPS AVAILABLE, AGE, pool status subresource); every other one gets a permissive schema
(`x-kubernetes-preserve-unknown-fields`), enough for the lab, which never reads them.

Every CRD is labelled `io.cilium/k8s-crd-schema-version` with the release's schema version (1.26.7 for
v1.13.0 to v1.13.13, Cilium's `Documentation/network/kubernetes/compatibility-table.rst`); the operator
updates a CRD whose label is missing or older. The operator's `constructV1CRD` copies kind, plural,
singular and short names but not categories until cilium/cilium#33387 (1.16), so `definition()` leaves
categories out for older releases: `kubectl get cilium` lists nothing on a 1.13 cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bgpconform.cilium.lbipam import Naming, PoolFormat
from bgpconform.cilium.versions import cilium_minor
from bgpconform.kubeapi.port import KubeResource
from bgpconform.lab import defects

GROUP = "cilium.io"
SCHEMA_VERSION_LABEL = "io.cilium/k8s-crd-schema-version"
# 1.13-1.15 as their releases label them; from 1.16 the lab's own values, unverified: each release that
# changes a CRD bumps the label (`register.go`: "Bump patch for each change in the CRD schema"), so an
# upgraded operator finds the older label and replaces the definition; only their order matters here.
_SCHEMA_VERSIONS = {
    (1, 13): "1.26.7",
    (1, 14): "1.26.10",
    (1, 15): "1.27.1",
    (1, 16): "1.28.0",
    (1, 17): "1.29.0",
    (1, 18): "1.30.0",
    (1, 19): "1.31.0",
}

Schema = dict[str, Any]


def schema_version(cilium_version: str) -> str:
    """The `io.cilium/k8s-crd-schema-version` a release labels its CRDs with (1.16+ the lab's own)."""
    minor = cilium_minor(cilium_version, since=(1, 13), missing="no CRD set known for Cilium {version}")
    return _SCHEMA_VERSIONS[minor]


def _label_selector() -> Schema:
    """`slim_metav1.LabelSelector` as controller-gen renders it in 1.13."""
    return {
        "type": "object",
        "properties": {
            "matchExpressions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string"},
                        "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                        "values": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "matchLabels": {
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "maxLength": 63,
                    "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
                },
            },
        },
    }


def _asn() -> Schema:
    return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}


def _root(spec: Schema, *, spec_required: bool = False, status: Schema | None = None) -> Schema:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return {
        "type": "object",
        "required": ["metadata", "spec"] if spec_required else ["metadata"],
        "properties": properties,
    }


def _int32(minimum: int, maximum: int = 65535) -> Schema:
    return {"type": "integer", "format": "int32", "minimum": minimum, "maximum": maximum}


def bgp_peering_policy_schema(minor: tuple[int, int] = (1, 13)) -> Schema:
    """The CiliumBGPPeeringPolicy of a release (FACTS.md, "CiliumBGPPeeringPolicy"): 1.13's nodeSelector,
    virtualRouters[] (localASN, exportPodCIDR, serviceSelector, neighbors[] of peerAddress and peerASN)
    and nothing else; 1.14 adds per neighbor the port, multihop TTL, timers and graceful restart; 1.15
    and 1.16 add fields the lab keeps as given (families, path attributes, auth, pod IP pools, service
    advertisements). The API server prunes whatever the release's schema lacks."""
    properties: dict[str, Schema] = {"peerASN": _asn(), "peerAddress": {"type": "string", "format": "cidr"}}
    if minor >= (1, 14):
        properties |= {
            "peerPort": _int32(1),
            "eBGPMultihopTTL": _int32(1, 255),
            "connectRetryTimeSeconds": _int32(1, 2147483647),
            "holdTimeSeconds": _int32(3),
            "keepAliveTimeSeconds": _int32(1),
            "gracefulRestart": {
                "type": "object",
                "required": ["enabled"],
                "properties": {
                    "enabled": {"type": "boolean"},
                    "restartTimeSeconds": _int32(1, 4095),
                },
            },
        }
    if minor >= (1, 15):
        kept = {"x-kubernetes-preserve-unknown-fields": True}
        properties |= {
            "families": {"type": "array", "items": {"type": "object", **kept}},
            "advertisedPathAttributes": {"type": "array", "items": {"type": "object", **kept}},
            "authSecretRef": {"type": "string"},
        }
    neighbor = {"type": "object", "required": ["peerASN", "peerAddress"], "properties": properties}
    router_properties: dict[str, Schema] = {
        "localASN": _asn(),
        "exportPodCIDR": {"type": "boolean"},
        "serviceSelector": _label_selector(),
        "neighbors": {"type": "array", "minItems": 1, "items": neighbor},
    }
    if minor >= (1, 15):
        router_properties["podIPPoolSelector"] = _label_selector()
    if minor >= (1, 16):
        router_properties["serviceAdvertisements"] = {"type": "array", "items": {"type": "string"}}
    router = {"type": "object", "required": ["localASN", "neighbors"], "properties": router_properties}
    spec = {
        "type": "object",
        "required": ["virtualRouters"],
        "properties": {
            "nodeSelector": _label_selector(),
            "virtualRouters": {"type": "array", "minItems": 1, "items": router},
        },
    }
    return _root(spec)


def _conditions() -> Schema:
    """`[]metav1.Condition`, a list-map keyed by type."""
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string", "maxLength": 32768},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                "reason": {
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                },
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {"type": "string", "maxLength": 316},
            },
        },
    }


def lb_ip_pool_schema(minor: tuple[int, int] = (1, 13)) -> Schema:
    """CiliumLoadBalancerIPPool as `minor` defines it (`PoolFormat`, FACTS.md "LB IPAM"): 1.13-1.14
    require `spec.cidrs[]{cidr}`; 1.15 makes it optional beside `blocks[]` (`cidr`, or `start`/`stop`)
    and `allowFirstLastIPs`; 1.16 drops `cidrs`, so the API server prunes it. Plus `serviceSelector`,
    `disabled` and status conditions."""
    pool_format = PoolFormat.for_version(f"{minor[0]}.{minor[1]}")
    cidr_item = {
        "type": "object",
        "required": ["cidr"],
        "properties": {"cidr": {"type": "string", "format": "cidr"}},
    }
    properties: dict[str, Any] = {
        "disabled": {"type": "boolean", "default": False},
        "serviceSelector": _label_selector(),
    }
    if pool_format.reads_cidrs:
        properties["cidrs"] = {"type": "array", "items": cidr_item}
    if pool_format.reads_blocks:
        properties["blocks"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "cidr": {"type": "string", "format": "cidr"},
                    "start": {"type": "string"},
                    "stop": {"type": "string"},
                },
            },
        }
        properties["allowFirstLastIPs"] = {"type": "string", "enum": ["Yes", "No"]}
    spec: Schema = {"type": "object", "properties": properties}
    if not pool_format.reads_blocks:
        spec["required"] = ["cidrs"]
        properties["cidrs"]["minItems"] = 1
    status = {"type": "object", "properties": {"conditions": _conditions()}}
    return _root(spec, status=status)


def permissive_schema() -> Schema:
    """Any content is kept: for the CRDs whose fields the lab neither writes nor checks."""
    open_object: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "type": "object",
        "required": ["metadata"],
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": copy.deepcopy(open_object),
            "status": copy.deepcopy(open_object),
        },
    }


def pool_printer_columns(minor: tuple[int, int]) -> tuple[Mapping[str, str], ...]:
    """DISABLED, CONFLICTING, IPS AVAILABLE, AGE, read from the conditions `minor` writes."""
    naming = Naming.for_version(f"{minor[0]}.{minor[1]}")
    return (
        {"name": "Disabled", "type": "boolean", "jsonPath": ".spec.disabled"},
        {
            "name": "Conflicting",
            "type": "string",
            "jsonPath": f'.status.conditions[?(@.type=="{naming.conflict}")].status',
        },
        {
            "name": "IPs Available",
            "type": "string",
            "jsonPath": f'.status.conditions[?(@.type=="{naming.ips_available}")].message',
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    )


@dataclass(frozen=True, eq=False)
class CiliumCRD:
    """One CRD: its names, scope, schema and subresources; `name` and `log_name` as Cilium prints them.

    Compared by identity: the module's constants are the CRDs.
    """

    kind: str
    version: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = False
    categories: tuple[str, ...] = ("cilium",)
    schema: Schema = field(default_factory=permissive_schema)
    printer_columns: tuple[Mapping[str, str], ...] = ()
    status_subresource: bool = False
    # What changes with the release, where something does: the schema and the printer columns.
    schema_for: Callable[[tuple[int, int]], Schema] | None = None
    printer_columns_for: Callable[[tuple[int, int]], tuple[Mapping[str, str], ...]] | None = None

    @property
    def name(self) -> str:
        """`metadata.name`, e.g. `ciliumbgppeeringpolicies.cilium.io`."""
        return f"{self.plural}.{GROUP}"

    @property
    def resource(self) -> KubeResource:
        """Where the API serves it."""
        return KubeResource(GROUP, self.version, self.plural, self.namespaced, self.kind)

    @property
    def log_name(self) -> str:
        """The `name=` of the operator's log lines, e.g. `CiliumBGPPeeringPolicy/v2alpha1`."""
        return f"{self.kind}/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def definition(self, cilium_version: str = "1.13.4") -> dict[str, Any]:
        """The CustomResourceDefinition object the operator of `cilium_version` creates."""
        names: dict[str, Any] = {"kind": self.kind, "plural": self.plural, "singular": self.singular}
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        minor = cilium_minor(cilium_version, since=(1, 13), missing="no CRD set known for Cilium {version}")
        if minor >= (1, 16) and self.categories:
            names["categories"] = list(self.categories)
        schema = self.schema_for(minor) if self.schema_for is not None else self.schema
        columns = (
            self.printer_columns_for(minor) if self.printer_columns_for is not None else self.printer_columns
        )
        served: dict[str, Any] = {
            "name": self.version,
            "served": True,
            "storage": True,
            "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
        }
        if self.status_subresource:
            served["subresources"] = {"status": {}}
        if columns:
            served["additionalPrinterColumns"] = [dict(column) for column in columns]
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": self.name,
                "labels": {SCHEMA_VERSION_LABEL: schema_version(cilium_version)},
            },
            "spec": {
                "group": GROUP,
                "names": names,
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "versions": [served],
            },
        }


CNP = CiliumCRD(
    "CiliumNetworkPolicy",
    "v2",
    "ciliumnetworkpolicies",
    ("cnp", "ciliumnp"),
    namespaced=True,
    categories=("cilium", "ciliumpolicy"),
    status_subresource=True,
)
CCNP = CiliumCRD(
    "CiliumClusterwideNetworkPolicy",
    "v2",
    "ciliumclusterwidenetworkpolicies",
    ("ccnp",),
    categories=("cilium", "ciliumpolicy"),
    status_subresource=True,
)
CEP = CiliumCRD("CiliumEndpoint", "v2", "ciliumendpoints", ("cep", "ciliumep"), namespaced=True)
CID = CiliumCRD("CiliumIdentity", "v2", "ciliumidentities", ("ciliumid",))
CN = CiliumCRD("CiliumNode", "v2", "ciliumnodes", ("cn", "ciliumn"))
CEW = CiliumCRD("CiliumExternalWorkload", "v2", "ciliumexternalworkloads", ("cew",), status_subresource=True)
CNC = CiliumCRD("CiliumNodeConfig", "v2alpha1", "ciliumnodeconfigs", namespaced=True)
CLRP = CiliumCRD(
    "CiliumLocalRedirectPolicy",
    "v2",
    "ciliumlocalredirectpolicies",
    ("clrp",),
    namespaced=True,
    status_subresource=True,
)
CEGP = CiliumCRD("CiliumEgressGatewayPolicy", "v2", "ciliumegressgatewaypolicies")
CES = CiliumCRD("CiliumEndpointSlice", "v2alpha1", "ciliumendpointslices", ("ces",))
CCEC = CiliumCRD("CiliumClusterwideEnvoyConfig", "v2", "ciliumclusterwideenvoyconfigs", ("ccec",))
CEC = CiliumCRD("CiliumEnvoyConfig", "v2", "ciliumenvoyconfigs", ("cec",), namespaced=True)
BGPP = CiliumCRD(
    "CiliumBGPPeeringPolicy",
    "v2alpha1",
    "ciliumbgppeeringpolicies",
    ("bgpp",),
    categories=("cilium", "ciliumbgp"),
    schema_for=bgp_peering_policy_schema,
)
LB_IP_POOL = CiliumCRD(
    "CiliumLoadBalancerIPPool",
    "v2alpha1",
    "ciliumloadbalancerippools",
    ("ippools", "ippool", "lbippool", "lbippools"),
    status_subresource=True,
    schema_for=lb_ip_pool_schema,
    printer_columns_for=pool_printer_columns,
)


def _bgp_v2(kind: str, plural: str, version: str, *, status: bool = False) -> CiliumCRD:
    return CiliumCRD(kind, version, plural, categories=("cilium", "ciliumbgp"), status_subresource=status)


def _bgp_v2_set(version: str) -> tuple[CiliumCRD, ...]:
    """BGPv2's kinds (FACTS.md, "Cilium: BGPv2"); their schemas are kept open in the lab."""
    return (
        _bgp_v2("CiliumBGPClusterConfig", "ciliumbgpclusterconfigs", version, status=True),
        _bgp_v2("CiliumBGPPeerConfig", "ciliumbgppeerconfigs", version, status=True),
        _bgp_v2("CiliumBGPAdvertisement", "ciliumbgpadvertisements", version),
        _bgp_v2("CiliumBGPNodeConfig", "ciliumbgpnodeconfigs", version, status=True),
        _bgp_v2("CiliumBGPNodeConfigOverride", "ciliumbgpnodeconfigoverrides", version),
    )


BGP_V2_ALPHA = _bgp_v2_set("v2alpha1")  # 1.16-1.17
BGP_V2 = _bgp_v2_set("v2")  # 1.18+ (#37765); the lab serves only the storage version


def bgp_crds(cilium_version: str) -> tuple[CiliumCRD, ...]:
    """The BGP CRDs an operator of `cilium_version` registers when the control plane is on, which are
    also the ones its agents wait for: the v1 policy up to 1.18 (removed in 1.19, #42278), BGPv2's
    kinds from 1.16 (FACTS.md, "Cilium 1.13 to 1.20")."""
    minor = cilium_minor(cilium_version, since=(1, 13), missing="no CRD set known for Cilium {version}")
    v1 = (BGPP,) if minor <= (1, 18) else ()
    if minor < (1, 16):
        return v1
    return (*v1, *(BGP_V2 if minor >= (1, 18) else BGP_V2_ALPHA))


ALL_1_13: tuple[CiliumCRD, ...] = (
    CEW,
    CNC,
    LB_IP_POOL,
    CEP,
    CID,
    CN,
    CCNP,
    CNP,
    CES,
    CEGP,
    CLRP,
    CCEC,
    CEC,
    BGPP,
)
"""Every CRD a 1.13 operator may register, in the order the walkthrough's operator log reports them."""


def _on(config: Mapping[str, str], key: str, default: bool = False) -> bool:
    value = config.get(key)
    return default if value is None else value.strip().lower() == "true"


def crds_for_config(config: Mapping[str, str], cilium_version: str = "1.13.4") -> list[CiliumCRD]:
    """The CRDs an operator registers for a `cilium-config` (`agentCRDResourceNames` + CEW), 1.13's
    set with the BGP kinds of `cilium_version` (`bgp_crds`).

    Always: CNP, CCNP, CN, CID, CNC, CEW and the LB pool (LB IPAM is always on, dormant until a pool
    exists). CEP unless `disable-endpoint-crd`, CES with `enable-cilium-endpoint-slice`, CEGP with
    `enable-ipv4-egress-gateway`, CLRP with `enable-local-redirect-policy`, CCEC and CEC with
    `enable-envoy-config`, and the BGP peering policy only with `enable-bgp-control-plane` (FACTS.md).
    """
    wanted = {CNP, CCNP, CN, CID, CNC, CEW, LB_IP_POOL}
    if not _on(config, "disable-endpoint-crd"):
        wanted.add(CEP)
        if _on(config, "enable-cilium-endpoint-slice"):
            wanted.add(CES)
    if _on(config, "enable-ipv4-egress-gateway"):
        wanted.add(CEGP)
    if _on(config, "enable-local-redirect-policy"):
        wanted.add(CLRP)
    if _on(config, "enable-envoy-config"):
        wanted.update((CCEC, CEC))
    bgp = _on(config, "enable-bgp-control-plane") or defects.active("operator-registers-bgp-crd-regardless")
    bgp_kinds = bgp_crds(cilium_version)
    if bgp and not defects.active("operator-registers-no-bgp-crd"):
        wanted.update(bgp_kinds)
    return [crd for crd in (*ALL_1_13, *BGP_V2_ALPHA, *BGP_V2) if crd in wanted]
