"""Celery tasks. Each takes the tenant's schema name explicitly and opens it; each is safe to run twice."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.db.models import F, Q
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from conversations import actions, graph_api, media, message_templates, number_health, webhooks
from conversations.models import Direction, HealthAlert, Message, MessageStatus, PendingStatus, SenderKind
from helpdesk.tenancy.models import WhatsAppNumber

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 6  # retries at about 5, 10, 20, 40, 80 s: bounded at ~2.5 min, then `failed`
CLAIM_TIMEOUT = timedelta(seconds=60)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: the first retry comes within 10 seconds."""
    return float(min(5 * 2 ** (attempt - 1), 300)) * random.uniform(0.8, 1.2)  # noqa: S311


@shared_task(bind=True, ignore_result=True)
def process_webhook_events(self: Task) -> int:
    """Apply stored webhook events in batches until none is left (one task per wake-up, not per webhook). Run
    eagerly (inside the request that stored the webhook), it does not wait for more."""
    return webhooks.process_until_done(linger=0.0 if self.request.is_eager else None)


@shared_task(ignore_result=True)
def sweep_webhook_events() -> int:
    """Beat: events whose processing task was lost (broker down, worker killed) are picked up here. It neither
    takes nor gives up the wake key: a woken task may be running."""
    return webhooks.drain()


def _claim(message_id: int) -> Message | None:
    """Take the message for one send attempt; None when it is already sent, failed or held by a live claim."""
    now = timezone.now()
    claimed = (
        Message.objects.filter(
            pk=message_id, direction=Direction.OUT, status=MessageStatus.QUEUED, wamid__isnull=True
        )
        .filter(Q(send_claimed_at__isnull=True) | Q(send_claimed_at__lt=now - CLAIM_TIMEOUT))
        .filter(send_attempts__lt=MAX_SEND_ATTEMPTS)
        .update(send_claimed_at=now, send_attempts=F("send_attempts") + 1)
    )
    if not claimed:
        return None
    return Message.objects.select_related("conversation__contact", "conversation__number").get(pk=message_id)


@shared_task(ignore_result=True)
def send_message(schema_name: str, message_id: int) -> str:
    """Send one queued outbound message through the Graph API. A claim (a conditional UPDATE) makes a
    duplicate or late delivery of this task a no-op, so a message is never sent twice by us."""
    with schema_context(schema_name):
        message = _claim(message_id)
        if message is None:
            return "skipped"
        conversation = message.conversation
        try:
            wamid = graph_api.send_message(
                conversation.number,
                conversation.contact.address,
                message.type,
                media.content_to_send(message),  # a file: uploaded once, then sent by its id
                reply_to_wamid=message.reply_to_wamid,
            )
        except graph_api.GraphAPIError as error:
            if error.retryable and message.send_attempts < MAX_SEND_ATTEMPTS:
                delay = retry_delay(message.send_attempts)
                Message.objects.filter(pk=message.pk).update(
                    send_claimed_at=None, send_retry_at=timezone.now() + timedelta(seconds=delay)
                )
                log.warning(
                    "send of message %s in %s: %s; retry %d in %.0f s",
                    message.pk,
                    schema_name,
                    error,
                    message.send_attempts,
                    delay,
                )
                send_message.apply_async((schema_name, message.pk), countdown=delay)
                return "retrying"
            log.warning("send of message %s in %s failed for good: %s", message.pk, schema_name, error)
            actions.do_mark_send_failed(message.pk, error.code, error.title, error.details)
            return "failed"
        # Meta has the message: from here on only our bookkeeping may be retried, never the send.
        record_sent(schema_name, message.pk, wamid)
        return "sent"


BOOKKEEPING_TRIES = 3


def record_sent(schema_name: str, message_id: int, wamid: str) -> None:
    """Keep the wamid (one small statement, tried a few times), then mark the message sent. Whatever fails
    here is retried as bookkeeping (`record_sent_later`); the sweeper finishes it if even that is lost."""
    for attempt in range(1, BOOKKEEPING_TRIES + 1):
        try:
            actions.do_keep_wamid(message_id, wamid)
            actions.do_mark_sent(message_id, wamid)
            return
        except Exception:
            log.exception(
                "recording the send of message %s in %s as %s failed (try %d)",
                message_id,
                schema_name,
                wamid,
                attempt,
            )
            time.sleep(0.05 * attempt)
    try:
        record_sent_later.apply_async((schema_name, message_id, wamid), countdown=retry_delay(1))
    except Exception:  # the broker is down too: the sweeper sees a queued message that has its wamid
        log.exception("could not schedule the bookkeeping of message %s", message_id)


