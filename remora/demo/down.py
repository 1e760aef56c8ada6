"""`remora demo --down`: stop what a `--keep` run left running in its state directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from remora.demo.processes import Processes

STOP_GRACE = 10.0


def down(state_dir: Path, out: TextIO | None = None) -> int:
    """Stop the run's processes (webhook, broker, agent pod), then its control plane."""
    from localcluster import LocalCluster  # noqa: PLC0415

    state = state_dir.resolve()
    procs = Processes(state / "logs", state / "processes.json", detach=True)
    procs.adopt_recorded()
    stopped = procs.stop(STOP_GRACE)
    # stop() signals only pids that still run the recorded binaries, then removes the state file.
    cluster = LocalCluster.attach(state / "cluster")
    if cluster is not None:
        cluster.stop()
        stopped.append("control plane")
    out = out or sys.stdout
    out.write(f"stopped: {', '.join(stopped)}\n" if stopped else f"nothing was running from {state}\n")
    return 0
