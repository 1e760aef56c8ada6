"""HTTP load for the benchmarks: POST one body over keep-alive connections for some seconds.

`wrk` (one thread) is the load generator: it costs the machine far less than any Python client,
which matters on two cores where the server under test needs one. When it is missing and this
runs as root on Debian, its package is installed once; otherwise a small httpx generator stands
in, and the figures say so (tool: "httpx"): they are not comparable with wrk's.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""
_SCALE_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure_wrk() -> str | None:
    """The path of wrk, installing Debian's package first when it is missing and that is possible."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk not found: installing Debian's package (apt-get install wrk)", file=sys.stderr)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    subprocess.run(install, check=False, capture_output=True)
    if not shutil.which("wrk"):  # a new machine's package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(install, check=False, capture_output=True)
    return shutil.which("wrk")


def post_load(url: str, body: bytes, folder: Path, seconds: int, connections: int = 32) -> dict[str, Any]:
    """{"tool", "rps", "requests", "p99_ms", "errors"} for POSTing `body` to `url` (TLS unverified)."""
    path = folder / f"body-{abs(hash(body))}.json"
    if not path.exists():
        path.write_bytes(body)
    if ensure_wrk():
        return _wrk(url, path, seconds, connections)
    return asyncio.run(_httpx(url, body, seconds, connections))


def _wrk(url: str, body_path: Path, seconds: int, connections: int) -> dict[str, Any]:
    script = body_path.with_suffix(".lua")
    script.write_text(_WRK_SCRIPT.format(body=body_path))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    if rps is None or requests is None:
        raise RuntimeError(f"cannot read wrk's output: {out[:200]!r}")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {
        "tool": "wrk",
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "p99_ms": float(p99.group(1)) * _SCALE_MS[p99.group(2)] if p99 else None,
        "errors": errors,
    }


async def _httpx(url: str, body: bytes, seconds: int, connections: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(verify=False, limits=limits, timeout=10) as client:

        async def worker(until: float) -> None:
            nonlocal errors
            while time.monotonic() < until:
                start = time.perf_counter()
                reply = await client.post(url, content=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - start)
                errors += reply.status_code != 200

        start = time.monotonic()
        await asyncio.gather(*(worker(start + seconds) for _ in range(connections)))
        elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "tool": "httpx",
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "errors": errors,
    }
