"""What `cilium install` (cilium-cli v0.15.4, Cilium 1.13.4 chart) creates that the lab's behaviour
depends on, as plain objects in creation order.

ServiceAccounts `cilium` and `cilium-operator`, ConfigMap `cilium-config`, DaemonSet `cilium` (the agent:
six init containers then `cilium-agent`, FACTS.md "CRD registration, config, logs"; walkthrough:
`Defaulted container "cilium-agent" out of: cilium-agent, config (init), mount-cgroup (init),
apply-sysctl-overwrites (init), mount-bpf-fs (init), clean-cilium-state (init), install-cni-binaries
(init)`) and Deployment `cilium-operator` with one replica (walkthrough: one `cilium-operator-...` pod).
Field values follow the 1.13 chart's templates with the values cilium-cli sets (`bgpconform.cilium.install`).

Left out because the lab's API does not serve them or nothing observes them: RBAC (ClusterRoles and
bindings), the Hubble certificate Secrets, the `cilium-ca` Secret, and the chart's helm release record.
"""

from __future__ import annotations

from typing import Any

from bgpconform.cilium.install import CiliumValues
from bgpconform.kubeapi.client import KubeResource, Resources

AGENT_NAME = "cilium"
OPERATOR_NAME = "cilium-operator"
CONFIG_MAP = "cilium-config"
AGENT_LABELS = {
    "k8s-app": "cilium",
    "app.kubernetes.io/name": "cilium-agent",
    "app.kubernetes.io/part-of": "cilium",
}
OPERATOR_LABELS = {
    "io.cilium/app": "operator",
    "name": "cilium-operator",
    "app.kubernetes.io/name": "cilium-operator",
    "app.kubernetes.io/part-of": "cilium",
}
AGENT_HEALTH_PORT = 9879
OPERATOR_HEALTH_PORT = 9234
INIT_CONTAINERS = (
    "config",
    "mount-cgroup",
    "apply-sysctl-overwrites",
    "mount-bpf-fs",
    "clean-cilium-state",
    "install-cni-binaries",
)

# Image digests as the 1.13.4 chart pins them (`cilium status` on 1.13.4 clusters shows these).
DIGESTS: dict[str, dict[str, str]] = {
    "1.13.4": {
        "cilium": "sha256:bde8800d61aaad8b8451b10e247ac7bdeb7af187bb698f83d40ad75a38c1ee6b",
        "operator-generic": "sha256:09ab77d324ef4d31f7d341f97ec5a2a4860910076046d57a2d61494d426c6301",
    }
}


def image(name: str, version: str) -> str:
    """`quay.io/cilium/<name>:v<version>` plus the chart's digest when it is known."""
    plain = version.removeprefix("v")
    digest = DIGESTS.get(plain, {}).get(name)
    return f"quay.io/cilium/{name}:v{plain}" + (f"@{digest}" if digest else "")


def agent_image(values: CiliumValues) -> str:
    return image("cilium", values.version)


def operator_image(values: CiliumValues) -> str:
    return image("operator-generic", values.version)


