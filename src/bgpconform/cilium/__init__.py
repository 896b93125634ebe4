"""What Cilium is and does, the same on every target: its port and its operations over any cluster's
API, its install values, the output of its CLI, and one table per concern for what changes between
versions (FACTS.md). The package imports nothing itself, so naming a table loads no Kubernetes client.
"""
