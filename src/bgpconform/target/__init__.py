"""Targets: one object per kind of system under test, exposing the ports the steps call.

A step never asks which target runs; it calls `target.kube`, `target.cilium`, `target.installer`,
`target.router` and `target.client`, whose implementations differ per target.
"""
