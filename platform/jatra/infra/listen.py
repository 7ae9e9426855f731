"""Listening sockets for the HTTP servers, including one port shared by several replicas."""

from __future__ import annotations

import socket

BACKLOG = 2048  # uvicorn's default


def listening_socket(host: str, port: int, shared: bool = False) -> socket.socket:
    """A bound, listening TCP socket. ``shared``: SO_REUSEPORT, so that every replica can bind the same
    port and the kernel spreads incoming connections across them, as a Service spreads them over pods."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(BACKLOG)
    return sock