def config_data(values: CiliumValues) -> dict[str, str]:
    """`cilium-config` as the 1.13 chart renders it for cilium-cli's values (a realistic subset)."""
    data: dict[str, str] = {
        "agent-not-ready-taint-key": "node.cilium.io/agent-not-ready",
        "arping-refresh-period": "30s",
        "auto-direct-node-routes": "false",
        "bpf-lb-external-clusterip": "false",
        "bpf-lb-map-max": "65536",
        "bpf-lb-sock": "false",
        "bpf-map-dynamic-size-ratio": "0.0025",
        "bpf-policy-map-max": "16384",
        "bpf-root": "/sys/fs/bpf",
        "cgroup-root": "/run/cilium/cgroupv2",
        "cilium-endpoint-gc-interval": "5m0s",
        "cluster-id": "0",
        "cluster-name": values.cluster_name,
        "cni-uninstall": "true",
        "custom-cni-conf": "false",
        "debug": "false",
        "disable-cnp-status-updates": "true",
        "enable-auto-protect-node-port-range": "true",
        "enable-bgp-control-plane": "true" if values.enable_bgp_control_plane else "false",
        "enable-bpf-clock-probe": "true",
        "enable-endpoint-health-checking": "true",
        "enable-health-check-nodeport": "true",
        "enable-health-checking": "true",
        "enable-hubble": "true",
        "enable-ipv4": "true",
        "enable-ipv4-masquerade": "true",
        "enable-ipv6": "false",
        "enable-ipv6-masquerade": "true",
        "enable-k8s-terminating-endpoint": "true",
        "enable-l2-neigh-discovery": "true",
        "enable-l7-proxy": "true",
        "enable-local-redirect-policy": "false",
        "enable-policy": "default",
        "enable-remote-node-identity": "true",
        "enable-sctp": "false",
        "enable-svc-source-range-check": "true",
        "enable-vtep": "false",
        "enable-well-known-identities": "false",
        "enable-xt-socket-fallback": "true",
        "hubble-disable-tls": "false",
        "hubble-listen-address": ":4244",
        "hubble-socket-path": "/var/run/cilium/hubble.sock",
        "identity-allocation-mode": "crd",
        "identity-gc-interval": "15m0s",
        "identity-heartbeat-timeout": "30m0s",
        "install-no-conntrack-iptables-rules": "false",
        "ipam": values.ipam_mode,
        "kube-proxy-replacement": values.kube_proxy_replacement,
        "kube-proxy-replacement-healthz-bind-address": "",
        "monitor-aggregation": "medium",
        "monitor-aggregation-flags": "all",
        "monitor-aggregation-interval": "5s",
        "node-port-bind-protection": "true",
        "nodes-gc-interval": "5m0s",
        "operator-api-serve-addr": f"127.0.0.1:{OPERATOR_HEALTH_PORT}",
        "preallocate-bpf-maps": "false",
        "procfs": "/host/proc",
        "remove-cilium-node-taints": "true",
        "set-cilium-is-up-condition": "true",
        "sidecar-istio-proxy-image": "cilium/istio_proxy",
        "skip-cnp-status-startup-clean": "false",
        "synchronize-k8s-nodes": "true",
        "tofqdns-dns-reject-response-code": "refused",
        "tofqdns-enable-dns-compression": "true",
        "tofqdns-endpoint-max-ip-per-hostname": "50",
        "tofqdns-idle-connection-grace-period": "0s",
        "tofqdns-max-deferred-connection-deletes": "10000",
        "tofqdns-min-ttl": "3600",
        "tofqdns-proxy-response-max-delay": "100ms",
        "tunnel": values.tunnel,
        "unmanaged-pod-watcher-interval": "15",
        "vtep-cidr": "",
        "vtep-endpoint": "",
        "vtep-mac": "",
        "vtep-mask": "",
        "write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
    }
    if values.ipam_mode == "cluster-pool":
        data["cluster-pool-ipv4-cidr"] = values.cluster_pool_ipv4_cidr
        data["cluster-pool-ipv4-mask-size"] = str(values.cluster_pool_ipv4_mask_size)
    data.update(values.extra_config)
    return dict(sorted(data.items()))


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _config_env(name: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": key, "optional": True}},
    }


def _api_env(values: CiliumValues) -> list[dict[str, Any]]:
    """Set when kube-proxy is replaced: the agent cannot reach the API through a ClusterIP it serves."""
    if not values.k8s_service_host:
        return []
    return [
        {"name": "KUBERNETES_SERVICE_HOST", "value": values.k8s_service_host},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(values.k8s_service_port)},
    ]


def _health_probe(**timing: int) -> dict[str, Any]:
    return {
        "httpGet": {
            "host": "127.0.0.1",
            "path": "/healthz",
            "port": AGENT_HEALTH_PORT,
            "scheme": "HTTP",
            "httpHeaders": [{"name": "brief", "value": "true"}],
        },
        **timing,
    }


def _mount(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "mountPath": path, **extra}


def _host_path(name: str, path: str, kind: str = "DirectoryOrCreate") -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


