"""Root conftest: the harness's plugin is loaded through its entry point; step modules are added here
as the features arrive, so every feature file sees every step."""

from __future__ import annotations

pytest_plugins: list[str] = []