@shared_task(ignore_result=True, bind=True, max_retries=10)
def record_sent_later(self: Any, schema_name: str, message_id: int, wamid: str) -> None:
    """The bookkeeping of an accepted send, retried with backoff; it never calls the Graph API."""
    with schema_context(schema_name):
        try:
            actions.do_keep_wamid(message_id, wamid)
            actions.do_mark_sent(message_id, wamid)
        except Exception as exc:
            raise self.retry(exc=exc, countdown=retry_delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def send_read_receipt(schema_name: str, message_id: int) -> None:
    """Tell WhatsApp the customer's message was read (blue ticks on their phone). Best effort: never retried."""
    with schema_context(schema_name):
        message = (
            Message.objects.select_related("conversation__number")
            .filter(pk=message_id, direction=Direction.IN)
            .first()
        )
        if message is None or not message.wamid:
            return
        try:
            graph_api.mark_read(message.conversation.number, message.wamid)
        except graph_api.GraphAPIError as error:
            log.info("read receipt for %s not sent: %s", message.wamid, error)


PENDING_STATUS_DAYS = 7


@shared_task(ignore_result=True)
def sweep_pending_statuses() -> int:
    """Beat, hourly: statuses for wamids that never became ours (another app on the same number) are kept a
    week for a late send answer, then dropped."""
    cutoff = timezone.now() - timedelta(days=PENDING_STATUS_DAYS)
    dropped = 0
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            dropped += PendingStatus.objects.filter(received_at__lt=cutoff).delete()[0]
    return dropped


@shared_task(ignore_result=True)
def sweep_outbound_messages() -> int:
    """Beat: finish the bookkeeping of accepted sends (queued with a wamid), re-enqueue queued messages whose
    task was lost or whose worker died holding the claim, and fail those that used up their attempts."""
    stale_before = timezone.now() - CLAIM_TIMEOUT
    count = 0
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            queued = Message.objects.filter(
                direction=Direction.OUT, status=MessageStatus.QUEUED, created_at__lt=stale_before
            )
            for message_id, wamid in queued.filter(wamid__isnull=False).values_list("pk", "wamid")[:500]:
                record_sent(tenant.schema_name, message_id, str(wamid))
                count += 1
            # A broadcast's message is sent by its runner, paced (conversations/broadcasts.py), never from here.
            stuck = (
                queued.filter(wamid__isnull=True)
                .exclude(sender_kind=SenderKind.BROADCAST)
                .filter(Q(send_claimed_at__isnull=True) | Q(send_claimed_at__lt=stale_before))
            )
            stuck = stuck.filter(Q(send_retry_at__isnull=True) | Q(send_retry_at__lt=stale_before))
            for message_id in stuck.filter(send_attempts__gte=MAX_SEND_ATTEMPTS).values_list("pk", flat=True)[
                :500
            ]:
                actions.do_mark_send_failed(
                    message_id, None, "Not sent: every attempt was used up", f"{MAX_SEND_ATTEMPTS} attempts"
                )
                count += 1
            for message_id in stuck.filter(send_attempts__lt=MAX_SEND_ATTEMPTS).values_list("pk", flat=True)[
                :500
            ]:
                send_message.delay(tenant.schema_name, message_id)
                count += 1
    return count


@shared_task(ignore_result=True)
def simulate_statuses(phone_number_id: str, wamid: str, recipient: str) -> None:
    """Simulator mode: the customer's phone receives the reply, then reads it (signed status webhooks)."""
    import time

    from conversations import simulator

    number = WhatsAppNumber.objects.get(phone_number_id=phone_number_id)
    for status in ("sent", "delivered", "read"):
        simulator.deliver_signed(number, simulator.status_payload(number, wamid, recipient, status))
        time.sleep(1)


def _numbers_of(schema_name: str, number_ids: list[int] | None = None) -> list[WhatsAppNumber]:
    numbers = WhatsAppNumber.objects.filter(tenant__schema_name=schema_name).order_by("pk")
    return list(numbers if number_ids is None else numbers.filter(pk__in=number_ids))


@shared_task(ignore_result=True)
def refresh_numbers(schema_name: str, number_ids: list[int] | None = None) -> int:
    """Read the numbers from the Graph API again (after an account webhook; `None`: every number of the
    tenant). Returns how many answered."""
    with schema_context(schema_name):
        return sum(number_health.do_refresh_number(n).ok for n in _numbers_of(schema_name, number_ids))


@shared_task(ignore_result=True)
def sync_templates(schema_name: str, number_ids: list[int] | None = None) -> int:
    """Read every template of the numbers' business accounts from Meta (`None`: every number of the tenant)."""
    with schema_context(schema_name):
        return message_templates.do_sync_templates(_numbers_of(schema_name, number_ids)).read


@shared_task(ignore_result=True)
def refresh_all_numbers() -> None:
    """Beat, hourly: every tenant's numbers read again, one task per tenant (a slow tenant delays no other)."""
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        refresh_numbers.delay(tenant.schema_name)


@shared_task(ignore_result=True)
def sync_all_templates() -> None:
    """Beat, every six hours: templates changed in Meta's own tools show up here."""
    for tenant in (
        get_tenant_model().objects.exclude(schema_name="public").filter(numbers__isnull=False).distinct()
    ):
        sync_templates.delay(tenant.schema_name)


@shared_task(ignore_result=True, bind=True, max_retries=5)
def mail_health_alert(self: Any, schema_name: str, alert_id: int) -> int:
    """E-mail the tenant's admins about an alert (retried when the mail server is away)."""
    tenant = get_tenant_model().objects.get(schema_name=schema_name)
    with schema_context(schema_name):
        alert = HealthAlert.objects.select_related("event", "number").filter(pk=alert_id).first()
        if alert is None:
            return 0
        try:
            return number_health.mail_alert(alert, tenant.pk, tenant.name)
        except OSError as exc:
            raise self.retry(exc=exc, countdown=retry_delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def simulate_template_review(waba_id: str, meta_id: str, name: str, language: str) -> None:
    """Simulator mode: Meta approves a submitted template (a signed status webhook)."""
    from conversations import simulator

    number = WhatsAppNumber.objects.filter(waba_id=waba_id, simulator=True).first()
    if number is not None:
        simulator.deliver_signed(number, simulator.template_status_payload(number, meta_id, name, language))


@shared_task(ignore_result=True)
def download_media(schema_name: str, message_id: int) -> str:
    """Download a customer's file (conversations/media.py); a failed attempt comes back later with backoff."""
    with schema_context(schema_name):
        outcome = media.do_download(message_id)
    if not outcome.done:
        download_media.apply_async((schema_name, message_id), countdown=outcome.retry_in)
        return "retrying"
    return "done"


@shared_task(ignore_result=True)
def sweep_media_downloads() -> int:
    """Beat: downloads whose task was lost (broker down, worker killed) are tried again."""
    count = 0
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            stale = Message.objects.filter(
                media__status="pending", created_at__lt=timezone.now() - timedelta(minutes=5)
            ).values_list("pk", flat=True)[:500]
            for message_id in stale:
                download_media.delay(tenant.schema_name, message_id)
                count += 1
    return count


# ------------------------------------------------------------------ broadcasts


@shared_task(acks_late=True)
def run_broadcast(schema_name: str, broadcast_id: int) -> str:
    """Send a slice of a broadcast (conversations/broadcasts.py), then hand the worker back and come again."""
    from conversations import broadcasts

    with schema_context(schema_name):
        more, sent = broadcasts.run_slice(broadcast_id)
    if more:
        # Nothing was sendable (rows waiting for a retry): look again in a second, not at once.
        run_broadcast.apply_async((schema_name, broadcast_id), countdown=0 if sent else 1)
    return "more" if more else "done"


@shared_task
def start_due_broadcasts() -> int:
    """Beat: start the scheduled broadcasts whose time has come (also after a restart: they are rows)."""
    from conversations import broadcasts

    count = 0
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            count += len(broadcasts.do_start_due())
    return count


@shared_task
def sweep_broadcasts() -> int:
    """Beat: a running broadcast whose runner was lost (a worker died, a task vanished) is run again; its sends
    that were under way are settled first (broadcasts.recover_interrupted)."""
    from conversations import broadcasts
    from conversations.models import Broadcast, BroadcastStatus

    count = 0
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            for broadcast_id in Broadcast.objects.filter(status=BroadcastStatus.RUNNING).values_list(
                "pk", flat=True
            ):
                broadcasts.recover_interrupted(broadcast_id)
                run_broadcast.delay(tenant.schema_name, broadcast_id)
                count += 1
    return count
