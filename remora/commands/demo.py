"""`remora demo`: the whole system on a local control plane, with one command.

Starts (or reuses) the control plane, installs Remora with Helm, creates an agent
Deployment in a labelled namespace, runs the injected agent pod's containers as local
processes, enqueues one work item per capability and shows them move until each
outcome is reported. `--keep` leaves it running to look around; `--down` stops it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from remora.cli import UsageError

MIN_TIMEOUT = 30.0
MAX_TIMEOUT = 3600.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the control plane, logs and state live (default: ~/.cache/remora/demo)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds for the whole run, not counting the first-run build of the binaries (default 300)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keep", action="store_true", help="leave everything running at the end, for kubectl")
    mode.add_argument("--down", action="store_true", help="stop what a --keep run left running, then exit")


def run(args: argparse.Namespace) -> int:
    from remora.demo import default_state_dir
    from remora.demo.errors import DemoError

    if not MIN_TIMEOUT <= args.timeout <= MAX_TIMEOUT:
        raise UsageError(
            f"--timeout must be {MIN_TIMEOUT:.0f}-{MAX_TIMEOUT:.0f} seconds, not {args.timeout:g}"
        )
    state_dir: Path = args.state_dir or default_state_dir()
    if state_dir.exists() and not state_dir.is_dir():
        raise UsageError(f"--state-dir {state_dir} is not a directory")

    from remora.demo.down import down
    from remora.demo.local import Interrupted
    from remora.demo.stack import CHART, DEPLOYMENT_YAML, Demo, Options

    if args.down:
        return down(state_dir)
    if not CHART.is_dir() or not DEPLOYMENT_YAML.is_file():
        raise UsageError(f"the demo needs the chart and examples of a source checkout ({CHART.parents[1]})")
    try:
        return Demo(Options(state_dir=state_dir, timeout=args.timeout, keep=args.keep)).run()
    except DemoError as exc:
        sys.stderr.write(f"remora demo: {exc}\n")
        return 1
    except (KeyboardInterrupt, Interrupted):
        sys.stderr.write("remora demo: interrupted; everything it started is stopped\n")
        return 130
