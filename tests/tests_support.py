"""Small helpers shared by tests that are not fixtures."""

from __future__ import annotations

import socket


def free_port_for_subprocess() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
