"""The WhatsApp Cloud (Graph) API: the one module that talks to Meta, through one HTTP seam (`_post`).

Errors are decided on `error.code`, never on the message text or the HTTP status alone (REFERENCE.md §4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

from helpdesk.tenancy.models import WhatsAppNumber

log = logging.getLogger(__name__)

# Worth another try later: throughput, pair rate, transient server trouble, maintenance.
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
TIMEOUT_SECONDS = (5, 20)

_session = requests.Session()


@dataclass
class GraphAPIError(Exception):
    code: int | None
    title: str
    details: str = ""
    retryable: bool = False
    fbtrace_id: str = ""

    def __str__(self) -> str:
        return f"Graph API error {self.code}: {self.title}" + (f" ({self.details})" if self.details else "")


def _base_url(number: WhatsAppNumber) -> str:
    if number.simulator:
        from conversations.simulator import SIMULATOR_BASE_URL

        return SIMULATOR_BASE_URL
    return str(settings.WHATSAPP_GRAPH_URL)


def _post(number: WhatsAppNumber, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return _call("POST", number, path, body=body)


def _checked(request: Any) -> requests.Response:
    """The response of `request()` (a callable doing the HTTP call), transport errors as GraphAPIError."""
    try:
        response: requests.Response = request()
    except requests.Timeout as exc:
        raise GraphAPIError(None, "The Graph API did not answer in time", str(exc), retryable=True) from exc
    except requests.ConnectionError as exc:
        raise GraphAPIError(None, "Could not reach the Graph API", str(exc), retryable=True) from exc
    return response


def _call(
    method: str,
    number: WhatsAppNumber,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    files: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One request with the number's token (a JSON `body`, or multipart `files` and `data`); Meta's answer, or
    GraphAPIError with Meta's code."""
    url = f"{_base_url(number)}/{path}"
    headers = {"Authorization": f"Bearer {number.access_token}"}
    response = _checked(
        lambda: _session.request(
            method,
            url,
            json=body,
            params=params,
            files=files,
            data=data,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
        )
    )
    return _answer(response)


def _answer(response: requests.Response) -> dict[str, Any]:
    """Meta's JSON answer, or GraphAPIError with Meta's code."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.ok and isinstance(data, dict) and "error" not in data:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        # No error object: only the HTTP status is left to go on.
        raise GraphAPIError(
            None,
            f"HTTP {response.status_code} from the Graph API",
            response.text[:500],
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    code = error.get("code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    error_data = error.get("error_data")
    details = error_data.get("details", "") if isinstance(error_data, dict) else str(error_data or "")
    raise GraphAPIError(
        code=code,
        title=str(error.get("error_user_title") or error.get("message") or "Graph API error"),
        details=str(details or error.get("error_user_msg") or ""),
        retryable=code in RETRYABLE_CODES or (code is None and response.status_code >= 500),
        fbtrace_id=str(error.get("fbtrace_id") or ""),
    )


def send_message(
    number: WhatsAppNumber,
    to: str,
    type: str,
    content: dict[str, Any],
    reply_to_wamid: str = "",
    callback: str = "",
) -> str:
    """Send one message; returns its wamid. `to` is a phone number (wa_id) or a business-scoped user id;
    `callback` comes back on the message's status webhooks (`biz_opaque_callback_data`)."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": type,
        type: content,
    }
    if to.isdigit():
        body["to"] = "+" + to
    else:
        body["recipient"] = to
    if reply_to_wamid:
        body["context"] = {"message_id": reply_to_wamid}
    if callback:
        body["biz_opaque_callback_data"] = callback
    data = _post(number, f"{number.phone_number_id}/messages", body)
    try:
        return str(data["messages"][0]["id"])
    except (KeyError, IndexError, TypeError) as exc:
        raise GraphAPIError(
            None, "The Graph API accepted the message but returned no id", str(data)[:500]
        ) from exc


def mark_read(number: WhatsAppNumber, wamid: str) -> None:
    _post(
        number,
        f"{number.phone_number_id}/messages",
        {"messaging_product": "whatsapp", "status": "read", "message_id": wamid},
    )


