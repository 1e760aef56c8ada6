"""Free TCP ports on loopback, for the processes that stand in for a cluster's on this machine."""

from __future__ import annotations

import socket
from typing import Final

LOCALHOST: Final = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` different ports that were free a moment ago (all held at once, so none repeats)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((LOCALHOST, 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]
