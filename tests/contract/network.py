"""Network failures from a real socket that misbehaves on purpose."""

from __future__ import annotations

import socket
import threading

__all__ = ["MODES", "MisbehavingServer", "refused_url"]

#: Every way a connection fails: nobody listens, the server hangs up, stalls (reads and
#: answers nothing), or cuts its answer short.
MODES = ("refused", "hang up", "stall", "cut short")


class MisbehavingServer:
    """A TCP server that fails in one chosen way on every connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "hang up":
                conn.close()
            elif self.mode == "stall":
                self.open.append(conn)  # read nothing, answer nothing
            elif self.mode == "cut short":
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 5000\r\n\r\n{"Contacts": ['
                )
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()


def refused_url() -> str:
    """An address on loopback where nobody listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"
