"""Raw RESP on a fresh socket: what a client that knows no password, or any client at all, gets from a Redis."""

from __future__ import annotations

import socket


def wire(port: int, *commands: str) -> bytes:
    """Send inline commands on one new loopback connection; return the server's answers (one line each)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall("".join(f"{command}\r\n" for command in commands).encode())
        answer = b""
        while answer.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer
