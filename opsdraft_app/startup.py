"""Checks `opsdraft run` makes before starting anything, so a misconfiguration is one clear line and exit 1
rather than a half-started process (a broker child, a migrated database) that then dies on it."""

from __future__ import annotations

import errno
import socket


def port_problem(host: str, port: int) -> str | None:
    """Why the HTTP role could not listen on host:port, or None. Binds the way uvicorn does (SO_REUSEADDR, so a
    port in TIME_WAIT after a restart is free) and lets go at once."""
    if port == 0:  # any free port: cannot be taken
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen for HTTP on {host}:{port}: the host does not resolve ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"cannot listen for HTTP on {host}:{port}: the port is already in use "
                        "(another opsdraft? set OPSDRAFT_HTTP_PORT)")
            return f"cannot listen for HTTP on {host}:{port}: {exc.strerror}"
    return None
