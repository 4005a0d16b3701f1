"""Simulator mode: a built-in fake Graph API for numbers marked `simulator`, so a new user sees the whole loop
(customer message in, reply out, sent / delivered / read ticks back) with no Meta credentials.

The fake sits at the HTTP level: a `requests` transport mounted on the Graph client's session answers like the
Cloud API, and status webhooks come back signed through the same `webhooks.ingest` path Meta's do.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import requests
from requests.adapters import BaseAdapter

from conversations import graph_api, webhooks
from helpdesk.tenancy.models import WhatsAppNumber

SIMULATOR_BASE_URL = "http://whatsapp-simulator.invalid/v25.0"


def inbound_payload(
    number: WhatsAppNumber,
    wa_id: str,
    name: str,
    text: str,
    timestamp: int | None = None,
    wamid: str | None = None,
) -> dict[str, Any]:
    """A `messages` webhook with one text message, in the documented Cloud API shape."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": number.display_number,
                                "phone_number_id": number.phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid or "wamid.SIM" + secrets.token_hex(12),
                                    "timestamp": str(timestamp or int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def status_payload(number: WhatsAppNumber, wamid: str, recipient: str, status: str) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": number.display_number,
                                "phone_number_id": number.phone_number_id,
                            },
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": status,
                                    "timestamp": str(int(time.time())),
                                    "recipient_id": recipient,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def deliver_signed(number: WhatsAppNumber, payload: dict[str, Any]) -> webhooks.IngestResult:
    """Sign a payload with the number's app secret and hand it to the webhook path, as Meta would."""
    body = json.dumps(payload).encode()
    signature = (
        "sha256=" + webhooks.hmac.new(number.app_secret.encode(), body, webhooks.hashlib.sha256).hexdigest()
    )
    return webhooks.ingest(body, signature)


class SimulatorAdapter(BaseAdapter):
    """Answers `POST /{phone_number_id}/messages` like the Cloud API and schedules the status webhooks."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        from conversations.tasks import simulate_statuses

        body = json.loads(request.body or b"{}")
        if body.get("status") == "read":
            return _response(request, 200, {"success": True})
        to = str(body.get("to") or body.get("recipient") or "").lstrip("+")
        wamid = "wamid.SIM" + secrets.token_hex(12)
        phone_number_id = str(request.path_url).split("/")[-2]
        simulate_statuses.apply_async((phone_number_id, wamid, to), countdown=1)
        return _response(
            request,
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            },
        )

    def close(self) -> None:
        pass


def _response(request: requests.PreparedRequest, status: int, data: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(data).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = str(request.url)
    response.request = request
    return response


graph_api._session.mount(SIMULATOR_BASE_URL, SimulatorAdapter())