def _init_containers(values: CiliumValues) -> list[dict[str, Any]]:
    agent = agent_image(values)
    bin_path = {"name": "BIN_PATH", "value": "/opt/cni/bin"}
    unprivileged = {"capabilities": {"add": ["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE"], "drop": ["ALL"]}}
    return [
        {
            "name": "config",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "command": ["cilium", "build-config"],
            "env": [
                _field_env("K8S_NODE_NAME", "spec.nodeName"),
                _field_env("CILIUM_K8S_NAMESPACE", "metadata.namespace"),
                *_api_env(values),
            ],
            "volumeMounts": [_mount("tmp", "/tmp")],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        },
        {
            "name": "mount-cgroup",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "CGROUP_ROOT", "value": "/run/cilium/cgroupv2"}, bin_path],
            "command": [
                "sh",
                "-ec",
                "cp /usr/bin/cilium-mount /hostbin/cilium-mount;\n"
                "nsenter --cgroup=/hostproc/1/ns/cgroup --mount=/hostproc/1/ns/mnt "
                '"${BIN_PATH}/cilium-mount" $CGROUP_ROOT;\nrm /hostbin/cilium-mount\n',
            ],
            "volumeMounts": [_mount("hostproc", "/hostproc"), _mount("cni-path", "/hostbin")],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": unprivileged,
        },
        {
            "name": "apply-sysctl-overwrites",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "env": [bin_path],
            "command": [
                "sh",
                "-ec",
                "cp /usr/bin/cilium-sysctlfix /hostbin/cilium-sysctlfix;\nnsenter --mount=/hostproc/1/ns/mnt "
                '"${BIN_PATH}/cilium-sysctlfix";\nrm /hostbin/cilium-sysctlfix\n',
            ],
            "volumeMounts": [_mount("hostproc", "/hostproc"), _mount("cni-path", "/hostbin")],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": unprivileged,
        },
        {
            "name": "mount-bpf-fs",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "args": ['mount | grep "/sys/fs/bpf type bpf" || mount -t bpf bpf /sys/fs/bpf'],
            "command": ["/bin/bash", "-c", "--"],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": {"privileged": True},
            "volumeMounts": [_mount("bpf-maps", "/sys/fs/bpf", mountPropagation="Bidirectional")],
        },
        {
            "name": "clean-cilium-state",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/init-container.sh"],
            "env": [
                _config_env("CILIUM_ALL_STATE", "clean-cilium-state"),
                _config_env("CILIUM_BPF_STATE", "clean-cilium-bpf-state"),
                *_api_env(values),
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": {
                "capabilities": {
                    "add": ["NET_ADMIN", "SYS_MODULE", "SYS_ADMIN", "SYS_RESOURCE"],
                    "drop": ["ALL"],
                }
            },
            "volumeMounts": [
                _mount("bpf-maps", "/sys/fs/bpf"),
                _mount("cilium-cgroup", "/run/cilium/cgroupv2", mountPropagation="HostToContainer"),
                _mount("cilium-run", "/var/run/cilium"),
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
        },
        {
            "name": "install-cni-binaries",
            "image": agent,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/install-plugin.sh"],
            "resources": {"requests": {"cpu": "100m", "memory": "10Mi"}},
            "securityContext": {
                "seLinuxOptions": {"level": "s0", "type": "spc_t"},
                "capabilities": {"drop": ["ALL"]},
            },
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [_mount("cni-path", "/host/opt/cni/bin")],
        },
    ]


def agent_daemonset(values: CiliumValues) -> dict[str, Any]:
    """DaemonSet `cilium`: hostNetwork, tolerates everything, readiness on 127.0.0.1:9879/healthz."""
    agent: dict[str, Any] = {
        "name": "cilium-agent",
        "image": agent_image(values),
        "imagePullPolicy": "IfNotPresent",
        "command": ["cilium-agent"],
        "args": ["--config-dir=/tmp/cilium/config-map"],
        "startupProbe": _health_probe(failureThreshold=105, periodSeconds=2, successThreshold=1),
        "livenessProbe": _health_probe(
            periodSeconds=30, successThreshold=1, failureThreshold=10, timeoutSeconds=5
        ),
        "readinessProbe": _health_probe(
            periodSeconds=30, successThreshold=1, failureThreshold=3, timeoutSeconds=5
        ),
        "env": [
            _field_env("K8S_NODE_NAME", "spec.nodeName"),
            _field_env("CILIUM_K8S_NAMESPACE", "metadata.namespace"),
            {"name": "CILIUM_CLUSTERMESH_CONFIG", "value": "/var/lib/cilium/clustermesh/"},
            _config_env("CILIUM_CNI_CHAINING_MODE", "cni-chaining-mode"),
            _config_env("CILIUM_CUSTOM_CNI_CONF", "custom-cni-conf"),
            *_api_env(values),
        ],
        "lifecycle": {"preStop": {"exec": {"command": ["/cni-uninstall.sh"]}}},
        "securityContext": {
            "seLinuxOptions": {"level": "s0", "type": "spc_t"},
            "capabilities": {
                "add": [
                    "CHOWN",
                    "KILL",
                    "NET_ADMIN",
                    "NET_RAW",
                    "IPC_LOCK",
                    "SYS_MODULE",
                    "SYS_ADMIN",
                    "SYS_RESOURCE",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "SETGID",
                    "SETUID",
                ],
                "drop": ["ALL"],
            },
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            _mount("host-proc-sys-net", "/host/proc/sys/net"),
            _mount("host-proc-sys-kernel", "/host/proc/sys/kernel"),
            _mount("bpf-maps", "/sys/fs/bpf", mountPropagation="HostToContainer"),
            _mount("cilium-run", "/var/run/cilium"),
            _mount("etc-cni-netd", "/host/etc/cni/net.d"),
            _mount("clustermesh-secrets", "/var/lib/cilium/clustermesh", readOnly=True),
            _mount("lib-modules", "/lib/modules", readOnly=True),
            _mount("xtables-lock", "/run/xtables.lock"),
            _mount("tmp", "/tmp"),
        ],
    }
    return {
        "metadata": {"name": AGENT_NAME, "namespace": values.namespace, "labels": dict(AGENT_LABELS)},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
            "template": {
                "metadata": {
                    "annotations": {
                        f"container.apparmor.security.beta.kubernetes.io/{name}": "unconfined"
                        for name in (
                            "cilium-agent",
                            "clean-cilium-state",
                            "mount-cgroup",
                            "apply-sysctl-overwrites",
                        )
                    },
                    "labels": dict(AGENT_LABELS),
                },
                "spec": {
                    "containers": [agent],
                    "initContainers": _init_containers(values),
                    "restartPolicy": "Always",
                    "priorityClassName": "system-node-critical",
                    "serviceAccount": AGENT_NAME,
                    "serviceAccountName": AGENT_NAME,
                    "automountServiceAccountToken": True,
                    "terminationGracePeriodSeconds": 1,
                    "hostNetwork": True,
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {"k8s-app": "cilium"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        _host_path("cilium-run", "/var/run/cilium"),
                        _host_path("bpf-maps", "/sys/fs/bpf"),
                        _host_path("hostproc", "/proc", "Directory"),
                        _host_path("cilium-cgroup", "/run/cilium/cgroupv2"),
                        _host_path("cni-path", "/opt/cni/bin"),
                        _host_path("etc-cni-netd", "/etc/cni/net.d"),
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                        _host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                        {
                            "name": "clustermesh-secrets",
                            "secret": {
                                "secretName": "cilium-clustermesh",
                                "optional": True,
                                "defaultMode": 256,
                            },
                        },
                        _host_path("host-proc-sys-net", "/proc/sys/net", "Directory"),
                        _host_path("host-proc-sys-kernel", "/proc/sys/kernel", "Directory"),
                    ],
                },
            },
        },
    }


