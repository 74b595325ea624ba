"""Stalled HTTP clients for the server-limit test and benchmark: connections that send half a request and stop."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator

HALF_HEADER = b"POST /webhook/grafana HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def open_fds(pid: int) -> int:
    """File handles the process holds now (Linux)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def stalled_connections(port: int, count: int, payload: bytes = HALF_HEADER) -> Iterator[list[socket.socket]]:
    """``count`` loopback connections that each send ``payload`` and then nothing; all closed when the block ends."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            with contextlib.suppress(OSError):
                sock.sendall(payload)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed (or reset) this connection: reading what it sent ends in EOF or an error."""
    sock.setblocking(False)
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> float | None:
    """Seconds until ``predicate()`` was true, or None after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval_s)
    return None
