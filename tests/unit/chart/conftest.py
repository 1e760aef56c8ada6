"""Fixtures for the chart tests: helm (pinned, from scripts/test or localcluster) and rendering."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, Rendered, find_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    path = find_helm()
    if path is None:
        pytest.skip("helm not found: set REMORA_BIN_DIR (scripts/test does) or build localcluster binaries")
    return path


@pytest.fixture(scope="session")
def render(helm: Path) -> Callable[..., Rendered]:
    cache: dict[tuple[str, ...], Rendered] = {}

    def _render(*sets: str, release: str = "remora") -> Rendered:
        key = (release, *sets)
        if key not in cache:
            args = [str(helm), "template", release, str(CHART), "--namespace", NAMESPACE]
            for s in sets:
                args += ["--set", s]
            proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
            assert proc.returncode == 0, proc.stderr
            cache[key] = Rendered([d for d in yaml.safe_load_all(proc.stdout) if d])
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def render_error(helm: Path) -> Callable[..., str]:
    def _render_error(*sets: str) -> str:
        args = [str(helm), "template", "remora", str(CHART), "--namespace", NAMESPACE]
        for s in sets:
            args += ["--set", s]
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        assert proc.returncode != 0, f"helm accepted {sets}"
        return proc.stderr

    return _render_error
