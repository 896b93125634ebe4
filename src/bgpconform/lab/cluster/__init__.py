"""The lab's emulated cluster components: kubelets, controllers and the container runtime contract.

Every component here is a client of the embedded API server (`bgpconform.lab.apiserver`): it lists,
watches and writes objects over HTTP with the official `kubernetes` client, never through the server's
memory, so it would behave the same against any API server.
"""
