"""Message templates: submitted from here only after the content check, synced from Meta, kept current by Meta's
template webhooks, and filled in for sending: what the customer will see, or a refusal with a `code` before any
Graph call when the template is unknown, not approved, or its variables do not fit.

A template belongs to a business account (WABA): every number of the account may send it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import actions, graph_api, template_check
from conversations.actions import ActionError, dict_or_empty
from conversations.events import record_event
from conversations.models import (
    Conversation,
    Message,
    MessageTemplate,
    PolicyWords,
    SenderKind,
    TemplateStatus,
)
from helpdesk.tenancy.models import User, WhatsAppNumber

log = logging.getLogger(__name__)

MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
# The columns' sizes (models.MessageTemplate): a webhook or listing naming a longer one is not a template of ours.
NAME_LENGTH, LANGUAGE_LENGTH, ID_LENGTH = 512, 16, 64
# Meta refuses a text parameter with a new line or tab, or more than four spaces in a row (error 132018).
BAD_PARAMETER_TEXT = re.compile(r"[\n\t]| {5,}")
MAX_PARAMETER_LENGTH = 1024


class TemplateRefused(ActionError):
    """A template action refused: `code` says why; `findings` carries the content check's, if it was that."""

    def __init__(
        self,
        message: str,
        code: str,
        http_status: int = 400,
        findings: list[template_check.Finding] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.findings = findings or []
        self.error = error

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"detail": str(self), "code": self.code}
        if self.findings:
            data["findings"] = [finding.as_dict() for finding in self.findings]
        if self.error:
            data["error"] = self.error
        return data


def _meta_refused(message: str, error: graph_api.GraphAPIError) -> TemplateRefused:
    """Meta said no: its words and code for the admin (502 when Meta could not be reached at all)."""
    return TemplateRefused(
        message % {"error": error.title},
        "meta_refused",
        http_status=502 if error.retryable else 400,
        error={"code": error.code, "message": error.title + (f" ({error.details})" if error.details else "")},
    )


def _checked_components(draft: dict[str, Any]) -> list[dict[str, Any]]:
    """The draft's components as Meta takes them, once the content check (with the tenant's own word lists)
    finds no error; TemplateRefused with the findings otherwise."""
    findings = template_check.check_template(draft, policy_additions())
    if template_check.is_blocking(findings):
        raise TemplateRefused(
            _("The content check found problems: fix the errors and submit again."),
            "content_check_failed",
            findings=findings,
        )
    return [dict(c, type=str(c.get("type", "")).upper()) for c in draft["components"]]


def variables_of(text: Any) -> list[str]:
    return [match.strip() for match in template_check.VARIABLE.findall(text if isinstance(text, str) else "")]


def _is_named(components: list[dict[str, Any]]) -> bool:
    texts = [c.get("text") for c in components] + [
        b.get("url") for c in components for b in (c.get("buttons") or []) if isinstance(b, dict)
    ]
    return any(not name.isdigit() for text in texts for name in variables_of(text))


# ------------------------------------------------------------------ the tenant's own word lists

MAX_PHRASES = 500
MAX_PHRASE_LENGTH = 100


def policy_additions() -> dict[str, list[str]]:
    """The tenant's own phrases, per word list of the content check."""
    return {row.list_name: list(row.phrases) for row in PolicyWords.objects.all()}


def do_set_policy_words(changes: Any) -> dict[str, list[str]]:
    """Replace the tenant's phrases of the lists named in `changes` ({list name: [phrase, ...]}); each phrase
    trimmed and lower-cased, repeats dropped. Refused as a whole (nothing stored) when anything is off."""
    if not isinstance(changes, dict) or not changes:
        raise TemplateRefused(_('Send an object of word lists, such as {"prohibited": ["..."]}.'), "invalid")
    cleaned: dict[str, list[str]] = {}
    for name, phrases in changes.items():
        if name not in template_check.WORD_LISTS:
            raise TemplateRefused(
                _("Unknown word list %(name)s; the lists are: %(lists)s.")
                % {"name": str(name)[:40], "lists": ", ".join(template_check.WORD_LISTS)},
                "invalid",
            )
        if not isinstance(phrases, list) or not all(isinstance(phrase, str) for phrase in phrases):
            raise TemplateRefused(_("A word list is a list of phrases (text)."), "invalid")
        unique = list(dict.fromkeys(" ".join(p.split()).casefold() for p in phrases if p.strip()))
        if len(unique) > MAX_PHRASES or any(len(phrase) > MAX_PHRASE_LENGTH for phrase in unique):
            raise TemplateRefused(
                _("A list holds at most %(count)s phrases of at most %(length)s characters each.")
                % {"count": MAX_PHRASES, "length": MAX_PHRASE_LENGTH},
                "invalid",
            )
        cleaned[name] = unique
    with transaction.atomic():
        for name, phrases in cleaned.items():
            PolicyWords.objects.update_or_create(
                list_name=name, defaults={"phrases": phrases, "updated_at": timezone.now()}
            )
    return policy_additions()


