"""Start the product the way docs/deployment.md runs it in production: gunicorn with uvicorn workers on the
ASGI app (HTTP and websockets on one port), a Celery worker and beat. Every benchmark starts its servers here."""

from __future__ import annotations

import contextlib
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
STARTED: list[subprocess.Popen[bytes]] = []  # every process started here, for stop_all()


LOG_DIR = ROOT / "var" / "bench" / "logs"  # each server's output, so that the run's own output stays readable


def _spawn(command: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own (stopped as a group), its output in LOG_DIR/`name`-<time>.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}-{time.strftime('%H%M%S')}-{len(STARTED)}.log"
    with log.open("ab") as output:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, start_new_session=True, stdout=output, stderr=subprocess.STDOUT
        )
    STARTED.append(proc)
    return proc


def stop_all() -> None:
    """Whatever a benchmark started and left running (it crashed, say): bench/run.py calls this after each."""
    stop(*STARTED)
    STARTED.clear()


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
    return _spawn(command, env, "web")


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
    return _spawn(command, env, "worker")


def start_beat(env: dict[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    command = [PYTHON, "-m", "celery", "-A", "helpdesk", "beat", "-l", "warning", "-s", str(schedule)]
    return _spawn(command, env, "beat")


def start_reference_applier(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The minimal reference's batch applier (bench/reference.py)."""
    return _spawn([PYTHON, "-m", "bench.reference", "applier"], env, "reference-applier")


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
    """SIGTERM each process (gunicorn and Celery stop their own workers: a warm shutdown), then SIGKILL the
    process group of whatever is left after 10 seconds."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (the leader has exited or hangs)
        proc.wait()
