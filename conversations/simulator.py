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
from urllib.parse import urlsplit

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


def template_status_payload(number: WhatsAppNumber, meta_id: str, name: str, language: str) -> dict[str, Any]:
    """Meta's review of a submitted template, approved (REFERENCE.md §2.6)."""
    value = {
        "event": "APPROVED",
        "message_template_id": int(meta_id),
        "message_template_name": name,
        "message_template_language": language,
        "reason": "NONE",
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "time": int(time.time()),
                "changes": [{"field": "message_template_status_update", "value": value}],
            }
        ],
    }


class SimulatorAdapter(BaseAdapter):
    """Answers like the Cloud API: `POST /{phone_number_id}/messages` (and schedules the status webhooks),
    `GET /{phone_number_id}` (a healthy number), and the template endpoints (a submitted template is approved
    a moment later by a signed webhook; the list is the templates this helpdesk already has)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        from conversations.tasks import simulate_statuses, simulate_template_review

        parts = [part for part in urlsplit(str(request.url)).path.split("/") if part][1:]  # after the version
        if request.method == "GET" and len(parts) == 1:
            return _response(request, 200, _simulated_number(parts[0]))
        if len(parts) == 2 and parts[1] == "message_templates":
            if request.method == "GET":
                return _response(request, 200, {"data": _known_templates(parts[0]), "paging": {}})
            if request.method == "DELETE":
                return _response(request, 200, {"success": True})
            template = json.loads(request.body or b"{}")
            meta_id = str(secrets.randbelow(10**15) + 10**15)
            simulate_template_review.apply_async(
                (parts[0], meta_id, str(template.get("name")), str(template.get("language"))), countdown=2
            )
            return _response(
                request, 200, {"id": meta_id, "status": "PENDING", "category": template.get("category")}
            )
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


def _simulated_number(phone_number_id: str) -> dict[str, Any]:
    number = WhatsAppNumber.objects.filter(phone_number_id=phone_number_id).first()
    return {
        "id": phone_number_id,
        "display_phone_number": number.display_number if number else "",
        "verified_name": "Simulator",
        "name_status": "APPROVED",
        "quality_rating": "GREEN",
        "throughput": {"level": "STANDARD"},
        "whatsapp_business_manager_messaging_limit": "TIER_250",
    }


def _known_templates(waba_id: str) -> list[dict[str, Any]]:
    from conversations.models import MessageTemplate, TemplateStatus

    return [
        {
            "id": template.meta_id,
            "name": template.name,
            "language": template.language,
            "status": template.status.upper(),
            "category": template.category,
            "components": template.components,
        }
        for template in MessageTemplate.objects.filter(waba_id=waba_id).exclude(status=TemplateStatus.DRAFT)
    ]


def _response(request: requests.PreparedRequest, status: int, data: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(data).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = str(request.url)
    response.request = request
    return response


graph_api._session.mount(SIMULATOR_BASE_URL, SimulatorAdapter())
