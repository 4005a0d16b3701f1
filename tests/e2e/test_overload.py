"""Overload, as production runs: gunicorn with uvicorn workers and a small database pool. When every pooled
connection is busy, a webhook is answered 503 with Retry-After (Meta sends it again), never a 500 from
exhausted connections; whatever was acknowledged with 200 is stored, and the server answers normally again as
soon as the pressure is gone."""

from __future__ import annotations

import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests

from bench import servers
from helpdesk.tenancy.models import WebhookEvent
from tests.conftest import ACME, sign
from tests.e2e.conftest import database_url, free_port


def a_message(wamid: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": ACME["display"], "phone_number_id": ACME["pnid"]},
        "contacts": [{"profile": {"name": "Busy"}, "wa_id": "6281600000001"}],
        "messages": [
            {
                "from": "6281600000001",
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "hi"},
            }
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": ACME["waba"], "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def post(port: int, body: bytes) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{port}/webhooks/whatsapp/",
        data=body,
        timeout=30,
        headers={
            "Host": "localhost",
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, ACME["secret"]),
        },
    )


def test_a_server_out_of_database_connections_answers_503_with_retry_after_and_loses_nothing(committed_db):
    from django.conf import settings
    from django.db import connection

    # given the production server with one worker and a pool of two connections that waits half a second
    port = free_port()
    url = database_url(connection.settings_dict)
    env = dict(
        os.environ,
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="0",
        ALLOWED_HOSTS="*",
        DB_POOL_MAX_SIZE="2",
        DB_POOL_TIMEOUT="0.5",
    )
    web = servers.start_web(port, env, workers=1)  # the production command (docs/deployment.md)
    try:
        servers.wait_http(port)

        # when the webhook table is locked (a long migration, a slow disk) and a burst of webhooks arrives
        wamids = [f"wamid.BUSY{k}{secrets.token_hex(6)}" for k in range(12)]
        with psycopg.connect(url.replace("postgresql://", "postgres://", 1), autocommit=False) as blocker:
            blocker.execute("LOCK TABLE public.tenancy_webhookevent IN EXCLUSIVE MODE")
            with ThreadPoolExecutor(len(wamids)) as pool:
                sent = [pool.submit(post, port, a_message(wamid)) for wamid in wamids]
                time.sleep(3)  # the requests that found no free connection have had their answer by now
                blocker.rollback()  # the pressure goes: the two waiting inserts go through
                answers = [answer.result() for answer in sent]
        statuses = sorted({answer.status_code for answer in answers})
        busy = [answer for answer in answers if answer.status_code == 503]

        # then the connections that waited for the lock timed out in the pool: 503 with Retry-After, no 500
        assert statuses in ([200, 503], [503]), statuses
        assert len(busy) >= len(wamids) - 2
        assert all(answer.headers.get("Retry-After") == "5" for answer in busy)
        assert all(answer.json()["code"] == "overloaded" for answer in busy)

        # and once the pressure is gone, webhooks are acknowledged again at once
        after = [f"wamid.AFTER{k}{secrets.token_hex(6)}" for k in range(5)]
        assert [post(port, a_message(wamid)).status_code for wamid in after] == [200] * 5

        # and exactly what was acknowledged is stored: nothing acknowledged is lost, nothing refused is kept
        acknowledged = {
            wamid for wamid, answer in zip(wamids, answers, strict=True) if answer.status_code == 200
        }
        acknowledged |= set(after)
        stored = {
            wamid
            for body in WebhookEvent.objects.filter(body__contains="wamid.BUSY")
            .values_list("body", flat=True)
            .union(WebhookEvent.objects.filter(body__contains="wamid.AFTER").values_list("body", flat=True))
            for wamid in [json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]
        }
        assert stored == acknowledged
    finally:
        servers.stop(web)