# ------------------------------------------------------------------ submit, delete, sync


def do_submit_template(number: WhatsAppNumber, draft: dict[str, Any], user_id: int | None) -> MessageTemplate:
    """Check the draft, keep it, then submit it to Meta (`POST /{waba}/message_templates`). Nothing reaches Meta
    when the check finds an error. A draft Meta refused can be submitted again; a submitted one cannot."""
    components = _checked_components(draft)
    name, language, category = draft["name"], draft["language"], str(draft["category"]).upper()
    named = _is_named(components)
    with transaction.atomic():
        template = (
            MessageTemplate.objects.select_for_update()
            .filter(waba_id=number.waba_id, name=name, language=language)
            .first()
        )
        if template is not None and template.status != TemplateStatus.DRAFT:
            raise TemplateRefused(
                _("A template %(name)s in %(language)s exists already (%(status)s).")
                % {"name": name, "language": language, "status": template.status},
                "template_exists",
                http_status=409,
            )
        template = template or MessageTemplate(waba_id=number.waba_id, name=name, language=language)
        template.number = number
        template.category = category
        template.components = components
        template.parameter_format = "named" if named else "positional"
        template.submitted_by_id = user_id
        template.updated_at = timezone.now()
        template.save()
    body: dict[str, Any] = {
        "name": name,
        "language": language,
        "category": category,
        "components": components,
    }
    if named:
        body["parameter_format"] = "NAMED"
    try:
        answer = graph_api.create_template(number, body)
    except graph_api.GraphAPIError as error:
        MessageTemplate.objects.filter(pk=template.pk).update(reason_detail=str(error))
        raise _meta_refused(_("Meta did not accept the template: %(error)s"), error) from error
    meta_id = str(answer.get("id") or "")[:ID_LENGTH]
    status = str(answer.get("status") or "PENDING").lower()[:32]
    # A status webhook may have overtaken Meta's answer: it wins (the row is no longer a draft).
    MessageTemplate.objects.filter(pk=template.pk).update(meta_id=meta_id, reason_detail="")
    MessageTemplate.objects.filter(pk=template.pk, status=TemplateStatus.DRAFT).update(
        status=status,
        category=str(answer.get("category") or category).upper()[:32],
        updated_at=timezone.now(),
    )
    template.refresh_from_db()
    return template


# Meta edits these (REFERENCE.md §5.4): not one in review, and not one it disabled or is deleting.
EDITABLE = frozenset({TemplateStatus.APPROVED, TemplateStatus.REJECTED, TemplateStatus.PAUSED})


def do_edit_template(template: MessageTemplate, changes: Any, user_id: int | None) -> MessageTemplate:
    """Change a template's components (and its category, unless approved): checked like a new one, then sent
    to Meta (`POST /{template-id}`), which reviews it again. A draft Meta never saw is submitted instead."""
    if not isinstance(changes, dict):
        raise TemplateRefused(_("The changes are a JSON object."), "invalid")
    draft = {
        "name": template.name,
        "language": template.language,
        "category": changes.get("category", template.category),
        "components": changes.get("components", template.components),
    }
    if template.status == TemplateStatus.DRAFT or not template.meta_id:
        if template.number is None:
            raise TemplateRefused(_("The template's number was removed."), "template_not_editable", 409)
        return do_submit_template(template.number, draft, user_id)
    if template.status not in EDITABLE or template.number is None:
        raise TemplateRefused(
            _("Meta does not allow editing a template that is %(status)s.")
            % {"status": template.status.replace("_", " ")},
            "template_not_editable",
            http_status=409,
        )
    if str(draft["category"]).upper() != template.category and template.status == TemplateStatus.APPROVED:
        raise TemplateRefused(
            _("The category of an approved template cannot change: create a new template instead."),
            "template_not_editable",
            http_status=409,
        )
    components = _checked_components(draft)
    body: dict[str, Any] = {"components": components}
    if template.status != TemplateStatus.APPROVED:
        body["category"] = str(draft["category"]).upper()
    try:
        graph_api.edit_template(template.number, template.meta_id, body)
    except graph_api.GraphAPIError as error:
        raise _meta_refused(_("Meta did not accept the change: %(error)s"), error) from error
    MessageTemplate.objects.filter(pk=template.pk).update(
        components=components,
        category=str(draft["category"]).upper(),
        parameter_format="named" if _is_named(components) else "positional",
        status=TemplateStatus.PENDING,
        reason="",
        reason_detail="",
        recommendation="",
        submitted_by_id=user_id,
        updated_at=timezone.now(),
    )
    template.refresh_from_db()
    return template


