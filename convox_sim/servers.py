"""Serving ASGI apps on loopback inside this process (uvicorn in a thread): the demo runs the simulated rack and the
gateway this way, and the tests use it to put real HTTP and websockets between client, gateway and rack; and finding
a free port for servers run as processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from typing import Any

import uvicorn


def free_port(preferred: int = 0) -> int:
    """A TCP port free on loopback now: `preferred` when it is free, else any (the kernel's pick)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0, what: str = "the server") -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; RuntimeError if `proc` exits or `timeout`
    passes first (the process is then killed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{what} did not start (exit {proc.poll()})") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; waits for it either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ServerThread:
    """A uvicorn server on 127.0.0.1 in a daemon thread; `port` is known once started (port 0 picks a free one)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any):
        # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any loopback peer.
        options.setdefault("proxy_headers", False)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                ws_ping_interval=None, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.host = host
        self.thread = threading.Thread(target=self.server.run, name="auditkit-server", daemon=True)
        self.port = 0

    def start(self, timeout: float = 15.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.server.config.ssl_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