# The number's fields the reference names as current (§6.2): the portfolio's messaging limit, not the
# deprecated `messaging_limit_tier`.
NUMBER_FIELDS = (
    "display_phone_number,verified_name,name_status,quality_rating,throughput,"
    "whatsapp_business_manager_messaging_limit,status"
)


def get_number(number: WhatsAppNumber) -> dict[str, Any]:
    """The phone number as Meta describes it now (`GET /{phone-number-id}`)."""
    return _call("GET", number, number.phone_number_id, params={"fields": NUMBER_FIELDS})


TEMPLATE_FIELDS = "id,name,language,status,category,components,quality_score,rejected_reason,parameter_format"
TEMPLATE_PAGE_SIZE = 100
MAX_TEMPLATE_PAGES = 100  # a WABA holds at most 250 templates (2388019): a bound against a paging loop


def list_templates(number: WhatsAppNumber) -> list[dict[str, Any]]:
    """Every template of the number's business account, following Meta's `after` cursor page by page."""
    templates: list[dict[str, Any]] = []
    params = {"fields": TEMPLATE_FIELDS, "limit": str(TEMPLATE_PAGE_SIZE)}
    for _ in range(MAX_TEMPLATE_PAGES):
        page = _call("GET", number, f"{number.waba_id}/message_templates", params=params)
        templates += [item for item in page.get("data") or [] if isinstance(item, dict)]
        paging = page.get("paging")
        paging = paging if isinstance(paging, dict) else {}
        cursors = paging.get("cursors")
        after = cursors.get("after") if isinstance(cursors, dict) else None
        # Only `next` says there is another page; its cursor (not its URL, which carries no token of ours to
        # trust) is what we follow.
        if not paging.get("next") or not after or after == params.get("after"):
            return templates
        params = {**params, "after": str(after)}
    raise GraphAPIError(None, "The Graph API kept returning more template pages", retryable=True)


def create_template(number: WhatsAppNumber, template: dict[str, Any]) -> dict[str, Any]:
    """Submit a template for review: `{"id", "status", "category"}`."""
    return _call("POST", number, f"{number.waba_id}/message_templates", body=template)


def edit_template(number: WhatsAppNumber, meta_id: str, changes: dict[str, Any]) -> None:
    """Edit a submitted template (`POST /{template-id}`: its components, and its category while not approved);
    Meta reviews it again."""
    _call("POST", number, meta_id, body=changes)


def delete_template(number: WhatsAppNumber, name: str, meta_id: str = "") -> None:
    """Delete a template (every language of the name, or only this one when Meta's id is given)."""
    params = {"name": name}
    if meta_id:
        params["hsm_id"] = meta_id
    _call("DELETE", number, f"{number.waba_id}/message_templates", params=params)


def get_media(number: WhatsAppNumber, media_id: str) -> dict[str, Any]:
    """A customer's file as Meta describes it now: `{url (valid 5 minutes), mime_type, sha256, file_size}`."""
    return _call("GET", number, media_id, params={"phone_number_id": number.phone_number_id})


def download_media(number: WhatsAppNumber, url: str, max_bytes: int) -> bytes:
    """The file at Meta's media URL, fetched with the number's token (a plain GET gets nothing), at most
    `max_bytes`."""
    if not url.startswith(("https://", "http://")):
        raise GraphAPIError(None, "The Graph API gave no download URL for the file")
    headers = {"Authorization": f"Bearer {number.access_token}"}
    response = _checked(lambda: _session.get(url, headers=headers, timeout=TIMEOUT_SECONDS, stream=True))
    with response:
        if not response.ok:
            _answer(response)  # raises with Meta's error, or the HTTP status
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise GraphAPIError(None, f"The file is larger than {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def upload_media(number: WhatsAppNumber, data: bytes, mime_type: str, filename: str) -> str:
    """Upload a file to send (`POST /{phone-number-id}/media`); its media id."""
    answer = _call(
        "POST",
        number,
        f"{number.phone_number_id}/media",
        files={"file": (filename, data, mime_type)},
        data={"messaging_product": "whatsapp", "type": mime_type},
    )
    if not answer.get("id"):
        raise GraphAPIError(None, "The Graph API accepted the file but returned no id", str(answer)[:500])
    return str(answer["id"])
