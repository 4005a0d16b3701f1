"""Tickets, SLA settings and the reporting store of a tenant (tenant schema).

Reports never scan messages: every measured interval is a `ReportingEvent` row written when it happens, and
counts are kept per local day in `DailyVolume` / `ConversationDay`. `day` is the date in the tenant's time
zone at the moment of the event (docs/metrics.md).
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.utils import timezone

from conversations.models import Conversation, ConversationStatus
from helpdesk.tenancy.models import WhatsAppNumber


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# The inbox tabs (and `Conversation.status`, the API's `?status=`) follow the conversation's current ticket:
# a closed ticket is as done as a resolved one. tickets.actions keeps the copy on the conversation in step.
CONVERSATION_STATUS_OF_TICKET: dict[str, str] = {
    TicketStatus.OPEN: ConversationStatus.OPEN,
    TicketStatus.PENDING: ConversationStatus.PENDING,
    TicketStatus.RESOLVED: ConversationStatus.RESOLVED,
    TicketStatus.CLOSED: ConversationStatus.RESOLVED,
}


def conversation_status_of(ticket_status: str) -> str:
    """The inbox tab (conversation status) of a conversation whose current ticket has this status."""
    return CONVERSATION_STATUS_OF_TICKET[ticket_status]


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class CustomerLanguage(models.TextChoices):
    INDONESIAN = "id", "Bahasa Indonesia"
    ENGLISH = "en", "English"


class SupportSettings(models.Model):
    """The tenant's one row of support settings (the time zone lives on the shared Tenant)."""

    reopen_window_hours = models.PositiveIntegerField(default=72)
    window_warning_minutes = models.PositiveIntegerField(default=120)
    sla_warning_percent = models.PositiveSmallIntegerField(default=80)
    auto_assign = models.BooleanField(default=True)
    # The language of what the helpdesk itself says to customers (the satisfaction question, confirmations).
    customer_language = models.CharField(max_length=8, choices=CustomerLanguage.choices, default="id")
    # Ask the customer to rate the help (1 to 5) when a ticket is resolved inside the 24-hour window.
    csat_enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return "Support settings"

    @classmethod
    def current(cls) -> SupportSettings:
        found = cls.objects.order_by("pk").first()
        return found or cls.objects.create()


class BusinessHours(models.Model):
    """One opening interval of a weekday (Monday = 0), local wall-clock time."""

    weekday = models.PositiveSmallIntegerField()
    opens = models.TimeField()
    closes = models.TimeField(help_text="00:00 means midnight at the end of the day")

    class Meta:
        ordering = ["weekday", "opens"]

    def __str__(self) -> str:
        return f"{self.weekday} {self.opens}-{self.closes}"

    @property
    def closes_at(self) -> time:
        return time.max if self.closes == time(0) else self.closes


class Holiday(models.Model):
    date = models.DateField(unique=True)
    name = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SLAPolicy(models.Model):
    """Targets in business seconds for one priority; null means no target."""

    priority = models.CharField(max_length=16, choices=Priority.choices, unique=True)
    first_response_seconds = models.PositiveIntegerField(null=True, blank=True)
    next_response_seconds = models.PositiveIntegerField(null=True, blank=True)
    resolution_seconds = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SLA {self.priority}"


