"""bgpconform: conformance harness for Cilium BGP-announced LoadBalancer services."""

__version__ = "0.1.0"
