"""`make run` (helpdesk/services.py) prints its banner only once the web server answers, and the banner and the
README name the demo logins as the inbox shows them."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpdesk.services import DEMO_LOGINS, banner, wait_until_serving

README = Path(__file__).resolve().parents[1] / "README.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Health:
    """A stand-in web server that starts late and answers /healthz 503 a few times, then 200."""

    def __init__(self, port: int, failures: int) -> None:
        self.port, self.failures = port, failures
        self.asked: list[tuple[str, str | None, int]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self, after: float) -> None:
        def serve() -> None:
            time.sleep(after)
            health = self

            class Handler(BaseHTTPRequestHandler):
                def log_message(self, *args: Any) -> None:
                    pass

                def do_GET(self) -> None:
                    status = 503 if len(health.asked) < health.failures else 200
                    health.asked.append((self.path, self.headers.get("Host"), status))
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
            self.server.serve_forever()

        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def test_the_banner_waits_for_connections_and_a_healthy_healthz():
    # given a server that only listens after half a second and is unhealthy for its first two checks
    port = free_port()
    health = Health(port, failures=2)
    started = time.monotonic()
    health.start(after=0.5)
    try:
        # when the launcher waits for it
        serving = wait_until_serving(port, "localhost", lambda: True, interval=0.05)
    finally:
        health.stop()

    # then it waited for the listening socket and for a 200, asking /healthz with the public host
    assert serving is True
    assert time.monotonic() - started >= 0.5
    assert health.asked == [
        ("/healthz", "localhost", 503),
        ("/healthz", "localhost", 503),
        ("/healthz", "localhost", 200),
    ]


def test_the_wait_ends_when_a_process_stopped():
    port = free_port()  # nothing ever listens here
    checks = iter([True, True, True, False])

    assert wait_until_serving(port, "localhost", lambda: next(checks), interval=0.01) is False


def test_the_banner_and_the_readme_name_the_demo_logins_as_the_inbox_shows_them():
    from conversations.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS

    assert tuple((email, name, role) for email, role, name in DEMO_USERS) == DEMO_LOGINS
    text, readme = banner("8000"), README.read_text()
    assert DEMO_PASSWORD in text
    assert DEMO_PASSWORD in readme
    for email, name, role in DEMO_LOGINS:
        assert f"{email:<22} {name} ({role})" in text
        assert f"| `{email}` | {name} | {role} |" in readme


def test_the_embedded_redis_answers_as_soon_as_start_returns_and_stops_without_a_trace(tmp_path):
    import redis

    from helpdesk.services import EmbeddedRedis

    embedded = EmbeddedRedis(tmp_path)
    url = embedded.start()
    socket_path = url.removeprefix("unix://")
    client = redis.Redis(unix_socket_path=socket_path)
    try:
        # no retry here: start() returns only once the server takes commands
        assert client.set("started", "yes")
        assert client.get("started") == b"yes"
    finally:
        client.close()
        embedded.stop()
    assert not Path(socket_path).exists()
    assert not Path(socket_path).parent.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=socket_path).ping()
