"""`remora demo`, the real command: one run to success, and nothing left behind.

The demo starts its own control plane in its own state directory (not the session's
`cluster` fixture), so these tests only need the cached binaries. "Nothing left
behind" is checked by looking for any process whose command line or environment names
the state directory: every process the demo starts (control plane, webhook, broker,
the agent pod's containers) has it in one or the other.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.names import CAPABILITIES
from localcluster import BinariesError, bin_dir, ensure_binaries

REMORA = Path(sys.executable).parent / "remora"
NUL = b"\0"
KUBECTL_LINE = re.compile(
    r"^\s+kubectl --kubeconfig (\S+) get buildrequests,testruns,databasemigrations,jobs -n (\S+)$", re.M
)


@pytest.fixture(scope="module", autouse=True)
def binaries() -> None:
    try:
        ensure_binaries()
    except BinariesError as exc:
        pytest.fail(f"cannot build the local control plane: {exc}")


def processes_naming(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if marker.encode() in cmdline + b"\0" + (proc / "environ").read_bytes():
                found.append(f"{proc.name}: {cmdline.replace(NUL, b' ')[:120]!r}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def demo(state: Path, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REMORA), "demo", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_every_capability_succeeded(stdout: str) -> None:
    for capability in CAPABILITIES:
        # the progress line, then the summary row
        assert re.search(rf"^\s+[\d.]+s\s+{capability}-\w+\s+succeeded\s", stdout, re.M), (capability, stdout)
        assert re.search(rf"^\s+{capability}-\w+\s+{capability}\s+succeeded\s", stdout, re.M), (
            capability,
            stdout,
        )


def test_the_demo_runs_an_item_per_capability_to_success_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    proc = demo(state, "--timeout", "240")
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert_every_capability_succeeded(proc.stdout)
    for stage in ("queued", "claimed", "resource", "job", "running"):
        assert re.search(rf"^\s+[\d.]+s\s+\S+\s+{stage}\s", proc.stdout, re.M), stage
    assert "the API server returned it injected" in proc.stdout
    assert "native sidecars: remora-build, remora-test, remora-migrate; containers: agent" in proc.stdout
    assert KUBECTL_LINE.search(proc.stdout)
    assert "stopped everything" in proc.stdout
    assert processes_naming(str(state)) == []


def test_keep_leaves_it_up_for_kubectl_and_down_stops_it(tmp_path: Path) -> None:
    state = tmp_path / "kept"
    try:
        proc = demo(state, "--timeout", "240", "--keep")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        assert_every_capability_succeeded(proc.stdout)
        assert f"remora demo --down --state-dir {state}" in proc.stdout
        match = KUBECTL_LINE.search(proc.stdout)
        assert match, proc.stdout
        kubeconfig, namespace = match.groups()
        assert f"export PATH={bin_dir()}:$PATH" in proc.stdout
        pods = subprocess.run(
            [str(bin_dir() / "kubectl"), "--kubeconfig", kubeconfig, "get", "pods", "-n", namespace, "-l",
             "app.kubernetes.io/name=remora-agent", "--no-headers"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert re.search(r"^agent-\S+\s+4/4\s+Running\s", pods, re.M), pods  # agent + 3 sidecars
        assert processes_naming(str(state)), "nothing was left running"
    finally:
        down = demo(state, "--down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert "control plane" in down.stdout and "pod-agent" in down.stdout
    assert processes_naming(str(state)) == []
