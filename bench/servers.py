"""Start the product the way docs/deployment.md runs it in production: gunicorn with uvicorn workers on the
ASGI app (HTTP and websockets on one port), a Celery worker and beat. Every benchmark starts its servers here."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_web(
    port: int, env: dict[str, str], workers: int = 2, app: str = "helpdesk.asgi:application"
) -> subprocess.Popen[bytes]:
    """gunicorn + uvicorn workers serving `app` on 127.0.0.1:`port`."""
    command = [
        PYTHON, "-m", "gunicorn", app, "-k", "uvicorn_worker.UvicornWorker", "-w", str(workers),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "5",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)


def start_worker(env: dict[str, str], concurrency: int = 2) -> subprocess.Popen[bytes]:
    command = [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "helpdesk",
        "worker",
        "-l",
        "warning",
        "--concurrency",
        str(concurrency),
    ]
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)


def start_beat(env: dict[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    command = [PYTHON, "-m", "celery", "-A", "helpdesk", "beat", "-l", "warning", "-s", str(schedule)]
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)


def wait_http(port: int, host: str = "localhost", path: str = "/healthz", timeout: float = 60.0) -> None:
    """Until GET `path` answers 200; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path, headers={"Host": host})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {timeout:.0f} s")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each process group, then SIGKILL what is left after 10 seconds."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
