"""The whole system as users run it: the ASGI server (daphne via runserver) and a Celery worker as real
processes against the test database and Redis, with the Graph API faked by a local HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from playwright.sync_api import Page, sync_playwright

from tests.conftest import ACME, PASSWORD, sign

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class FakeGraph:
    """Records every request and answers like the Cloud API: sends (a wamid), `GET /{phone-number-id}` (the fields
    in `numbers`), template submission (an id, PENDING), template list (empty) and deletion, customers' files
    (`GET /{media-id}`: a download URL on this server for `media[id]`, fetched with a token), and uploads (an id).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.numbers: dict[str, dict[str, Any]] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        self.counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, answer: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: Any) -> list[str]:
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                return [part for part in urlsplit(self.path).path.split("/") if part][1:]  # after the version

            def do_GET(self) -> None:
                parts = self._record({})
                path = [part for part in urlsplit(self.path).path.split("/") if part]
                if path[:1] == ["media-download"] and len(path) == 2 and path[1] in fake.media:
                    if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                        return self._answer({"error": {"message": "token required", "code": 190}}, 401)
                    data, mime = fake.media[path[1]]
                    self.send_response(200)
                    self.send_header("Content-Type", mime)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                if len(parts) == 1 and parts[0] in fake.media:
                    data, mime = fake.media[parts[0]]
                    return self._answer(
                        {
                            "id": parts[0],
                            "mime_type": mime,
                            "file_size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "url": f"http://127.0.0.1:{fake.port}/media-download/{parts[0]}",
                        }
                    )
                if len(parts) == 1 and parts[0] in fake.numbers:
                    self._answer(dict(fake.numbers[parts[0]], id=parts[0]))
                elif len(parts) == 1:
                    self._answer({"error": {"message": "Unsupported get request.", "code": 100}}, 400)
                else:
                    self._answer({"data": [], "paging": {}})

            def do_DELETE(self) -> None:
                self._record({})
                self._answer({"success": True})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                multipart = (self.headers.get("Content-Type") or "").startswith("multipart/")
                body = {"_multipart": len(raw)} if multipart else json.loads(raw or b"{}")
                parts = self._record(body)
                with fake.lock:
                    fake.counter += 1
                    counter = fake.counter
                if parts[-1:] == ["media"]:
                    self._answer({"id": f"UPLOAD{counter:06d}"})
                elif parts[-1:] == ["message_templates"]:
                    self._answer(
                        {"id": str(880000 + counter), "status": "PENDING", "category": body.get("category")}
                    )
                elif body.get("status") == "read":
                    self._answer({"success": True})
                else:
                    self._answer(
                        {
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                            "messages": [{"id": f"wamid.E2E{counter:06d}"}],
                        }
                    )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sends(self, to: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r["body"].get("type") and (to is None or str(r["body"].get("to", "")).lstrip("+") == to)
            ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(settings_dict: dict[str, Any]) -> str:
    user = quote(settings_dict["USER"] or "")
    password = quote(settings_dict["PASSWORD"] or "")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = settings_dict["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{auth}/{settings_dict['NAME']}?host={quote(host)}"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgresql://{auth}{host}{port}/{settings_dict['NAME']}"


class LiveStack:
    def __init__(self, port: int, graph: FakeGraph) -> None:
        self.port = port
        self.graph = graph

    def base_url(self, domain: str) -> str:
        return f"http://{domain}:{self.port}"

    def webhook(self, payload: dict[str, Any], secret: str = ACME["secret"]) -> requests.Response:
        body = json.dumps(payload).encode()
        return requests.post(
            f"http://127.0.0.1:{self.port}/webhooks/whatsapp/",
            data=body,
            timeout=10,
            headers={
                "Host": "localhost",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(body, secret),
            },
        )


@pytest.fixture(scope="session")
def live_stack(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    from django.conf import settings
    from django.db import connection

    graph = FakeGraph()
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
        WHATSAPP_GRAPH_URL=f"http://127.0.0.1:{graph.port}/v25.0",
        DEBUG="0",
        ALLOWED_HOSTS="*",
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    logs = tmp_path_factory.mktemp("live-stack")
    commands = {
        "web": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "helpdesk",
            "worker",
            "-l",
            "warning",
            "--concurrency",
            "2",
            "--without-mingle",
            "--without-gossip",
        ],
    }
    procs = []
    for name, command in commands.items():
        log = (logs / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}, timeout=2
                ).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline or any(proc.poll() is not None for proc in procs):
                output = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs.iterdir())
                pytest.fail(f"the live stack did not start:\n{output}")
            time.sleep(0.3)
        yield LiveStack(port, graph)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        graph.server.shutdown()


@pytest.fixture
def browser_page() -> Iterator[Page]:
    """A fresh page in headless Chromium. A browser that cannot start fails the test: it never skips."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is missing at {CHROMIUM} (apt-get install -y chromium)")
    playwright = sync_playwright().start()
    try:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as error:  # any launch problem fails the test
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {error}")
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        assert errors == [], f"JavaScript errors on the page: {errors}"
        context.close()
        browser.close()
    finally:
        playwright.stop()


class Api:
    """The tenant's REST API over HTTP, as a signed-in member (token auth), through 127.0.0.1 + Host."""

    def __init__(self, live_stack: Any, email: str) -> None:
        self.root = f"http://127.0.0.1:{live_stack.port}/api/v1"
        self.headers = {"Host": ACME["domain"]}
        answer = requests.post(
            f"{self.root}/auth/token/",
            json={"email": email, "password": PASSWORD},
            headers=self.headers,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        self.headers["Authorization"] = f"Token {answer.json()['token']}"

    def get(self, path: str) -> Any:
        answer = requests.get(f"{self.root}{path}", headers=self.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.request(method, f"{self.root}{path}", json=body, headers=self.headers, timeout=10)


def sign_in(page: Page, base_url: str, email: str, next_path: str) -> None:
    page.goto(f"{base_url}/login/?next={next_path}")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(re.escape(next_path)))


def sign_in_inbox(page: Page, base_url: str, email: str) -> None:
    """Signed in on the inbox, its websocket live (frames from now on reach the page)."""
    from playwright.sync_api import expect

    sign_in(page, base_url, email, "/inbox/")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live")