def do_delete_template(template: MessageTemplate) -> None:
    """Delete at Meta (this language only, by Meta's id), then here. A draft Meta never saw goes at once."""
    number = template.number
    if template.meta_id and number is not None:
        try:
            graph_api.delete_template(number, template.name, template.meta_id)
        except graph_api.GraphAPIError as error:
            if error.code != 100:  # 100: Meta has no such template any more, which is what we wanted
                raise _meta_refused(_("Meta did not delete the template: %(error)s"), error) from error
    MessageTemplate.objects.filter(pk=template.pk).delete()


@dataclass
class SyncResult:
    read: int
    failed: list[tuple[WhatsAppNumber, graph_api.GraphAPIError]]


def do_sync_templates(numbers: list[WhatsAppNumber]) -> SyncResult:
    """Read every template of each business account (every page) and store them; a template Meta no longer
    lists is deleted here (drafts stay). An account Meta does not answer for keeps what it had; the others are
    synced all the same."""
    result = SyncResult(read=0, failed=[])
    for number in {n.waba_id: n for n in numbers}.values():
        try:
            listed = graph_api.list_templates(number)
        except graph_api.GraphAPIError as error:
            log.warning("template sync of %s: %s", number.waba_id, error)
            result.failed.append((number, error))
            continue
        result.read += len(listed)
        with transaction.atomic():
            seen = [_store_listed(number, item) for item in listed]
            (
                MessageTemplate.objects.filter(waba_id=number.waba_id)
                .exclude(status=TemplateStatus.DRAFT)
                .exclude(pk__in=[pk for pk in seen if pk])
                .delete()
            )
    return result


def _store_listed(number: WhatsAppNumber, item: dict[str, Any]) -> int | None:
    name, language = str(item.get("name") or ""), str(item.get("language") or "")
    if not name or not language or len(name) > NAME_LENGTH or len(language) > LANGUAGE_LENGTH:
        return None
    quality = item.get("quality_score")
    score = quality.get("score") if isinstance(quality, dict) else quality
    components = [c for c in item.get("components") or [] if isinstance(c, dict)]
    template, _created = MessageTemplate.objects.update_or_create(
        waba_id=number.waba_id,
        name=name,
        language=language,
        defaults={
            "number": number,
            "meta_id": str(item.get("id") or "")[:ID_LENGTH],
            "category": str(item.get("category") or "").upper()[:32],
            "status": str(item.get("status") or "pending").lower()[:32],
            "quality": str(score or "unknown").lower()[:16],
            "reason": ""
            if item.get("rejected_reason") in (None, "NONE")
            else str(item["rejected_reason"])[:64],
            "components": components,
            "parameter_format": str(item.get("parameter_format") or "").lower()
            or ("named" if _is_named(components) else "positional"),
            "updated_at": timezone.now(),
        },
    )
    return template.pk


# ------------------------------------------------------------------ Meta's template webhooks

TEMPLATE_FIELDS = frozenset(
    {"message_template_status_update", "message_template_quality_update", "template_category_update"}
)


