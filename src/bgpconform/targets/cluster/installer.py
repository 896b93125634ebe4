"""Cilium on a real cluster through the real tools: cilium-cli (as the walkthrough did) or Helm.

The values are the walkthrough's for k3s (`CiliumValues`, FACTS.md "k3s and k3d"); both tools are
pointed at the run's kubeconfig and context explicitly, so neither can act on whatever cluster the
shell's current context happens to name.
"""

from __future__ import annotations

import shutil

from bgpconform.cilium.install import CiliumValues, cilium_install_command
from bgpconform.commands import run
from bgpconform.errors import CommandError, HarnessError, PrerequisiteError
from bgpconform.targets.cluster.access import KubeAccess

INSTALL_TIMEOUT = 900.0
HOW_TO_INSTALL = {
    "cilium": "install cilium-cli (https://github.com/cilium/cilium-cli/releases, the walkthrough used "
    "v0.15.4) or run with --cilium-installer=helm",
    "helm": "install Helm 3 (https://helm.sh/docs/intro/install/) or run with --cilium-installer=cilium",
}


def require_tool(tool: str) -> str:
    """The tool's path, or one line saying what to install."""
    found = shutil.which(tool)
    if found is None:
        raise PrerequisiteError(
            f"`{tool}` is not on PATH, and install mode needs it; fix: {HOW_TO_INSTALL[tool]}"
        )
    return found


def _with_access(argv: list[str], tool: str, access: KubeAccess) -> list[str]:
    if tool == "helm":
        return [*argv, f"--kubeconfig={access.kubeconfig}", f"--kube-context={access.context}"]
    return [*argv, f"--context={access.context}"]


class ToolCiliumInstaller:
    """`cilium install` / `helm upgrade --install`, and their uninstall."""

    def __init__(self, access: KubeAccess, tool: str = "cilium") -> None:
        if tool not in HOW_TO_INSTALL:
            raise HarnessError(f"unknown Cilium installer {tool!r}; use cilium or helm")
        self.access = access
        self.tool = tool
        self.commands: list[list[str]] = []

    def _run(self, argv: list[str], *, missing_ok: bool = False) -> None:
        require_tool(self.tool)
        argv = _with_access(argv, self.tool, self.access)
        self.commands.append(argv)
        env_argv = ["env", f"KUBECONFIG={self.access.kubeconfig}", *argv]
        try:
            run(env_argv, timeout=INSTALL_TIMEOUT)
        except CommandError as exc:
            if missing_ok and "not found" in (exc.stderr + exc.stdout).lower():
                return
            raise HarnessError(f"{' '.join(argv)} failed against {self.access}: {exc}") from exc

    def install(self, values: CiliumValues) -> None:
        self._run(cilium_install_command(values, self.tool))

    def upgrade(self, values: CiliumValues) -> None:
        self._run(cilium_install_command(values, self.tool, upgrade=True))

    def uninstall(self) -> None:
        if self.tool == "helm":
            self._run(["helm", "uninstall", "cilium", "--namespace=kube-system", "--wait"], missing_ok=True)
        else:
            self._run(["cilium", "uninstall", "--wait"], missing_ok=True)
