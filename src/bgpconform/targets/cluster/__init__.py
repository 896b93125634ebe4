"""A cluster the harness did not build (`--target=pi`): reached through a kubeconfig, its router's API
or vtysh, and an outside client named in the topology."""