def apply_template_webhook(
    field: str, waba_id: str, value: dict[str, Any], numbers: list[WhatsAppNumber]
) -> None:
    """A template's new state, category or quality from Meta. A template we do not know yet (made in Meta's
    tools) is added, to be completed by the next sync."""
    name = str(value.get("message_template_name") or value.get("name") or "")
    language = str(value.get("message_template_language") or value.get("language") or "")
    meta_id = str(value.get("message_template_id") or "")
    if len(name) > NAME_LENGTH or len(language) > LANGUAGE_LENGTH or len(meta_id) > ID_LENGTH:
        log.warning("template webhook %s naming no template we could keep: %.300s", field, value)
        return
    templates = MessageTemplate.objects.select_for_update().filter(waba_id=waba_id)
    template = (templates.filter(meta_id=meta_id).first() if meta_id else None) or (
        templates.filter(name=name, language=language).first() if name and language else None
    )
    if template is None:
        if not name or not language:
            log.warning("template webhook %s without a template we can name: %.300s", field, value)
            return
        template = MessageTemplate(
            waba_id=waba_id,
            name=name,
            language=language,
            number=numbers[0] if numbers else None,
            category=str(value.get("message_template_category") or value.get("new_category") or "").upper()[
                :32
            ],
            status=TemplateStatus.PENDING,
        )
    if meta_id:
        template.meta_id = meta_id
    if field == "message_template_status_update":
        template.status = str(value.get("event") or template.status).lower()[:32]
        reason = str(value.get("reason") or "")
        other = dict_or_empty(value.get("other_info"))
        rejection = dict_or_empty(value.get("rejection_info"))
        template.reason = (str(other.get("title") or "") if reason in ("", "NONE", "None") else reason)[:64]
        template.reason_detail = str(rejection.get("reason") or other.get("description") or "")
        template.recommendation = str(rejection.get("recommendation") or "")
        category = str(value.get("message_template_category") or "").upper()[:32]
        if category and category != template.category:
            template.previous_category, template.category = template.category, category
    elif field == "message_template_quality_update":
        template.quality = str(value.get("new_quality_score") or "unknown").lower()[:16]
    elif field == "template_category_update":
        if value.get("correct_category"):  # announced: it changes within 24 hours
            template.correct_category = str(value["correct_category"]).upper()[:32]
        elif value.get("new_category"):
            template.previous_category = str(value.get("previous_category") or template.category).upper()[:32]
            template.category = str(value["new_category"]).upper()[:32]
            template.correct_category = ""
    template.updated_at = timezone.now()
    template.save()
    if template.status in (TemplateStatus.PAUSED, TemplateStatus.DISABLED):
        from conversations import broadcasts  # broadcasts send templates: they build on this module

        broadcasts.pause_for_template(template)
    # The templates page follows Meta's verdicts live.
    record_event(
        "template.updated", template={"id": template.pk, "name": template.name, "status": template.status}
    )


# ------------------------------------------------------------------ sending


def find_sendable(waba_id: str, name: Any, language: Any) -> MessageTemplate:
    """The approved template to send, or TemplateRefused with why not."""
    if isinstance(language, dict):
        language = language.get("code")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        raise TemplateRefused(_("A template needs its `name` and `language`."), "invalid_template")
    template = MessageTemplate.objects.filter(waba_id=waba_id, name=name, language=language).first()
    if template is None:
        raise TemplateRefused(
            _("There is no template %(name)s in %(language)s for this number.")
            % {"name": name, "language": language},
            "template_unknown",
        )
    if template.status != TemplateStatus.APPROVED:
        code = {"paused": "template_paused", "disabled": "template_disabled"}.get(template.status)
        raise TemplateRefused(
            _("The template %(name)s cannot be sent: it is %(status)s, not approved.")
            % {"name": name, "status": template.status.replace("_", " ")},
            code or "template_not_approved",
        )
    return template


