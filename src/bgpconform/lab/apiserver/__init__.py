"""The lab's embedded Kubernetes API server.

Real enough that the official clients and kubectl work against it as against a cluster: discovery,
built-in resources, CRDs with structural schemas, watch, the patch formats, server-side apply, and
pod logs and exec whose content the emulated components supply.

Where it knowingly differs from a real kube-apiserver (each also noted where it lives):
- No authentication or authorization; plain HTTP on 127.0.0.1.
- Lists are always served from the current state: `resourceVersion`/`resourceVersionMatch` on a
  list and `continue` tokens do not pin a snapshot.
- Deletion is immediate unless the object has finalizers; pods get no grace period (the emulated
  kubelet may add its own finalizer to show Terminating). Namespace termination and owner-reference
  garbage collection are done inline, as the lab has no controller-manager.
- Built-in objects are not schema-validated or pruned beyond the checks in `builtins`; CEL rules
  (`x-kubernetes-validations`) in CRDs are not evaluated; CRD versions convert with strategy None.
- No `scale` subresource, no port-forward, no attach, no `previous` logs.

The package imports nothing itself: its modules import one another by name (`server.ApiServer`), so
none of them runs while the package is half initialised.
"""
