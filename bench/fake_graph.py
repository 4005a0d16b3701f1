"""A fake WhatsApp Cloud (Graph) API for benchmarks: a threaded HTTP server in the benchmark's process that
answers sends like Meta (a wamid per message) and records when each arrived (`time.time()`, the clock the
benchmark's own timestamps use) and to whom. HTTP/1.1 with keep-alive, as Meta's edge: a sender's
`requests.Session` keeps one connection, so the fake costs the senders no TCP handshake per message.

Set WHATSAPP_GRAPH_URL to `fake.url` for the servers and workers (bench/servers.py passes os.environ on).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Send:
    at: float  # time.time() when the request was read
    to: str  # the recipient, without "+"
    type: str  # "template", "text", ...
    text: str  # a text message's body (how a benchmark finds its own reply)
    callback: str  # biz_opaque_callback_data
    peer: int  # the client's port: one per sender process (its keep-alive connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many workers connecting at once must not be refused


class FakeGraph:
    def __init__(self) -> None:
        self.sends: list[Send] = []
        self.texts: dict[str, float] = {}  # a text message's body: when it first arrived
        self.by_type: dict[str, int] = {}  # sends per message type
        self.other_requests = 0
        self.lock = threading.Lock()
        self.counter = 0
        self.tag = secrets.token_hex(4)  # wamids unique across fakes: a database may outlive one
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes: without this, Nagle and the client's delayed ACK
                # hold every answer for ~40 ms on a keep-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, answer: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with fake.lock:
                    fake.other_requests += 1
                self._answer({"data": [], "paging": {}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if not isinstance(body, dict) or not body.get("type") or not self.path.endswith("/messages"):
                    with fake.lock:
                        fake.other_requests += 1
                    self._answer({"success": True})
                    return
                to = str(body.get("to") or body.get("recipient") or "").lstrip("+")
                kind = str(body["type"])
                text = str((body.get("text") or {}).get("body", "")) if kind == "text" else ""
                send = Send(
                    at,
                    to,
                    kind,
                    text,
                    str(body.get("biz_opaque_callback_data") or ""),
                    self.client_address[1],
                )
                with fake.lock:
                    fake.sends.append(send)
                    fake.by_type[kind] = fake.by_type.get(kind, 0) + 1
                    if text:
                        fake.texts.setdefault(text, at)
                    fake.counter += 1
                    wamid = f"wamid.BENCHGRAPH.{fake.tag}.{fake.counter}"
                self._answer(
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": to, "wa_id": to}],
                        "messages": [{"id": wamid}],
                    }
                )

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/v25.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fake-graph")
        self.thread.start()

    def snapshot(self) -> list[Send]:
        with self.lock:
            return list(self.sends)

    def arrival_of_text(self, text: str) -> float | None:
        """When a text message with exactly this body first arrived (None: not yet)."""
        with self.lock:
            return self.texts.get(text)

    def count(self, kind: str | None = None) -> int:
        """Sends so far (of one message type)."""
        with self.lock:
            return len(self.sends) if kind is None else self.by_type.get(kind, 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