def fill(template: MessageTemplate, given: Any) -> tuple[dict[str, Any], str]:
    """The template object to send and the text the customer will read, from the parameters `given` (Meta's
    send format: `[{"type": "body", "parameters": [...]}, ...]`). TemplateRefused when they do not fit."""
    if given is None:
        given = []
    if not isinstance(given, list) or not all(isinstance(c, dict) for c in given):
        raise TemplateRefused(_("`components` must be a list of objects."), "invalid_template")
    by_kind: dict[str, dict[str, Any]] = {}
    buttons_given: dict[int, dict[str, Any]] = {}
    for component in given:
        kind = str(component.get("type", "")).lower()
        if kind == "button":
            try:
                index = int(component.get("index"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise TemplateRefused(
                    _("A button's parameters need its `index`."), "template_parameters"
                ) from None
            buttons_given[index] = component
        elif kind in ("header", "body") and kind not in by_kind:
            by_kind[kind] = component
        else:
            raise TemplateRefused(
                _("Unexpected component %(type)s in the template's parameters.") % {"type": kind or "-"},
                "template_parameters",
            )
    own = {str(c.get("type", "")).upper(): c for c in template.components if isinstance(c, dict)}
    send: list[dict[str, Any]] = []
    shown: list[str] = []
    header = own.get("HEADER")
    if header is not None:
        header_format = str(header.get("format") or "TEXT").upper()
        if header_format in MEDIA_FORMATS:
            parameters = _media_parameter(header_format, by_kind.pop("header", None))
            send.append({"type": "header", "parameters": parameters})
            shown.append(f"[{header_format.lower()}]")
        elif header_format == "TEXT":
            text, parameters = _filled("header", header.get("text"), by_kind.pop("header", None))
            if parameters:
                send.append({"type": "header", "parameters": parameters})
            shown.append(text)
    body = own.get("BODY") or {}
    text, parameters = _filled("body", body.get("text"), by_kind.pop("body", None))
    if parameters:
        send.append({"type": "body", "parameters": parameters})
    shown.append(text)
    if by_kind:
        raise TemplateRefused(
            _("The template has no variables in its %(part)s.") % {"part": ", ".join(by_kind)},
            "template_parameters",
        )
    if own.get("FOOTER", {}).get("text"):
        shown.append(str(own["FOOTER"]["text"]))
    labels, button_parameters = _buttons(own.get("BUTTONS"), buttons_given)
    send += button_parameters
    if labels:
        shown.append(" | ".join(f"[{label}]" for label in labels))
    content = {"name": template.name, "language": {"code": template.language}, "components": send}
    return content, "\n\n".join(part for part in shown if part)


def _texts_of(kind: str, component: dict[str, Any] | None) -> list[dict[str, Any]]:
    parameters = (component or {}).get("parameters", [])
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise TemplateRefused(
            _("The %(part)s's `parameters` must be a list of objects.") % {"part": kind},
            "template_parameters",
        )
    for parameter in parameters:
        value = parameter.get("text")
        if parameter.get("type", "text") != "text" or not isinstance(value, str) or not value.strip():
            raise TemplateRefused(
                _("Every variable of the %(part)s needs a text value.") % {"part": kind},
                "template_parameters",
            )
        if BAD_PARAMETER_TEXT.search(value) or len(value) > MAX_PARAMETER_LENGTH:
            raise TemplateRefused(
                _(
                    "A variable's value may not hold a new line, a tab or more than four spaces in a row, "
                    "and holds at most %(limit)s characters."
                )
                % {"limit": MAX_PARAMETER_LENGTH},
                "template_parameters",
            )
    return parameters


def _filled(kind: str, text: Any, component: dict[str, Any] | None) -> tuple[str, list[dict[str, Any]]]:
    """The text with its variables filled in, and the parameters to send; refused unless every variable has
    exactly one value (positional: in order; named: by `parameter_name`)."""
    text = text if isinstance(text, str) else ""
    wanted = variables_of(text)
    parameters = _texts_of(kind, component)
    if not wanted:
        if parameters:
            raise TemplateRefused(
                _("The template has no variables in its %(part)s.") % {"part": kind}, "template_parameters"
            )
        return text, []
    if all(name.isdigit() for name in wanted):
        count = len(set(wanted))
        if len(parameters) != count:
            raise TemplateRefused(
                _("The template's %(part)s has %(count)s variables; %(given)s values were given.")
                % {"part": kind, "count": count, "given": len(parameters)},
                "template_parameters",
            )
        values = {str(i + 1): p["text"] for i, p in enumerate(parameters)}
        send = [{"type": "text", "text": p["text"]} for p in parameters]
    else:
        values = {str(p.get("parameter_name")): p["text"] for p in parameters}
        if set(values) != set(wanted) or len(parameters) != len(set(wanted)):
            raise TemplateRefused(
                _("The template's %(part)s needs a value for each of: %(names)s.")
                % {"part": kind, "names": ", ".join(sorted(set(wanted)))},
                "template_parameters",
            )
        send = [{"type": "text", "parameter_name": name, "text": values[name]} for name in values]
    filled = template_check.VARIABLE.sub(lambda m: values.get(m.group(1).strip(), m.group(0)), text)
    return filled, send


def _media_parameter(header_format: str, component: dict[str, Any] | None) -> list[dict[str, Any]]:
    kind = header_format.lower()
    parameters = (component or {}).get("parameters")
    media = parameters[0].get(kind) if isinstance(parameters, list) and len(parameters) == 1 else None
    if (
        not isinstance(parameters, list)
        or not isinstance(parameters[0], dict)
        or parameters[0].get("type") != kind
        or not isinstance(media, dict)
        or not (isinstance(media.get("link"), str) or isinstance(media.get("id"), str))
    ):
        raise TemplateRefused(
            _('The template\'s header needs one %(kind)s: {"type": "%(kind)s", "%(kind)s": {"link": ...}}.')
            % {"kind": kind},
            "template_parameters",
        )
    return [{"type": kind, kind: {k: v for k, v in media.items() if k in ("link", "id", "filename")}}]


def _buttons(
    component: dict[str, Any] | None, given: dict[int, dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    buttons = [b for b in (component or {}).get("buttons") or [] if isinstance(b, dict)]
    labels = [str(b.get("text") or "") for b in buttons]
    send: list[dict[str, Any]] = []
    for index, button in enumerate(buttons):
        kind = str(button.get("type") or "").upper()
        supplied = given.pop(index, None)
        if kind == "URL" and variables_of(button.get("url")):
            if supplied is None:
                raise TemplateRefused(
                    _("The button %(label)s needs the value of its link's variable.")
                    % {"label": labels[index]},
                    "template_parameters",
                )
            parameters = _texts_of("button", supplied)
            if len(parameters) != 1:
                raise TemplateRefused(
                    _("The button %(label)s takes one value.") % {"label": labels[index]},
                    "template_parameters",
                )
            send.append({"type": "button", "sub_type": "url", "index": str(index), "parameters": parameters})
        elif kind == "COPY_CODE":
            code = ((supplied or {}).get("parameters") or [{}])[0]
            value = code.get("coupon_code") if isinstance(code, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise TemplateRefused(
                    _('The copy-code button needs its code: {"type": "coupon_code", "coupon_code": ...}.'),
                    "template_parameters",
                )
            send.append(
                {
                    "type": "button",
                    "sub_type": "copy_code",
                    "index": str(index),
                    "parameters": [{"type": "coupon_code", "coupon_code": value}],
                }
            )
        elif kind == "QUICK_REPLY" and supplied is not None:
            send.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": str(index),
                    "parameters": supplied.get("parameters") or [],
                }
            )
        elif supplied is not None:
            raise TemplateRefused(
                _("The button %(label)s takes no value.") % {"label": labels[index]}, "template_parameters"
            )
    if given:
        raise TemplateRefused(
            _("The template has no button %(index)s.") % {"index": min(given)}, "template_parameters"
        )
    return labels, send


def check_send_template(conversation: Conversation, user: User, spec: Any) -> Message:
    """An agent sends an approved template (into an open or a closed window): refused with a `code` before
    anything is queued when it does not fit; else queued like a reply, its text as the customer will read it."""
    if not isinstance(spec, dict):
        raise TemplateRefused(
            _('`template` is an object: {"name", "language", "components"}.'), "invalid_template"
        )
    template = find_sendable(conversation.number.waba_id, spec.get("name"), spec.get("language"))
    content, text = fill(template, spec.get("components"))
    return actions.do_queue_outbound(
        conversation, type="template", text=text, content=content, sender_kind=SenderKind.AGENT, sender=user
    )


def reason_words(template: MessageTemplate) -> str:
    """Why the template is in its state, in plain words (the request's language)."""
    parts: list[str] = []
    reasons = {
        "INVALID_FORMAT": _("Meta found its format invalid."),
        "PROMOTIONAL": _("Meta judged it promotional for its category."),
        "INCORRECT_CATEGORY": _("Meta judged its category wrong."),
        "ABUSIVE_CONTENT": _("Meta found abusive content."),
        "SCAM": _("Meta judged it a scam."),
        "TAG_CONTENT_MISMATCH": _("Its content does not match its category."),
        "FIRST_PAUSE": _("Paused by Meta for low quality (first pause: 3 hours)."),
        "SECOND_PAUSE": _("Paused by Meta for low quality again (second pause: 6 hours)."),
        "RATE_LIMITING_PAUSE": _("Paused by Meta: sent too fast."),
        "UNPAUSE": _("Meta lifted the pause."),
        "DISABLED": _("Disabled by Meta after repeated low quality."),
    }
    if template.reason:
        parts.append(reasons.get(template.reason, template.reason.replace("_", " ").capitalize() + "."))
    elif template.status == TemplateStatus.DISABLED:
        parts.append(reasons["DISABLED"])
    if template.reason_detail:
        parts.append(template.reason_detail)
    if template.recommendation:
        parts.append(_("Meta recommends: %(text)s") % {"text": template.recommendation})
    if template.correct_category:
        parts.append(
            _("Meta will re-categorise it as %(category)s within 24 hours.")
            % {"category": template.correct_category}
        )
    return " ".join(parts)
