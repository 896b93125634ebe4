"""The layers hold, and the contracts that check them catch an import that breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is a dev dependency")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the tree at `root`, that tree's packages first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def _copy_tree(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("src", "steps", "fixtures"):
        shutil.copytree(REPO / part, destination / part, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", destination / "pyproject.toml")
    return destination


def _add_import(path: Path, statement: str) -> None:
    path.write_text(path.read_text() + f"\n{statement}  # noqa\n")


def test_the_tree_keeps_every_contract() -> None:
    done = _lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_copied_tree_is_the_one_checked(tmp_path: Path) -> None:
    """A control for the tests below: the copy passes as the original does, so a failure there is the
    planted import's."""
    done = _lint_imports(_copy_tree(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        (
            "src/bgpconform/targets/pi.py",
            "import bgpconform.lab.lab",
            "only the lab target and the command line import the lab BROKEN",
        ),
        (
            "src/bgpconform/report/html.py",
            "import bgpconform.plugin",
            "the report imports neither the plugin nor a target BROKEN",
        ),
        (
            "steps/cluster_steps.py",
            "import bgpconform.targets.k3d.target",
            "steps and fixtures import ports, checks and the stage machine, never an adapter BROKEN",
        ),
        (
            "src/bgpconform/checks.py",
            "import bgpconform.routers.frr",
            "the stage machine, the checks and the queries reach no adapter BROKEN",
        ),
        (
            "src/bgpconform/walkthrough/machine.py",
            "from bgpconform.targets import new_target",
            "only the plugin and the fixtures build targets by name BROKEN",
        ),
        (
            "src/bgpconform/topology/model.py",
            "import bgpconform.report.summary",
            "no import cycle between sibling modules of the harness BROKEN",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, statement: str, broken: str
) -> None:
    root = _copy_tree(tmp_path)
    _add_import(root / module, statement)
    done = _lint_imports(root)
    assert done.returncode == 1, done.stdout
    assert broken in done.stdout


def test_a_real_target_reaching_the_lab_through_another_module_is_caught(tmp_path: Path) -> None:
    """The lab's own target may import the lab; a real target importing that target reaches the lab
    too, which the path-following contract catches although no forbidden import is direct."""
    root = _copy_tree(tmp_path)
    _add_import(root / "src/bgpconform/targets/k3d/plan.py", "import bgpconform.targets.lab")
    done = _lint_imports(root)
    assert "the real targets, the harness and the report reach the lab by no path BROKEN" in done.stdout


def _modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    return done.stdout.split()


def test_the_pi_target_loads_nothing_of_the_lab() -> None:
    loaded = _modules_after("import bgpconform.targets.pi")
    assert [m for m in loaded if m.startswith("bgpconform.lab")] == []


@pytest.mark.parametrize(
    "code",
    [
        "import bgpconform.checks",
        "import bgpconform.observe",
        "import bgpconform.walkthrough.machine",
        "import steps.cluster_steps, steps.bgp_steps, steps.lbipam_steps, steps.reachability_steps",
        "import fixtures.target",
    ],
)
def test_steps_checks_and_the_machine_load_no_adapter_and_no_client(code: str) -> None:
    """What the contracts say statically, at run time too (a package's `__init__` runs on import, which
    the contracts do not model)."""
    loaded = _modules_after(code)
    adapters = (
        *("bgpconform.lab", "bgpconform.kubeapi.client", "bgpconform.routers.frr"),
        *("bgpconform.routers.routeros", "bgpconform.targets.lab", "bgpconform.targets.pi"),
        *("bgpconform.targets.k3d", "bgpconform.targets.cluster"),
    )
    clients = ("kubernetes", "librouteros", "docker")
    assert [m for m in loaded if m.startswith(adapters) or m.split(".")[0] in clients] == []


def test_the_plugin_loads_no_target_and_no_client() -> None:
    """Every pytest session of a user who installed the package loads the plugin."""
    loaded = _modules_after("import bgpconform.plugin")
    heavy = [
        m
        for m in loaded
        if m.startswith(("bgpconform.lab", "bgpconform.targets.", "kubernetes", "docker", "librouteros"))
        and m != "bgpconform.targets.options"
    ]
    assert heavy == []
