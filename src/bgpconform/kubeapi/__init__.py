"""Access to a Kubernetes API: the `KubeApi` port and its implementation over the official client."""