def operator_deployment(values: CiliumValues) -> dict[str, Any]:
    """Deployment `cilium-operator`: `operator.replicas` (1 from cilium-cli), hostNetwork, health on 9234."""
    operator: dict[str, Any] = {
        "name": "cilium-operator",
        "image": operator_image(values),
        "imagePullPolicy": "IfNotPresent",
        "command": ["cilium-operator-generic"],
        "args": ["--config-dir=/tmp/cilium/config-map", "--debug=$(CILIUM_DEBUG)"],
        "env": [
            _field_env("K8S_NODE_NAME", "spec.nodeName"),
            _field_env("CILIUM_K8S_NAMESPACE", "metadata.namespace"),
            {
                "name": "CILIUM_DEBUG",
                "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": "debug", "optional": True}},
            },
            *_api_env(values),
        ],
        "livenessProbe": {
            "httpGet": {
                "host": "127.0.0.1",
                "path": "/healthz",
                "port": OPERATOR_HEALTH_PORT,
                "scheme": "HTTP",
            },
            "initialDelaySeconds": 60,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        },
        "volumeMounts": [_mount("cilium-config-path", "/tmp/cilium/config-map", readOnly=True)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    selector = {"io.cilium/app": "operator", "name": "cilium-operator"}
    return {
        "metadata": {"name": OPERATOR_NAME, "namespace": values.namespace, "labels": dict(OPERATOR_LABELS)},
        "spec": {
            "replicas": values.operator_replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "50%"},
            },
            "template": {
                "metadata": {
                    "annotations": {"prometheus.io/port": "9963", "prometheus.io/scrape": "true"},
                    "labels": dict(OPERATOR_LABELS),
                },
                "spec": {
                    "containers": [operator],
                    "hostNetwork": True,
                    "restartPolicy": "Always",
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccount": OPERATOR_NAME,
                    "serviceAccountName": OPERATOR_NAME,
                    "automountServiceAccountToken": True,
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {"io.cilium/app": "operator"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [{"name": "cilium-config-path", "configMap": {"name": CONFIG_MAP}}],
                },
            },
        },
    }


def manifests(values: CiliumValues) -> list[tuple[KubeResource, dict[str, Any]]]:
    """Every object, in the order the chart's manifests are applied (config before workloads)."""
    namespace = values.namespace
    return [
        (Resources.SERVICE_ACCOUNTS, {"metadata": {"name": AGENT_NAME, "namespace": namespace}}),
        (Resources.SERVICE_ACCOUNTS, {"metadata": {"name": OPERATOR_NAME, "namespace": namespace}}),
        (
            Resources.CONFIGMAPS,
            {"metadata": {"name": CONFIG_MAP, "namespace": namespace}, "data": config_data(values)},
        ),
        (Resources.DAEMONSETS, agent_daemonset(values)),
        (Resources.DEPLOYMENTS, operator_deployment(values)),
    ]