class Ticket(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tickets")
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(help_text="WhatsApp time of the customer message that opened the case")
    cycle_started_at = models.DateTimeField(help_text="opened_at, or the time of the latest reopen")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    # The customer's current wait: since their first unanswered message (null when answered).
    waiting_since = models.DateTimeField(null=True, blank=True)
    awaiting_first_response = models.BooleanField(default=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    # SLA clocks (business-time deadlines as moments) and which warnings / breaches were already raised.
    response_due_at = models.DateTimeField(null=True, blank=True)
    response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    response_warned_at = models.DateTimeField(null=True, blank=True)
    response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    # The 24-hour window end that was warned about / recorded as expired unanswered.
    window_warned_for = models.DateTimeField(null=True, blank=True)
    window_expired_for = models.DateTimeField(null=True, blank=True)
    # The satisfaction question (tickets/satisfaction.py): when it was queued, and the customer's answer.
    csat_asked_at = models.DateTimeField(null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-opened_at"], name="ticket_status_recent"),
            models.Index(fields=["conversation", "-opened_at"], name="ticket_latest"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee"),
            models.Index(fields=["response_warn_at"], name="ticket_response_warn"),
            models.Index(fields=["resolution_warn_at"], name="ticket_resolution_warn"),
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.pk}"


class ReportingEvent(models.Model):
    """One measured interval or outcome, written when it happens.

    name: `first_response` and `response` (customer wait ended by a human agent reply; every first response is
    also a response), `resolution` (opened -> resolved), `sla` (a target met or breached), `window_expired`
    (the 24-hour window closed while the customer's last message was unanswered), `csat` (a satisfaction answer:
    `score` 1 to 5, attributed to the agent who resolved the ticket).
    """

    name = models.CharField(max_length=32)
    day = models.DateField(help_text="Local date (tenant time zone) of event_end")
    event_start = models.DateTimeField()
    event_end = models.DateTimeField()
    value_seconds = models.FloatField(default=0)
    value_business_seconds = models.FloatField(default=0)
    ticket = models.ForeignKey(Ticket, null=True, on_delete=models.SET_NULL, related_name="+")
    conversation = models.ForeignKey(Conversation, null=True, on_delete=models.SET_NULL, related_name="+")
    number = models.ForeignKey(WhatsAppNumber, null=True, on_delete=models.SET_NULL, related_name="+")
    agent_id = models.BigIntegerField(null=True, blank=True, help_text="tenancy.User id of the acting agent")
    sla_kind = models.CharField(max_length=16, blank=True, default="")
    sla_met = models.BooleanField(null=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["name", "day"],
                name="reporting_name_day",
                # Covering: every report query is an index-only scan of the period's rows.
                include=[
                    "value_seconds",
                    "value_business_seconds",
                    "agent_id",
                    "number",
                    "ticket",
                    "sla_met",
                ],
            ),
            models.Index(fields=["agent_id", "name", "day"], name="reporting_agent_name_day"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.value_seconds:.0f}s on {self.day}"


class DailyVolume(models.Model):
    """Counts per local day, number and agent (agent 0: not attributable to an agent)."""

    day = models.DateField()
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.CASCADE, related_name="+")
    agent_id = models.BigIntegerField(default=0)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    tickets_opened = models.PositiveIntegerField(default=0)
    # Outcomes, by the agent they are attributed to (as their ReportingEvent rows): daily sums read in one scan.
    sla_met = models.PositiveIntegerField(default=0)
    sla_breached = models.PositiveIntegerField(default=0)
    windows_expired = models.PositiveIntegerField(default=0)
    # How many intervals of each measure the day has: a SealedIntervals row is trusted only while it holds as many.
    first_responses = models.PositiveIntegerField(default=0)
    responses = models.PositiveIntegerField(default=0)
    resolutions = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "number", "agent_id"], name="daily_volume_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.number_id}/{self.agent_id}"


class ConversationDay(models.Model):
    """A conversation had at least one customer message on this local day (for distinct counts)."""

    day = models.DateField()
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "conversation"], name="conversation_day_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.conversation_id}"


class SealedIntervals(models.Model):
    """The measured intervals of one day that has ended, per measure and number, packed for reports.

    Three aligned arrays, ordered by agent and then by calendar seconds: `agent_ids` (little-endian int64;
    0: not attributable to an agent), `seconds` and `business_seconds` (little-endian doubles), one entry per
    ReportingEvent row of the day. Written by tickets.intervals.seal_closed_days; read only while `count` equals
    the day's counters in DailyVolume (tickets/intervals.py says why that keeps reports exact).
    """

    day = models.DateField()
    name = models.CharField(max_length=32)
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField()
    agent_ids = models.BinaryField()
    seconds = models.BinaryField()
    business_seconds = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "name", "number"], name="sealed_intervals_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.name} {self.number_id}: {self.count}"
