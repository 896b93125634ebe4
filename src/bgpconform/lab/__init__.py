"""The lab target: network namespaces, real daemons and an embedded Kubernetes API."""
